//! Simulated power loss (`flumedb_core::testkit::power`): a child appends (singles, batches,
//! records spanning pages, deletes) under an `LD_PRELOAD` shim that records every write and
//! fsync; then every crash state the disk could show at every point of that trace (unsynced
//! pages lost, kept, torn at a page, zero-filled; un-fsync'd directory entries undone) is
//! opened and checked:
//! - `Durability::Fsync`: every acknowledged append is there, byte-exact at its seq; every
//!   acknowledged delete reads as deleted; nothing that was never appended appears, and no
//!   damaged bytes are returned;
//! - `Durability::Os`: the log is a prefix of what was appended, in order, and holds
//!   everything acknowledged before the last successful `flush`;
//! - both: reopening again changes nothing (recovery is idempotent) and appends continue.
//!
//! `FLUMEDB_SOAK=1` runs a longer workload with more states per crash point.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Bound;
use std::time::Instant;

use flumedb_core::testkit::power::{self, CrashState, Limits};
use flumedb_core::{Error, Log, Seq};
use flumelog_offset::{Durability, Format, JsWidth, OffsetLog};

/// In a directory the log creates: its entry must be made durable too.
const LOG: &str = "sub/log.offset";

fn soak() -> bool {
    std::env::var("FLUMEDB_SOAK").is_ok_and(|v| v == "1")
}

/// Record `i`: a marker, its number, then a body whose length (up to 9 KiB, so frames span
/// pages) and bytes depend on `i`; never all zeros (the JS format reads those as deleted).
fn record(i: u64) -> Vec<u8> {
    let len = 9 + (i.wrapping_mul(2_654_435_761) % 9000) as usize;
    let mut data = vec![0xa5];
    data.extend(i.to_le_bytes());
    data.extend((9..len).map(|j| (i as usize + j) as u8 | 1));
    data
}

fn parse(data: &[u8]) -> Option<u64> {
    let i = u64::from_le_bytes(data.get(1..9)?.try_into().ok()?);
    (data == record(i).as_slice()).then_some(i)
}

fn mode(workload: &str) -> (Format, Durability) {
    let format = match workload.split(':').next() {
        Some("js32") => Format::Js(JsWidth::W32),
        Some("js48") => Format::Js(JsWidth::W48),
        Some("js53") => Format::Js(JsWidth::W53),
        _ => Format::Native,
    };
    let durability = if workload.ends_with(":os") {
        Durability::Os
    } else {
        Durability::Fsync
    };
    (format, durability)
}

/// Whether the workload appends from several threads at once (group commit).
fn threaded(workload: &str) -> bool {
    workload.contains(":threads")
}

/// The child's workload: notes `a i seq` per acknowledged append, `d seq` before and `D seq`
/// after each acknowledged delete, `F` after each acknowledged flush.
#[test]
fn power_child() {
    let Some(mut child) = power::child() else {
        return;
    };
    let (format, durability) = mode(&child.workload);
    let log = OffsetLog::options()
        .format(format)
        .durability(durability)
        .open(child.data().join(LOG))
        .unwrap();
    if threaded(&child.workload) {
        threads_child(&log, child);
        return;
    }
    let n = if soak() { 120 } else { 36 };
    let mut i = 0;
    let mut acked = Vec::new();
    let mut step = 0u64;
    while i < n {
        step += 1;
        if step.is_multiple_of(4) {
            let batch: Vec<Vec<u8>> = (i..i + 3).map(record).collect();
            let slices: Vec<&[u8]> = batch.iter().map(Vec::as_slice).collect();
            let seqs = log.append_batch(&slices).unwrap();
            for (k, seq) in seqs.iter().enumerate() {
                child.note(&format!("a {} {}", i + k as u64, seq.get()));
                acked.push(*seq);
            }
            i += 3;
        } else {
            let seq = log.append(&record(i)).unwrap();
            child.note(&format!("a {i} {}", seq.get()));
            acked.push(seq);
            i += 1;
        }
        if step.is_multiple_of(5) && durability == Durability::Fsync {
            // Delete an earlier record (not the last: that one ends the file).
            if let Some(seq) = acked.get(acked.len().saturating_sub(3)).copied() {
                child.note(&format!("d {}", seq.get()));
                log.del(seq).unwrap();
                child.note(&format!("D {}", seq.get()));
            }
        }
        if step.is_multiple_of(6) {
            log.flush().unwrap();
            child.note("F");
        }
    }
    child.note("done");
}

/// Four threads append at once (singles and batches of 2), so fsyncs are shared and the
/// trace interleaves their writes; each notes its acknowledged appends.
fn threads_child(log: &OffsetLog, child: power::Child) {
    let per = if soak() { 40 } else { 8 };
    let child = std::sync::Mutex::new(child);
    std::thread::scope(|s| {
        for t in 0..4u64 {
            let (log, child) = (log, &child);
            s.spawn(move || {
                let mut k = 0;
                while k < per {
                    let i = t * 1000 + k;
                    if k % 3 == 2 {
                        let batch = [record(i), record(i + 1)];
                        let slices: Vec<&[u8]> = batch.iter().map(Vec::as_slice).collect();
                        let seqs = log.append_batch(&slices).unwrap();
                        let mut child = child.lock().unwrap();
                        for (n, seq) in seqs.iter().enumerate() {
                            child.note(&format!("a {} {}", i + n as u64, seq.get()));
                        }
                        k += 2;
                    } else {
                        let seq = log.append(&record(i)).unwrap();
                        child.lock().unwrap().note(&format!("a {i} {}", seq.get()));
                        k += 1;
                    }
                }
            });
        }
    });
    child.into_inner().unwrap().note("done");
}

/// What the notes say was acknowledged.
#[derive(Default)]
struct Acked {
    /// Appends: seq -> record number, in order.
    appends: BTreeMap<u64, u64>,
    deleting: BTreeSet<u64>,
    deleted: BTreeSet<u64>,
    /// How many appends were acknowledged before the last flush.
    flushed: usize,
}

fn acked(state: &CrashState) -> Acked {
    let mut a = Acked::default();
    for note in &state.notes {
        let f: Vec<&str> = note.split(' ').collect();
        match f.as_slice() {
            ["a", i, seq] => {
                a.appends.insert(seq.parse().unwrap(), i.parse().unwrap());
            }
            ["d", seq] => {
                a.deleting.insert(seq.parse().unwrap());
            }
            ["D", seq] => {
                a.deleted.insert(seq.parse().unwrap());
            }
            ["F"] => a.flushed = a.appends.len(),
            _ => {}
        }
    }
    a
}

/// What a forward scan of the whole log returns: the records (seq, record number, or `None`
/// for bytes that are no record) and the seq of the error that ended it, if any.
type Scan = (Vec<(u64, Option<u64>)>, Option<u64>);

fn scan(log: &OffsetLog) -> Result<Scan, String> {
    let mut records = Vec::new();
    for item in log
        .range(Bound::Unbounded, Bound::Unbounded, false)
        .map_err(|e| format!("range: {e}"))?
    {
        match item {
            Ok(flumedb_core::Entry { seq, data }) => records.push((seq.get(), parse(&data))),
            Err(Error::Corrupt { seq: Some(seq), .. }) => return Ok((records, Some(seq.get()))),
            Err(e) => return Err(format!("a scan returned {e}")),
        }
    }
    Ok((records, None))
}

/// Outcomes allowed (nothing acknowledged as durable is affected) but worth counting: the
/// limits of the JS format, which has no checksum (docs/reliability.md, finding C).
type Tally = BTreeMap<&'static str, usize>;

fn check(workload: &str, state: &CrashState, tally: &mut Tally) -> Result<(), String> {
    let (format, durability) = mode(workload);
    let a = acked(state);
    let dir = power::scratch_dir();
    state.create_in(dir.path()).unwrap();
    let path = dir.path().join(LOG);
    let open = || {
        OffsetLog::options()
            .format(format)
            .durability(durability)
            .open(&path)
            .map_err(|e| format!("open: {e}"))
    };
    // Every state opens: bytes past the synced end that hold no valid frame (a power loss
    // before the first flush) are cut, not refused (recovery rule 8).
    let log = open()?;
    // The durable part: every seq up to the last record acknowledged durable (all of them in
    // fsync mode, those before the last flush in OS mode).
    let durable: Vec<(u64, u64)> = match durability {
        Durability::Fsync => a.appends.iter().map(|(s, i)| (*s, *i)).collect(),
        Durability::Os => a
            .appends
            .iter()
            .take(a.flushed)
            .map(|(s, i)| (*s, *i))
            .collect(),
    };
    let boundary = durable.last().map(|(seq, _)| *seq);
    for (seq, i) in &durable {
        let got = log.get(Seq::new(*seq));
        let deleting = a.deleting.contains(seq);
        match got {
            Ok(data) if parse(&data) == Some(*i) && !a.deleted.contains(seq) => {}
            Err(Error::Deleted { .. }) if deleting => {}
            // A delete cut short is reported, never returned as data.
            Err(Error::Corrupt { .. }) if deleting && !a.deleted.contains(seq) => {}
            // The JS format zeroes a deleted payload in place, without a checksum: a delete
            // cut short at a page returns a half-zeroed payload (JS flumelog-offset too).
            Ok(_) if matches!(format, Format::Js(_)) && deleting && !a.deleted.contains(seq) => {
                *tally
                    .entry("JS: half-zeroed payload of a delete cut short")
                    .or_default() += 1;
            }
            other => {
                return Err(format!(
                    "durable record {i} at seq {seq}: {:?} (delete acknowledged: {})",
                    other.map(|d| parse(&d)),
                    a.deleted.contains(seq)
                ));
            }
        }
    }
    let (records, stopped) = scan(&log)?;
    let mut last = BTreeMap::new();
    for (seq, i) in &records {
        match i {
            Some(i) => {
                // In order (each thread's own, when threads append), once, and each at the
                // seq it was acknowledged at (if it was).
                let order = if threaded(workload) {
                    (*i / 1000, *i)
                } else {
                    (0, *i)
                };
                if let Some(l) = last.get(&order.0)
                    && *l >= order.1
                {
                    return Err(format!("record {i} at seq {seq} after record {l}"));
                }
                last.insert(order.0, order.1);
                if let Some((want, _)) = a.appends.iter().find(|(_, n)| *n == i)
                    && want != seq
                {
                    return Err(format!("record {i} at seq {seq}, acknowledged at {want}"));
                }
            }
            // Bytes that are no record: only the JS format (no checksum) can return them,
            // and only from an append nobody was told is durable.
            None if matches!(format, Format::Js(_)) && boundary.is_none_or(|b| *seq > b) => {
                *tally
                    .entry("JS: torn unacknowledged frame returned")
                    .or_default() += 1;
            }
            None if matches!(format, Format::Js(_))
                && a.deleting.contains(seq)
                && !a.deleted.contains(seq) => {}
            None => return Err(format!("seq {seq}: bytes that were never appended")),
        }
    }
    if let Some(at) = stopped
        && (!a.deleting.contains(&at) || a.deleted.contains(&at))
    {
        // A hole of lost unsynced pages is cut by open (recovery rule 8), so a scan never
        // stops at damage, in the durable part or after it.
        return Err(format!(
            "the scan stops at damage at seq {at} (durable part ends at {boundary:?})"
        ));
    }
    if durability == Durability::Os {
        let kept: Vec<u64> = records.iter().filter_map(|(_, i)| *i).collect();
        if kept.len() < a.flushed
            || kept
                .iter()
                .take(a.flushed)
                .enumerate()
                .any(|(k, i)| *i != k as u64)
        {
            return Err(format!("{} flushed, the scan found {kept:?}", a.flushed));
        }
    }
    let since = log.since();
    log.close().map_err(|e| format!("close: {e}"))?;
    // Recovery is idempotent: a second open finds the same log and repairs nothing.
    let again = open()?;
    if again.recovery().dropped_bytes != 0 {
        return Err(format!("the second open cut again: {:?}", again.recovery()));
    }
    if scan(&again)? != (records, stopped) || again.since() != since {
        return Err("the second open found another log".into());
    }
    let next = record(1_000_000);
    let seq = again
        .append(&next)
        .map_err(|e| format!("append after reopen: {e}"))?;
    if again
        .get(seq)
        .map_err(|e| format!("get after reopen: {e}"))?
        != next
    {
        return Err("the append after reopen reads back wrong".into());
    }
    again.close().map_err(|e| format!("close: {e}"))?;
    Ok(())
}

fn run(workload: &str) {
    let started = Instant::now();
    let trace = power::record("power_child", workload).unwrap();
    // OS mode leaves many pages unsynced at each point: fewer states per point in short runs.
    let per_point = if workload.ends_with(":os") { 6 } else { 16 };
    let limits = Limits::from_env(per_point, 160);
    let mut tally = Tally::new();
    let stats = trace
        .crash_states(&limits, |state| check(workload, state, &mut tally))
        .unwrap_or_else(|e| panic!("{workload}: {e}"));
    eprintln!(
        "power loss {workload}: {} trace calls ({}), {} crash points, {} states checked ({} distinct) \
         in {:.1?}; allowed but counted: {tally:?}",
        trace.ops.len(),
        trace.summary(),
        stats.points,
        stats.states,
        stats.distinct,
        started.elapsed()
    );
    let min = if soak() { 1000 } else { 100 };
    assert!(
        stats.distinct >= min,
        "{workload}: only {} states",
        stats.distinct
    );
}

#[test]
fn power_loss_native_fsync() {
    run("native:fsync");
}

#[test]
fn power_loss_native_os() {
    run("native:os");
}

#[test]
fn power_loss_js32_fsync() {
    run("js32:fsync");
}

#[test]
fn power_loss_js32_os() {
    run("js32:os");
}

#[test]
fn power_loss_native_fsync_threads() {
    run("native:fsync:threads");
}

#[test]
fn power_loss_js48_fsync() {
    run("js48:fsync");
}

#[test]
fn power_loss_js53_fsync() {
    run("js53:fsync");
}

/// Regression (found by the power-loss states): a power loss right after a new native log was
/// created can leave its header's size on disk but not its bytes; opening it must start the
/// log afresh rather than call it a JS log and refuse the native options.
#[test]
fn a_native_header_lost_to_zeros_opens_as_a_new_log() {
    for len in [1, 8, 16] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.offset");
        std::fs::write(&path, vec![0u8; len]).unwrap();
        let log = OffsetLog::options()
            .format(Format::Native)
            .durability(Durability::Fsync)
            .open(&path)
            .unwrap_or_else(|e| panic!("{len} zero bytes: {e}"));
        let seq = log.append(b"first").unwrap();
        assert_eq!(log.get(seq).unwrap(), b"first");
        log.close().unwrap();
        let log = OffsetLog::open(&path).unwrap();
        assert_eq!(log.format(), Format::Native);
        assert_eq!(log.get(seq).unwrap(), b"first");
    }
}
