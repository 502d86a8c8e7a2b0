//! The core log conformance suite, in memory and persisted.

use flumedb_core::testkit::log_suite;
use flumelog_memory::MemoryLog;

#[test]
fn in_memory_log_passes_the_log_suite() {
    log_suite(|_dir| Ok(MemoryLog::new()));
}

#[test]
fn persisted_log_passes_the_log_suite() {
    log_suite(|dir| MemoryLog::open(dir));
}
