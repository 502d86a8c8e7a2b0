//! The SQLite side of `cargo xtask bench`: the SSB workload as a new SQLite user would build it,
//! through rusqlite with SQLite bundled. One table holds each message's JSON text; generated
//! columns pull the indexed fields out of it, and three indexes match the views of the other
//! sides (`[author, sequence]` for the level view, `[type, timestamp]` and
//! `[author, timestamp]` for the query view). WAL, `synchronous=NORMAL`, one autocommit
//! transaction per append; the reduce view's counts are a `GROUP BY` over the type index.
//!
//! Every read runs in two passes: (a) one field of each returned record is read
//! (`json_extract` of `value.sequence`), (b) each returned record is decoded whole into a
//! `serde_json::Value` (and `value.sequence` read from it). Both passes sum `value.sequence`
//! over what they read; the sums must equal the other sides'.
//!
//! `cargo run --release -p flumedb-bench --bin ssb-sqlite -- <messages.jsonl> <workdir>
//! <params.json>` prints one JSON line; without arguments it runs on 2,000 generated
//! messages and checks its answers.

use std::path::Path;
use std::time::{Duration, Instant};

use flumedb_bench::{self as ssb, min_of, ms, peak_rss_kb, sequence_of};
use rusqlite::Connection;
use serde_json::{Value, json};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS log (
    seq INTEGER PRIMARY KEY,
    json TEXT NOT NULL,
    type GENERATED ALWAYS AS (json_extract(json, '$.value.content.type')) VIRTUAL,
    author GENERATED ALWAYS AS (json_extract(json, '$.value.author')) VIRTUAL,
    sequence GENERATED ALWAYS AS (json_extract(json, '$.value.sequence')) VIRTUAL,
    timestamp GENERATED ALWAYS AS (json_extract(json, '$.timestamp')) VIRTUAL
);
CREATE INDEX IF NOT EXISTS level ON log (author, sequence);
CREATE INDEX IF NOT EXISTS typ ON log (type, timestamp);
CREATE INDEX IF NOT EXISTS aut ON log (author, timestamp);
";

fn open(path: &Path) -> Connection {
    let conn = Connection::open(path).expect("open the database");
    conn.pragma_update(None, "journal_mode", "WAL")
        .expect("WAL");
    conn.pragma_update(None, "synchronous", "NORMAL")
        .expect("synchronous");
    conn.execute_batch(SCHEMA).expect("schema");
    conn
}

/// The reduce view's answer: messages by content type.
fn counts(conn: &Connection) -> Value {
    let mut stmt = conn
        .prepare_cached("SELECT type, count(*) FROM log GROUP BY type")
        .expect("prepare");
    let rows = stmt
        .query_map([], |r| {
            Ok((r.get::<_, Option<String>>(0)?, r.get::<_, i64>(1)?))
        })
        .expect("counts");
    let mut out = serde_json::Map::new();
    for row in rows {
        let (ty, n) = row.expect("row");
        out.insert(ty.unwrap_or_default(), json!(n));
    }
    Value::Object(out)
}

/// A pass over the rows of a query: its rows and its sum of `value.sequence`.
type Pass = fn(&Connection, &str, &[&dyn rusqlite::ToSql]) -> (u64, u64);

/// Pass (a): sums `value.sequence` read with `json_extract` from each row of `sql` (whose
/// first column must be the stored JSON), and counts the rows.
fn pass_a(conn: &Connection, sql: &str, args: &[&dyn rusqlite::ToSql]) -> (u64, u64) {
    let sql = sql.replacen(
        "SELECT json",
        "SELECT json_extract(json, '$.value.sequence')",
        1,
    );
    let mut stmt = conn.prepare_cached(&sql).expect("prepare");
    let mut rows = stmt.query(args).expect("query");
    let (mut n, mut sum) = (0u64, 0u64);
    while let Some(row) = rows.next().expect("row") {
        sum += u64::try_from(row.get::<_, i64>(0).expect("value.sequence"))
            .expect("a sequence is not negative");
        n += 1;
    }
    (n, sum)
}

/// Pass (b): decodes each row of `sql` (the stored JSON) into a `serde_json::Value`, sums
/// `value.sequence` from it, and counts the rows.
fn pass_b(conn: &Connection, sql: &str, args: &[&dyn rusqlite::ToSql]) -> (u64, u64) {
    let mut stmt = conn.prepare_cached(sql).expect("prepare");
    let mut rows = stmt.query(args).expect("query");
    let (mut n, mut sum) = (0u64, 0u64);
    while let Some(row) = rows.next().expect("row") {
        let text = row.get_ref(0).expect("json").as_str().expect("text");
        let message: Value = serde_json::from_str(text).expect("stored JSON");
        sum += sequence_of(&message);
        n += 1;
    }
    (n, sum)
}

fn run(messages_path: &Path, work: &Path, params: &Value) -> Value {
    let lines = || {
        let file = std::fs::File::open(messages_path).expect("messages");
        std::io::BufRead::lines(std::io::BufReader::with_capacity(1 << 20, file))
            .map(|l| l.expect("read a line"))
            .filter(|l| !l.trim().is_empty())
    };
    std::fs::create_dir_all(work).expect("workdir");
    let path = work.join("ssb.sqlite");
    assert!(
        !path.exists(),
        "{} exists: use an empty workdir",
        path.display()
    );

    // 1. Append each message alone, indexes maintained on insert. Timed: encoding and the
    // insert (parsing the input line is not), as on the other sides.
    let conn = open(&path);
    let mut append = Duration::ZERO;
    let mut seqs: Vec<i64> = Vec::new();
    {
        let mut insert = conn
            .prepare_cached("INSERT INTO log (json) VALUES (?1)")
            .expect("prepare");
        for line in lines() {
            let m: Value = serde_json::from_str(&line).expect("a JSON message per line");
            let start = Instant::now();
            let text = serde_json::to_string(&m).expect("encode");
            insert.execute([text]).expect("insert");
            seqs.push(conn.last_insert_rowid());
            append += start.elapsed();
        }
    }
    let n = seqs.len();
    assert_eq!(params["n"].as_u64(), Some(n as u64), "params.n");
    let counts_at_start = counts(&conn);

    // 2. Gets by seq; 3. level gets by [author, sequence].
    let gets: Vec<i64> = params["get"]
        .as_array()
        .expect("params.get")
        .iter()
        .map(|i| seqs[i.as_u64().expect("index") as usize])
        .collect();
    let get_sql = "SELECT json FROM log WHERE seq = ?1";
    let timed_gets = |pass: Pass| {
        let start = Instant::now();
        let mut sum = 0;
        for seq in &gets {
            let (rows, s) = pass(&conn, get_sql, &[seq]);
            assert_eq!(rows, 1, "get {seq}");
            sum += s;
        }
        (start.elapsed(), sum)
    };
    let (get_a, get_sum_a) = timed_gets(pass_a);
    let (get_b, get_sum) = timed_gets(pass_b);
    assert_eq!(
        get_sum_a, get_sum,
        "gets: the passes read different records"
    );

    let level_keys: Vec<(String, i64)> = params["level_get"]
        .as_array()
        .expect("params.level_get")
        .iter()
        .map(|k| {
            (
                k[0].as_str().expect("author").to_string(),
                k[1].as_i64().expect("sequence"),
            )
        })
        .collect();
    let level_sql = "SELECT json FROM log WHERE author = ?1 AND sequence = ?2";
    let timed_level = |pass: Pass| {
        let start = Instant::now();
        let mut sum = 0;
        for (author, sequence) in &level_keys {
            let (rows, s) = pass(&conn, level_sql, &[author, sequence]);
            assert_eq!(rows, 1, "level get [{author}, {sequence}]");
            sum += s;
        }
        (start.elapsed(), sum)
    };
    let (level_get_a, level_get_sum_a) = timed_level(pass_a);
    let (level_get_b, level_get_sum) = timed_level(pass_b);
    assert_eq!(
        level_get_sum_a, level_get_sum,
        "level gets: the passes differ"
    );

    // 4. Full scan in log order.
    let scan_sql = "SELECT json FROM log ORDER BY seq";
    let start = Instant::now();
    let (scan_count_a, scan_sum_a) = pass_a(&conn, scan_sql, &[]);
    let scan_a = start.elapsed();
    let start = Instant::now();
    let (scan_count, scan_sum) = pass_b(&conn, scan_sql, &[]);
    let scan_b = start.elapsed();
    assert_eq!(
        (scan_count_a, scan_sum_a),
        (scan_count, scan_sum),
        "scan passes"
    );

    // 5. One author's messages through the level index.
    let range_author = params["range_author"].as_str().expect("range_author");
    let range_sql = "SELECT json FROM log WHERE author = ?1 ORDER BY sequence";
    let start = Instant::now();
    let (range_rows_a, range_sum_a) = pass_a(&conn, range_sql, &[&range_author]);
    let range_a = start.elapsed();
    let start = Instant::now();
    let (range_rows, range_sum) = pass_b(&conn, range_sql, &[&range_author]);
    let range_b = start.elapsed();
    assert_eq!(
        (range_rows_a, range_sum_a),
        (range_rows, range_sum),
        "range passes"
    );

    // 6, 7. The two queries, through their indexes, in index order.
    let votes_sql = "SELECT json FROM log WHERE type = 'vote' ORDER BY timestamp, seq";
    let (votes_a, votes_answer_a) = min_of(5, || pass_a(&conn, votes_sql, &[]));
    let (votes_b, votes_answer) = min_of(5, || pass_b(&conn, votes_sql, &[]));
    let query_author = params["query_author"].as_str().expect("query_author");
    let query_since = params["query_since"].as_i64().expect("query_since");
    let author_sql =
        "SELECT json FROM log WHERE author = ?1 AND timestamp > ?2 ORDER BY timestamp, seq";
    let author_args: [&dyn rusqlite::ToSql; 2] = [&query_author, &query_since];
    let (author_a, author_answer_a) = min_of(20, || pass_a(&conn, author_sql, &author_args));
    let (author_b, author_answer) = min_of(20, || pass_b(&conn, author_sql, &author_args));
    assert_eq!(votes_answer_a, votes_answer, "votes passes");
    assert_eq!(author_answer_a, author_answer, "author passes");
    let (votes_rows, votes_sum) = votes_answer.unwrap_or_default();
    let (author_rows, author_sum) = author_answer.unwrap_or_default();

    // 7b. A count of the votes, from the type index.
    let (count_votes, counted) = min_of(20, || {
        conn.query_row("SELECT count(*) FROM log WHERE type = 'vote'", [], |row| {
            row.get::<_, i64>(0)
        })
        .expect("count")
    });
    let counted = counted.and_then(|n| u64::try_from(n).ok());
    assert_eq!(counted, Some(votes_rows), "count of votes");

    // 7c. Counts by type, from the type index.
    let (count_types, types_counted) = min_of(20, || counts(&conn));

    // 8. The reduce view's answer, computed when asked.
    let reduce_runs = 20;
    let start = Instant::now();
    for _ in 0..reduce_runs {
        std::hint::black_box(counts(&conn));
    }
    let reduce_get_us = start.elapsed().as_secs_f64() * 1e6 / f64::from(reduce_runs);

    // 9. Close, then reopen with the indexes current and answer the counts.
    let start = Instant::now();
    conn.close().map_err(|(_, e)| e).expect("close");
    let close = start.elapsed();
    let start = Instant::now();
    let conn = open(&path);
    let reopened = counts(&conn);
    let reopen = start.elapsed();
    assert_eq!(reopened, counts_at_start, "counts after reopen");

    // 10. Rebuild every index from the table.
    let start = Instant::now();
    conn.execute_batch("REINDEX").expect("reindex");
    let rebuilt = counts(&conn);
    let rebuild = start.elapsed();
    assert_eq!(rebuilt, counts_at_start, "counts after rebuild");
    conn.close().map_err(|(_, e)| e).expect("close");

    json!({
        "append_ms": ms(append),
        "get_ms": ms(get_b),
        "get_a_ms": ms(get_a),
        "get_sum": get_sum,
        "level_get_ms": ms(level_get_b),
        "level_get_a_ms": ms(level_get_a),
        // Its pass (a) of the level reads is index-only already (`EXPLAIN`: the generated
        // column `sequence` is read from the index, the table row never), which the Rust side
        // matches by reading the field from the key.
        "level_get_key_ms": ms(level_get_a),
        "level_get_sum": level_get_sum,
        "scan_ms": ms(scan_b),
        "scan_a_ms": ms(scan_a),
        "scan_count": scan_count,
        "scan_sum": scan_sum,
        "level_range_ms": ms(range_b),
        "level_range_a_ms": ms(range_a),
        "level_range_key_ms": ms(range_a),
        "level_range_rows": range_rows,
        "level_range_sum": range_sum,
        "votes_ms": ms(votes_b),
        "votes_a_ms": ms(votes_a),
        "votes_rows": votes_rows,
        "votes_sum": votes_sum,
        "author_ms": ms(author_b),
        "author_a_ms": ms(author_a),
        "author_rows": author_rows,
        "author_sum": author_sum,
        "count_votes_ms": ms(count_votes),
        "count_types_ms": ms(count_types),
        "count_types": types_counted,
        "reduce_get_us": (reduce_get_us * 1000.0).round() / 1000.0,
        "counts": counts_at_start,
        "close_ms": ms(close),
        "reopen_ms": ms(reopen),
        "rebuild_ms": ms(rebuild),
        "rss_kb": peak_rss_kb(),
        "sqlite_version": rusqlite::version(),
    })
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let out = if let [messages, work, params] = &args[..] {
        let params: Value = serde_json::from_str(&std::fs::read_to_string(params).expect("params"))
            .expect("params JSON");
        run(Path::new(messages), Path::new(work), &params)
    } else {
        let dir = tempfile::tempdir().expect("tempdir");
        let messages = ssb::messages(2_000, 1);
        let params = ssb::params(&messages, 1);
        let file = dir.path().join("messages.jsonl");
        ssb::write_jsonl(&file, &messages).expect("write messages");
        let out = run(&file, &dir.path().join("sqlite"), &params);
        if let Err(wrong) = ssb::check_answers("SQLite", &out, &ssb::expected(&messages, &params)) {
            eprintln!("{wrong}");
            std::process::exit(2);
        }
        out
    };
    println!("{out}");
}
