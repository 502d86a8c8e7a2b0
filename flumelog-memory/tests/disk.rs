//! A full disk and files the process may not write, for the persisted memory log (see
//! `flumedb_faults::disk`): a 1 MiB tmpfs filled by appends, then space freed; a tmpfs
//! remounted read-only; a log file made immutable with `chattr +i` (root ignores mode bits).
//! Needs root for the tmpfs (skipped with a message otherwise).

use std::path::Path;

use flumedb_faults::disk;
use flumedb_faults::log::OpenFn;
use flumelog_memory::{FILE_NAME, MemoryLog};

fn open() -> OpenFn<MemoryLog> {
    Box::new(|path: &Path| MemoryLog::open(path))
}

fn file(path: &Path) -> std::path::PathBuf {
    path.join(FILE_NAME)
}

#[test]
fn disk_full_then_space_freed() {
    if let Some((full, all)) = disk::disk_full("memory disk full", "log", &open(), &file) {
        println!("memory log: {full} records when full, {all} after space was freed, all kept");
    }
}

#[test]
fn read_only_file_system() {
    disk::read_only("memory read-only", "log", &open(), &file);
}

#[test]
fn immutable_log_file() {
    disk::immutable("memory immutable", &open(), &file);
}
