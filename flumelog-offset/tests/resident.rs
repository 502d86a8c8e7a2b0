//! Sequential reads do not make the log file resident: a scan of a log bigger than the
//! process's memory must work, and must not push its RSS to the size of the file.
//! (Its own test binary: RSS is per process, and no other test may run beside it.)

#![cfg(target_os = "linux")]

use std::ops::Bound;

use flumedb_core::{Log, Seq};
use flumelog_offset::OffsetLog;

/// The bytes of the file this process has mapped and resident (`RssFile`, /proc/self/status).
fn rss_file_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status
        .lines()
        .find(|l| l.starts_with("RssFile:"))
        .expect("RssFile in /proc/self/status");
    let kib: u64 = line
        .split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap();
    kib * 1024
}

const RECORD: usize = 1000;
const RECORDS: usize = 64 * 1024;
const LOG_BYTES: u64 = (RECORD * RECORDS) as u64;
/// What a read may leave resident: a few of its 4 MiB steps.
const ALLOWED: u64 = 16 << 20;

fn check(what: &str, before: u64, read: impl FnOnce() -> u64) {
    let seen = read();
    assert_eq!(seen, RECORDS as u64, "{what}: every record read");
    let grew = rss_file_bytes().saturating_sub(before);
    assert!(
        grew < ALLOWED,
        "{what}: RSS grew by {} MiB reading a {} MiB log",
        grew >> 20,
        LOG_BYTES >> 20
    );
}

#[test]
fn sequential_reads_let_the_pages_behind_them_go() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log.offset");
    {
        let log = OffsetLog::open(&path).unwrap();
        let record = vec![b'x'; RECORD];
        let batch: Vec<&[u8]> = (0..1024).map(|_| record.as_slice()).collect();
        for _ in 0..RECORDS / 1024 {
            log.append_batch(&batch).unwrap();
        }
        log.close().unwrap();
    }
    let log = OffsetLog::open(&path).unwrap();

    let before = rss_file_bytes();
    check("scan", before, || {
        log.scan(Bound::Unbounded, Bound::Unbounded, |_, data| {
            assert_eq!(data.len(), RECORD);
            true
        })
        .unwrap()
    });
    check("range forward", before, || {
        let mut n = 0;
        for entry in log
            .range(Bound::Unbounded, Bound::Unbounded, false)
            .unwrap()
        {
            assert_eq!(entry.unwrap().data.len(), RECORD);
            n += 1;
        }
        n
    });
    check("range backward", before, || {
        let mut n = 0;
        for entry in log.range(Bound::Unbounded, Bound::Unbounded, true).unwrap() {
            assert_eq!(entry.unwrap().data.len(), RECORD);
            n += 1;
        }
        n
    });
    // Many short reads, as views catching up with appends make: they add up.
    check("short ranges", before, || {
        let (mut n, mut after) = (0, Bound::Unbounded);
        loop {
            let batch: Vec<Seq> = log
                .range(after, Bound::Unbounded, false)
                .unwrap()
                .take(16)
                .map(|entry| entry.unwrap().seq)
                .collect();
            let Some(last) = batch.last() else { break n };
            n += batch.len() as u64;
            after = Bound::Excluded(*last);
        }
    });
    // Released pages read again give the same bytes.
    let first: Seq = log
        .range(Bound::Unbounded, Bound::Unbounded, false)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .seq;
    assert_eq!(log.get(first).unwrap(), vec![b'x'; RECORD]);
}
