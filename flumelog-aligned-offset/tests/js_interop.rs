//! Round trip with the real JS flumelog-aligned-offset 1.1.4: logs the JS package writes (with
//! deletes) are read, appended to and deleted from here, then read by JS again; logs written
//! here are read by JS. Needs node and npm; the package is installed from
//! `tests/js/package-lock.json` (`npm ci`) when missing.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Once;

use flumedb_core::{Error, Log, Seq, StreamOptions};
use flumelog_aligned_offset::AlignedLog;
use serde_json::Value;

fn js_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/js")
}

fn install_js() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        if js_dir()
            .join("node_modules/flumelog-aligned-offset")
            .is_dir()
        {
            return;
        }
        let status = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(js_dir())
            .status()
            .expect("npm is needed to install JS flumelog-aligned-offset for this test");
        assert!(status.success(), "npm ci in {} failed", js_dir().display());
    });
}

fn node(script: &str, args: &[&str]) -> Value {
    install_js();
    let out = Command::new("node")
        .arg(js_dir().join(script))
        .args(args)
        .output()
        .expect("node is needed for this test");
    assert!(
        out.status.success(),
        "node {script} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn unhex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}

/// (offset, bytes) of every record JS reads from `path` (its streams skip deleted ones).
fn js_read(path: &Path, block: u32) -> Vec<(u64, Vec<u8>)> {
    let read = node("read.js", &[path.to_str().unwrap(), &block.to_string()]);
    read["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["offset"].as_u64().unwrap(),
                unhex(r["hex"].as_str().unwrap()),
            )
        })
        .collect()
}

fn js_written_log_round_trips(block: u32, count: usize, delete_every: usize) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log.aligned");
    let written = node(
        "write.js",
        &[
            path.to_str().unwrap(),
            &block.to_string(),
            &count.to_string(),
            "7",
            &delete_every.to_string(),
        ],
    );
    let records = written["records"].as_array().unwrap();
    assert_eq!(records.len(), count);
    let log = AlignedLog::options().block_size(block).open(&path).unwrap();
    assert_eq!(
        log.recovered(),
        Default::default(),
        "a log JS closed needs no repair"
    );
    let mut live = Vec::new();
    for r in records {
        let seq = Seq::new(r["offset"].as_u64().unwrap());
        let reported = Seq::new(r["appendSeq"].as_u64().unwrap());
        assert_eq!(
            log.real_seq(reported).unwrap(),
            seq,
            "JS reported {reported}"
        );
        let data = unhex(r["hex"].as_str().unwrap());
        if r["deleted"].as_bool().unwrap() {
            assert!(matches!(log.get(seq), Err(Error::Deleted { .. })), "{seq}");
        } else {
            assert_eq!(log.get(seq).unwrap(), data, "{seq}");
            live.push((seq.get(), data));
        }
    }
    let streamed: Vec<(u64, Vec<u8>)> = log
        .stream(StreamOptions::new())
        .unwrap()
        .map(|e| e.map(|e| (e.seq.get(), e.data)).unwrap())
        .collect();
    assert_eq!(streamed, live);

    // Appended to and deleted from here, then read by JS again.
    let extra: Vec<Vec<u8>> = (0..40)
        .map(|i| format!("{{\"rust\":{i},\"pad\":\"{}\"}}", "é".repeat(i * 37 % 480)).into_bytes())
        .collect();
    let slices: Vec<&[u8]> = extra.iter().map(Vec::as_slice).collect();
    let seqs = log.append_batch(&slices).unwrap();
    let max = vec![9u8; log.max_record_len()];
    let max_seq = log.append(&max).unwrap();
    let (gone, _) = live.remove(0);
    log.del(Seq::new(gone)).unwrap();
    log.close().unwrap();

    let mut want: Vec<(u64, Vec<u8>)> = records
        .iter()
        .filter(|r| !r["deleted"].as_bool().unwrap() && r["offset"].as_u64() != Some(gone))
        .map(|r| {
            (
                r["offset"].as_u64().unwrap(),
                unhex(r["hex"].as_str().unwrap()),
            )
        })
        .collect();
    want.extend(seqs.iter().zip(&extra).map(|(s, d)| (s.get(), d.clone())));
    want.push((max_seq.get(), max));
    assert_eq!(js_read(&path, block), want);
}

#[test]
fn a_js_log_with_small_blocks_round_trips() {
    js_written_log_round_trips(1024, 300, 5);
}

#[test]
fn a_js_log_with_default_blocks_round_trips() {
    js_written_log_round_trips(65536, 300, 7);
}

#[test]
fn a_log_written_here_reads_in_js_record_for_record() {
    for block in [64u32, 1024, 65536] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.aligned");
        let log = AlignedLog::options().block_size(block).open(&path).unwrap();
        let max = log.max_record_len();
        let mut want = Vec::new();
        for i in 0..200usize {
            // Sizes that fill blocks exactly, go to the next one, and are the largest allowed.
            let len = match i % 4 {
                0 => 1 + i % 7,
                1 => max,
                2 => (max / 2).max(1),
                _ => (i * 131) % max + 1,
            };
            let data: Vec<u8> = (0..len).map(|j| (i + j) as u8 | 1).collect();
            let seq = log.append(&data).unwrap();
            want.push((seq.get(), data));
        }
        // Deletes anywhere, the last record included (JS's own in the last block would pad
        // the file and lose what follows).
        let gone: Vec<usize> = (3..200).step_by(9).chain([199]).collect();
        for &i in &gone {
            log.del(Seq::new(want[i].0)).unwrap();
        }
        log.close().unwrap();
        let live: Vec<(u64, Vec<u8>)> = want
            .iter()
            .enumerate()
            .filter(|(i, _)| !gone.contains(i))
            .map(|(_, r)| r.clone())
            .collect();
        assert_eq!(js_read(&path, block), live, "block size {block}");
    }
}
