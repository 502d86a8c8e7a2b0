//! The core view conformance suite, on a persisted and an in-memory log.

use flumedb_core::testkit::{ViewSuite, view_suite};
use flumedb_core::{Checkpoint, Doc, Error, View, ViewContext};
use flumelog_memory::MemoryLog;
use flumeview_query::{Index, Pipeline, Query, QueryHandle, QueryOptions, QueryRecord};
use serde_json::{Value, json};

fn query(version: u32) -> Query {
    Query::new(
        version,
        vec![Index::new("typ", ["type", "n"]), Index::new("num", ["n"])],
    )
    .expect("valid indexes")
}

fn record(i: u64) -> Value {
    let types = ["post", "vote", "about"];
    json!({"i": i, "type": types[(i % 3) as usize], "n": (i * 7) % 11})
}

/// Reads through each index, the counts and a scan: the rows of both indexes and the log.
fn snapshot<T: QueryRecord>(h: &QueryHandle<T>) -> Result<Vec<Vec<Value>>, Error> {
    let queries = [
        (json!({"type": "post"}), Some("typ")),
        (
            json!([{"$filter": {"n": {"$gte": 3}}}, {"$sort": ["n"]}]),
            Some("num"),
        ),
        // Counted from the counts the view keeps by `typ`'s first field.
        (
            json!([{"$reduce": {"type": "type", "count": {"$count": true}}}]),
            Some("typ"),
        ),
        (
            json!([{"$reduce": {"type": "type", "sum": {"$sum": "n"}}}]),
            None,
        ),
    ];
    queries
        .iter()
        .map(|(q, index)| {
            let pipeline = Pipeline::parse(q).expect("a valid query");
            let results = h
                .read(&pipeline, QueryOptions::new())?
                .collect::<Result<Vec<_>, _>>()?;
            let explain = h.explain(&pipeline, &QueryOptions::new());
            assert_eq!(explain.index.as_deref(), *index, "{q}");
            Ok(results)
        })
        .collect()
}

#[test]
fn query_passes_the_view_suite_on_a_persisted_log() {
    view_suite(ViewSuite {
        open_log: Box::new(|dir| MemoryLog::open(dir)),
        make_view: Box::new(query),
        record: Box::new(record),
        snapshot: Box::new(snapshot),
    });
}

#[test]
fn query_passes_the_view_suite_in_memory() {
    view_suite(ViewSuite {
        open_log: Box::new(|_| Ok(MemoryLog::new())),
        make_view: Box::new(query),
        record: Box::new(record),
        snapshot: Box::new(snapshot),
    });
}

#[test]
fn a_query_of_docs_passes_the_view_suite_on_a_persisted_log() {
    view_suite(ViewSuite {
        open_log: Box::new(|dir| MemoryLog::open(dir)),
        make_view: Box::new(|version| {
            Query::for_docs(
                version,
                vec![Index::new("typ", ["type", "n"]), Index::new("num", ["n"])],
            )
            .expect("valid indexes")
        }),
        record: Box::new(|i| Doc::encode(&record(i)).expect("encode")),
        snapshot: Box::new(snapshot),
    });
}

/// The suite's version checks, on the query view itself: the version it stores is its own,
/// and a changed index declaration (same version) rebuilds it.
#[test]
fn a_query_view_stores_its_own_version_and_rebuilds_when_an_index_changes() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let ctx = ViewContext::new("q", Some(dir.path().to_path_buf()));
    let with = |indexes: Vec<Index>| Query::new(1, indexes).expect("valid indexes");
    let mut view = with(vec![Index::new("typ", ["type"])]);
    assert_eq!(view.open(&ctx).expect("open"), None);
    view.apply(&[], Checkpoint::EMPTY).expect("apply");
    view.flush().expect("flush");
    view.close().expect("close");

    let mut same = with(vec![Index::new("typ", ["type"])]);
    let stored = same.open(&ctx).expect("open").expect("stored");
    assert_eq!(stored.version, same.version());
    same.close().expect("close");

    let mut changed = with(vec![Index::new("typ", ["type", "n"])]);
    let stored = changed.open(&ctx).expect("open").expect("stored");
    assert_ne!(
        stored.version,
        changed.version(),
        "another index declaration must not look current"
    );
    changed.close().expect("close");
}
