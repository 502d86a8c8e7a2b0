//! Logs written by the real JS flumelog-offset 3.4.4 read back exactly: every record's seq,
//! length and sha256, forward and in reverse; deleted records; and torn-tail recovery as JS
//! does it.

use std::fs;
use std::ops::Bound;
use std::path::{Path, PathBuf};

use flumedb_core::{Error, Log, Seq, Since, StreamOptions};
use flumelog_offset::{Format, JsWidth, OffsetLog};
use serde_json::Value;
use sha2::{Digest, Sha256};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// Opens a copy of a fixture (opening may repair a file; the fixtures stay untouched).
fn open_copy(name: &str) -> (tempfile::TempDir, OffsetLog) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log.offset");
    fs::copy(fixture(name), &path).unwrap();
    let log = OffsetLog::open(&path).unwrap();
    (dir, log)
}

fn sha256(data: &[u8]) -> String {
    Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

struct Expected {
    seq: u64,
    len: usize,
    sha256: String,
}

fn expected() -> Vec<Expected> {
    fs::read_to_string(fixture("expected.jsonl"))
        .unwrap()
        .lines()
        .map(|line| {
            let v: Value = serde_json::from_str(line).unwrap();
            Expected {
                seq: v["offset_seq"].as_u64().unwrap(),
                len: v["len"].as_u64().unwrap() as usize,
                sha256: v["sha256"].as_str().unwrap().to_string(),
            }
        })
        .collect()
}

fn extras() -> Value {
    serde_json::from_str(&fs::read_to_string(fixture("extras.json")).unwrap()).unwrap()
}

fn check_all(log: &OffsetLog, expected: &[(u64, &Expected)]) {
    let forward: Vec<_> = log
        .stream(StreamOptions::new())
        .unwrap()
        .map(|e| e.unwrap())
        .collect();
    assert_eq!(forward.len(), expected.len());
    for (entry, (seq, exp)) in forward.iter().zip(expected) {
        assert_eq!(entry.seq.get(), *seq);
        assert_eq!(entry.data.len(), exp.len, "length of record at {seq}");
        assert_eq!(sha256(&entry.data), exp.sha256, "sha256 of record at {seq}");
        assert_eq!(log.get(entry.seq).unwrap(), entry.data);
    }
    let mut backward: Vec<_> = log
        .stream(StreamOptions::new().reverse())
        .unwrap()
        .map(|e| e.unwrap())
        .collect();
    backward.reverse();
    assert_eq!(backward, forward, "reverse order reads the same records");
    let mut scanned = 0;
    log.scan(Bound::Unbounded, Bound::Unbounded, |seq, data| {
        let (want_seq, exp) = expected[scanned];
        assert_eq!((seq.get(), sha256(data)), (want_seq, exp.sha256.clone()));
        scanned += 1;
        true
    })
    .unwrap();
    assert_eq!(scanned, expected.len());
}

#[test]
fn reads_every_record_of_the_js_log() {
    let (_dir, log) = open_copy("offset.log");
    assert_eq!(log.format(), Format::Js(JsWidth::W32));
    assert_eq!(log.recovery().dropped_bytes, 0);
    let expected = expected();
    assert_eq!(expected.len(), 1000);
    assert_eq!(log.since(), Since::At(Seq::new(expected[999].seq)));
    let pairs: Vec<_> = expected.iter().map(|e| (e.seq, e)).collect();
    check_all(&log, &pairs);
    assert!(log.verify().unwrap().is_ok());
    assert_eq!(log.verify().unwrap().records, 1000);
}

#[test]
fn reads_the_53_bit_log() {
    let (_dir, log) = open_copy("offset-53bit.log");
    assert_eq!(log.format(), Format::Js(JsWidth::W53));
    let expected = expected();
    let seqs: Vec<u64> = extras()["offset-53bit.log"]["seqs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_u64().unwrap())
        .collect();
    assert_eq!(seqs.len(), 20);
    let pairs: Vec<_> = seqs.iter().copied().zip(&expected[..20]).collect();
    check_all(&log, &pairs);
}

#[test]
fn reads_the_log_with_deleted_records() {
    let (_dir, log) = open_copy("offset-deleted.log");
    let extras = extras();
    let info = &extras["offset-deleted.log"];
    let seqs: Vec<u64> = info["seqs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_u64().unwrap())
        .collect();
    let deleted: Vec<usize> = info["deleted_i"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i.as_u64().unwrap() as usize)
        .collect();
    assert_eq!(deleted, vec![1, 7]);
    let expected = expected();
    let pairs: Vec<_> = (0..20)
        .filter(|i| !deleted.contains(i))
        .map(|i| (seqs[i], &expected[i]))
        .collect();
    assert_eq!(pairs.len(), 18);
    check_all(&log, &pairs);
    for i in deleted {
        assert!(matches!(
            log.get(Seq::new(seqs[i])),
            Err(Error::Deleted { .. })
        ));
    }
    let report = log.verify().unwrap();
    assert_eq!((report.records, report.deleted), (18, 2));
}

#[test]
fn recovers_the_torn_log_as_js_does() {
    let reopen: Value =
        serde_json::from_str(&fs::read_to_string(fixture("offset-torn.reopen.json")).unwrap())
            .unwrap();
    let (dir, log) = open_copy("offset-torn.log");
    let on_reopen = &reopen["on_reopen"];
    assert_eq!(
        log.since(),
        Since::At(Seq::new(on_reopen["since"].as_u64().unwrap()))
    );
    let size_after = on_reopen["file_size_after_open"].as_u64().unwrap();
    assert_eq!(
        fs::metadata(dir.path().join("log.offset")).unwrap().len(),
        size_after
    );
    assert_eq!(
        log.recovery().dropped_bytes,
        reopen["torn_size"].as_u64().unwrap() - size_after
    );
    let expected = expected();
    let pairs: Vec<_> = expected[..999].iter().map(|e| (e.seq, e)).collect();
    assert_eq!(
        pairs.len() as u64,
        on_reopen["stream_record_count"].as_u64().unwrap()
    );
    check_all(&log, &pairs);
    let torn_seq = Seq::new(reopen["last_frame"]["seq"].as_u64().unwrap());
    assert!(matches!(log.get(torn_seq), Err(Error::NotFound { .. })));
    // The next append lands where JS puts it: at the torn record's seq.
    assert_eq!(log.append(b"{\"next\":true}").unwrap(), torn_seq);
    log.close().unwrap();
    let log = OffsetLog::open(dir.path().join("log.offset")).unwrap();
    assert_eq!(log.recovery().dropped_bytes, 0);
    assert_eq!(log.get(torn_seq).unwrap(), b"{\"next\":true}");
}

#[test]
fn an_explicit_width_that_contradicts_the_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log.offset");
    fs::copy(fixture("offset-53bit.log"), &path).unwrap();
    let before = fs::read(&path).unwrap();
    let err = OffsetLog::options()
        .format(Format::Js(JsWidth::W32))
        .open(&path)
        .err()
        .expect("a 53-bit log opened as 32-bit must fail");
    assert!(err.to_string().contains("53"), "{err}");
    assert!(
        OffsetLog::options()
            .format(Format::Native)
            .open(&path)
            .is_err()
    );
    assert_eq!(fs::read(&path).unwrap(), before, "nothing was changed");
}
