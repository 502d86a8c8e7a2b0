//! The core view conformance suite, on a persisted and an in-memory log.

use flumedb_core::testkit::{ViewSuite, view_suite};
use flumelog_memory::MemoryLog;
use flumeview_reduce::Reduce;
use serde_json::{Value, json};

type SumCount = (i64, u64);

fn sum_count(version: u32) -> Reduce<Value, SumCount> {
    Reduce::with_map(
        version,
        (0, 0),
        |v: &Value| v["n"].as_i64(),
        |(sum, count): &mut SumCount, n| {
            *sum += n;
            *count += 1;
        },
    )
}

#[test]
fn reduce_passes_the_view_suite_on_a_persisted_log() {
    view_suite(ViewSuite {
        open_log: Box::new(|dir| MemoryLog::open(dir)),
        make_view: Box::new(sum_count),
        record: Box::new(|i| json!({"n": i * 3 + 1})),
        snapshot: Box::new(|h| h.get()),
    });
}

#[test]
fn reduce_passes_the_view_suite_in_memory() {
    view_suite(ViewSuite {
        open_log: Box::new(|_| Ok(MemoryLog::new())),
        make_view: Box::new(sum_count),
        record: Box::new(|i| json!({"n": i})),
        snapshot: Box::new(|h| h.get()),
    });
}
