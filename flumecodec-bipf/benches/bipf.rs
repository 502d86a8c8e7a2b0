//! Encode, decode and seek against npm `bipf` 1.9.0 on the same SSB-like messages, in the
//! same run, and one field sought in place against a full JSON decode.
//!
//! `cargo bench -p flumecodec-bipf` (20,000 messages; `FLUMEDB_BIPF_BENCH_N` to change);
//! under `cargo test` it runs 500 to check that both sides agree. Needs node and npm (the JS
//! package is installed from `tests/js/package-lock.json` when missing). Every operation runs
//! over all messages, best of 5, and both sides fold what they read into a sum that must agree:
//! encode sums the encoded lengths, decode sums `value.sequence` of each whole record, seek
//! sums the length of `value.content.type` read in place.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use flumecodec_bipf::{BipfField, from_slice, to_vec};
use serde_json::Value;

fn best<R: PartialEq + std::fmt::Debug>(reps: usize, mut f: impl FnMut() -> R) -> (Duration, R) {
    let mut min = Duration::MAX;
    let mut out = None;
    for _ in 0..reps {
        let start = Instant::now();
        let r = std::hint::black_box(f());
        min = min.min(start.elapsed());
        if let Some(prev) = &out {
            assert_eq!(prev, &r, "a repetition read something else");
        }
        out = Some(r);
    }
    (min, out.expect("at least one repetition"))
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let n: usize = std::env::var("FLUMEDB_BIPF_BENCH_N")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(if full { 20_000 } else { 500 });
    let reps = if full { 5 } else { 2 };
    let messages = flumedb_bench::messages(n, 1);
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("messages.jsonl");
    flumedb_bench::write_jsonl(&file, &messages).expect("write messages");
    let json: Vec<Vec<u8>> = messages
        .iter()
        .map(|m| serde_json::to_vec(m).expect("json"))
        .collect();
    let encoded: Vec<Vec<u8>> = messages
        .iter()
        .map(|m| to_vec(m).expect("encode"))
        .collect();

    let (encode, encode_sum) = best(reps, || {
        messages
            .iter()
            .map(|m| to_vec(m).expect("encode").len() as u64)
            .sum::<u64>()
    });
    let (decode, decode_sum) = best(reps, || {
        encoded
            .iter()
            .map(|b| {
                let v: Value = from_slice(b).expect("decode");
                v["value"]["sequence"].as_u64().expect("sequence")
            })
            .sum::<u64>()
    });
    let (seek, seek_sum) = best(reps, || {
        encoded
            .iter()
            .filter_map(|b| {
                let root = BipfField::from_bytes(b).ok()?;
                let ty = root.get(&["value", "content", "type"]).ok()??;
                Some(ty.as_str()?.len() as u64)
            })
            .sum::<u64>()
    });
    let (json_decode, json_sum) = best(reps, || {
        json.iter()
            .filter_map(|b| {
                let v: Value = serde_json::from_slice(b).ok()?;
                Some(v["value"]["content"]["type"].as_str()?.len() as u64)
            })
            .sum::<u64>()
    });
    assert_eq!(seek_sum, json_sum, "seek and the JSON decode read the same");

    let js_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/js");
    if !js_dir.join("node_modules/bipf").is_dir() {
        let status = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(&js_dir)
            .status()
            .expect("npm is needed for the JS side");
        assert!(status.success(), "npm ci failed");
    }
    let out = Command::new("node")
        .arg(js_dir.join("bench.js"))
        .arg(&file)
        .arg(reps.to_string())
        .output()
        .expect("node is needed for the JS side");
    assert!(
        out.status.success(),
        "node bench.js: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let js: Value = serde_json::from_slice(&out.stdout).expect("the JS side's JSON line");
    let js_ms = |k: &str| js[k].as_f64().expect("a JS time");
    assert_eq!(
        js["encodeSum"].as_u64(),
        Some(encode_sum),
        "encoded lengths differ from JS"
    );
    assert_eq!(
        js["decodeSum"].as_u64(),
        Some(decode_sum),
        "decoded sums differ from JS"
    );
    assert_eq!(
        js["seekSum"].as_u64(),
        Some(seek_sum),
        "sought fields differ from JS"
    );

    let bytes: usize = encoded.iter().map(Vec::len).sum();
    println!(
        "flumecodec-bipf vs npm bipf 1.9.0: {n} messages ({:.0} bytes of BIPF each on average), best of {reps}",
        bytes as f64 / n as f64
    );
    println!("| operation | JS (ms) | Rust (ms) | JS/Rust | target |");
    println!("|---|---:|---:|---:|---|");
    let row = |name: &str, js: f64, rust: Duration, target: Option<f64>| {
        let ratio = js / ms(rust);
        let verdict = target.map_or(String::new(), |t| {
            format!("≥ {t}×: {}", if ratio >= t { "met" } else { "MISSED" })
        });
        println!(
            "| {name} | {js:.2} | {:.2} | {ratio:.1}× | {verdict} |",
            ms(rust)
        );
    };
    row("encode", js_ms("encode"), encode, None);
    row(
        "decode whole (to serde_json::Value)",
        js_ms("decode"),
        decode,
        Some(5.0),
    );
    row(
        "seek value.content.type, read it",
        js_ms("seek"),
        seek,
        Some(10.0),
    );
    println!(
        "| seek of one field against a full JSON decode (serde_json::Value) | | {:.2} vs {:.2} | {:.1}× | ≥ 20×: {} |",
        ms(seek),
        ms(json_decode),
        ms(json_decode) / ms(seek),
        if ms(json_decode) / ms(seek) >= 20.0 {
            "met"
        } else {
            "MISSED"
        }
    );
}
