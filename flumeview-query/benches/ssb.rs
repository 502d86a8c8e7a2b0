//! The Rust side of `cargo xtask bench`: the SSB workload of `bench/js/bench.js`, on
//! flumelog-offset with three views (a reduce counting messages by type, a level view keyed
//! `[author, sequence]`, a query view with indexes `[content.type, timestamp]` and
//! `[author, timestamp]`), printing one JSON line with the same figures and answers.
//!
//! The database holds `Doc` records, read in place: views read the fields they need. Every
//! read runs in two passes, as on the SQLite side: (a) one field of each returned record is
//! read (`value.sequence`), (b) each returned record is decoded whole into a
//! `serde_json::Value`. Both passes sum `value.sequence`; the sums must equal the other
//! sides'.
//!
//! `cargo bench -p flumeview-query --bench ssb -- <messages.jsonl> <workdir> <params.json>`
//! runs it on the files `cargo xtask bench` writes. Without them it generates its own
//! messages (2,000 under `cargo test`, 100,000 under `cargo bench`) and checks its answers.

use flumedb_bench as ssb;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use flumedb_bench::{min_of, ms, peak_rss_kb, sequence_of};
use flumedb_core::FieldSet;
use flumedb_core::{Doc, Field, Flume, Json, Seq, StreamOptions};
use flumelog_offset::OffsetLog;
use flumeview_level::{Key, KeyError, Level, LevelHandle, ReadOptions};
use flumeview_query::{Index, Pipeline, Query, QueryHandle, QueryOptions};
use flumeview_reduce::{Reduce, ReduceHandle};
use serde_json::{Value, json};

type Counts = BTreeMap<String, u64>;
type Db = Flume<OffsetLog, Doc>;

struct Views {
    reduce: ReduceHandle<Counts>,
    level: LevelHandle<Doc>,
    query: QueryHandle<Doc>,
}

/// Pass (a): `value.sequence` of a record, read in place.
fn field_a(doc: &Doc) -> u64 {
    doc.get(&["value", "sequence"])
        .expect("well-formed record")
        .and_then(|f: Field<'_>| f.as_u64())
        .expect("value.sequence")
}

/// `sequence`, the second element of a level key `[author, sequence]`.
fn key_sequence(key: &Key) -> u64 {
    match key {
        Key::Array(parts) => match parts.get(1) {
            Some(Key::Number(n)) => *n as u64,
            other => panic!("not a sequence: {other:?}"),
        },
        other => panic!("not an [author, sequence] key: {other:?}"),
    }
}

/// Pass (b): the record decoded whole, then `value.sequence` read from it.
fn field_b(doc: &Doc) -> u64 {
    sequence_of(&doc.to_value().expect("decode"))
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
                |msg: &Doc| {
                    msg.get(&["value", "content", "type"])
                        .ok()
                        .flatten()
                        .and_then(|f| f.as_str())
                        .map(|ty| ty.into_owned())
                },
                |counts: &mut Counts, ty: String| *counts.entry(ty).or_default() += 1,
            ),
        )
        .expect("reduce view");
    phase("reduce");
    let level = db
        .add_view("level", {
            let fields = FieldSet::new([["value", "author"], ["value", "sequence"]]);
            Level::new(1, move |msg: &Doc, _| {
                let mut found = [None; 2];
                fields.read_into(msg.root(), &mut found)?;
                let [author, sequence] = found;
                Ok(vec![Key::array([
                    Key::try_from(author.ok_or(KeyError::Object)?)?,
                    Key::try_from(sequence.ok_or(KeyError::Object)?)?,
                ])])
            })
        })
        .expect("level view");
    phase("level");
    let query = db
        .add_view(
            "query",
            Query::for_docs(
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

/// Waits until every view has caught up with the log, then reads the reduce view.
fn caught_up(db: &Db, views: &Views) -> Counts {
    db.sync().expect("sync");
    views.reduce.get().expect("reduce")
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
        seqs.push(
            db.append(&Doc::encode(&m).expect("encode"))
                .expect("append"),
        );
        append += start.elapsed();
    }
    eprintln!("[ssb] appends alone: {} ms", ms(append));
    let start = Instant::now();
    let counts = caught_up(&db, &views);
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
    let timed_gets = |pass: fn(&Doc) -> u64| {
        let start = Instant::now();
        let sum: u64 = gets
            .iter()
            .map(|&i| pass(&db.get(seqs[i]).expect("get")))
            .sum();
        (start.elapsed(), sum)
    };
    let (get_a, get_sum_a) = timed_gets(field_a);
    let (get_b, get_sum) = timed_gets(field_b);
    assert_eq!(
        get_sum_a, get_sum,
        "gets: the passes read different records"
    );
    for &i in gets.iter().take(100) {
        let m = db.get(seqs[i]).expect("get").to_value().expect("decode");
        assert_eq!(m["key"].as_str(), Some(keys[i].as_str()), "get({i})");
    }

    // 3. Level gets by [author, sequence].
    let level_keys: Vec<(Key, Value)> = params["level_get"]
        .as_array()
        .expect("params.level_get")
        .iter()
        .map(|k| (Key::try_from(k).expect("key"), k.clone()))
        .collect();
    let timed_level = |pass: fn(&Doc) -> u64| {
        let start = Instant::now();
        let sum: u64 = level_keys
            .iter()
            .map(|(key, _)| {
                let hit = views
                    .level
                    .get(key)
                    .expect("level get")
                    .expect("level key found");
                pass(&hit.value)
            })
            .sum();
        (start.elapsed(), sum)
    };
    let (level_get_a, level_get_sum_a) = timed_level(field_a);
    let (level_get_b, level_get_sum) = timed_level(field_b);
    assert_eq!(
        level_get_sum_a, level_get_sum,
        "level gets: the passes differ"
    );
    // Pass (a) as SQLite runs it: `value.sequence` is part of the index key, so its plan reads
    // the index row alone and never the record (`EXPLAIN`: a DeferredSeek that is never
    // resolved, the column read from the index). Here: the index lookup (`get_seq`), the
    // field taken from the key.
    let start = Instant::now();
    let level_get_key_sum: u64 = level_keys
        .iter()
        .map(|(key, _)| {
            views
                .level
                .get_seq(key)
                .expect("level get")
                .expect("level key found");
            key_sequence(key)
        })
        .sum();
    let level_get_key = start.elapsed();
    assert_eq!(
        level_get_key_sum, level_get_sum,
        "level gets: sequences from the keys"
    );
    for (key, json) in level_keys.iter().take(100) {
        let m = views.level.get(key).expect("get").expect("found").value;
        let m = m.to_value().expect("decode");
        assert_eq!(m["value"]["author"], json[0]);
        assert_eq!(m["value"]["sequence"], json[1]);
    }

    // 4. Full scan.
    let scan = |pass: fn(&Doc) -> u64| {
        let start = Instant::now();
        let (mut count, mut sum) = (0u64, 0u64);
        for record in db.stream(StreamOptions::new()).expect("stream") {
            sum += pass(&record.expect("record").value);
            count += 1;
        }
        (start.elapsed(), count, sum)
    };
    let (scan_a, scan_count_a, scan_sum_a) = scan(field_a);
    let (scan_b, scan_count, scan_sum) = scan(field_b);
    // The floor of pass (a): the log's frames checked and read in place, one field of each,
    // no record built (`OffsetLog::scan`).
    let start = Instant::now();
    let mut floor_sum = 0u64;
    let floor_count = db
        .log()
        .scan(
            std::ops::Bound::Unbounded,
            std::ops::Bound::Unbounded,
            |_, bytes| {
                floor_sum += Field::from_json(bytes)
                    .get(&["value", "sequence"])
                    .expect("well-formed record")
                    .and_then(|f| f.as_u64())
                    .expect("value.sequence");
                true
            },
        )
        .expect("scan");
    let floor = start.elapsed();
    assert_eq!(
        (floor_count, floor_sum),
        (scan_count, scan_sum),
        "the floor read what the scans read"
    );
    assert_eq!(
        (scan_count_a, scan_sum_a),
        (scan_count, scan_sum),
        "scan passes"
    );

    // 5. Level range read of one author.
    let range_author = params["range_author"].as_str().expect("range_author");
    let range = |pass: fn(&Doc) -> u64| {
        let start = Instant::now();
        let rows = views
            .level
            .read(
                ReadOptions::new()
                    .gte(Key::array([range_author]))
                    .lte(Key::Array(vec![Key::from(range_author), Key::Max])),
            )
            .expect("level read");
        let (mut count, mut sum) = (0u64, 0u64);
        for row in rows {
            sum += pass(row.expect("row").value.as_ref().expect("value"));
            count += 1;
        }
        (start.elapsed(), count, sum)
    };
    let (range_a, range_rows_a, range_sum_a) = range(field_a);
    let (range_b, level_range_rows, level_range_sum) = range(field_b);
    assert_eq!(
        (range_rows_a, range_sum_a),
        (level_range_rows, level_range_sum),
        "range passes"
    );
    // The range as SQLite's pass (a) runs it: index rows only, the field from each key.
    let start = Instant::now();
    let (mut range_key_rows, mut range_key_sum) = (0u64, 0u64);
    for row in views
        .level
        .read(
            ReadOptions::new()
                .gte(Key::array([range_author]))
                .lte(Key::Array(vec![Key::from(range_author), Key::Max]))
                .values(false),
        )
        .expect("level read")
    {
        range_key_sum += key_sequence(row.expect("row").key.as_ref().expect("key"));
        range_key_rows += 1;
    }
    let range_key = start.elapsed();
    assert_eq!(
        (range_key_rows, range_key_sum),
        (level_range_rows, level_range_sum),
        "range: sequences from the keys"
    );

    // 6, 7. Queries: the selected records with their seqs (`records`), read in place.
    let query = |pipeline: &Pipeline, pass: fn(&Doc) -> u64| {
        let (mut count, mut sum) = (0u64, 0u64);
        for record in views
            .query
            .records(pipeline, QueryOptions::new())
            .expect("query")
        {
            sum += pass(&record.expect("record").value);
            count += 1;
        }
        (count, sum)
    };
    let votes_pipeline = votes();
    let (votes_a, votes_answer_a) = min_of(5, || query(&votes_pipeline, field_a));
    let (votes_b, votes_answer) = min_of(5, || query(&votes_pipeline, field_b));
    let by_author = Pipeline::parse(&json!([{"$filter": {
        "value": {"author": params["query_author"]},
        "timestamp": {"$gt": params["query_since"]}
    }}]))
    .expect("author query");
    let (author_a, author_answer_a) = min_of(20, || query(&by_author, field_a));
    let (author_b, author_answer) = min_of(20, || query(&by_author, field_b));
    assert_eq!(votes_answer_a, votes_answer, "votes passes");
    assert_eq!(author_answer_a, author_answer, "author passes");
    let (votes_rows, votes_sum) = votes_answer.unwrap_or_default();
    let (author_rows, author_sum) = author_answer.unwrap_or_default();

    // 7b. A $count of the votes: the first builds the index's counts (one pass over its
    // rows), the rest read them.
    let count_votes = Pipeline::parse(&json!([
        {"$filter": {"value": {"content": {"type": "vote"}}}},
        {"$reduce": {"$count": true}}
    ]))
    .expect("count query");
    let count = || {
        views
            .query
            .read(&count_votes, QueryOptions::new())
            .expect("count")
            .collect::<Result<Vec<Value>, _>>()
            .expect("count")
    };
    let start = Instant::now();
    let first = count();
    let count_first = start.elapsed();
    assert_eq!(first, [json!(votes_rows)], "first count of votes");
    let (count_votes_time, counted) = min_of(20, count);
    assert_eq!(counted, Some(vec![json!(votes_rows)]), "count of votes");

    // 7c. Counts by type: a $reduce grouped by the type index's first field; the first
    // builds every type's count (one pass over the index's rows), the rest read them.
    let count_types = Pipeline::parse(&json!([
        {"$reduce": {"type": ["value", "content", "type"], "n": {"$count": true}}}
    ]))
    .expect("count types query");
    let by_type = || {
        let groups = views
            .query
            .read(&count_types, QueryOptions::new())
            .expect("count types")
            .collect::<Result<Vec<Value>, _>>()
            .expect("count types");
        groups
            .iter()
            .map(|g| {
                (
                    g["type"].as_str().unwrap_or_default().to_string(),
                    g["n"].clone(),
                )
            })
            .collect::<serde_json::Map<String, Value>>()
    };
    let start = Instant::now();
    let first_types = by_type();
    let count_types_first = start.elapsed();
    let (count_types_time, types_counted) = min_of(20, by_type);
    assert_eq!(types_counted.as_ref(), Some(&first_types), "counts by type");

    // 8. Reduce get.
    let start = Instant::now();
    for _ in 0..1000 {
        std::hint::black_box(views.reduce.get().expect("reduce get"));
    }
    let reduce_get_us = start.elapsed().as_secs_f64() * 1e6 / 1000.0;

    memory_note("before reopen");
    // 9. Close, then reopen with views current.
    drop(views);
    let start = Instant::now();
    db.close().expect("close");
    let close = start.elapsed();
    drop(db);
    let start = Instant::now();
    let (db, views) = open(&log_path);
    let reopened_counts = caught_up(&db, &views);
    let reopen = start.elapsed();
    assert_eq!(reopened_counts, counts, "counts after reopen");

    // 10. Rebuild every view from the log.
    let start = Instant::now();
    db.rebuild().expect("rebuild");
    let rebuilt_counts = caught_up(&db, &views);
    let rebuild = start.elapsed();
    assert_eq!(rebuilt_counts, counts, "counts after rebuild");
    let votes_again = views
        .query
        .read(&votes(), QueryOptions::new())
        .expect("votes")
        .count();
    assert_eq!(votes_again as u64, votes_rows, "votes after rebuild");
    memory_note("after rebuild");
    drop(views);
    db.close().expect("close");

    json!({
        "append_ms": ms(append),
        "get_ms": ms(get_b),
        "get_a_ms": ms(get_a),
        "get_sum": get_sum,
        "level_get_ms": ms(level_get_b),
        "level_get_a_ms": ms(level_get_a),
        "level_get_key_ms": ms(level_get_key),
        "level_get_sum": level_get_sum,
        "scan_ms": ms(scan_b),
        "scan_a_ms": ms(scan_a),
        "scan_count": scan_count,
        "scan_sum": scan_sum,
        "floor_ms": ms(floor),
        "level_range_ms": ms(range_b),
        "level_range_a_ms": ms(range_a),
        "level_range_key_ms": ms(range_key),
        "level_range_rows": level_range_rows,
        "level_range_sum": level_range_sum,
        "votes_ms": ms(votes_b),
        "votes_a_ms": ms(votes_a),
        "votes_rows": votes_rows,
        "votes_sum": votes_sum,
        "author_ms": ms(author_b),
        "author_a_ms": ms(author_a),
        "author_rows": author_rows,
        "author_sum": author_sum,
        "count_votes_ms": ms(count_votes_time),
        "count_votes_first_ms": ms(count_first),
        "count_types_ms": ms(count_types_time),
        "count_types_first_ms": ms(count_types_first),
        "count_types": first_types,
        "reduce_get_us": (reduce_get_us * 1000.0).round() / 1000.0,
        "counts": counts,
        "close_ms": ms(close),
        "reopen_ms": ms(reopen),
        "rebuild_ms": ms(rebuild),
        "rss_kb": peak_rss_kb(),
    })
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
        if let Err(wrong) = ssb::check_answers("Rust", &out, &ssb::expected(&messages, &params)) {
            panic!("{wrong}");
        }
        out
    };
    println!("{out}");
}
