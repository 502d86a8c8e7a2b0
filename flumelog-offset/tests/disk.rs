//! A full disk and files the process may not write (see `flumedb_faults::disk`): a 1 MiB
//! tmpfs filled by appends, then space freed; a tmpfs remounted read-only; a log file made
//! immutable with `chattr +i` (root ignores mode bits). In both formats and durability modes.
//! Needs root for the tmpfs (skipped with a message otherwise).

use std::path::Path;

use flumedb_core::Error;
use flumedb_faults::disk;
use flumedb_faults::log::OpenFn;
use flumelog_offset::{Durability, Format, JsWidth, OffsetLog};

fn open(format: Format, durability: Durability) -> OpenFn<OffsetLog> {
    Box::new(move |path: &Path| {
        OffsetLog::options()
            .format(format)
            .durability(durability)
            .open(path)
            .map_err(Error::from)
    })
}

const MODES: [(Format, Durability); 4] = [
    (Format::Native, Durability::Fsync),
    (Format::Native, Durability::Os),
    (Format::Js(JsWidth::W32), Durability::Fsync),
    (Format::Js(JsWidth::W53), Durability::Os),
];

#[test]
fn disk_full_then_space_freed() {
    for (format, durability) in MODES {
        let test = format!("disk full {format:?} {durability:?}");
        let file = |p: &Path| p.to_path_buf();
        if let Some((full, all)) =
            disk::disk_full(&test, "log.offset", &open(format, durability), &file)
        {
            println!("{test}: {full} records when full, {all} after space was freed, all kept");
        }
    }
}

#[test]
fn read_only_file_system() {
    for (format, durability) in MODES {
        let test = format!("read-only {format:?} {durability:?}");
        disk::read_only(
            &test,
            "log.offset",
            &open(format, durability),
            &|p: &Path| p.to_path_buf(),
        );
    }
}

#[test]
fn immutable_log_file() {
    for (format, durability) in MODES {
        let test = format!("immutable {format:?} {durability:?}");
        disk::immutable(&test, &open(format, durability), &|p: &Path| {
            p.to_path_buf()
        });
    }
}
