//! Append, stream and random get on flumelog-aligned-offset against npm flumelog-aligned-offset 1.1.4
//! on the same records in the same run, and against flumelog-offset (native format) as the
//! anchor of this project's own log.
//!
//! `cargo bench -p flumelog-aligned-offset` (100,000 SSB-like messages of ~570 bytes; `FLUMEDB_ALIGNED_BENCH_N`
//! to change); under `cargo test` it runs 2,000 to check that the sides agree. Needs node and
//! npm (the JS package is installed from `tests/js/package-lock.json` when missing). Every
//! side folds what it read into sums of lengths that must agree.

use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use flumedb_core::{Log, Seq, StreamOptions};
use flumelog_aligned_offset::AlignedLog;
use flumelog_offset::OffsetLog;
use serde_json::Value;

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

struct Figures {
    append: Duration,
    stream: Duration,
    stream_sum: u64,
    get: Duration,
    get_sum: u64,
}

fn run<L: Log>(log: &L, records: &[Vec<u8>], gets: &[usize]) -> Figures {
    let start = Instant::now();
    let seqs: Vec<Seq> = records
        .iter()
        .map(|r| log.append(r).expect("append"))
        .collect();
    let append = start.elapsed();
    let start = Instant::now();
    let stream_sum: u64 = log
        .stream(StreamOptions::new())
        .expect("stream")
        .map(|e| e.expect("record").data.len() as u64)
        .sum();
    let stream = start.elapsed();
    let start = Instant::now();
    let get_sum: u64 = gets
        .iter()
        .map(|&i| log.get(seqs[i]).expect("get").len() as u64)
        .sum();
    let get = start.elapsed();
    Figures {
        append,
        stream,
        stream_sum,
        get,
        get_sum,
    }
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let n: usize = std::env::var("FLUMEDB_ALIGNED_BENCH_N")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(if full { 100_000 } else { 2_000 });
    let records: Vec<Vec<u8>> = flumedb_bench::messages(n, 1)
        .iter()
        .map(|m| serde_json::to_vec(m).expect("json"))
        .collect();
    let gets: Vec<usize> = (0..10_000u64)
        .map(|i| (i.wrapping_mul(2_654_435_761) % n as u64) as usize)
        .collect();
    let dir = tempfile::tempdir().expect("tempdir");

    let aligned = AlignedLog::open(dir.path().join("log.aligned")).expect("open aligned");
    let ours = run(&aligned, &records, &gets);
    aligned.close().expect("close");
    let offset = OffsetLog::open(dir.path().join("log.offset")).expect("open offset");
    let anchor = run(&offset, &records, &gets);
    offset.close().expect("close");
    assert_eq!(
        (ours.stream_sum, ours.get_sum),
        (anchor.stream_sum, anchor.get_sum)
    );

    let records_file = dir.path().join("records.bin");
    let mut out = std::io::BufWriter::new(std::fs::File::create(&records_file).expect("create"));
    for r in &records {
        out.write_all(&(r.len() as u32).to_le_bytes())
            .expect("write");
        out.write_all(r).expect("write");
    }
    drop(out);
    let gets_file = dir.path().join("gets.json");
    std::fs::write(&gets_file, serde_json::to_vec(&gets).expect("json")).expect("write");
    let js_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/js");
    if !js_dir.join("node_modules/flumelog-aligned-offset").is_dir() {
        let status = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(&js_dir)
            .status()
            .expect("npm is needed for the JS side");
        assert!(status.success(), "npm ci failed");
    }
    let js_out = Command::new("node")
        .arg(js_dir.join("bench.js"))
        .args([&records_file, dir.path(), &gets_file])
        .output()
        .expect("node is needed for the JS side");
    assert!(
        js_out.status.success(),
        "node bench.js: {}",
        String::from_utf8_lossy(&js_out.stderr)
    );
    let js: Value = serde_json::from_slice(&js_out.stdout).expect("the JS side's JSON line");
    assert_eq!(
        js["stream_sum"].as_u64(),
        Some(ours.stream_sum),
        "stream sums differ from JS"
    );
    assert_eq!(
        js["get_sum"].as_u64(),
        Some(ours.get_sum),
        "get sums differ from JS"
    );
    let js_ms = |k: &str| js[k].as_f64().expect("a JS time");

    let bytes: u64 = records.iter().map(|r| r.len() as u64).sum();
    println!(
        "flumelog-aligned-offset vs npm flumelog-aligned-offset 1.1.4 and flumelog-offset: {n} records \
         ({:.0} bytes on average), 10,000 random gets",
        bytes as f64 / n as f64
    );
    println!(
        "| operation | JS (ms) | flumelog-aligned-offset (ms) | JS/Rust | flumelog-offset (ms) | target |"
    );
    println!("|---|---:|---:|---:|---:|---|");
    let row = |name: &str, js: f64, ours: Duration, anchor: Duration, extra: String| {
        let ratio = js / ms(ours);
        println!(
            "| {name} | {js:.1} | {:.1} | {ratio:.1}× | {:.1} | ≥ 10× JS: {}{extra} |",
            ms(ours),
            ms(anchor),
            if ratio >= 10.0 { "met" } else { "MISSED" }
        );
    };
    row(
        "append, one by one (Rust: each written to the OS; JS: until all are written)",
        js_ms("append_ms"),
        ours.append,
        anchor.append,
        String::new(),
    );
    let gbs = bytes as f64 / ours.stream.as_secs_f64() / 1e9;
    row(
        "stream every record",
        js_ms("stream_ms"),
        ours.stream,
        anchor.stream,
        format!(
            "; ≥ 1 GB/s: {} ({gbs:.2} GB/s)",
            if gbs >= 1.0 { "met" } else { "MISSED" }
        ),
    );
    row(
        "10,000 random gets",
        js_ms("get_ms"),
        ours.get,
        anchor.get,
        String::new(),
    );
}
