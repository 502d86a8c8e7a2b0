//! Simulated power loss (`flumedb_core::testkit::power`) of a persisted memory log: a child
//! appends (singles and batches, some spanning pages) and flushes under an `LD_PRELOAD` shim
//! that records every write and fsync; then every crash state the disk could show at every
//! point of that trace (unsynced pages lost, kept, torn, zero-filled; un-fsync'd directory
//! entries undone) is opened and checked: the log is a prefix of what was appended, in order,
//! holds everything appended before the last successful `flush`, reopening again changes
//! nothing, and appends continue. `FLUMEDB_SOAK=1` runs a longer workload and more states.

use std::time::Instant;

use flumedb_core::testkit::power::{self, CrashState, Limits};

use flumedb_core::{Log, Seq};
use flumelog_memory::MemoryLog;

const DIR: &str = "mem";

fn soak() -> bool {
    std::env::var("FLUMEDB_SOAK").is_ok_and(|v| v == "1")
}

/// Record `i`: its number, then a body whose length (up to 7 KiB) and bytes depend on `i`.
fn record(i: u64) -> Vec<u8> {
    let len = 8 + (i.wrapping_mul(2_654_435_761) % 7000) as usize;
    let mut data = i.to_le_bytes().to_vec();
    data.extend((8..len).map(|j| (i as usize + j) as u8 | 1));
    data
}

fn parse(data: &[u8]) -> Option<u64> {
    let i = u64::from_le_bytes(data.get(..8)?.try_into().ok()?);
    (data == record(i).as_slice()).then_some(i)
}

/// The child's workload: notes `a i` per acknowledged append, `F` after each flush.
#[test]
fn power_child() {
    let Some(mut child) = power::child() else {
        return;
    };
    let log = MemoryLog::open(child.data().join(DIR)).unwrap();
    let n = if soak() { 120 } else { 40 };
    let mut i = 0;
    let mut step = 0u64;
    while i < n {
        step += 1;
        if step.is_multiple_of(4) {
            let batch: Vec<Vec<u8>> = (i..i + 3).map(record).collect();
            let slices: Vec<&[u8]> = batch.iter().map(Vec::as_slice).collect();
            log.append_batch(&slices).unwrap();
            for k in i..i + 3 {
                child.note(&format!("a {k}"));
            }
            i += 3;
        } else {
            log.append(&record(i)).unwrap();
            child.note(&format!("a {i}"));
            i += 1;
        }
        if step.is_multiple_of(3) {
            log.flush().unwrap();
            child.note("F");
        }
    }
    log.close().unwrap();
    child.note("closed");
}

fn records(log: &MemoryLog) -> Result<Vec<u64>, String> {
    (0..log.len() as u64)
        .map(|s| {
            let data = log.get(Seq::new(s)).map_err(|e| format!("get({s}): {e}"))?;
            parse(&data).ok_or_else(|| format!("seq {s}: bytes that were never appended"))
        })
        .collect()
}

fn check(state: &CrashState) -> Result<(), String> {
    let mut flushed = 0;
    let mut appended = 0;
    for note in &state.notes {
        if note == "F" || note == "closed" {
            flushed = appended;
        } else if note.starts_with("a ") {
            appended += 1;
        }
    }
    let dir = power::scratch_dir();
    state.create_in(dir.path()).unwrap();
    let path = dir.path().join(DIR);
    // Every state opens: unflushed pages lost out of order leave a hole with data after it,
    // which open cuts because it lies past the synced end (`log.memory.synced`).
    let log = MemoryLog::open(&path).map_err(|e| format!("open: {e}"))?;
    let found = records(&log)?;
    if found.iter().enumerate().any(|(k, i)| *i != k as u64) {
        return Err(format!("not a prefix of the appends: {found:?}"));
    }
    if found.len() < flushed {
        return Err(format!(
            "{} records after reopen, {flushed} were flushed",
            found.len()
        ));
    }
    log.close().map_err(|e| format!("close: {e}"))?;
    let again = MemoryLog::open(&path).map_err(|e| format!("second open: {e}"))?;
    if again.recovered_bytes() != 0 || records(&again)? != found {
        return Err("the second open found another log".into());
    }
    let next = record(1_000_000);
    let seq = again
        .append(&next)
        .map_err(|e| format!("append after reopen: {e}"))?;
    if again.get(seq).map_err(|e| format!("get: {e}"))? != next {
        return Err("the append after reopen reads back wrong".into());
    }
    again.close().map_err(|e| format!("close: {e}"))
}

#[test]
fn power_loss_memory_log() {
    let started = Instant::now();
    let trace = power::record("power_child", "memory").unwrap();
    let stats = trace
        .crash_states(&Limits::from_env(12, 160), check)
        .unwrap_or_else(|e| panic!("memory log: {e}"));
    eprintln!(
        "power loss memory log: {} trace calls ({}), {} crash points, {} states checked ({} \
         distinct) in {:.1?}",
        trace.ops.len(),
        trace.summary(),
        stats.points,
        stats.states,
        stats.distinct,
        started.elapsed(),
    );
    let min = if soak() { 1000 } else { 150 };
    assert!(stats.distinct >= min, "only {} states", stats.distinct);
}
