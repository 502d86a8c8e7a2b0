//! I/O faults (libfiu): the log workload of `flumedb_faults::log` with every I/O call failed
//! in turn with EIO and with ENOSPC, then random calls, in both formats and both durability
//! modes. Each test re-runs this binary as a child with libfiu's POSIX preload (skipped, with
//! a message, when Debian's libfiu0 is not installed). `FLUMEDB_SOAK=1` runs many more
//! random trials.

use std::io::Write;
use std::path::Path;

use flumedb_core::{Error, Log};
use flumedb_faults::fiu::Fail;
use flumedb_faults::log::{Subject, check_log};
use flumedb_faults::{EIO, ENOSPC, in_child, soak};
use flumelog_offset::{Durability, Format, JsWidth, OffsetLog};

fn subject(format: Format, durability: Durability) -> Subject<OffsetLog> {
    Subject {
        name: format!("offset {format:?} {durability:?}"),
        open: Box::new(move |path: &Path| {
            OffsetLog::options()
                .format(format)
                .durability(durability)
                .open(path)
                .map_err(Error::from)
        }),
        file: Box::new(Path::to_path_buf),
        del: Some(Box::new(|log: &OffsetLog, seq| log.del(seq))),
        tear: Box::new(|path: &Path| {
            let mut file = std::fs::OpenOptions::new().append(true).open(path).unwrap();
            // The start of a frame whose rest never made it.
            file.write_all(&[0, 0, 0, 40, 7, 7, 7, 7, 7]).unwrap();
        }),
    }
}

fn run(test: &str, format: Format, durability: Durability) {
    let Some(fiu) = in_child(test) else { return };
    let random = if soak() { 2000 } else { 20 };
    for errno in [EIO, ENOSPC] {
        let figures = check_log(&fiu, &subject(format, durability), errno, random);
        if errno == EIO {
            for (start, trace) in ["create", "reopen"].iter().zip(&figures.traces) {
                println!("faults: {test} {start} calls: {}", trace.join(" "));
            }
        }
        println!(
            "faults: {test} errno {errno}: {:?} calls (create, reopen), {} trials, {} faults, {} \
             poisoned",
            figures.calls, figures.trials, figures.faults, figures.poisoned
        );
    }
}

#[test]
fn native_fsync() {
    run("native_fsync", Format::Native, Durability::Fsync);
}

#[test]
fn native_os() {
    run("native_os", Format::Native, Durability::Os);
}

#[test]
fn js_fsync() {
    run("js_fsync", Format::Js(JsWidth::W32), Durability::Fsync);
}

#[test]
fn js_os() {
    run("js_os", Format::Js(JsWidth::W53), Durability::Os);
}

/// Finding: a first open whose header write or fsync failed left an empty file, which the next
/// open (default options) took for a JS log. Each call of a first open failed in turn: the
/// error names the file, and the next default open gives a native log.
#[test]
fn a_failed_create_does_not_turn_into_a_js_log() {
    let Some(fiu) = in_child("a_failed_create_does_not_turn_into_a_js_log") else {
        return;
    };
    for errno in [EIO, ENOSPC] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        let (opened, counted) = fiu.window(Fail::Never, errno, || OffsetLog::open(&path));
        assert!(opened.is_ok());
        println!(
            "faults: a first open makes {} calls: {:?}",
            counted.calls, counted.trace
        );
        for n in 0..counted.calls {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("log");
            let (opened, window) = fiu.window(Fail::Nth(n), errno, || OffsetLog::open(&path));
            let err = Error::from(opened.err().unwrap_or_else(|| panic!("call {n}: no error")));
            assert!(
                matches!(&err, Error::File { path: p, source }
                    if (*p == path || p == dir.path() || *p == dir.path().join("log.synced"))
                    && source.raw_os_error() == Some(errno)),
                "call {n} ({:?}): {err:?}",
                window.failed
            );
            let log = OffsetLog::open(&path).unwrap();
            assert_eq!(
                log.format(),
                Format::Native,
                "after failing call {n} ({:?})",
                window.failed
            );
            log.append(b"x").unwrap();
        }
    }
}

/// A reduce view persisted next to an offset log (fsync mode): the log's and the state file's
/// calls failed in turn (see `flumedb_faults::view`).
#[test]
fn reduce_view_on_offset_log() {
    let Some(fiu) = in_child("reduce_view_on_offset_log") else {
        return;
    };
    let open: flumedb_faults::log::OpenFn<OffsetLog> = Box::new(|path: &Path| {
        OffsetLog::options()
            .durability(Durability::Fsync)
            .open(path)
            .map_err(Error::from)
    });
    let view_dir = |path: &Path| path.with_file_name("log.views");
    let random = if soak() { 1000 } else { 10 };
    for errno in [EIO, ENOSPC] {
        let figures =
            flumedb_faults::view::check_reduce(&fiu, "offset", &open, &view_dir, errno, random);
        println!(
            "faults: reduce view on offset log errno {errno}: {:?} calls, {} trials, {} faults",
            figures.calls, figures.trials, figures.faults
        );
    }
}
