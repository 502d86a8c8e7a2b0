//! flumeview-level speed: `cargo bench -p flumeview-level` (release) prints each figure next to
//! its target. Under `cargo test` it runs with tiny sizes as a smoke test (no verdicts).
//!
//! - index build of 1,000,000 records with 2 keys each (target ≥ 500,000 records/s)
//! - `get(key)` including the log fetch (target ≤ 5 µs)
//! - a range read of 10,000 rows, with values (target ≤ 5 ms)

use std::hint::black_box;
use std::time::{Duration, Instant};

use flumedb_core::{Flume, FlumeOptions, Postcard};
use flumelog_offset::OffsetLog;
use flumeview_level::{Key, Level, ReadOptions};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Clone)]
struct Msg {
    author: String,
    kind: String,
    timestamp: u64,
    text: String,
}

fn msg(i: u64) -> Msg {
    Msg {
        author: format!("@author{:03}", i % 200),
        kind: ["post", "vote", "contact", "about"][(i % 4) as usize].to_string(),
        timestamp: 1_600_000_000_000 + i,
        text: format!("message {i} with a little text in it"),
    }
}

/// Two keys per record: [author, timestamp] and [kind, timestamp].
fn view() -> Level<Msg> {
    Level::new(1, |m: &Msg, _| {
        Ok(vec![
            Key::array([Key::from(m.author.as_str()), Key::from(m.timestamp)]),
            Key::array([Key::from(m.kind.as_str()), Key::from(m.timestamp)]),
        ])
    })
}

fn report(full: bool, figure: &str, value: String, target: &str, ok: bool) {
    if full {
        let mark = if ok { "meets" } else { "MISSES" };
        println!("{figure:<50} {value:>16}   target {target:<16} {mark}");
    } else {
        println!("{figure:<50} {value:>16}   (smoke run: no verdict)");
    }
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let n: u64 = if full { 1_000_000 } else { 5_000 };
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let path = dir.path().join("log.offset");
    println!(
        "flumeview-level benchmark ({}): {n} records, 2 keys each, postcard values",
        if full {
            "full"
        } else {
            "smoke: debug build, tiny sizes; use cargo bench"
        }
    );
    {
        let log = OffsetLog::open(&path).unwrap();
        let db = Flume::open(log, Postcard).unwrap();
        let all: Vec<Msg> = (0..n).map(msg).collect();
        for chunk in all.chunks(10_000) {
            db.append_batch(chunk).unwrap();
        }
        db.close().unwrap();
    }

    // 1. Index build: add the view to a log that holds everything; time until caught up.
    let db = FlumeOptions::new()
        .read_timeout(Some(Duration::from_secs(600)))
        .open(OffsetLog::open(&path).unwrap(), Postcard)
        .unwrap();
    let start = Instant::now();
    let h = db.add_view("idx", view()).unwrap();
    h.get_seq(&Key::Null).unwrap(); // waits until the view has every record
    let took = start.elapsed();
    let rate = n as f64 / took.as_secs_f64();
    report(
        full,
        "index build, 2 keys per record",
        format!("{:.0} records/s", rate),
        "≥ 500,000/s",
        rate >= 500_000.0,
    );
    println!(
        "{:<50} {:>16}",
        "  (time)",
        format!("{:.2} s", took.as_secs_f64())
    );

    // 2. get(key) with the log fetch, random keys.
    let gets = if full { 100_000 } else { 1_000 };
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let keys: Vec<Key> = (0..gets)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let m = msg(x % n);
            Key::array([Key::from(m.author.as_str()), Key::from(m.timestamp)])
        })
        .collect();
    for k in keys.iter().take(1000) {
        black_box(h.get(k).unwrap());
    }
    let start = Instant::now();
    for k in &keys {
        black_box(h.get(k).unwrap().expect("indexed"));
    }
    let per = start.elapsed().as_secs_f64() * 1e6 / gets as f64;
    report(
        full,
        "get(key) including the log fetch",
        format!("{per:.2} µs"),
        "≤ 5 µs",
        per <= 5.0,
    );

    // 3. Range read of 10,000 rows with values: one kind, 10,000 consecutive timestamps.
    let rows = 10_000.min(n / 4);
    // Records i ≡ 0 (mod 4) are posts: 4 × rows consecutive records hold `rows` posts.
    let start_i = (n - rows * 4) / 2 / 4 * 4;
    let from = 1_600_000_000_000 + start_i;
    let opts = ReadOptions::new()
        .gte(Key::array([Key::from("post"), Key::from(from)]))
        .lt(Key::array([Key::from("post"), Key::from(from + rows * 4)]));
    let mut best = Duration::MAX;
    for _ in 0..5 {
        let start = Instant::now();
        let mut count = 0u64;
        for row in h.read(opts.clone()).unwrap() {
            black_box(row.unwrap());
            count += 1;
        }
        best = best.min(start.elapsed());
        assert_eq!(count, rows);
    }
    report(
        full,
        &format!("range read of {rows} rows, with values (best of 5)"),
        format!("{:.2} ms", best.as_secs_f64() * 1e3),
        "≤ 5 ms",
        best <= Duration::from_millis(5),
    );
    let start = Instant::now();
    let count = h.read(opts.values(false)).unwrap().count();
    println!(
        "{:<50} {:>16}",
        format!("  (the same {count} rows, keys and seqs only)"),
        format!("{:.2} ms", start.elapsed().as_secs_f64() * 1e3)
    );
    db.close().unwrap();
    drop(h);

    // 4. Reopen with the index current (median of 5).
    let mut reopens: Vec<Duration> = (0..5)
        .map(|_| {
            let start = Instant::now();
            let db = FlumeOptions::new()
                .open(OffsetLog::open(&path).unwrap(), Postcard)
                .unwrap();
            let h = db.add_view("idx", view()).unwrap();
            h.get_seq(&Key::Null).unwrap();
            let took = start.elapsed();
            db.close().unwrap();
            took
        })
        .collect();
    reopens.sort();
    println!(
        "{:<50} {:>16}",
        "  (reopen with the index current, median of 5)",
        format!("{:.2} ms", reopens[2].as_secs_f64() * 1e3)
    );
    let size: u64 = walk(&dir.path().join("level"));
    println!(
        "{:<50} {:>16}",
        "  (index size on disk)",
        format!("{:.0} MiB", size as f64 / (1 << 20) as f64)
    );
}

fn walk(path: &std::path::Path) -> u64 {
    std::fs::read_dir(path)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| {
                    let p = e.path();
                    if p.is_dir() {
                        walk(&p)
                    } else {
                        e.metadata().map(|m| m.len()).unwrap_or(0)
                    }
                })
                .sum()
        })
        .unwrap_or(0)
}
