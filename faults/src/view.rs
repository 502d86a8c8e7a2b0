//! A database with a persisted reduce view under injected I/O faults: the log's and the state
//! file's calls (`persist::write_atomic`: create the temporary file, write, fsync, rename,
//! fsync the directory) failed in turn, then at random.
//!
//! The workload opens the log and the database, adds a reduce view that writes its state after
//! every record, appends four records reading the view after each, and closes. The first error
//! ends it. After each trial, without faults:
//! - the error was typed and names the file (its message holds the log's directory and the
//!   injected errno, or it is `Error::Poisoned`);
//! - every acknowledged append is in the log with its value;
//! - the state file, if any, is whole and never ahead of the log: its `since` is at most the
//!   log's, and its value is the sum of exactly the log's records up to that `since`;
//! - the reopened view reads the sum of every record in the log.
//!
//! The feeder writes the state on its own thread, so which call has a given index can vary
//! between runs: "every call in turn" holds for the calls of the run, not of a fixed trace.

use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::time::Duration;

use flumedb_core::persist::{Loaded, StateFile};
use flumedb_core::{Error, Flume, Json, Log, Result, Since};
use flumeview_reduce::Reduce;
use serde_json::{Value, json};

use crate::fiu::{Fail, Fiu};
use crate::log::{Figures, OpenFn};

const RECORDS: i64 = 4;

fn sum() -> Reduce<Value, i64> {
    Reduce::with_map(1, 0, |v: &Value| v.as_i64(), |s: &mut i64, x| *s += x)
        .write_every(1, Duration::ZERO)
}

/// Runs the workload on a database over the log `open` opens (in a fresh directory, given the
/// path `<dir>/log`), with `view_dir` its views' directory for that path, failing each call in
/// turn and then `random` random calls, with `errno`. Panics on the first broken promise.
pub fn check_reduce<L: Log>(
    fiu: &Fiu,
    name: &str,
    open: &OpenFn<L>,
    view_dir: &dyn Fn(&Path) -> PathBuf,
    errno: i32,
    random: u64,
) -> Figures {
    let mut figures = Figures::default();
    let (_, counted) = {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
        trial(fiu, name, open, view_dir, dir.path(), Fail::Never, errno)
    };
    figures.calls.push(counted);
    for n in 0..counted {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
        let (faults, _) = trial(fiu, name, open, view_dir, dir.path(), Fail::Nth(n), errno);
        figures.faults += faults;
        figures.trials += 1;
    }
    for r in 0..random {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
        let fail = Fail::Random {
            seed: 0x2545_f491_4f6c_dd1d ^ (r + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15),
            per_million: 1_000_000 / counted.max(1),
        };
        let (faults, _) = trial(fiu, name, open, view_dir, dir.path(), fail, errno);
        figures.faults += faults;
        figures.trials += 1;
    }
    figures
}

/// One trial; returns the faults injected and the calls made.
fn trial<L: Log>(
    fiu: &Fiu,
    name: &str,
    open: &OpenFn<L>,
    view_dir: &dyn Fn(&Path) -> PathBuf,
    dir: &Path,
    fail: Fail,
    errno: i32,
) -> (u64, u64) {
    let path = dir.join("log");
    let ctx = format!("{name} reduce {fail:?} errno {errno}");
    let mut acked = Vec::new();
    let (error, window) = fiu.window(fail, errno, || -> Result<()> {
        let db = Flume::open(open(&path)?, Json)?;
        let h = db.add_view("sum", sum())?;
        for i in 1..=RECORDS {
            let seq = db.append(&json!(i))?;
            acked.push((seq, i));
            h.get()?;
        }
        db.close()
    });
    if window.failed.is_empty() {
        assert!(error.is_ok(), "{ctx}: an error without a fault: {error:?}");
    } else if let Err(err) = &error {
        let message = err.to_string();
        let io = std::io::Error::from_raw_os_error(errno).to_string();
        assert!(
            (message.contains(&dir.display().to_string()) && message.contains(&io))
                || matches!(err, Error::Poisoned { path: Some(_), .. }),
            "{ctx}: the error ({:?}) does not say what failed: {err:?}",
            window.failed
        );
    }
    // A fault the workload never reported is allowed only if nothing depended on it: the
    // checks below still hold.

    // The log: every acknowledged append, readable.
    let log = open(&path).unwrap_or_else(|e| panic!("{ctx}: the log does not reopen: {e}"));
    let records: Vec<(Since, i64)> = log
        .range(Bound::Unbounded, Bound::Unbounded, false)
        .unwrap_or_else(|e| panic!("{ctx}: range: {e}"))
        .map(|entry| {
            let entry = entry.unwrap_or_else(|e| panic!("{ctx}: a record after reopen: {e}"));
            let value: i64 = serde_json::from_slice(&entry.data)
                .unwrap_or_else(|e| panic!("{ctx}: a record that is not JSON: {e}"));
            (Since::At(entry.seq), value)
        })
        .collect();
    for (seq, i) in &acked {
        assert!(
            records.contains(&(Since::At(*seq), *i)),
            "{ctx}: acknowledged record {i} at {seq} lost: {records:?}"
        );
    }
    // The state file: whole, and never ahead of the log.
    let state = StateFile::new(view_dir(&path).join("sum.reduce"), *b"FLRD", 2);
    match state.load::<i64>() {
        Ok(Loaded::State(saved)) => {
            let since = saved.stored.checkpoint.since;
            assert!(
                since <= log.since(),
                "{ctx}: the view ({since:?}) is ahead of the log"
            );
            let sum: i64 = records
                .iter()
                .filter(|(s, _)| *s <= since)
                .map(|r| r.1)
                .sum();
            assert_eq!(
                saved.value, sum,
                "{ctx}: the state at {since:?} is not the log's sum"
            );
        }
        Ok(Loaded::Missing) => {}
        Ok(Loaded::Corrupt) => panic!("{ctx}: the state file is damaged"),
        Err(e) => panic!("{ctx}: the state file cannot be read: {e}"),
    }
    // The reopened view catches up to the log.
    let db = Flume::open(log, Json).unwrap_or_else(|e| panic!("{ctx}: reopen: {e}"));
    let h = db
        .add_view("sum", sum())
        .unwrap_or_else(|e| panic!("{ctx}: add_view after reopen: {e}"));
    let total: i64 = records.iter().map(|r| r.1).sum();
    assert_eq!(h.get().ok(), Some(total), "{ctx}: the reopened view");
    db.close()
        .unwrap_or_else(|e| panic!("{ctx}: close after reopen: {e}"));
    (window.failed.len() as u64, window.calls)
}
