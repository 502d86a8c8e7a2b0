//! `memory_log`: flumelog-memory's file parser and torn-tail repair, through `MemoryLog::open`
//! on a directory holding the input as its log file (and no synced-end mark). Then, when that
//! opened, the same with a mark: the repaired log is closed (which marks its end synced) and
//! the input appended after it as an unsynced tail, which open must cut or keep without ever
//! refusing or cutting below the mark.

use std::ops::Bound;

use flumedb_core::{Error, Log, Seq};
use flumelog_memory::{FILE_NAME, MemoryLog};

use crate::scratch;

const FRAME_HEADER: usize = 12;
/// The synced-end mark file beside the log file.
const MARK: &str = "log.memory.synced";

/// The harness: the whole input is the log file.
pub fn memory_log(file: &[u8]) {
    let dir = scratch::dir().join("memory");
    if !dir.is_dir() {
        let made = std::fs::create_dir_all(&dir);
        assert!(made.is_ok(), "{made:?}");
    }
    let path = dir.join(FILE_NAME);
    scratch::put(&path, Some(file));
    scratch::put(&dir.join(MARK), None);
    let log = match MemoryLog::open(&dir) {
        Ok(log) => log,
        Err(err) => {
            assert!(
                matches!(err, Error::Corrupt { .. }),
                "unexpected error kind: {err:?}"
            );
            assert_eq!(
                scratch::read(&path),
                file,
                "a refused file was changed ({err})"
            );
            return;
        }
    };
    let after = scratch::read(&path);
    assert_eq!(
        after.as_slice(),
        file.get(..after.len()).unwrap_or_default(),
        "opening did more than cut the tail"
    );
    assert_eq!(log.recovered_bytes(), (file.len() - after.len()) as u64);
    let records = holds_exactly(&log, &after);
    let ranged: Vec<Vec<u8>> = match log.range(Bound::Unbounded, Bound::Unbounded, false) {
        Ok(iter) => iter
            .map(|item| match item {
                Ok(entry) => entry.data,
                Err(e) => panic!("range failed: {e}"),
            })
            .collect(),
        Err(e) => panic!("range failed: {e}"),
    };
    assert_eq!(ranged, records, "range differs from the file");
    // The repaired log takes appends, and reopening it changes nothing.
    let appended = log.append(b"fuzz");
    assert!(
        appended
            .as_ref()
            .is_ok_and(|s| s.get() == records.len() as u64),
        "append: {appended:?}"
    );
    let closed = log.close();
    assert!(closed.is_ok(), "close: {closed:?}");
    drop(log);
    let again = match MemoryLog::open(&dir) {
        Ok(log) => log,
        Err(e) => panic!("reopening a repaired log failed: {e}"),
    };
    assert_eq!(again.recovered_bytes(), 0, "reopening cut a clean log");
    assert_eq!(again.len(), records.len() + 1);
    let last = again.get(Seq::new(records.len() as u64));
    assert!(
        last.as_ref().is_ok_and(|d| d == b"fuzz"),
        "the append is lost: {last:?}"
    );
    let closed = again.close();
    assert!(closed.is_ok(), "close: {closed:?}");
    drop(again);
    unsynced_tail(&dir, file);
}

/// The log in `dir` was closed (its mark covers the whole file); `tail` is appended as bytes
/// that were never synced. Open keeps every synced record and only whole frames of the tail.
fn unsynced_tail(dir: &std::path::Path, tail: &[u8]) {
    let path = dir.join(FILE_NAME);
    let synced = scratch::read(&path);
    let mut bytes = synced.clone();
    bytes.extend_from_slice(tail);
    scratch::put(&path, Some(&bytes));
    let log = match MemoryLog::open(dir) {
        Ok(log) => log,
        Err(e) => panic!("a tail past the synced end was refused: {e}"),
    };
    let after = scratch::read(&path);
    assert!(
        after.len() >= synced.len() && bytes.starts_with(&after),
        "open cut below the synced end, or did more than cut"
    );
    assert_eq!(log.recovered_bytes(), (bytes.len() - after.len()) as u64);
    holds_exactly(&log, &after);
}

/// The kept part `after` is whole, valid frames (by this harness's own reading), and `log`
/// holds exactly their records; returns them.
fn holds_exactly(log: &MemoryLog, after: &[u8]) -> Vec<Vec<u8>> {
    let records = frames(after);
    assert_eq!(
        log.len(),
        records.len(),
        "record count differs from the file"
    );
    for (i, record) in records.iter().enumerate() {
        match log.get(Seq::new(i as u64)) {
            Ok(data) => assert_eq!(&data, record, "get({i}) differs from the file"),
            Err(e) => panic!("get({i}) failed: {e}"),
        }
    }
    records
}

/// The records of `bytes`, which must be nothing but whole frames whose checks pass.
fn frames(bytes: &[u8]) -> Vec<Vec<u8>> {
    let mut records = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        let Some(header) = bytes.get(at..at + FRAME_HEADER) else {
            panic!("a partial header at {at} was kept");
        };
        let word = |i: usize| {
            header
                .get(i..i + 4)
                .and_then(|b| <[u8; 4]>::try_from(b).ok())
                .map_or(0, u32::from_le_bytes)
        };
        assert_eq!(
            crc32fast::hash(header.get(..8).unwrap_or_default()),
            word(8),
            "a frame header at {at} that fails its checksum was kept"
        );
        let end = at + FRAME_HEADER + word(0) as usize;
        let Some(data) = bytes.get(at + FRAME_HEADER..end) else {
            panic!("a frame at {at} running past the end was kept");
        };
        assert_eq!(
            crc32fast::hash(data),
            word(4),
            "a record at {at} that fails its checksum was kept"
        );
        records.push(data.to_vec());
        at = end;
    }
    records
}
