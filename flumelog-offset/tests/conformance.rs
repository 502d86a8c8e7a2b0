//! The core log conformance suite, in the native format and each JS trailer width, and with
//! both durability modes; and the core view suite with a reduce view on an offset log.

use flumedb_core::testkit::{ViewSuite, log_suite, view_suite};
use flumelog_offset::{Durability, Format, JsWidth, OffsetLog};
use flumeview_reduce::Reduce;
use serde_json::{Value, json};

fn suite(format: Format, durability: Durability) {
    log_suite(move |dir| {
        Ok(OffsetLog::options()
            .format(format)
            .durability(durability)
            .open(dir.join("log.offset"))?)
    });
}

#[test]
fn native_passes_the_log_suite() {
    suite(Format::Native, Durability::Os);
}

#[test]
fn native_with_fsync_passes_the_log_suite() {
    suite(Format::Native, Durability::Fsync);
}

#[test]
fn js_32_bit_passes_the_log_suite() {
    suite(Format::Js(JsWidth::W32), Durability::Os);
}

#[test]
fn js_48_bit_passes_the_log_suite() {
    suite(Format::Js(JsWidth::W48), Durability::Os);
}

#[test]
fn js_53_bit_with_fsync_passes_the_log_suite() {
    suite(Format::Js(JsWidth::W53), Durability::Fsync);
}

#[test]
fn a_reduce_view_on_an_offset_log_passes_the_view_suite() {
    view_suite(ViewSuite {
        open_log: Box::new(|dir| Ok(OffsetLog::open(dir.join("log.offset"))?)),
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
