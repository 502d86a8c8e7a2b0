//! The query view in a database: live reads, persistence, rebuilds when indexes change,
//! deleted records, limits.

use std::thread;
use std::time::Duration;

use flumedb_core::{Error, Flume, Json, Seq};
use flumelog_memory::MemoryLog;
use flumelog_offset::OffsetLog;
use flumeview_query::{Index, LiveResult, Pipeline, Query, QueryError, QueryOptions};
use serde_json::{Value, json};

fn msg(i: u64) -> Value {
    let ty = ["post", "vote", "contact"][(i % 3) as usize];
    json!({"i": i, "author": format!("@{}", i % 4), "type": ty, "ts": 1000 + i})
}

fn indexes() -> Vec<Index> {
    vec![
        Index::new("typ", ["type", "ts"]),
        Index::new("aut", ["author", "ts"]),
    ]
}

fn is(values: &[Value]) -> Vec<u64> {
    values.iter().map(|v| v["i"].as_u64().unwrap()).collect()
}

#[test]
fn live_queries_see_each_new_matching_record_exactly_once() {
    let db = Flume::open(MemoryLog::new(), Json).unwrap();
    let q = db.add_view("q", Query::new(1, indexes()).unwrap()).unwrap();
    for i in 0..30 {
        db.append(&msg(i)).unwrap();
    }
    let votes = Pipeline::parse(&json!({"type": "vote"})).unwrap();
    // Through the index, and as a scan (filters no index helps).
    let scan_votes = Pipeline::parse(&json!([
        {"$filter": {"type": {"$ne": "post"}}},
        {"$filter": {"type": {"$ne": "contact"}}}
    ]))
    .unwrap();
    assert!(q.explain(&scan_votes, &QueryOptions::new()).index.is_none());
    assert!(q.explain(&votes, &QueryOptions::new()).index.is_some());
    let mut live = q.live(&votes, QueryOptions::new()).unwrap();
    let mut live_scan = q.live(&scan_votes, QueryOptions::new()).unwrap();
    let mut live_new = q.live(&votes, QueryOptions::new().old(false)).unwrap();

    let expect_old: Vec<u64> = (0..30).filter(|i| i % 3 == 1).collect();
    let expect_new: Vec<u64> = (30..300).filter(|i| i % 3 == 1).collect();
    thread::scope(|scope| {
        scope.spawn(|| {
            for i in 30..300 {
                db.append(&msg(i)).unwrap();
                if i % 50 == 0 {
                    thread::sleep(Duration::from_millis(2));
                }
            }
        });
        for live in [&mut live, &mut live_scan] {
            let mut old = Vec::new();
            while let LiveResult::Value(v) = live.next().unwrap().unwrap() {
                old.push(v);
            }
            assert_eq!(is(&old), expect_old);
            let new: Vec<Value> = live
                .by_ref()
                .take(expect_new.len())
                .map(|r| match r.unwrap() {
                    LiveResult::Value(v) => v,
                    LiveResult::Sync => panic!("a second sync marker"),
                })
                .collect();
            assert_eq!(is(&new), expect_new);
        }
        let new: Vec<Value> = live_new
            .by_ref()
            .take(expect_new.len())
            .map(|r| match r.unwrap() {
                LiveResult::Value(v) => v,
                LiveResult::Sync => panic!("no sync marker without old results"),
            })
            .collect();
        assert_eq!(is(&new), expect_new);
    });
    // Nothing more arrives: one more append gives exactly one more result.
    db.append(&msg(301)).unwrap();
    db.append(&msg(304)).unwrap();
    assert_eq!(
        is(&[match live.next().unwrap().unwrap() {
            LiveResult::Value(v) => v,
            LiveResult::Sync => panic!(),
        }]),
        [301]
    );
    // Closing the database ends live reads.
    db.close().unwrap();
    let rest: Vec<_> = live.collect();
    assert!(matches!(rest.last(), Some(Err(Error::Closed))), "{rest:?}");
}

#[test]
fn live_queries_that_cannot_run_live_are_refused() {
    let db = Flume::open(MemoryLog::new(), Json).unwrap();
    let q = db.add_view("q", Query::new(1, indexes()).unwrap()).unwrap();
    let refused = |query: Value, options: QueryOptions| match q
        .live(&Pipeline::parse(&query).unwrap(), options)
    {
        Err(Error::View { source, .. }) => matches!(
            source.downcast_ref::<QueryError>(),
            Some(QueryError::NotLive(_))
        ),
        _ => false,
    };
    assert!(refused(
        json!([{"$reduce": {"$count": true}}]),
        QueryOptions::new()
    ));
    // A sort no index serves cannot order records that have not arrived (JS emitted nothing).
    assert!(refused(
        json!([{"$sort": "i"}]),
        QueryOptions::new().old(false)
    ));
    // Served by an index, or with old results to sort: accepted.
    assert!(!refused(
        json!([{"$sort": ["type", "ts"]}]),
        QueryOptions::new().old(false)
    ));
    assert!(!refused(json!([{"$sort": "i"}]), QueryOptions::new()));
}

#[test]
fn a_live_sort_orders_the_stored_results_then_follows_arrivals() {
    let db = Flume::open(MemoryLog::new(), Json).unwrap();
    let q = db.add_view("q", Query::new(1, indexes()).unwrap()).unwrap();
    for i in [5, 1, 3] {
        db.append(&json!({"i": i})).unwrap();
    }
    let mut live = q
        .live(
            &Pipeline::parse(&json!([{"$sort": {"$reverse": "i"}}])).unwrap(),
            QueryOptions::new(),
        )
        .unwrap();
    db.append(&json!({"i": 4})).unwrap();
    db.append(&json!({"i": 9})).unwrap();
    let got: Vec<LiveResult> = live.by_ref().take(6).map(Result::unwrap).collect();
    let v = |i: u64| LiveResult::Value(json!({ "i": i }));
    assert_eq!(got, [v(5), v(3), v(1), LiveResult::Sync, v(4), v(9)]);
}

#[test]
fn the_view_persists_and_rebuilds_when_its_indexes_change() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log.offset");
    let votes = Pipeline::parse(&json!({"type": "vote", "author": "@1"})).unwrap();
    let expect: Vec<u64> = (0..600).filter(|i| i % 3 == 1 && i % 4 == 1).collect();
    {
        let db = Flume::open(OffsetLog::open(&path).unwrap(), Json).unwrap();
        let q = db.add_view("q", Query::new(1, indexes()).unwrap()).unwrap();
        let batch: Vec<Value> = (0..600).map(msg).collect();
        db.append_batch(&batch).unwrap();
        let got: Vec<Value> = q
            .read(&votes, QueryOptions::new())
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(is(&got), expect);
        db.close().unwrap();
    }
    // Reopened with the same indexes: current at once, nothing rebuilt.
    {
        let db = Flume::open(OffsetLog::open(&path).unwrap(), Json).unwrap();
        let q = db.add_view("q", Query::new(1, indexes()).unwrap()).unwrap();
        assert_eq!(q.progress().since, db.since(), "the view was rebuilt");
        let got: Vec<Value> = q
            .read(&votes, QueryOptions::new())
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(is(&got), expect);
        db.close().unwrap();
    }
    // A new index, with the same version number: the view rebuilds on its own and uses it.
    {
        let db = Flume::open(OffsetLog::open(&path).unwrap(), Json).unwrap();
        let mut changed = indexes();
        changed.push(Index::new("ta", ["type", "author"]));
        let q = db.add_view("q", Query::new(1, changed).unwrap()).unwrap();
        let explain = q.explain(&votes, &QueryOptions::new());
        assert_eq!(explain.index.as_deref(), Some("ta"));
        let got: Vec<Value> = q
            .read(&votes, QueryOptions::new())
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(is(&got), expect);
        db.close().unwrap();
    }
}

#[test]
fn deleted_records_are_skipped_by_index_reads_and_scans() {
    let dir = tempfile::tempdir().unwrap();
    let db = Flume::open(
        OffsetLog::open(dir.path().join("log.offset")).unwrap(),
        Json,
    )
    .unwrap();
    let q = db.add_view("q", Query::new(1, indexes()).unwrap()).unwrap();
    let seqs: Vec<Seq> = db
        .append_batch(&(0..9).map(msg).collect::<Vec<_>>())
        .unwrap();
    db.log().del(seqs[4]).unwrap();
    let read = |query: Value| -> Vec<u64> {
        is(&q
            .read_json(&query, QueryOptions::new())
            .unwrap()
            .map(Result::unwrap)
            .collect::<Vec<_>>())
    };
    assert_eq!(read(json!({"type": "vote"})), [1, 7]);
    assert_eq!(read(json!({"i": {"$gte": 3}})), [3, 5, 6, 7, 8]);
}

/// A `$count` the index decides comes from the counts the view keeps: they leave out records
/// deleted before they were built (an earlier process's deletes too) and after.
#[test]
fn counts_leave_out_deleted_records_whenever_they_were_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log.offset");
    // A read the view must answer from its counts.
    let counted = |q: &flumeview_query::QueryHandle, pipeline: Value| -> Vec<Value> {
        let explain = q.explain(&Pipeline::parse(&pipeline).unwrap(), &QueryOptions::new());
        assert!(explain.counted, "not counted: {explain}");
        q.read_json(&pipeline, QueryOptions::new())
            .unwrap()
            .map(Result::unwrap)
            .collect()
    };
    let count = |q: &flumeview_query::QueryHandle, filter: Value| -> u64 {
        let got = counted(
            q,
            json!([{"$filter": filter}, {"$reduce": {"$count": true}}]),
        );
        got[0].as_u64().unwrap()
    };
    // Counts grouped by type, as [contact, post, vote] (the index order).
    let by_type = |q: &flumeview_query::QueryHandle| -> Vec<u64> {
        let got = counted(
            q,
            json!([{"$reduce": {"type": "type", "n": {"$count": true}}}]),
        );
        let types: Vec<&str> = got.iter().map(|g| g["type"].as_str().unwrap()).collect();
        assert_eq!(types, ["contact", "post", "vote"]);
        got.iter().map(|g| g["n"].as_u64().unwrap()).collect()
    };
    let seqs: Vec<Seq> = {
        let db = Flume::open(OffsetLog::open(&path).unwrap(), Json).unwrap();
        let q = db.add_view("q", Query::new(1, indexes()).unwrap()).unwrap();
        let seqs = db
            .append_batch(&(0..30).map(msg).collect::<Vec<_>>())
            .unwrap();
        assert_eq!(count(&q, json!({"type": "vote"})), 10);
        // After the counts were built: the log's delete counter tells the view.
        db.log().del(seqs[4]).unwrap();
        assert_eq!(count(&q, json!({"type": "vote"})), 9);
        assert_eq!(by_type(&q), [10, 10, 9]);
        // Kept current by appends.
        db.append(&msg(31)).unwrap();
        assert_eq!(count(&q, json!({"type": "vote"})), 10);
        assert_eq!(by_type(&q), [10, 10, 10]);
        // Deleted in this process before these counts were first asked for.
        db.log().del(seqs[5]).unwrap();
        assert_eq!(count(&q, json!({"author": "@1"})), 7);
        assert_eq!(by_type(&q), [9, 10, 10]);
        db.close().unwrap();
        seqs
    };
    // In an earlier process: the rows are still in the index, the records gone.
    let db = Flume::open(OffsetLog::open(&path).unwrap(), Json).unwrap();
    let q = db.add_view("q", Query::new(1, indexes()).unwrap()).unwrap();
    assert_eq!(by_type(&q), [9, 10, 10]);
    assert_eq!(count(&q, json!({"type": "vote"})), 10);
    assert_eq!(count(&q, json!({"type": "contact"})), 9);
    assert_eq!(count(&q, json!({"author": "@1"})), 7);
    db.log().del(seqs[7]).unwrap();
    assert_eq!(count(&q, json!({"type": "vote"})), 9);
    assert_eq!(by_type(&q), [9, 10, 9]);
    // Authors @3: 3, 7, ..., 27 and 31, less 7.
    assert_eq!(count(&q, json!({"author": "@3"})), 7);
    db.close().unwrap();
}

#[test]
fn limits_stop_early_and_reverse_reads_newest_first() {
    let db = Flume::open(MemoryLog::new(), Json).unwrap();
    let q = db.add_view("q", Query::new(1, indexes()).unwrap()).unwrap();
    db.append_batch(&(0..100).map(msg).collect::<Vec<_>>())
        .unwrap();
    let posts = Pipeline::parse(&json!({"type": "post"})).unwrap();
    let read = |options| {
        is(&q
            .read(&posts, options)
            .unwrap()
            .map(Result::unwrap)
            .collect::<Vec<_>>())
    };
    assert_eq!(read(QueryOptions::new().limit(3)), [0, 3, 6]);
    assert_eq!(read(QueryOptions::new().limit(3).reverse()), [99, 96, 93]);
    assert_eq!(read(QueryOptions::new().limit(0)), Vec::<u64>::new());
    // Scans too.
    let scan = Pipeline::parse(&json!({"i": {"$int": true}})).unwrap();
    let got = q
        .read(&scan, QueryOptions::new().reverse().limit(2))
        .unwrap()
        .map(Result::unwrap)
        .collect::<Vec<_>>();
    assert_eq!(is(&got), [99, 98]);
    // An empty log: nothing, also live-only.
    let empty = Flume::open(MemoryLog::new(), Json).unwrap();
    let q = empty
        .add_view("q", Query::new(1, indexes()).unwrap())
        .unwrap();
    assert_eq!(q.read(&posts, QueryOptions::new()).unwrap().count(), 0);
    let mut live = q.live(&posts, QueryOptions::new().old(false)).unwrap();
    empty.append(&msg(0)).unwrap();
    assert_eq!(live.next().unwrap().unwrap(), LiveResult::Value(msg(0)));
}

#[test]
fn two_logs_in_one_directory_and_a_replaced_tail_keep_answers_right() {
    let dir = tempfile::tempdir().unwrap();
    let votes = Pipeline::parse(&json!({"type": "vote"})).unwrap();
    let read = |q: &flumeview_query::QueryHandle| -> Vec<u64> {
        let got: Vec<Value> = q
            .read(&votes, QueryOptions::new())
            .unwrap()
            .map(Result::unwrap)
            .collect();
        is(&got)
    };
    let open =
        |name: &str| Flume::open(OffsetLog::open(dir.path().join(name)).unwrap(), Json).unwrap();
    // Two logs, one directory, one view name.
    let mut cut = 0;
    for round in 0..2 {
        let a = open("a.offset");
        let b = open("b.offset");
        let qa = a.add_view("q", Query::new(1, indexes()).unwrap()).unwrap();
        let qb = b.add_view("q", Query::new(1, indexes()).unwrap()).unwrap();
        if round == 0 {
            let seqs = a
                .append_batch(&(0..30).map(msg).collect::<Vec<_>>())
                .unwrap();
            cut = seqs[25].get();
            b.append_batch(&(100..110).map(msg).collect::<Vec<_>>())
                .unwrap();
        }
        let want_a: Vec<u64> = (0..30).filter(|i| i % 3 == 1).collect();
        let want_b: Vec<u64> = (100..110).filter(|i| i % 3 == 1).collect();
        assert_eq!((read(&qa), read(&qb)), (want_a, want_b), "round {round}");
        a.close().unwrap();
        b.close().unwrap();
    }
    // Log a loses records 25..30 and, without the view, gets 5 others in their place.
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(dir.path().join("a.offset"))
        .unwrap();
    file.set_len(cut).unwrap();
    drop(file);
    {
        let a = open("a.offset");
        a.append_batch(&(60..65).map(msg).collect::<Vec<_>>())
            .unwrap();
        a.close().unwrap();
    }
    let a = open("a.offset");
    let qa = a.add_view("q", Query::new(1, indexes()).unwrap()).unwrap();
    let want: Vec<u64> = (0..25).chain(60..65).filter(|i| i % 3 == 1).collect();
    assert_eq!(read(&qa), want);
}

/// The view's own error is this crate's: a failure of the index store is
/// `QueryError::Level`, with the level error as its source and its message.
#[test]
fn index_store_failures_are_query_errors_with_the_level_error_as_source() {
    use flumedb_core::View;
    use flumeview_query::LevelError;
    use std::error::Error as _;

    let mut view = Query::new(1, indexes()).unwrap();
    // Never opened: the level store has no index to write to.
    let err = View::<Value>::flush(&mut view).unwrap_err();
    assert!(matches!(err, QueryError::Level(_)), "{err:?}");
    let source = err.source().expect("a source");
    assert!(source.downcast_ref::<LevelError>().is_some());
    assert_eq!(err.to_string(), source.to_string());
}

#[test]
fn records_take_filters_only_keep_the_limit_and_give_seqs() {
    use flumedb_core::Doc;
    let db: Flume<MemoryLog, Doc> = Flume::open(MemoryLog::new(), Json).unwrap();
    let q = db
        .add_view(
            "q",
            Query::for_docs(1, vec![Index::new("typ", ["type", "n"])]).unwrap(),
        )
        .unwrap();
    let mut posts = Vec::new();
    for n in 0..10 {
        let ty = if n % 2 == 0 { "post" } else { "vote" };
        let seq = db
            .append(&Doc::encode(&json!({"type": ty, "n": n})).unwrap())
            .unwrap();
        if ty == "post" {
            posts.push(seq);
        }
    }
    let filter = Pipeline::parse(&json!({"type": "post"})).unwrap();
    let seqs = |options: QueryOptions| -> Vec<_> {
        q.records(&filter, options)
            .unwrap()
            .map(|r| r.unwrap().seq)
            .collect()
    };
    assert_eq!(seqs(QueryOptions::new()), posts);
    assert_eq!(seqs(QueryOptions::new().limit(2)), posts[..2]);
    let mut reversed = posts.clone();
    reversed.reverse();
    assert_eq!(seqs(QueryOptions::new().reverse()), reversed);
    let mapped = Pipeline::parse(&json!([{"$filter": {"type": "post"}}, {"$map": "n"}])).unwrap();
    match q.records(&mapped, QueryOptions::new()) {
        Err(Error::View { source, .. }) => {
            assert!(
                source.to_string().contains("$filter stages only"),
                "{source}"
            );
        }
        Err(other) => panic!("expected a view error, got {other}"),
        Ok(_) => panic!("a $map pipeline was accepted"),
    }
    db.close().unwrap();
}
