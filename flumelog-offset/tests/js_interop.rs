//! Round trip with the real JS flumelog-offset 3.4.4: logs this crate writes in the JS format
//! are read by the JS package, and logs the JS package writes are read (and appended to) by
//! this crate. Needs node and npm; the JS package is installed from `tests/js/package-lock.json`
//! (`npm ci`) when missing.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Once;

use flumedb_core::{Log, Seq, Since, StreamOptions};
use flumelog_offset::{Format, JsWidth, OffsetLog};
use serde_json::Value;
use sha2::{Digest, Sha256};

fn js_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/js")
}

fn install_js() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        if js_dir().join("node_modules/flumelog-offset").is_dir() {
            return;
        }
        let status = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(js_dir())
            .status()
            .expect("npm is needed to install JS flumelog-offset for this test");
        assert!(status.success(), "npm ci in {} failed", js_dir().display());
    });
}

fn node(script: &str, args: &[&str]) -> String {
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
    String::from_utf8(out.stdout).unwrap()
}

fn sha256(data: &[u8]) -> String {
    Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn bits(width: JsWidth) -> &'static str {
    match width {
        JsWidth::W32 => "32",
        JsWidth::W48 => "48",
        JsWidth::W53 => "53",
    }
}

/// Records of many shapes: JSON, unicode, binary, large; none empty or all zeros.
fn payloads(n: usize) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| match i % 6 {
            0 => format!("{{\"i\":{i},\"text\":\"héllo wörld 日本 🌊\"}}").into_bytes(),
            1 => vec![0xff; 1 + i],
            2 => (0..=255u8).cycle().skip(i).take(70_000).collect(),
            3 => format!("[{i}]").into_bytes(),
            4 => {
                let mut v = vec![0u8; 100];
                v[99] = 1;
                v
            }
            _ => "x".repeat(4096 + i).into_bytes(),
        })
        .collect()
}

/// What `read.js` printed: (seq, len, sha256) per record, and since.
fn js_read(path: &Path, width: JsWidth) -> (Vec<(u64, usize, String)>, i64) {
    let out = node("read.js", &[path.to_str().unwrap(), bits(width)]);
    let mut records = Vec::new();
    let mut since = None;
    for line in out.lines() {
        let v: Value = serde_json::from_str(line).unwrap();
        if let Some(s) = v.get("since") {
            since = s.as_i64();
        } else {
            records.push((
                v["seq"].as_u64().unwrap(),
                v["len"].as_u64().unwrap() as usize,
                v["sha256"].as_str().unwrap().to_string(),
            ));
        }
    }
    (records, since.expect("read.js prints since"))
}

#[test]
fn js_reads_what_rust_writes_in_every_width() {
    for width in [JsWidth::W32, JsWidth::W48, JsWidth::W53] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.offset");
        let log = OffsetLog::options()
            .format(Format::Js(width))
            .open(&path)
            .unwrap();
        let data = payloads(30);
        let mut seqs = Vec::new();
        for chunk in data.chunks(7) {
            let slices: Vec<&[u8]> = chunk.iter().map(Vec::as_slice).collect();
            seqs.extend(log.append_batch(&slices).unwrap());
        }
        // A deleted record is skipped by JS as by us.
        log.del(seqs[4]).unwrap();
        log.close().unwrap();

        let (records, since) = js_read(&path, width);
        let expected: Vec<(u64, usize, String)> = seqs
            .iter()
            .zip(&data)
            .enumerate()
            .filter(|(i, _)| *i != 4)
            .map(|(_, (s, d))| (s.get(), d.len(), sha256(d)))
            .collect();
        assert_eq!(
            records, expected,
            "JS reading a {width:?} log written by Rust"
        );
        assert_eq!(since, seqs.last().unwrap().get() as i64);
    }
}

#[test]
fn rust_reads_and_extends_what_js_writes() {
    for width in [JsWidth::W32, JsWidth::W53] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.offset");
        let data = payloads(20);
        let input = dir.path().join("input.hex");
        let hex: Vec<String> = data
            .iter()
            .map(|d| d.iter().map(|b| format!("{b:02x}")).collect())
            .collect();
        fs::write(&input, hex.join("\n") + "\n").unwrap();
        let out = node(
            "write.js",
            &[path.to_str().unwrap(), input.to_str().unwrap(), bits(width)],
        );
        let js_seqs: Vec<u64> = out
            .lines()
            .map(|l| {
                serde_json::from_str::<Value>(l).unwrap()["seq"]
                    .as_u64()
                    .unwrap()
            })
            .collect();
        assert_eq!(js_seqs.len(), 20);

        // Rust detects the width and reads every record at the seq JS reported.
        let log = OffsetLog::open(&path).unwrap();
        assert_eq!(log.format(), Format::Js(width));
        assert_eq!(log.since(), Since::At(Seq::new(*js_seqs.last().unwrap())));
        let read: Vec<_> = log
            .stream(StreamOptions::new())
            .unwrap()
            .map(|e| e.unwrap())
            .collect();
        assert_eq!(
            read.iter().map(|e| e.seq.get()).collect::<Vec<_>>(),
            js_seqs
        );
        for (entry, d) in read.iter().zip(&data) {
            assert_eq!(&entry.data, d);
        }

        // Rust appends; JS reads the whole log, both parts.
        let more = payloads(26)[20..].to_vec();
        let slices: Vec<&[u8]> = more.iter().map(Vec::as_slice).collect();
        let rust_seqs = log.append_batch(&slices).unwrap();
        log.close().unwrap();
        let (records, since) = js_read(&path, width);
        let all: Vec<(u64, usize, String)> = js_seqs
            .iter()
            .copied()
            .chain(rust_seqs.iter().map(|s| s.get()))
            .zip(data.iter().chain(&more))
            .map(|(s, d)| (s, d.len(), sha256(d)))
            .collect();
        assert_eq!(records, all);
        assert_eq!(since, rust_seqs.last().unwrap().get() as i64);
    }
}
