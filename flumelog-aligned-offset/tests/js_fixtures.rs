//! The log written by the real JS flumelog-aligned-offset 1.1.4 (tests/fixtures): every
//! record with its seq and bytes, forward, reverse and by `get`; the seqs JS's `append`
//! reported; and the last block cut at every interesting byte.

use std::fs;
use std::path::{Path, PathBuf};

use flumedb_core::{Error, Log, Seq, Since, StreamOptions};
use flumelog_aligned_offset::AlignedLog;
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
    aligned_seq: u64,
    aligned_append_seq: u64,
}

fn expected() -> Vec<Expected> {
    fs::read_to_string(fixture("expected.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn copy(bytes: &[u8]) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log.aligned");
    fs::write(&path, bytes).unwrap();
    (dir, path)
}

#[test]
fn every_record_of_the_js_log_reads_with_its_seq_and_bytes() {
    let original = fs::read(fixture("aligned-offset.log")).unwrap();
    let manifest: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(fixture("aligned.json")).unwrap()).unwrap();
    let (_dir, path) = copy(&original);
    let log = AlignedLog::open(&path).unwrap();
    let want = expected();
    assert_eq!(
        log.since(),
        Since::At(Seq::new(
            manifest["aligned_since_on_reopen"].as_u64().unwrap()
        ))
    );
    let forward: Vec<_> = log
        .stream(StreamOptions::new())
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(forward.len(), 1000);
    for (entry, e) in forward.iter().zip(&want) {
        assert_eq!(entry.seq.get(), e.aligned_seq);
        assert_eq!(
            (entry.data.len(), sha256(&entry.data)),
            (e.len, e.sha256.clone())
        );
        assert_eq!(log.get(entry.seq).unwrap(), entry.data);
        // What JS's append reported maps to the record.
        assert_eq!(
            log.real_seq(Seq::new(e.aligned_append_seq)).unwrap(),
            entry.seq
        );
    }
    let moved = want
        .iter()
        .filter(|e| e.aligned_append_seq != e.aligned_seq)
        .count();
    assert_eq!(
        moved,
        manifest["aligned_records_where_append_seq_differs"]
            .as_array()
            .unwrap()
            .len()
    );
    let reverse: Vec<u64> = log
        .stream(StreamOptions::new().reverse())
        .unwrap()
        .map(|e| e.unwrap().seq.get())
        .collect();
    assert_eq!(
        reverse,
        want.iter().rev().map(|e| e.aligned_seq).collect::<Vec<_>>()
    );
    // A block's end mark is no record's seq; nor is a byte inside a record.
    let mark = want
        .iter()
        .find(|e| e.aligned_append_seq != e.aligned_seq)
        .unwrap();
    assert!(matches!(
        log.get(Seq::new(mark.aligned_append_seq)),
        Err(Error::InvalidSeq { .. })
    ));
    assert!(matches!(
        log.get(Seq::new(1)),
        Err(Error::InvalidSeq { .. })
    ));
    assert!(matches!(
        log.get(Seq::new(original.len() as u64)),
        Err(Error::NotFound { .. })
    ));
    assert_eq!(log.recovered(), Default::default());
    // Appends continue the last block, and deletes read as deleted.
    let seq = log.append(b"from rust").unwrap();
    assert_eq!(seq.get(), original.len() as u64);
    log.del(Seq::new(want[3].aligned_seq)).unwrap();
    log.close().unwrap();
    let log = AlignedLog::open(&path).unwrap();
    assert_eq!(log.get(seq).unwrap(), b"from rust");
    assert!(matches!(
        log.get(Seq::new(want[3].aligned_seq)),
        Err(Error::Deleted { .. })
    ));
    let bytes = fs::read(&path).unwrap();
    assert_eq!(
        &bytes[..original.len()],
        &{
            let mut o = original.clone();
            let at = want[3].aligned_seq as usize + 2;
            o[at..at + want[3].len].fill(0);
            o
        }[..],
        "only the deleted payload changed"
    );
}

#[test]
fn a_log_cut_anywhere_in_its_last_block_keeps_every_whole_record() {
    let original = fs::read(fixture("aligned-offset.log")).unwrap();
    let want = expected();
    let last_block = original.len() as u64 - original.len() as u64 % B;
    let mut cuts = std::collections::BTreeSet::new();
    for e in want.iter().filter(|e| e.aligned_seq >= last_block) {
        let end = e.aligned_seq + e.len as u64 + 4;
        for at in [
            e.aligned_seq,
            e.aligned_seq + 1,
            e.aligned_seq + 2,
            e.aligned_seq + 3,
            e.aligned_seq + 2 + e.len as u64 / 2,
            end - 2,
            end - 1,
        ] {
            cuts.insert(at);
        }
    }
    cuts.insert(last_block);
    for cut in cuts {
        let (_dir, path) = copy(&original[..cut as usize]);
        let log = AlignedLog::open(&path).unwrap();
        let seqs: Vec<u64> = log
            .stream(StreamOptions::new())
            .unwrap()
            .map(|e| e.unwrap().seq.get())
            .collect();
        let kept: Vec<u64> = want
            .iter()
            .filter(|e| e.aligned_seq + e.len as u64 + 4 <= cut)
            .map(|e| e.aligned_seq)
            .collect();
        assert_eq!(seqs, kept, "cut at {cut}");
        let seq = log.append(b"after the cut").unwrap();
        assert_eq!(log.get(seq).unwrap(), b"after the cut");
        log.close().unwrap();
        let log = AlignedLog::open(&path).unwrap();
        assert_eq!(log.since(), Since::At(seq), "reopen after the cut at {cut}");
        assert_eq!(
            log.recovered(),
            Default::default(),
            "a repaired log opens clean"
        );
    }
}

#[test]
fn zeros_padding_the_last_block_are_cut_so_appends_are_seen() {
    // What JS's `del` in the last block leaves: the block padded with zeros, no end mark.
    let mut bytes = fs::read(fixture("aligned-offset.log")).unwrap();
    let len = bytes.len() as u64;
    bytes.resize((len - len % B + B) as usize, 0);
    let (_dir, path) = copy(&bytes);
    let log = AlignedLog::open(&path).unwrap();
    assert_eq!(log.recovered().cut_bytes, bytes.len() as u64 - len);
    let seq = log.append(b"seen").unwrap();
    assert_eq!(seq.get(), len);
    let last = log
        .stream(StreamOptions::new().reverse().limit(1))
        .unwrap()
        .next()
        .unwrap()
        .unwrap();
    assert_eq!(last.seq, seq);
}
