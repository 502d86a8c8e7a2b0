//! Appends, deletes and reads from several threads at once
//! (`flumedb_core::testkit::check_deletes_under_load`), in both durability modes and with
//! small blocks (records cross many block boundaries).

use std::sync::Arc;

use flumedb_core::testkit::check_deletes_under_load;
use flumelog_aligned_offset::{AlignedLog, Durability};

fn run(durability: Durability) {
    let dir = tempfile::tempdir().unwrap();
    let log = AlignedLog::options()
        .block_size(4096)
        .durability(durability)
        .open(dir.path().join("log"))
        .unwrap();
    check_deletes_under_load(Arc::new(log), AlignedLog::del);
}

#[test]
fn appends_deletes_and_reads_from_many_threads_os() {
    run(Durability::Os);
}

#[test]
fn appends_deletes_and_reads_from_many_threads_fsync() {
    run(Durability::Fsync);
}
