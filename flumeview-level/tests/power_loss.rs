//! Simulated power loss (`flumedb_core::testkit::power`) of a level view over an offset log: a
//! child appends JSON records (some spanning pages), reads the view now and then (so fjall
//! writes its journal) and flushes, all under an `LD_PRELOAD` shim that records every write,
//! fsync, create, rename and unlink of the log and of fjall's files. Every crash state the disk
//! could show at every point of that trace (unsynced pages of the log, the journal, segments
//! and the check file lost, kept, torn, zero-filled; directory operations without a directory
//! fsync undone) is opened and checked: the log holds everything acknowledged as durable, and
//! the view's rows are exactly one per record the log holds (a store the crash damaged is
//! wiped and rebuilt, a store behind the log catches up, never one ahead of it), within 20 s.
//! In both durability modes. `FLUMEDB_SOAK=1` runs a longer workload and more states.

use std::collections::BTreeSet;
use std::ops::Bound;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use flumedb_core::testkit::power::{self, CrashState, Limits};
use flumedb_core::{Flume, Json, Log, Seq};
use flumelog_offset::{Durability, OffsetLog};
use flumeview_level::{Key, Level, ReadOptions};
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

fn view() -> Level<Value> {
    Level::new(1, |msg: &Value, _| Ok(vec![Key::try_from(&msg["i"])?]))
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
    let h = db.add_view("idx", view()).unwrap();
    let n = if soak() { 120 } else { 24 };
    for i in 0..n {
        db.append(&record(i)).unwrap();
        child.note(&format!("a {i}"));
        if i % 3 == 2 {
            // Let the view catch up (its rows reach fjall's journal) now and then.
            h.read(ReadOptions::new().values(false)).unwrap().count();
        }
        if i % 5 == 4 {
            db.log().flush().unwrap();
            child.note("F");
        }
    }
    db.close().unwrap();
    child.note("closed");
}

/// `wiped` counts the states whose store fjall could not open, so it was wiped and rebuilt.
fn check(workload: &str, state: &CrashState, wiped: &mut usize) -> Result<(), String> {
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
    let log = open_log(&dir.path().join(LOG), d)?;
    // What the log holds, as a forward scan (the view's feed) returns it.
    let mut numbers = Vec::new();
    let mut seqs = BTreeSet::new();
    for item in log
        .range(Bound::Unbounded, Bound::Unbounded, false)
        .map_err(|e| format!("range: {e}"))?
    {
        let entry = item.map_err(|e| format!("the log's own scan failed: {e}"))?;
        let value: Value = serde_json::from_slice(&entry.data)
            .map_err(|e| format!("seq {}: not a record: {e}", entry.seq.get()))?;
        numbers.push(value["i"].as_u64().unwrap_or(u64::MAX));
        seqs.insert(entry.seq);
    }
    if numbers.iter().enumerate().any(|(k, i)| *i != k as u64) {
        return Err(format!("the log is no prefix of the appends: {numbers:?}"));
    }
    if (numbers.len() as u64) < durable {
        return Err(format!("{} records, {durable} were durable", numbers.len()));
    }
    let db = Flume::open(log, Json).map_err(|e| format!("Flume::open: {e}"))?;
    // Every wait has a deadline: a view that never catches up fails the state.
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let rows = db.add_view("idx", view()).and_then(|h| {
            let rows: Result<Vec<(Option<Key>, Seq)>, _> = h
                .read(ReadOptions::new().values(false))?
                .map(|row| row.map(|row| (row.key, row.seq)))
                .collect();
            Ok((rows?, h.repaired()))
        });
        let closed = db.close();
        let _ = tx.send((rows, closed));
    });
    let (rows, closed) = rx
        .recv_timeout(Duration::from_secs(20))
        .map_err(|_| "the view did not catch up within 20 s".to_string())?;
    let (rows, repaired) = rows.map_err(|e| format!("view: {e}"))?;
    closed.map_err(|e| format!("close: {e}"))?;
    if repaired.is_some() {
        *wiped += 1;
    }
    let found: BTreeSet<Seq> = rows.iter().map(|(_, seq)| *seq).collect();
    if found != seqs || rows.len() != seqs.len() {
        return Err(format!(
            "{} rows over {} seqs, the log holds {} records (store repaired: {repaired:?})",
            rows.len(),
            found.len(),
            seqs.len()
        ));
    }
    for (k, (key, _)) in rows.iter().enumerate() {
        if *key != Some(Key::from(k as u64)) {
            return Err(format!("row {k} has key {key:?}"));
        }
    }
    Ok(())
}

fn run(workload: &str) {
    let started = Instant::now();
    let trace = power::record("power_child", workload).unwrap();
    let mut wiped = 0;
    let stats = trace
        .crash_states(&Limits::from_env(4, 40), |state| {
            check(workload, state, &mut wiped)
        })
        .unwrap_or_else(|e| panic!("{workload}: {e}"));
    eprintln!(
        "power loss level view ({workload} log): {} trace calls ({}), {} crash points, {} \
         states checked ({} distinct) in {:.1?}; the store was wiped and rebuilt in {}",
        trace.ops.len(),
        trace.summary(),
        stats.points,
        stats.states,
        stats.distinct,
        started.elapsed(),
        wiped,
    );
    // Only a crash while fjall creates its database leaves a store it cannot open. Many more
    // would mean the trace misses how fjall replaces its files (renames by raw syscalls).
    assert!(
        wiped * 20 < stats.states,
        "{workload}: the store was wiped in {wiped} of {} states",
        stats.states
    );
    let min = if soak() { 1000 } else { 100 };
    assert!(
        stats.distinct >= min,
        "{workload}: only {} states",
        stats.distinct
    );
}

#[test]
fn power_loss_level_view_os_log() {
    run("os");
}

#[test]
fn power_loss_level_view_fsync_log() {
    run("fsync");
}
