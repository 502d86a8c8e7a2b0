//! I/O faults (libfiu) on a level view (its fjall store) next to an offset log in fsync
//! mode: each call of the workload failed in turn with EIO and with ENOSPC, then random
//! calls. The workload opens the database, adds the view, appends four records reading the
//! view after each, and closes; the first error ends it. After each trial, without faults:
//! the error was typed and its message names the failed file's directory and the errno (or
//! says `Poisoned`: fjall refuses writes after a failed fsync and reports only that); every acknowledged append is in the log; the reopened view reads
//! exactly the rows the log implies (rebuilt or consistent) and is not ahead of the log.
//!
//! fjall writes from its own threads, so which call has a given index varies between runs.
//! The short run fails each call in turn with EIO and random calls with ENOSPC; `FLUMEDB_SOAK=1`
//! fails each call in turn with both.
//! The test re-runs this binary as a child with libfiu's POSIX preload (skipped, with a
//! message, when Debian's libfiu0 is not installed). `FLUMEDB_SOAK=1` runs more random trials.

use std::path::Path;

use flumedb_core::{Error, Flume, Json, Log, Result, Seq, Since};
use flumedb_faults::fiu::{Fail, Fiu};
use flumedb_faults::{EIO, ENOSPC, in_child, soak};
use flumelog_offset::{Durability, OffsetLog};
use flumeview_level::{Key, Level, LevelHandle, ReadOptions};
use serde_json::{Value, json};

const RECORDS: i64 = 4;

fn view() -> Level<Value> {
    Level::new(1, |msg: &Value, _| Ok(vec![Key::try_from(&msg["n"])?]))
}

fn open_log(dir: &Path) -> Result<OffsetLog> {
    OffsetLog::options()
        .durability(Durability::Fsync)
        .open(dir.join("log.offset"))
        .map_err(Error::from)
}

fn rows(h: &LevelHandle<Value>) -> Result<Vec<(Key, Seq)>> {
    h.read(ReadOptions::new().values(false))?
        .map(|row| row.map(|row| (row.key.unwrap_or(Key::Null), row.seq)))
        .collect()
}

/// One trial; returns (faults injected, calls made).
fn trial(fiu: &Fiu, fail: Fail, errno: i32) -> (u64, u64) {
    let dir = tempfile::tempdir().unwrap();
    let ctx = format!("level {fail:?} errno {errno}");
    let mut acked = Vec::new();
    let (result, window) = fiu.window(fail, errno, || -> Result<()> {
        let db = Flume::open(open_log(dir.path())?, Json)?;
        let h = db.add_view("idx", view())?;
        for n in 0..RECORDS {
            acked.push((db.append(&json!({ "n": n }))?, n));
            rows(&h)?;
        }
        db.close()
    });
    if window.failed.is_empty() {
        assert!(
            result.is_ok(),
            "{ctx}: an error without a fault: {result:?}"
        );
    } else if let Err(err) = &result {
        let message = err.to_string();
        // The OS's text for the errno ("Input/output error"): fjall's errors show it in
        // their debug form, without std's "(os error N)".
        let io = std::io::Error::from_raw_os_error(errno).to_string();
        let io = io
            .split(" (os error")
            .next()
            .unwrap_or_default()
            .to_string();
        assert!(
            (message.contains(&dir.path().display().to_string())
                && (message.contains(&io) || message.contains("Poisoned")))
                || matches!(err, Error::Poisoned { path: Some(_), .. }),
            "{ctx}: the error ({:?}) does not say what failed: {err}",
            window.failed
        );
    }
    let log =
        open_log(dir.path()).unwrap_or_else(|e| panic!("{ctx}: the log does not reopen: {e}"));
    let mut want = Vec::new();
    for entry in log
        .range(
            std::ops::Bound::Unbounded,
            std::ops::Bound::Unbounded,
            false,
        )
        .unwrap()
    {
        let entry = entry.unwrap_or_else(|e| panic!("{ctx}: a record after reopen: {e}"));
        let value: Value = serde_json::from_slice(&entry.data).unwrap();
        want.push((Key::try_from(&value["n"]).unwrap(), entry.seq));
    }
    for (seq, n) in &acked {
        assert!(
            want.contains(&(Key::try_from(&json!(n)).unwrap(), *seq)),
            "{ctx}: acknowledged record {n} at {seq} lost"
        );
    }
    let since = log.since();
    let db = Flume::open(log, Json).unwrap_or_else(|e| panic!("{ctx}: reopen: {e}"));
    let h = db
        .add_view("idx", view())
        .unwrap_or_else(|e| panic!("{ctx}: add_view: {e}"));
    let got = rows(&h).unwrap_or_else(|e| panic!("{ctx}: read after reopen: {e}"));
    want.sort();
    assert_eq!(got, want, "{ctx}: the view's rows are not the log's");
    let reached = h.progress().since;
    assert!(
        reached <= since && (since == Since::Empty || reached == since),
        "{ctx}: view at {reached:?}, log at {since:?}"
    );
    db.close().unwrap_or_else(|e| panic!("{ctx}: close: {e}"));
    (window.failed.len() as u64, window.calls)
}

#[test]
fn level_view_on_offset_log() {
    let Some(fiu) = in_child("level_view_on_offset_log") else {
        return;
    };
    let random = if soak() { 500 } else { 10 };
    for errno in [EIO, ENOSPC] {
        let (_, calls) = trial(&fiu, Fail::Never, errno);
        let mut faults = 0;
        // fjall makes a few hundred calls: the short run fails each in turn with EIO only.
        let every = soak() || errno == EIO;
        for n in (0..calls).filter(|_| every) {
            faults += trial(&fiu, Fail::Nth(n), errno).0;
        }
        for r in 0..random {
            let fail = Fail::Random {
                seed: 0x51ed_270b_2745_9d2b ^ (r + 1),
                per_million: 1_000_000 / calls.max(1),
            };
            faults += trial(&fiu, fail, errno).0;
        }
        println!(
            "faults: level view on offset log errno {errno}: {calls} calls, {} trials, {faults} faults",
            if every { calls } else { 0 } + random
        );
    }
}
