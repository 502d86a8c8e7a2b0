//! flumeview-query speed against JS flumeview-query 8.0.0, in the same run:
//! `cargo bench -p flumeview-query` (release).
//!
//! 100,000 SSB-like messages (`bench/ssb.rs`, seed 1) in a flumelog-offset log, a query view
//! with indexes `typ: [value.content.type, timestamp]` and `aut: [value.author, timestamp]`
//! on both sides. Figures:
//!
//! - all votes (≈35,000 rows) through `typ`: target ≥ 10× faster than JS;
//! - one author after a timestamp through `aut`: target ≤ 1 ms.
//!
//! The JS side is `bench/js/query.js` (installed with `npm ci` from `bench/js/package-lock.json`
//! when missing); both sides check their row counts against the messages. Set
//! `FLUMEDB_BENCH_N` for another size, `FLUMEDB_BENCH_JS=0` to skip JS. Under `cargo test`
//! it runs a small smoke version without JS and without verdicts.

#[path = "../../bench/ssb.rs"]
mod ssb;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use flumedb_core::{Flume, Json};
use flumelog_offset::OffsetLog;
use flumeview_query::{Index, Pipeline, Query, QueryHandle, QueryOptions};
use serde_json::{Value, json};

fn js_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../bench/js")
}

/// Minimum and median of `runs` timings of `f`, which returns a row count (checked equal).
fn time(runs: usize, mut f: impl FnMut() -> usize) -> (usize, Duration, Duration) {
    let mut times = Vec::with_capacity(runs);
    let mut rows = None;
    for _ in 0..runs {
        let start = Instant::now();
        let n = f();
        times.push(start.elapsed());
        assert!(
            rows.is_none_or(|r| r == n),
            "row count changed between runs"
        );
        rows = Some(n);
    }
    times.sort();
    (rows.unwrap_or(0), times[0], times[runs / 2])
}

fn count(q: &QueryHandle, pipeline: &Pipeline) -> usize {
    let mut n = 0;
    for value in q.read(pipeline, QueryOptions::new()).expect("read") {
        std::hint::black_box(value.expect("row"));
        n += 1;
    }
    n
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Runs the JS side; `None` (with a note) if node is not there.
fn js(file: &Path, work: &Path, author: &str, since: u64) -> Option<Value> {
    if Command::new("node").arg("--version").output().is_err() {
        println!("(node not found: JS side skipped)");
        return None;
    }
    if !js_dir().join("node_modules/flumeview-query").is_dir() {
        let status = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(js_dir())
            .status()
            .expect("npm");
        assert!(status.success(), "npm ci in {} failed", js_dir().display());
    }
    let out = Command::new("node")
        .arg(js_dir().join("query.js"))
        .arg(file)
        .arg(work)
        .arg(author)
        .arg(since.to_string())
        .output()
        .expect("node");
    assert!(
        out.status.success(),
        "query.js failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(serde_json::from_slice(&out.stdout).expect("query.js prints one JSON line"))
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let n: usize = std::env::var("FLUMEDB_BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if full { 100_000 } else { 2_000 });
    let run_js = full && std::env::var("FLUMEDB_BENCH_JS").map_or(true, |v| v != "0");
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let messages = ssb::messages(n, 1);
    let file = dir.path().join("messages.jsonl");
    ssb::write_jsonl(&file, &messages).unwrap();
    let bytes = std::fs::metadata(&file).unwrap().len();
    println!(
        "flumeview-query benchmark ({}): {n} SSB-like messages, {} bytes each on average",
        if full { "full" } else { "smoke run" },
        bytes / n as u64
    );

    // The author query: the median author by message count (a typical feed; a few authors
    // write most messages), after the middle of the log.
    let mut counts = std::collections::BTreeMap::new();
    for m in &messages {
        *counts
            .entry(m["value"]["author"].as_str().unwrap())
            .or_insert(0usize) += 1;
    }
    let mut by_count: Vec<(usize, &str)> = counts.iter().map(|(a, c)| (*c, *a)).collect();
    by_count.sort();
    let author = by_count[by_count.len() / 2].1.to_string();
    let since = messages[n / 2]["timestamp"].as_u64().unwrap();
    let expect_votes = messages
        .iter()
        .filter(|m| m["value"]["content"]["type"] == "vote")
        .count();
    let expect_author = messages
        .iter()
        .filter(|m| {
            m["value"]["author"] == author.as_str() && m["timestamp"].as_u64() > Some(since)
        })
        .count();

    let rust_dir = dir.path().join("rust");
    std::fs::create_dir(&rust_dir).unwrap();
    let db = Flume::open(OffsetLog::open(rust_dir.join("log.offset")).unwrap(), Json).unwrap();
    let q = db
        .add_view(
            "query",
            Query::new(
                1,
                vec![
                    Index::new("typ", ["value.content.type", "timestamp"]),
                    Index::new("aut", ["value.author", "timestamp"]),
                ],
            )
            .unwrap(),
        )
        .unwrap();
    let start = Instant::now();
    for chunk in messages.chunks(1000) {
        db.append_batch(chunk).unwrap();
    }
    let votes =
        Pipeline::parse(&json!([{"$filter": {"value": {"content": {"type": "vote"}}}}])).unwrap();
    let by_author = Pipeline::parse(&json!([
        {"$filter": {"value": {"author": author}, "timestamp": {"$gt": since}}}
    ]))
    .unwrap();
    // The first read waits for the view to catch up.
    count(&q, &by_author);
    let load = start.elapsed();
    assert_eq!(
        q.explain(&votes, &QueryOptions::new()).index.as_deref(),
        Some("typ")
    );
    assert_eq!(
        q.explain(&by_author, &QueryOptions::new()).index.as_deref(),
        Some("aut")
    );

    // More runs for profiling: FLUMEDB_BENCH_RUNS.
    let runs = std::env::var("FLUMEDB_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let (vote_rows, vote_min, vote_median) = time(runs, || count(&q, &votes));
    let (author_rows, author_min, author_median) = time(20, || count(&q, &by_author));
    assert_eq!(vote_rows, expect_votes, "votes: rows");
    assert_eq!(author_rows, expect_author, "author query: rows");
    db.close().unwrap();

    println!(
        "{:<44} {:>12} {:>12} {:>8}",
        "figure", "JS", "Rust", "JS/Rust"
    );
    let js = if run_js {
        let work = dir.path().join("js");
        js(&file, &work, &author, since)
    } else {
        None
    };
    let row = |figure: &str, js_ms: Option<f64>, rust: f64| match js_ms {
        Some(j) => println!(
            "{figure:<44} {:>9.2} ms {:>9.3} ms {:>7.1}×",
            j,
            rust,
            j / rust
        ),
        None => println!("{figure:<44} {:>12} {:>9.3} ms", "-", rust),
    };
    let js_field = |q: &str, f: &str| js.as_ref().and_then(|j| j[q][f].as_f64());
    row(
        "load (append + index, batches of 1000)",
        js.as_ref().and_then(|j| j["load_ms"].as_f64()),
        ms(load),
    );
    row(
        &format!("all votes, {vote_rows} rows (min of {runs})"),
        js_field("votes", "min_ms"),
        ms(vote_min),
    );
    row(
        &format!("all votes (median of {runs})"),
        js_field("votes", "median_ms"),
        ms(vote_median),
    );
    row(
        &format!("author after a time, {author_rows} rows (min of 20)"),
        js_field("author", "min_ms"),
        ms(author_min),
    );
    row(
        "author after a time (median of 20)",
        js_field("author", "median_ms"),
        ms(author_median),
    );
    if let Some(j) = &js {
        assert_eq!(
            j["votes"]["rows"].as_u64(),
            Some(vote_rows as u64),
            "JS and Rust vote rows differ"
        );
        assert_eq!(
            j["author"]["rows"].as_u64(),
            Some(author_rows as u64),
            "JS and Rust author rows differ"
        );
    }
    if full {
        let ratio = js_field("votes", "min_ms").map(|j| j / ms(vote_min));
        match ratio {
            Some(r) => println!(
                "target: votes query ≥ 10× JS: {:.1}× {}",
                r,
                if r >= 10.0 { "meets" } else { "MISSES" }
            ),
            None => println!("target: votes query ≥ 10× JS: no JS figure in this run"),
        }
        println!(
            "target: author query ≤ 1 ms: {:.3} ms (median {:.3} ms) {}",
            ms(author_min),
            ms(author_median),
            if author_median <= Duration::from_millis(1) {
                "meets"
            } else {
                "MISSES"
            }
        );
    }
}
