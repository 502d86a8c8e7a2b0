//! Logs written by the real JS async-append-only-log 4.3.10 (tests/fixtures): every record
//! with its seq and bytes, forward, reverse and by `get`; deletes and the stats file; and the
//! last block cut at every interesting byte.

use std::fs;
use std::path::{Path, PathBuf};

use flumedb_core::{Error, Log, Seq, Since, StreamOptions};
use flumelog_aaol::AaolLog;
use serde::Deserialize;
use sha2::{Digest, Sha256};

const B: u64 = 65536;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn sha256(data: &[u8]) -> String {
    Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[derive(Deserialize)]
struct Expected {
    len: usize,
    sha256: String,
    aaol_offset: u64,
}

fn expected() -> Vec<Expected> {
    fs::read_to_string(fixture("expected.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// A copy of `bytes` as a log file in a new directory.
fn copy(bytes: &[u8]) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log.bipf");
    fs::write(&path, bytes).unwrap();
    (dir, path)
}

#[test]
fn every_record_of_the_js_log_reads_with_its_offset_and_bytes() {
    let original = fs::read(fixture("aaol.log")).unwrap();
    let (_dir, path) = copy(&original);
    let log = AaolLog::open(&path).unwrap();
    let want = expected();
    assert_eq!(want.len(), 1000);
    assert_eq!(log.since(), Since::At(Seq::new(want[999].aaol_offset)));
    let forward: Vec<_> = log
        .stream(StreamOptions::new())
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(forward.len(), 1000);
    for (entry, e) in forward.iter().zip(&want) {
        assert_eq!(entry.seq.get(), e.aaol_offset);
        assert_eq!(
            (entry.data.len(), sha256(&entry.data)),
            (e.len, e.sha256.clone())
        );
        assert_eq!(log.get(entry.seq).unwrap(), entry.data);
        assert!(!log.is_deleted(entry.seq).unwrap());
    }
    let reverse: Vec<u64> = log
        .stream(StreamOptions::new().reverse())
        .unwrap()
        .map(|e| e.unwrap().seq.get())
        .collect();
    assert_eq!(
        reverse,
        want.iter().rev().map(|e| e.aaol_offset).collect::<Vec<_>>()
    );
    // Bounds inside records, as the Log contract allows.
    let some: Vec<u64> = log
        .stream(
            StreamOptions::new()
                .gt(Seq::new(want[10].aaol_offset + 1))
                .lt(Seq::new(want[13].aaol_offset)),
        )
        .unwrap()
        .map(|e| e.unwrap().seq.get())
        .collect();
    assert_eq!(some, [want[11].aaol_offset, want[12].aaol_offset]);
    // Seqs that are not records: inside one, in the end-of-block padding, past the end.
    assert!(matches!(
        log.get(Seq::new(1)),
        Err(Error::InvalidSeq { .. })
    ));
    assert!(matches!(
        log.get(Seq::new(B - 1)),
        Err(Error::InvalidSeq { .. })
    ));
    assert!(matches!(
        log.get(Seq::new(original.len() as u64)),
        Err(Error::NotFound { .. })
    ));
    assert_eq!(log.recovered(), Default::default());
    log.close().unwrap();
    assert_eq!(
        fs::read(&path).unwrap(),
        original,
        "opening a good log changes nothing"
    );
}

#[derive(Deserialize)]
struct Extra {
    #[serde(rename = "blockSize")]
    block_size: u32,
    deleted_i: Vec<usize>,
    offsets: Vec<u64>,
}

#[test]
fn the_js_log_with_deletes_reads_them_as_deleted_and_keeps_its_stats() {
    let extras: std::collections::BTreeMap<String, Extra> =
        serde_json::from_str(&fs::read_to_string(fixture("extras.json")).unwrap()).unwrap();
    let extra = &extras["aaol-1k-deleted.log"];
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log.bipf");
    fs::copy(fixture("aaol-1k-deleted.log"), &path).unwrap();
    fs::copy(
        fixture("aaol-1k-deleted.log.stats"),
        dir.path().join("log.bipf.stats"),
    )
    .unwrap();
    let log = AaolLog::options()
        .block_size(extra.block_size)
        .open(&path)
        .unwrap();
    assert_eq!(log.deleted_bytes(), 155);
    let want = expected();
    let live: Vec<u64> = extra
        .offsets
        .iter()
        .enumerate()
        .filter(|(i, _)| !extra.deleted_i.contains(i))
        .map(|(_, &o)| o)
        .collect();
    let streamed: Vec<_> = log
        .stream(StreamOptions::new())
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(
        streamed.iter().map(|e| e.seq.get()).collect::<Vec<_>>(),
        live
    );
    for (i, &offset) in extra.offsets.iter().enumerate() {
        let seq = Seq::new(offset);
        if extra.deleted_i.contains(&i) {
            assert!(matches!(log.get(seq), Err(Error::Deleted { .. })));
            assert!(log.is_deleted(seq).unwrap());
        } else {
            assert_eq!(sha256(&log.get(seq).unwrap()), want[i].sha256);
        }
    }
    // A delete here adds to the same stats, as JS counts them (2 + length).
    let third = Seq::new(extra.offsets[2]);
    let len = log.get(third).unwrap().len() as u64;
    log.del(third).unwrap();
    assert!(
        matches!(log.del(third), Err(Error::Deleted { .. })),
        "a second delete is refused, not counted twice"
    );
    assert_eq!(log.deleted_bytes(), 155 + 2 + len);
    assert_eq!(log.deletes(), Some(1));
    log.close().unwrap();
    let stats = fs::read_to_string(dir.path().join("log.bipf.stats")).unwrap();
    assert_eq!(stats, format!("{{\"deletedBytes\":{}}}", 155 + 2 + len));
    let log = AaolLog::options()
        .block_size(extra.block_size)
        .open(&path)
        .unwrap();
    assert!(log.is_deleted(third).unwrap(), "deletes persist");
}

/// The records of `aaol.log` that lie wholly before `cut`.
fn whole_before(want: &[Expected], cut: u64) -> Vec<u64> {
    want.iter()
        .filter(|e| e.aaol_offset + 2 + e.len as u64 <= cut)
        .map(|e| e.aaol_offset)
        .collect()
}

#[test]
fn a_log_cut_anywhere_in_its_last_block_keeps_every_whole_record() {
    let original = fs::read(fixture("aaol.log")).unwrap();
    let want = expected();
    let last_block = original.len() as u64 - B;
    // Every record boundary of the last block, a byte either side, and inside payloads.
    let mut cuts = std::collections::BTreeSet::new();
    for e in want.iter().filter(|e| e.aaol_offset >= last_block) {
        for d in [0, 1, 2, 3] {
            cuts.insert(e.aaol_offset + d);
        }
        cuts.insert(e.aaol_offset + 2 + e.len as u64 / 2);
        cuts.insert(e.aaol_offset + 2 + e.len as u64 - 1);
    }
    cuts.insert(last_block);
    cuts.insert(original.len() as u64 - 1);
    for cut in cuts {
        let (_dir, path) = copy(&original[..cut as usize]);
        let log = AaolLog::open(&path).unwrap();
        let seqs: Vec<u64> = log
            .stream(StreamOptions::new())
            .unwrap()
            .map(|e| e.unwrap().seq.get())
            .collect();
        let kept = whole_before(&want, cut);
        assert_eq!(seqs, kept, "cut at {cut}");
        assert_eq!(
            log.since(),
            Since::from(kept.last().map(|&s| Seq::new(s))),
            "cut at {cut}"
        );
        assert_eq!(
            fs::metadata(&path).unwrap().len() % B,
            0,
            "whole blocks after a cut at {cut}"
        );
        // The log goes on: a new record lands after the kept ones and reads back.
        let seq = log.append(b"after the cut").unwrap();
        assert!(kept.last().is_none_or(|&last| seq.get() > last));
        assert_eq!(log.get(seq).unwrap(), b"after the cut");
        log.close().unwrap();
        let log = AaolLog::open(&path).unwrap();
        assert_eq!(log.since(), Since::At(seq), "reopen after the cut at {cut}");
        assert_eq!(
            log.recovered(),
            Default::default(),
            "a repaired log opens clean"
        );
    }
}

#[test]
fn a_length_running_past_the_last_block_is_zeroed_as_js_does() {
    let mut bytes = fs::read(fixture("aaol.log")).unwrap();
    let want = expected();
    let victim = &want[995];
    let at = victim.aaol_offset as usize;
    bytes[at..at + 2].copy_from_slice(&u16::MAX.to_le_bytes());
    let (_dir, path) = copy(&bytes);
    let log = AaolLog::open(&path).unwrap();
    assert!(log.recovered().zeroed_bytes > 0);
    let seqs: Vec<u64> = log
        .stream(StreamOptions::new())
        .unwrap()
        .map(|e| e.unwrap().seq.get())
        .collect();
    assert_eq!(
        seqs,
        want[..995]
            .iter()
            .map(|e| e.aaol_offset)
            .collect::<Vec<_>>()
    );
    let file = fs::read(&path).unwrap();
    assert!(
        file[at..].iter().all(|&b| b == 0),
        "the rest of the block is zeros"
    );
}

#[test]
fn a_trailing_block_without_records_is_cut_off() {
    let mut bytes = fs::read(fixture("aaol.log")).unwrap();
    let len = bytes.len();
    bytes.resize(len + B as usize, 0);
    let (_dir, path) = copy(&bytes);
    let log = AaolLog::open(&path).unwrap();
    assert!(log.recovered().dropped_empty_block);
    assert_eq!(
        log.since(),
        Since::At(Seq::new(expected()[999].aaol_offset))
    );
    assert_eq!(fs::metadata(&path).unwrap().len(), len as u64);
    let seq = log.append(b"next").unwrap();
    assert!(
        seq.get() < len as u64,
        "the next record continues the last block"
    );
}
