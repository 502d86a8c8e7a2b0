//! Simulated power loss (`flumedb_core::testkit::power`) of a reduce view over an offset log:
//! a child appends JSON records (some spanning pages) and flushes while the view writes its
//! state file often (`write_every(2, 1 ms)`: tmp file, fsync, rename, directory fsync), all
//! under an `LD_PRELOAD` shim that records every write and fsync. Every crash state the disk
//! could show at every point of that trace (unsynced pages of the log or the state file lost,
//! kept, torn, zero-filled; renames and creations without a directory fsync undone) is opened
//! and checked: the view's state equals a fold over exactly the records the log holds (the
//! view is never ahead of the log: a state built on records the log lost is rebuilt), and the
//! log holds everything acknowledged as durable. In both durability modes.
//! `FLUMEDB_SOAK=1` runs a longer workload and more states.

use std::ops::Bound;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use flumedb_core::testkit::power::{self, CrashState, Limits};
use flumedb_core::{Flume, Json, Log, Since};
use flumelog_offset::{Durability, OffsetLog};
use flumeview_reduce::{Reduce, Reduced};
use serde_json::{Value, json};

const LOG: &str = "log.offset";

fn soak() -> bool {
    std::env::var("FLUMEDB_SOAK").is_ok_and(|v| v == "1")
}

fn durability(workload: &str) -> Durability {
    if workload == "fsync" {
        Durability::Fsync
    } else {
        Durability::Os
    }
}

/// Record `i`: its number and a pad whose length (up to 6 KiB) depends on `i`.
fn record(i: u64) -> Value {
    let pad = (i.wrapping_mul(2_654_435_761) % 6000) as usize;
    json!({ "i": i, "pad": "x".repeat(pad) })
}

/// The state: how many records and an order-sensitive hash of their numbers.
type State = (u64, u64);

fn fold(state: &mut State, value: &Value) {
    let i = value["i"].as_u64().unwrap_or(u64::MAX);
    state.0 += 1;
    state.1 = state.1.wrapping_mul(1_000_003).wrapping_add(i);
}

fn view() -> Reduce<Value, State> {
    Reduce::new(1, (0, 0), fold).write_every(2, Duration::from_millis(1))
}

fn open_log(path: &std::path::Path, d: Durability) -> Result<OffsetLog, String> {
    OffsetLog::options()
        .durability(d)
        .open(path)
        .map_err(|e| format!("open: {e}"))
}

/// The child's workload: notes `a i` per acknowledged append, `F` after each flush.
#[test]
fn power_child() {
    let Some(mut child) = power::child() else {
        return;
    };
    let d = durability(&child.workload);
    let db = Flume::open(open_log(&child.data().join(LOG), d).unwrap(), Json).unwrap();
    let h = db.add_view("count", view()).unwrap();
    let n = if soak() { 160 } else { 30 };
    for i in 0..n {
        db.append(&record(i)).unwrap();
        child.note(&format!("a {i}"));
        if i % 3 == 2 {
            // Let the view catch up (and write its state) now and then.
            h.get().unwrap();
        }
        if i % 5 == 4 {
            db.log().flush().unwrap();
            child.note("F");
        }
    }
    db.close().unwrap();
    child.note("closed");
}

fn check(workload: &str, state: &CrashState) -> Result<(), String> {
    let d = durability(workload);
    let (mut appended, mut flushed) = (0u64, 0u64);
    for note in &state.notes {
        if note.starts_with("a ") {
            appended += 1;
        } else {
            flushed = appended;
        }
    }
    let durable = if d == Durability::Fsync {
        appended
    } else {
        flushed
    };
    let dir = power::scratch_dir();
    state.create_in(dir.path()).unwrap();
    // Every state opens: what a power loss leaves past the log's synced end is cut.
    let log = open_log(&dir.path().join(LOG), d)?;
    // What the log holds, as a forward scan (the view's feed) returns it.
    let mut expected: State = (0, 0);
    let mut numbers = Vec::new();
    let mut last = Since::Empty;
    for item in log
        .range(Bound::Unbounded, Bound::Unbounded, false)
        .map_err(|e| format!("range: {e}"))?
    {
        let entry = item.map_err(|e| format!("the log's own scan failed: {e}"))?;
        let value: Value = serde_json::from_slice(&entry.data)
            .map_err(|e| format!("seq {}: not a record: {e}", entry.seq.get()))?;
        numbers.push(value["i"].as_u64().unwrap_or(u64::MAX));
        fold(&mut expected, &value);
        last = Since::At(entry.seq);
    }
    if numbers.iter().enumerate().any(|(k, i)| *i != k as u64) {
        return Err(format!("the log is no prefix of the appends: {numbers:?}"));
    }
    if (numbers.len() as u64) < durable {
        return Err(format!("{} records, {durable} were durable", numbers.len()));
    }
    if last != log.since() {
        return Err(format!(
            "the scan ends at {last:?}, the log at {:?}",
            log.since()
        ));
    }
    let db = Flume::open(log, Json).map_err(|e| format!("Flume::open: {e}"))?;
    let h = db
        .add_view("count", view())
        .map_err(|e| format!("add_view: {e}"))?;
    // Every wait has a deadline: a view that never catches up fails the state.
    let (tx, rx) = mpsc::channel();
    let reader = h.clone();
    std::thread::spawn(move || {
        let _ = tx.send(reader.get_meta());
    });
    let got = rx
        .recv_timeout(Duration::from_secs(20))
        .map_err(|_| "the view did not catch up within 20 s".to_string())?;
    let got: Reduced<State> = got.map_err(|e| format!("view get: {e}"))?;
    if got.value != expected || got.since != last {
        return Err(format!(
            "view {:?} at {:?}, the log's {} records fold to {expected:?} at {last:?}",
            got.value,
            got.since,
            numbers.len()
        ));
    }
    db.close().map_err(|e| format!("close: {e}"))
}

fn run(workload: &str) {
    let started = Instant::now();
    let trace = power::record("power_child", workload).unwrap();
    let stats = trace
        .crash_states(&Limits::from_env(8, 80), |state| check(workload, state))
        .unwrap_or_else(|e| panic!("{workload}: {e}"));
    eprintln!(
        "power loss reduce view ({workload} log): {} trace calls ({}), {} crash points, {} states \
         checked ({} distinct) in {:.1?}",
        trace.ops.len(),
        trace.summary(),
        stats.points,
        stats.states,
        stats.distinct,
        started.elapsed(),
    );
    let min = if soak() { 1000 } else { 150 };
    assert!(
        stats.distinct >= min,
        "{workload}: only {} states",
        stats.distinct
    );
}

#[test]
fn power_loss_reduce_view_os_log() {
    run("os");
}

#[test]
fn power_loss_reduce_view_fsync_log() {
    run("fsync");
}
