//! `aaol_log` and `aligned_log`: the open and last-block repair of the two block logs
//! (flumelog-aaol, flumelog-aligned-offset) on arbitrary files.
//!
//! Input: the first byte picks the block size (16, 64 or 1024 bytes), the rest is the log
//! file. Promises: open never panics (it may refuse, with an error); an opened AAOL log has
//! whole blocks; every record a stream yields reads back the same by `get`; `since` is at or
//! after the last streamed record; reopening finds the same records and repairs nothing more
//! (the repair is idempotent); an append after them reads back.

use std::path::Path;

use flumedb_core::{Log, Result, Seq, StreamOptions};
use flumelog_aaol::AaolLog;
use flumelog_aligned_offset::AlignedLog;

use crate::scratch;

/// The harness for flumelog-aaol: see the module documentation for the input.
pub fn aaol_log(data: &[u8]) {
    check(
        data,
        "aaol",
        |path, block| AaolLog::options().block_size(block).open(path),
        |log| log.recovered() == Default::default(),
        true,
    );
}

/// The harness for flumelog-aligned-offset: see the module documentation for the input.
pub fn aligned_log(data: &[u8]) {
    check(
        data,
        "aligned",
        |path, block| AlignedLog::options().block_size(block).open(path),
        |log| log.recovered() == Default::default(),
        false,
    );
}

fn check<L: Log>(
    data: &[u8],
    name: &str,
    open: impl Fn(&Path, u32) -> Result<L>,
    clean: impl Fn(&L) -> bool,
    whole_blocks: bool,
) {
    let Some((&pick, file)) = data.split_first() else {
        return;
    };
    let block: u32 = [16, 64, 1024][usize::from(pick % 3)];
    let dir = scratch::dir().join(name);
    if !dir.is_dir() {
        let made = std::fs::create_dir_all(&dir);
        assert!(made.is_ok(), "{made:?}");
    }
    let path = dir.join("log");
    scratch::put(&path, Some(file));
    scratch::put(&dir.join("log.stats"), None);
    let Ok(log) = open(&path, block) else {
        return;
    };
    if whole_blocks {
        let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(1);
        assert_eq!(size % u64::from(block), 0, "an opened log has whole blocks");
    }
    let records: Vec<(Seq, Vec<u8>)> = log
        .stream(StreamOptions::new())
        .map(|s| {
            s.map(|e| {
                let e = e.unwrap_or_else(|err| panic!("stream item: {err}"));
                (e.seq, e.data)
            })
            .collect()
        })
        .unwrap_or_else(|err| panic!("stream: {err}"));
    for (seq, data) in &records {
        let got = log
            .get(*seq)
            .unwrap_or_else(|err| panic!("get({seq}): {err}"));
        assert_eq!(&got, data, "get({seq}) differs from the stream");
    }
    if let Some((last, _)) = records.last() {
        assert!(log.since().includes(*last), "since before the last record");
    }
    let closed = log.close();
    assert!(closed.is_ok(), "{closed:?}");
    let again =
        open(&path, block).unwrap_or_else(|err| panic!("reopen of an opened log failed: {err}"));
    assert!(clean(&again), "a second repair");
    let reread: Vec<(Seq, Vec<u8>)> = again
        .stream(StreamOptions::new())
        .map(|s| s.filter_map(|e| e.ok()).map(|e| (e.seq, e.data)).collect())
        .unwrap_or_default();
    assert_eq!(reread, records, "reopen read other records");
    let seq = again
        .append(b"next")
        .unwrap_or_else(|err| panic!("append after reopen: {err}"));
    assert_eq!(again.get(seq).ok().as_deref(), Some(&b"next"[..]));
    let closed = again.close();
    assert!(closed.is_ok(), "{closed:?}");
}
