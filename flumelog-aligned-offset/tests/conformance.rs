//! The core log conformance suite in both durability modes and with small blocks (many block
//! boundaries), and the core view suite with a reduce view on an aligned-offset log.

use flumedb_core::testkit::{LogLimits, ViewSuite, log_suite_with, view_suite};
use flumelog_aligned_offset::{AlignedLog, Durability};
use flumeview_reduce::Reduce;
use serde_json::{Value, json};

fn suite(block: u32, durability: Durability) {
    log_suite_with(
        LogLimits {
            max_record: block as usize - 10,
        },
        move |dir| {
            AlignedLog::options()
                .block_size(block)
                .durability(durability)
                .open(dir.join("log.aligned"))
        },
    );
}

#[test]
fn default_blocks_pass_the_log_suite() {
    suite(65536, Durability::Os);
}

#[test]
fn fsync_passes_the_log_suite() {
    suite(65536, Durability::Fsync);
}

#[test]
fn small_blocks_pass_the_log_suite() {
    suite(4096, Durability::Os);
}

#[test]
fn a_reduce_view_on_an_aligned_log_passes_the_view_suite() {
    view_suite(ViewSuite {
        open_log: Box::new(|dir| {
            AlignedLog::options()
                .block_size(1024)
                .open(dir.join("log.aligned"))
        }),
        make_view: Box::new(|version| {
            Reduce::with_map(
                version,
                0i64,
                |v: &Value| v["n"].as_i64(),
                |s: &mut i64, n| *s += n,
            )
        }),
        record: Box::new(|i| json!({"n": i, "pad": "x".repeat(i as usize % 50)})),
        snapshot: Box::new(|h| h.get()),
    });
}
