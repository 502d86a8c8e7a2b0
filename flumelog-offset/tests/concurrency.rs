//! Many threads appending, reading, iterating and deleting at once: every read returns a whole
//! record exactly as appended, or `Deleted` for one whose delete had begun, never torn bytes
//! and never `Corrupt`. (On x86 the seqlock's fences compile to nothing; the loom model in
//! `src/seqlock.rs` checks the ordering itself.)

use std::collections::HashSet;
use std::ops::Bound;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use flumedb_core::{Error, Log, Seq};
use flumelog_offset::{Format, JsWidth, OffsetLog};

/// A record that proves its own integrity: its id, then bytes derived from the id.
fn record(id: u64) -> Vec<u8> {
    // Up to 32 KiB, so a copy and a delete's rewrite take long enough to overlap.
    let len = 16 + (id.wrapping_mul(2_654_435_761) % 32_768) as usize;
    let mut out = id.to_le_bytes().to_vec();
    out.extend((8..len).map(|i| (id.wrapping_mul(31).wrapping_add(i as u64) % 251) as u8 + 1));
    out
}

/// The id of a whole record, or a description of the torn bytes.
fn check(bytes: &[u8]) -> Result<u64, String> {
    let id = bytes
        .get(..8)
        .and_then(|b| <[u8; 8]>::try_from(b).ok())
        .map(u64::from_le_bytes)
        .ok_or_else(|| format!("{} bytes: too short", bytes.len()))?;
    if record(id) == bytes {
        Ok(id)
    } else {
        Err(format!("torn record claiming id {id}: {bytes:?}"))
    }
}

struct Run {
    log: OffsetLog,
    /// (seq, id) of every appended record.
    appended: Mutex<Vec<(Seq, u64)>>,
    /// Seqs whose delete has begun.
    deleting: Mutex<HashSet<Seq>>,
    next_id: AtomicU64,
    stop: AtomicBool,
    reads: AtomicU64,
}

fn pick(shared: &Run, salt: u64) -> Option<(Seq, u64)> {
    let appended = shared.appended.lock().ok()?;
    // Among the newest records, so readers and deleters meet on the same frames often.
    let n = appended.len().min(32) as u64;
    let back = (n > 0).then(|| (salt.wrapping_mul(0x9E37_79B9_7F4A_7C15) % n) as usize)?;
    appended.get(appended.len() - 1 - back).copied()
}

fn run(format: Format) {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = OffsetLog::options()
        .format(format)
        .open(dir.path().join("log.offset"))
        .expect("open");
    let shared = Arc::new(Run {
        log,
        appended: Mutex::new(Vec::new()),
        deleting: Mutex::new(HashSet::new()),
        next_id: AtomicU64::new(1),
        stop: AtomicBool::new(false),
        reads: AtomicU64::new(0),
    });
    let mut threads = Vec::new();
    for _ in 0..2 {
        let shared = shared.clone();
        threads.push(std::thread::spawn(move || {
            while !shared.stop.load(Ordering::Relaxed) {
                let ids: Vec<u64> = (0..4)
                    .map(|_| shared.next_id.fetch_add(1, Ordering::Relaxed))
                    .collect();
                let records: Vec<Vec<u8>> = ids.iter().map(|&id| record(id)).collect();
                let refs: Vec<&[u8]> = records.iter().map(Vec::as_slice).collect();
                let seqs = shared.log.append_batch(&refs).expect("append");
                shared
                    .appended
                    .lock()
                    .expect("appended")
                    .extend(seqs.into_iter().zip(ids));
            }
        }));
    }
    for t in 0..2u64 {
        let shared = shared.clone();
        threads.push(std::thread::spawn(move || {
            let mut salt = t;
            while !shared.stop.load(Ordering::Relaxed) {
                salt += 7;
                if let Some((seq, _)) = pick(&shared, salt) {
                    shared.deleting.lock().expect("deleting").insert(seq);
                    shared.log.del(seq).expect("del");
                }
                std::thread::sleep(Duration::from_micros(20));
            }
        }));
    }
    for t in 0..3u64 {
        let shared = shared.clone();
        threads.push(std::thread::spawn(move || {
            let mut salt = 1000 + t;
            while !shared.stop.load(Ordering::Relaxed) {
                salt += 1;
                let Some((seq, id)) = pick(&shared, salt) else {
                    continue;
                };
                match shared.log.get(seq) {
                    Ok(bytes) => assert_eq!(check(&bytes), Ok(id), "get({seq})"),
                    Err(Error::Deleted { .. }) => assert!(
                        shared.deleting.lock().expect("deleting").contains(&seq),
                        "{seq} reads as deleted but was never deleted"
                    ),
                    Err(e) => panic!("get({seq}): {e}"),
                }
                shared.reads.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    for reverse in [false, true] {
        let shared = shared.clone();
        threads.push(std::thread::spawn(move || {
            while !shared.stop.load(Ordering::Relaxed) {
                let iter = shared
                    .log
                    .range(Bound::Unbounded, Bound::Unbounded, reverse)
                    .expect("range");
                for entry in iter.take(2000) {
                    let entry = entry.expect("a record of a range");
                    if let Err(torn) = check(&entry.data) {
                        panic!("range at {}: {torn}", entry.seq);
                    }
                    shared.reads.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    // At least 1.5 s, and on a loaded machine until enough of each operation ran (30 s at most).
    let start = Instant::now();
    let enough = || {
        shared.appended.lock().expect("appended").len() > 200
            && shared.deleting.lock().expect("deleting").len() > 100
            && shared.reads.load(Ordering::Relaxed) > 1000
    };
    while (start.elapsed() < Duration::from_millis(1500) || !enough())
        && start.elapsed() < Duration::from_secs(30)
        && threads.iter().all(|t| !t.is_finished())
    {
        std::thread::sleep(Duration::from_millis(10));
    }
    shared.stop.store(true, Ordering::Relaxed);
    for thread in threads {
        if let Err(panic) = thread.join() {
            std::panic::resume_unwind(panic);
        }
    }
    let appended = shared.appended.lock().expect("appended").len();
    let deleted = shared.deleting.lock().expect("deleting").len();
    assert!(appended > 200, "only {appended} appends ran");
    assert!(deleted > 100, "only {deleted} deletes ran");
    assert!(shared.reads.load(Ordering::Relaxed) > 1000);
    // Afterwards every record is whole or deleted, and the file verifies.
    for (seq, id) in shared.appended.lock().expect("appended").iter() {
        match shared.log.get(*seq) {
            Ok(bytes) => assert_eq!(check(&bytes), Ok(*id)),
            Err(Error::Deleted { .. }) => {}
            Err(e) => panic!("get({seq}) after the run: {e}"),
        }
    }
    assert!(shared.log.verify().expect("verify").problems.is_empty());
}

#[test]
fn native_reads_are_never_torn_by_concurrent_deletes() {
    run(Format::Native);
}

#[test]
fn js_reads_are_never_torn_by_concurrent_deletes() {
    run(Format::Js(JsWidth::W32));
}
