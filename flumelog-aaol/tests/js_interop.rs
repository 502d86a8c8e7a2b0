//! Round trip with the real JS async-append-only-log 4.3.10: logs the JS package writes (with
//! deletes) are read, appended to and deleted from here, then read by JS again; logs written
//! here are read by JS. Needs node and npm; the package is installed from
//! `tests/js/package-lock.json` (`npm ci`) when missing.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Once;

use flumedb_core::{Error, Log, Seq, StreamOptions};
use flumelog_aaol::AaolLog;
use serde_json::Value;

fn js_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/js")
}

fn install_js() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        if js_dir().join("node_modules/async-append-only-log").is_dir() {
            return;
        }
        let status = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(js_dir())
            .status()
            .expect("npm is needed to install JS async-append-only-log for this test");
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

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}

/// (offset, bytes or None when deleted) of every record JS reads from `path`.
fn js_read(path: &Path, block: u32) -> Vec<(u64, Option<Vec<u8>>)> {
    let read = node("read.js", &[path.to_str().unwrap(), &block.to_string()]);
    read["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["offset"].as_u64().unwrap(), r["hex"].as_str().map(unhex)))
        .collect()
}

fn js_written_log_round_trips(block: u32, count: usize, delete_every: usize) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log.bipf");
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
    let log = AaolLog::options().block_size(block).open(&path).unwrap();
    assert_eq!(
        log.recovered(),
        Default::default(),
        "a log JS closed needs no repair"
    );
    assert_eq!(
        log.deleted_bytes(),
        written["stats"]["deletedBytes"].as_u64().unwrap_or(0)
    );
    let mut live = Vec::new();
    for r in records {
        let seq = Seq::new(r["offset"].as_u64().unwrap());
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
        .map(|i| format!("{{\"rust\":{i},\"pad\":\"{}\"}}", "é".repeat(i * 37 % 500)).into_bytes())
        .collect();
    let slices: Vec<&[u8]> = extra.iter().map(Vec::as_slice).collect();
    let seqs = log.append_batch(&slices).unwrap();
    let max = vec![9u8; log.max_record_len()];
    let max_seq = log.append(&max).unwrap();
    let (gone, _) = live.remove(0);
    log.del(Seq::new(gone)).unwrap();
    let deleted_bytes = log.deleted_bytes();
    log.close().unwrap();

    let mut want: Vec<(u64, Option<Vec<u8>>)> = records
        .iter()
        .map(|r| {
            let offset = r["offset"].as_u64().unwrap();
            let deleted = r["deleted"].as_bool().unwrap() || offset == gone;
            (
                offset,
                (!deleted).then(|| unhex(r["hex"].as_str().unwrap())),
            )
        })
        .collect();
    want.extend(
        seqs.iter()
            .zip(&extra)
            .map(|(s, d)| (s.get(), Some(d.clone()))),
    );
    want.push((max_seq.get(), Some(max)));
    assert_eq!(js_read(&path, block), want);
    let stats: Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("log.bipf.stats")).unwrap()).unwrap();
    assert_eq!(stats["deletedBytes"].as_u64(), Some(deleted_bytes));
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
        let path = dir.path().join("log.bipf");
        let log = AaolLog::options().block_size(block).open(&path).unwrap();
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
            want.push((seq.get(), Some(data)));
        }
        for i in (3..200).step_by(9) {
            log.del(Seq::new(want[i].0)).unwrap();
            want[i].1 = None;
        }
        log.close().unwrap();
        assert_eq!(js_read(&path, block), want, "block size {block}");
        let hexes: Vec<String> = want
            .iter()
            .filter_map(|(_, d)| d.as_deref().map(hex))
            .collect();
        assert!(!hexes.is_empty());
    }
}
