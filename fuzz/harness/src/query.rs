//! `query`: flumeview-query's parser and planner. The input is parsed as JSON and then as a
//! query pipeline; a pipeline that parses is explained and run, forwards and in reverse, on a
//! small fixed log through a view with indexes, and must give what a view without indexes (a
//! full scan of the log) gives.
//!
//! The database is built once per thread and reused, so an execution costs a parse and a few
//! reads of a few dozen records.

use flumedb_core::{Flume, Json};
use flumelog_memory::MemoryLog;
use flumeview_query::{Index, Pipeline, Query, QueryHandle, QueryOptions};
use serde_json::{Value, json};

/// The log and its two views: `indexed` (several indexes) and `plain` (none).
struct Db {
    _db: Flume<MemoryLog, Value>,
    indexed: QueryHandle,
    plain: QueryHandle,
}

thread_local! {
    static DB: Db = build();
}

/// The records: repeated values of every JSON type, missing fields, nested paths, and values
/// (objects, arrays of objects) that cannot be index keys.
fn records() -> Vec<Value> {
    let values = [
        json!(0),
        json!(1),
        json!(2),
        json!(-1.5),
        json!(10),
        json!(""),
        json!("a"),
        json!("ab"),
        json!("b"),
        json!("é"),
        json!(null),
        json!(true),
        json!(false),
        json!(["a"]),
        json!(["a", 1]),
        json!([]),
        json!({"x": 1}),
        json!([{"x": 1}]),
    ];
    let mut state: u64 = 0x5eed_f022_0000_0001;
    let mut next = move |n: usize| {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        (state.wrapping_mul(0x2545_f491_4f6c_dd1d) % n as u64) as usize
    };
    (0..40)
        .map(|id| {
            let mut obj = serde_json::Map::new();
            obj.insert("id".into(), json!(id));
            for field in ["a", "b", "c", "d"] {
                let pick = next(values.len() + 3);
                if let Some(v) = values.get(pick) {
                    obj.insert(field.into(), v.clone());
                }
            }
            match values.get(next(values.len() + 2)) {
                Some(v) => {
                    obj.insert("n".into(), json!({ "y": v }));
                }
                None => {
                    obj.insert("n".into(), Value::Null);
                }
            }
            Value::Object(obj)
        })
        .collect()
}

fn build() -> Db {
    let db = match Flume::open(MemoryLog::new(), Json) {
        Ok(db) => db,
        Err(e) => panic!("open: {e}"),
    };
    let indexes = vec![
        Index::new("a", ["a"]),
        Index::new("ab", ["a", "b"]),
        Index::new("ba", ["b", "a"]),
        Index::new("cd", ["c", "d"]),
        Index::new("d", ["d"]),
        Index::new("ny", ["n.y", "a"]),
    ];
    let view = |indexes| match Query::new(1, indexes) {
        Ok(view) => view,
        Err(e) => panic!("view: {e}"),
    };
    let added = (
        db.add_view("indexed", view(indexes)),
        db.add_view("plain", view(Vec::new())),
    );
    let (Ok(indexed), Ok(plain)) = added else {
        panic!(
            "add_view: {added:?}",
            added = (added.0.err(), added.1.err())
        );
    };
    if let Err(e) = db.append_batch(&records()) {
        panic!("append: {e}");
    }
    Db {
        _db: db,
        indexed,
        plain,
    }
}

/// The harness: the input is a query in the JS syntax.
pub fn query(data: &[u8]) {
    let Ok(json) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let Ok(pipeline) = Pipeline::parse(&json) else {
        return;
    };
    DB.with(|db| {
        let forward = QueryOptions::new();
        let plain_plan = db.plain.explain(&pipeline, &forward);
        assert!(
            plain_plan.index.is_none(),
            "a view without indexes used one"
        );
        let plan = db.indexed.explain(&pipeline, &forward);
        let _ = db
            .indexed
            .explain(&pipeline, &QueryOptions::new().reverse());
        let expected = run(&db.plain, &pipeline, QueryOptions::new());
        let got = run(&db.indexed, &pipeline, QueryOptions::new());
        assert_eq!(
            got, expected,
            "indexed read differs from a full scan\nquery: {json}\nplan: {plan}"
        );
        let reversed = run(&db.indexed, &pipeline, QueryOptions::new().reverse());
        assert_eq!(
            reversed, expected,
            "reverse indexed read differs from a full scan\nquery: {json}\nplan: {plan}"
        );
    });
}

/// The results, as a sorted list of canonical values (the order of an index and of the log
/// differ), or the error's kind.
fn run(
    handle: &QueryHandle,
    pipeline: &Pipeline,
    options: QueryOptions,
) -> Result<Vec<String>, String> {
    let results = handle.read(pipeline, options).map_err(|e| kind(&e))?;
    let mut values = Vec::new();
    for item in results {
        let value = item.map_err(|e| kind(&e))?;
        values.push(canonical(value).to_string());
    }
    values.sort_unstable();
    Ok(values)
}

/// An error without the view's name (the two views have different names).
fn kind(err: &flumedb_core::Error) -> String {
    match err {
        flumedb_core::Error::View { source, .. } => source.to_string(),
        other => other.to_string(),
    }
}

/// `value` with every array sorted (a `$collect` gathers in read order, which differs between
/// an index and the log).
fn canonical(value: Value) -> Value {
    match value {
        Value::Array(items) => {
            let mut items: Vec<Value> = items.into_iter().map(canonical).collect();
            items.sort_by_cached_key(Value::to_string);
            Value::Array(items)
        }
        Value::Object(map) => {
            Value::Object(map.into_iter().map(|(k, v)| (k, canonical(v))).collect())
        }
        other => other,
    }
}
