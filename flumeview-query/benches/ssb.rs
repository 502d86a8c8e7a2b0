//! The Rust side of `cargo xtask bench`: the SSB workload of `bench/js/bench.js`, on
//! flumelog-offset with three views (a reduce counting messages by type, a level view keyed
//! `[author, sequence]`, a query view with indexes `[content.type, timestamp]` and
//! `[author, timestamp]`), printing one JSON line with the same figures and answers.
//!
//! `cargo bench -p flumeview-query --bench ssb -- <messages.jsonl> <workdir> <params.json>`
//! runs it on the files `cargo xtask bench` writes. Without them it generates its own
//! messages (2,000 under `cargo test`, 100,000 under `cargo bench`) and checks its answers.

use flumedb_bench as ssb;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use flumedb_core::{Flume, Json, Seq, StreamOptions};
use flumelog_offset::OffsetLog;
use flumeview_level::{Key, Level, LevelHandle, ReadOptions};
use flumeview_query::{Index, Pipeline, Query, QueryHandle, QueryOptions};
use flumeview_reduce::{Reduce, ReduceHandle};
use serde_json::{Value, json};

type Counts = BTreeMap<String, u64>;
type Db = Flume<OffsetLog, Value>;

struct Views {
    reduce: ReduceHandle<Counts>,
    level: LevelHandle<Value>,
    query: QueryHandle,
}

fn open(path: &Path) -> (Db, Views) {
    let start = Instant::now();
    let phase = |what: &str| eprintln!("[ssb] open: {what} at {} ms", ms(start.elapsed()));
    let db = Flume::open(OffsetLog::open(path).expect("open log"), Json).expect("open db");
    phase("log");
    let reduce = db
        .add_view(
            "reduce",
            Reduce::with_map(
                1,
                Counts::new(),
                |msg: &Value| msg["value"]["content"]["type"].as_str().map(str::to_string),
                |counts: &mut Counts, ty: String| *counts.entry(ty).or_default() += 1,
            ),
        )
        .expect("reduce view");
    phase("reduce");
    let level = db
        .add_view(
            "level",
            Level::new(1, |msg: &Value, _| {
                let m = &msg["value"];
                Ok(vec![Key::array([
                    Key::try_from(&m["author"])?,
                    Key::try_from(&m["sequence"])?,
                ])])
            }),
        )
        .expect("level view");
    phase("level");
    let query = db
        .add_view(
            "query",
            Query::new(
                1,
                vec![
                    Index::new("typ", ["value.content.type", "timestamp"]),
                    Index::new("aut", ["value.author", "timestamp"]),
                ],
            )
            .expect("indexes"),
        )
        .expect("query view");
    phase("query");
    (
        db,
        Views {
            reduce,
            level,
            query,
        },
    )
}

fn votes() -> Pipeline {
    Pipeline::parse(&json!([{"$filter": {"value": {"content": {"type": "vote"}}}}])).unwrap()
}

/// Waits until every view has caught up with the log (each read waits for that).
fn caught_up(views: &Views) -> Counts {
    // The read waits; its (empty) rows are not needed.
    let _ = views
        .level
        .read(ReadOptions::new().limit(0))
        .expect("level");
    views
        .query
        .read(&votes(), QueryOptions::new().limit(0))
        .expect("query")
        .for_each(drop);
    views.reduce.get().expect("reduce")
}

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

/// Consumes every item (each kept from being optimised away) and counts them.
fn drain<T>(items: impl Iterator<Item = Result<T, flumedb_core::Error>>) -> usize {
    let mut n = 0;
    for item in items {
        std::hint::black_box(item.expect("item"));
        n += 1;
    }
    n
}

fn min_of(runs: usize, mut f: impl FnMut() -> usize) -> (Duration, usize) {
    let mut best = Duration::MAX;
    let mut n = None;
    for _ in 0..runs {
        let start = Instant::now();
        let got = f();
        best = best.min(start.elapsed());
        assert!(n.is_none_or(|n| n == got), "row count changed between runs");
        n = Some(got);
    }
    (best, n.unwrap_or(0))
}

/// Where memory is now (to stderr): anonymous vs file-backed (the log's memory map).
fn memory_note(at: &str) {
    if let Ok(status) = std::fs::read_to_string("/proc/self/status") {
        let fields: Vec<&str> = status
            .lines()
            .filter(|l| {
                l.starts_with("VmRSS")
                    || l.starts_with("RssAnon")
                    || l.starts_with("RssFile")
                    || l.starts_with("VmHWM")
            })
            .collect();
        eprintln!(
            "[ssb] memory {at}: {}",
            fields
                .join(", ")
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
        );
    }
}

fn peak_rss_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn run(messages_path: &Path, work: &Path, params: &Value) -> Value {
    // The input is read line by line as it is appended (as on the JS side); only the message
    // keys are kept (to check gets), so peak memory is the database's.
    let lines = || {
        let file = std::fs::File::open(messages_path).expect("messages");
        std::io::BufRead::lines(std::io::BufReader::with_capacity(1 << 20, file))
            .map(|l| l.expect("read a line"))
            .filter(|l| !l.trim().is_empty())
    };
    let n = lines().count();
    assert_eq!(params["n"].as_u64(), Some(n as u64), "params.n");
    std::fs::create_dir_all(work).expect("workdir");
    let log_path = work.join("log.offset");
    assert!(
        !log_path.exists(),
        "{} exists: use an empty workdir",
        log_path.display()
    );

    // 1. Append each message alone, views attached, until all views have caught up. Timed:
    // each append (parsing the input line is not), then the wait for the views.
    let (db, views) = open(&log_path);
    let mut append = Duration::ZERO;
    let mut seqs: Vec<Seq> = Vec::with_capacity(n);
    let mut keys: Vec<String> = Vec::with_capacity(n);
    for line in lines() {
        let m: Value = serde_json::from_str(&line).expect("a JSON message per line");
        keys.push(m["key"].as_str().unwrap_or_default().to_string());
        let start = Instant::now();
        seqs.push(db.append(&m).expect("append"));
        append += start.elapsed();
    }
    eprintln!("[ssb] appends alone: {} ms", ms(append));
    let start = Instant::now();
    let counts = caught_up(&views);
    append += start.elapsed();
    eprintln!("[ssb] then views caught up in {} ms", ms(start.elapsed()));
    memory_note("after append");
    if std::env::var_os("FLUMEDB_SSB_APPEND_ONLY").is_some() {
        eprintln!("[ssb] append only: {} ms", ms(append));
        std::process::exit(0);
    }

    // 2. Random gets.
    let gets: Vec<usize> = params["get"]
        .as_array()
        .expect("params.get")
        .iter()
        .map(|i| i.as_u64().expect("index") as usize)
        .collect();
    let start = Instant::now();
    for &i in &gets {
        let m = db.get(seqs[i]).expect("get");
        assert_eq!(m["key"].as_str(), Some(keys[i].as_str()), "get({i})");
    }
    let get = start.elapsed();

    // 3. Level gets by [author, sequence].
    let keys: Vec<(Key, Value)> = params["level_get"]
        .as_array()
        .expect("params.level_get")
        .iter()
        .map(|k| (Key::try_from(k).expect("key"), k.clone()))
        .collect();
    let start = Instant::now();
    for (key, json) in &keys {
        let (_, m) = views
            .level
            .get(key)
            .expect("level get")
            .expect("level key found");
        assert_eq!(m["value"]["author"], json[0]);
        assert_eq!(m["value"]["sequence"], json[1]);
    }
    let level_get = start.elapsed();

    // 4. Full scan.
    let start = Instant::now();
    let scan_count = drain(db.stream(StreamOptions::new()).expect("stream"));
    let scan = start.elapsed();

    // 5. Level range read of one author.
    let range_author = params["range_author"].as_str().expect("range_author");
    let start = Instant::now();
    let level_range_rows = views
        .level
        .read(
            ReadOptions::new()
                .gte(Key::array([range_author]))
                .lte(Key::Array(vec![Key::from(range_author), Key::Max])),
        )
        .expect("level read");
    let level_range_rows = drain(level_range_rows);
    let level_range = start.elapsed();

    // 6, 7. Queries.
    let (votes_time, votes_rows) = min_of(5, || {
        drain(
            views
                .query
                .read(&votes(), QueryOptions::new())
                .expect("votes"),
        )
    });
    let by_author = Pipeline::parse(&json!([{"$filter": {
        "value": {"author": params["query_author"]},
        "timestamp": {"$gt": params["query_since"]}
    }}]))
    .expect("author query");
    let (author_time, author_rows) = min_of(20, || {
        drain(
            views
                .query
                .read(&by_author, QueryOptions::new())
                .expect("author"),
        )
    });

    // 8. Reduce get.
    let start = Instant::now();
    for _ in 0..1000 {
        std::hint::black_box(views.reduce.get().expect("reduce get"));
    }
    let reduce_get_us = start.elapsed().as_secs_f64() * 1e6 / 1000.0;

    memory_note("before reopen");
    // 9. Reopen with views current.
    drop(views);
    db.close().expect("close");
    drop(db);
    let start = Instant::now();
    let (db, views) = open(&log_path);
    let reopened_counts = caught_up(&views);
    let reopen = start.elapsed();
    assert_eq!(reopened_counts, counts, "counts after reopen");

    // 10. Rebuild every view from the log.
    let start = Instant::now();
    db.rebuild().expect("rebuild");
    let rebuilt_counts = caught_up(&views);
    let rebuild = start.elapsed();
    assert_eq!(rebuilt_counts, counts, "counts after rebuild");
    let votes_again = drain(
        views
            .query
            .read(&votes(), QueryOptions::new())
            .expect("votes"),
    );
    assert_eq!(votes_again, votes_rows, "votes after rebuild");
    memory_note("after rebuild");
    drop(views);
    db.close().expect("close");

    json!({
        "append_ms": ms(append),
        "get_ms": ms(get),
        "level_get_ms": ms(level_get),
        "scan_ms": ms(scan),
        "scan_count": scan_count,
        "level_range_ms": ms(level_range),
        "level_range_rows": level_range_rows,
        "votes_ms": ms(votes_time),
        "votes_rows": votes_rows,
        "author_ms": ms(author_time),
        "author_rows": author_rows,
        "reduce_get_us": (reduce_get_us * 1000.0).round() / 1000.0,
        "counts": counts,
        "reopen_ms": ms(reopen),
        "rebuild_ms": ms(rebuild),
        "rss_kb": peak_rss_kb(),
    })
}

/// The answers every run must give, from the messages themselves.
fn check(messages: &[Value], params: &Value, out: &Value) {
    let mut counts = Counts::new();
    for m in messages {
        *counts
            .entry(
                m["value"]["content"]["type"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            )
            .or_default() += 1;
    }
    let by = |a: &Value| -> Vec<&Value> {
        messages
            .iter()
            .filter(|m| m["value"]["author"] == *a)
            .collect()
    };
    let since = params["query_since"].as_u64().unwrap_or(0);
    assert_eq!(out["counts"], json!(counts));
    assert_eq!(out["scan_count"], json!(messages.len()));
    assert_eq!(
        out["votes_rows"],
        json!(counts.get("vote").copied().unwrap_or(0))
    );
    assert_eq!(
        out["level_range_rows"],
        json!(by(&params["range_author"]).len())
    );
    assert_eq!(
        out["author_rows"],
        json!(
            by(&params["query_author"])
                .iter()
                .filter(|m| m["timestamp"].as_u64() > Some(since))
                .count()
        )
    );
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let full = std::env::args().any(|a| a == "--bench");
    let out = if let [messages, work, params] = &args[..] {
        let params: Value = serde_json::from_str(&std::fs::read_to_string(params).expect("params"))
            .expect("params JSON");
        run(Path::new(messages), &PathBuf::from(work), &params)
    } else {
        let n = if full { 100_000 } else { 2_000 };
        let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("tempdir");
        let messages = ssb::messages(n, 1);
        let params = ssb::params(&messages, 1);
        let file = dir.path().join("messages.jsonl");
        ssb::write_jsonl(&file, &messages).expect("write messages");
        let out = run(&file, &dir.path().join("rust"), &params);
        check(&messages, &params, &out);
        out
    };
    println!("{out}");
}
