//! The planner's promise: reading through an index gives exactly what a full scan gives. Like
//! JS flumeview-query's `random.js`, with many more shapes: random filters (exact values,
//! ranges, prefixes, `$in`, `$is`, `$ne`, combinations) over random records with repeated
//! field values, missing fields, nulls, objects and arrays where keys are expected.

use flumedb_core::{Codec, Doc, Flume, Json};
use flumelog_memory::MemoryLog;
use flumeview_query::{
    Aggregate, Filter, Index, Key, Pipeline, Query, QueryHandle, QueryOptions, QueryRecord,
};
use serde_json::{Value, json};

/// A small deterministic generator (xorshift64*), so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<T: Clone>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())].clone()
    }
}

const FIELDS: [&str; 4] = ["a", "b", "c", "d"];

/// Values with many repeats, edge values and things that cannot be keys.
fn field_value(rng: &mut Rng) -> Option<Value> {
    let choices = [
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
        json!("😀x"),
        json!(null),
        json!(true),
        json!(false),
        json!(["a"]),
        json!(["a", 1]),
        json!(["b"]),
        json!([]),
        json!({"x": 1}),
        json!([{"x": 1}]),
    ];
    if rng.below(8) == 0 {
        None
    } else {
        Some(rng.pick(&choices))
    }
}

fn record(rng: &mut Rng, id: usize) -> Value {
    let mut obj = serde_json::Map::new();
    obj.insert("id".into(), json!(id));
    for f in FIELDS {
        if let Some(v) = field_value(rng) {
            obj.insert(f.into(), v);
        }
    }
    // A field with strings, booleans and null only: counts grouped by it come from the index.
    if rng.below(6) != 0 {
        let t = rng.pick(&[json!("x"), json!("y"), json!("é"), json!(null), json!(true)]);
        obj.insert("t".into(), t);
    }
    let mut nested = serde_json::Map::new();
    if let Some(v) = field_value(rng) {
        nested.insert("y".into(), v);
    }
    if rng.below(10) != 0 {
        obj.insert("n".into(), Value::Object(nested));
    } else if rng.below(2) == 0 {
        obj.insert("n".into(), Value::Null);
    }
    Value::Object(obj)
}

/// A random operand (values the records hold, and some they don't).
fn operand(rng: &mut Rng) -> Value {
    field_value(rng)
        .filter(|v| !v.is_object() && !v.as_array().is_some_and(|a| a.iter().any(Value::is_object)))
        .unwrap_or(json!(1.5))
}

fn leaf(rng: &mut Rng) -> Value {
    match rng.below(14) {
        0..=2 => operand(rng),
        3 => json!({"$eq": operand(rng)}),
        4 => json!({"$gt": operand(rng)}),
        5 => json!({"$gte": operand(rng), "$lt": operand(rng)}),
        6 => json!({"$lte": operand(rng)}),
        7 => {
            json!({"$prefix": rng.pick(&[json!(""), json!("a"), json!("😀"), json!(["a"]), json!([])])})
        }
        8 => json!({"$in": [operand(rng), operand(rng), operand(rng)]}),
        9 => {
            json!({"$is": rng.pick(&["string", "number", "boolean", "null", "array", "object", "undefined"])})
        }
        10 => json!({"$ne": operand(rng)}),
        11 => json!({"$gt": operand(rng), "$in": [operand(rng), operand(rng)]}),
        12 => json!([rng.pick(&[json!("a"), json!({"$prefix": "a"}), json!({"$gt": "a"})])]),
        _ => json!({"$int": true}),
    }
}

fn random_filter(rng: &mut Rng) -> Value {
    let mut obj = serde_json::Map::new();
    for _ in 0..1 + rng.below(3) {
        let f = rng.pick(&FIELDS);
        if rng.below(6) == 0 {
            obj.insert("n".into(), json!({"y": leaf(rng)}));
        } else {
            obj.insert(f.into(), leaf(rng));
        }
    }
    Value::Object(obj)
}

/// A filter an index may decide: literals, and comparisons with numbers (some with a `$ne`
/// it does not decide), on one or two fields (`n.y` among them).
fn literal_filter(rng: &mut Rng) -> Value {
    let literal = |rng: &mut Rng| match rng.below(8) {
        6 => {
            json!({"$in": [rng.pick(&[json!("a"), json!("b"), json!(null)]), rng.pick(&[json!("é"), json!(true), json!(1)])]})
        }
        7 => json!({"$eq": rng.pick(&[json!("a"), json!(false), json!(10)])}),
        0 => json!({"$gt": rng.pick(&[json!(0), json!(1), json!(-1.5)])}),
        1 => {
            json!({"$gte": rng.pick(&[json!(0), json!(2)]), "$lt": rng.pick(&[json!(2), json!(10)])})
        }
        2 => {
            json!({"$lte": rng.pick(&[json!(1), json!(2)]), "$ne": rng.pick(&[json!(1), json!(-1.5)])})
        }
        _ => rng.pick(&[
            json!(""),
            json!("a"),
            json!("b"),
            json!("é"),
            json!(null),
            json!(true),
            json!(false),
            json!(1),
            json!(10),
        ]),
    };
    let mut obj = serde_json::Map::new();
    for _ in 0..1 + rng.below(2) {
        if rng.below(4) == 0 {
            obj.insert("n".into(), json!({"y": literal(rng)}));
        } else {
            obj.insert(rng.pick(&FIELDS).into(), literal(rng));
        }
    }
    Value::Object(obj)
}

fn ids(values: impl IntoIterator<Item = Value>) -> Vec<u64> {
    let mut ids: Vec<u64> = values
        .into_iter()
        .map(|v| v["id"].as_u64().unwrap())
        .collect();
    ids.sort_unstable();
    ids
}

#[test]
fn indexed_reads_equal_full_scans() {
    indexed_reads_equal_full_scans_of(
        |db, indexes| {
            db.add_view("query", Query::new(1, indexes).unwrap())
                .unwrap()
        },
        |v| v,
    );
}

/// The same reads on a database of `Doc` records: the index rows come from fields read in
/// place, and results must be exactly those of a full scan of the decoded records.
#[test]
fn indexed_reads_of_docs_equal_full_scans() {
    indexed_reads_equal_full_scans_of(
        |db, indexes| {
            db.add_view("query", Query::for_docs(1, indexes).unwrap())
                .unwrap()
        },
        |v| Doc::encode(&v).unwrap(),
    );
}

fn indexed_reads_equal_full_scans_of<T: QueryRecord>(
    add: impl Fn(&Flume<MemoryLog, T>, Vec<Index>) -> QueryHandle<T>,
    to_record: impl Fn(Value) -> T,
) where
    Json: Codec<T>,
{
    let mut rng = Rng(0x5eed_1234_abcd_0001);
    let indexes = vec![
        Index::new("a", ["a"]),
        Index::new("ab", ["a", "b"]),
        Index::new("ba", ["b", "a"]),
        Index::new("abc", ["a", "b", "c"]),
        Index::new("cd", ["c", "d"]),
        Index::new("d", ["d"]),
        Index::new("dc", ["d", "c"]),
        Index::new("ny", ["n.y", "a"]),
        Index::new("bd", ["b", "d"]),
        Index::new("t", ["t"]),
    ];
    let db = Flume::open(MemoryLog::new(), Json).unwrap();
    let query = add(&db, indexes);
    // 300 records now and 100 half way, so counts kept by the view are built from its rows
    // and then kept current by the batches it applies.
    let mut records: Vec<Value> = (0..300).map(|i| record(&mut rng, i)).collect();
    let stored: Vec<T> = records.iter().cloned().map(&to_record).collect();
    let mut seq_of_id = db.append_batch(&stored).unwrap();
    let options_again = |case: usize| {
        if case.is_multiple_of(3) {
            QueryOptions::new().reverse()
        } else {
            QueryOptions::new()
        }
    };

    let mut used_index = 0;
    let mut covered = 0;
    let mut counted = 0;
    let mut grouped_counted = 0;
    for case in 0..3000 {
        if case == 1500 {
            let more: Vec<Value> = (300..400).map(|i| record(&mut rng, i)).collect();
            let stored: Vec<T> = more.iter().cloned().map(&to_record).collect();
            seq_of_id.extend(db.append_batch(&stored).unwrap());
            records.extend(more);
        }
        // One case in five filters on literals alone, which an index can decide (covered).
        let filter_json = if case % 5 == 4 {
            literal_filter(&mut rng)
        } else {
            random_filter(&mut rng)
        };
        let filter = Filter::parse(&filter_json).unwrap();
        let pipeline = Pipeline::new().filter(filter.clone());
        let expected = ids(records.iter().filter(|r| filter.matches(r)).cloned());
        let records_now: &[Value] = &records;
        let options = if case % 3 == 0 {
            QueryOptions::new().reverse()
        } else {
            QueryOptions::new()
        };
        let explain = query.explain(&pipeline, &options);
        let got: Vec<Value> = query
            .read(&pipeline, options)
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let got_ids = ids(got.iter().cloned());
        assert_eq!(
            got_ids, expected,
            "case {case}: filter {filter_json}\nplan: {explain}"
        );
        // records(): the same records, in the same order, each with its seq, read in place.
        let records: Vec<_> = query
            .records(&pipeline, options_again(case))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let as_values: Vec<Value> = records
            .iter()
            .map(|r| r.value.clone().into_value().unwrap())
            .collect();
        assert_eq!(as_values, got, "case {case}: records() differs from read()");
        for r in &records {
            let id = r.value.clone().into_value().unwrap()["id"]
                .as_u64()
                .unwrap();
            assert_eq!(seq_of_id[id as usize], r.seq, "case {case}: wrong seq");
        }
        if explain.index.is_some() {
            used_index += 1;
        }
        if explain.covered {
            covered += 1;
        }
        // A $count: from the counts the view keeps when the index decides the filters by its
        // first field alone, otherwise by reading; the same number either way.
        let count = pipeline.clone().reduce(Aggregate::Count);
        let count_explain = query.explain(&count, &options_again(case));
        let got: Vec<Value> = query
            .read(&count, options_again(case))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(
            got,
            [json!(expected.len())],
            "case {case}: $count of filter {filter_json}
plan: {count_explain}"
        );
        if count_explain.counted {
            counted += 1;
        }
        // Counts grouped by a field: over this filter, or (one case in five) over everything;
        // the in-memory reducer over the matching records is the reference.
        let group_by = rng.pick(&[
            json!("a"),
            json!("b"),
            json!("d"),
            json!("t"),
            json!(["n", "y"]),
        ]);
        let grouped_json = if case % 2 == 0 {
            json!({"g": group_by, "n": {"$count": true}})
        } else {
            json!({"n": {"$count": true}, "g": group_by, "m": {"$count": true}})
        };
        let grouped_reduce = Aggregate::parse(&grouped_json).unwrap();
        let everything = case % 5 == 2;
        let (base, matching): (Pipeline, Vec<&Value>) = if everything {
            (Pipeline::new(), records_now.iter().collect())
        } else {
            (
                pipeline.clone(),
                records_now.iter().filter(|r| filter.matches(r)).collect(),
            )
        };
        let expected_groups = grouped_reduce.run(matching.into_iter());
        let grouped = base.reduce(grouped_reduce);
        let grouped_explain = query.explain(&grouped, &options_again(case));
        let got: Vec<Value> = query
            .read(&grouped, options_again(case))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(
            got,
            expected_groups,
            "case {case}: {grouped_json} over {}\nplan: {grouped_explain}",
            if everything {
                json!("everything")
            } else {
                filter_json.clone()
            }
        );
        if grouped_explain.counted {
            grouped_counted += 1;
        }
    }
    assert!(
        grouped_counted > 100,
        "only {grouped_counted} of 3000 grouped counts came from counts"
    );
    assert!(
        counted > 100,
        "only {counted} of 3000 counts came from counts"
    );
    // ...and records() must have skipped the filter (the index deciding it) often enough.
    assert!(covered > 300, "only {covered} of 3000 cases were covered");
    // The test is only worth something if most cases went through an index.
    assert!(
        used_index > 2000,
        "only {used_index} of 3000 cases used an index"
    );
}

#[test]
fn indexed_reads_keep_index_order_and_scans_keep_log_order() {
    let db = Flume::open(MemoryLog::new(), Json).unwrap();
    let query = db
        .add_view(
            "query",
            Query::new(1, vec![Index::new("ab", ["a", "b"])]).unwrap(),
        )
        .unwrap();
    let plain = db
        .add_view("plain", Query::new(1, vec![]).unwrap())
        .unwrap();
    let mut rng = Rng(42);
    let records: Vec<Value> = (0..300).map(|i| record(&mut rng, i)).collect();
    db.append_batch(&records).unwrap();
    let pipeline = Pipeline::parse(&json!({"a": {"$gte": 0}})).unwrap();
    let got: Vec<Value> = query
        .read(&pipeline, QueryOptions::new())
        .unwrap()
        .map(Result::unwrap)
        .collect();
    // In index order: by (a, b, seq), with the order of the row keys as the oracle.
    for pair in got.windows(2) {
        let order = index_key(pair[0].get("a"))
            .cmp(&index_key(pair[1].get("a")))
            .then_with(|| index_key(pair[0].get("b")).cmp(&index_key(pair[1].get("b"))))
            .then_with(|| pair[0]["id"].as_u64().cmp(&pair[1]["id"].as_u64()));
        assert_eq!(
            order,
            std::cmp::Ordering::Less,
            "{} then {}",
            pair[0],
            pair[1]
        );
    }
    // And in the order an in-memory `$sort` gives (ties in log order) on a view without indexes.
    let sorted =
        Pipeline::parse(&json!([{"$filter": {"a": {"$gte": 0}}}, {"$sort": ["a", "b"]}])).unwrap();
    assert!(plain.explain(&sorted, &QueryOptions::new()).index.is_none());
    assert_eq!(
        ids_in_order(got.iter().cloned()),
        ids_in_order(
            plain
                .read(&sorted, QueryOptions::new())
                .unwrap()
                .map(Result::unwrap)
        )
    );
    let reversed: Vec<Value> = query
        .read(&pipeline, QueryOptions::new().reverse())
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(reversed, got.iter().rev().cloned().collect::<Vec<_>>());
    // A scan (no usable index) is in log order.
    let scan = Pipeline::parse(&json!({"c": {"$ne": 0}})).unwrap();
    let got = ids_in_order(
        query
            .read(&scan, QueryOptions::new())
            .unwrap()
            .map(Result::unwrap),
    );
    assert!(got.windows(2).all(|w| w[0] < w[1]));
}

/// A field's row key, as the crate documents it: a missing field is `Max`, a value that cannot
/// be a key (an object, an array holding one) is `[Max]`.
fn index_key(value: Option<&Value>) -> Key {
    match value {
        None => Key::Max,
        Some(v) => Key::try_from(v).unwrap_or_else(|_| Key::Array(vec![Key::Max])),
    }
}

fn ids_in_order(values: impl Iterator<Item = Value>) -> Vec<u64> {
    values.map(|v| v["id"].as_u64().unwrap()).collect()
}

/// Sorted, limited and reversed reads: served by an index order or sorted in memory, the
/// results are the same sequence as a view without indexes (scan, then in-memory sort).
#[test]
fn index_ordered_sorts_equal_in_memory_sorts() {
    let mut rng = Rng(0xabcdef);
    let db = Flume::open(MemoryLog::new(), Json).unwrap();
    let indexed = db
        .add_view(
            "indexed",
            Query::new(
                1,
                vec![
                    Index::new("a", ["a"]),
                    Index::new("ab", ["a", "b"]),
                    Index::new("b", ["b"]),
                    Index::new("cb", ["c", "b"]),
                ],
            )
            .unwrap(),
        )
        .unwrap();
    let plain = db
        .add_view("plain", Query::new(1, vec![]).unwrap())
        .unwrap();
    let records: Vec<Value> = (0..300).map(|i| record(&mut rng, i)).collect();
    db.append_batch(&records).unwrap();
    let sorts = [
        json!(["a"]),
        json!([{"$reverse": "a"}]),
        json!(["a", "b"]),
        json!([{"$reverse": "a"}, {"$reverse": "b"}]),
        json!(["b"]),
        json!([{"$reverse": "b"}]),
        json!(["a", {"$reverse": "b"}]),
        json!(["c", "b"]),
    ];
    let mut served = 0;
    for case in 0..400 {
        let mut stages = Vec::new();
        if rng.below(2) == 0 {
            stages.push(json!({"$filter": random_filter(&mut rng)}));
        }
        stages.push(json!({"$sort": rng.pick(&sorts)}));
        let pipeline = Pipeline::parse(&Value::Array(stages.clone())).unwrap();
        let mut options = QueryOptions::new();
        if rng.below(2) == 0 {
            options = options.reverse();
        }
        if rng.below(3) == 0 {
            options = options.limit(rng.below(20));
        }
        let explain = indexed.explain(&pipeline, &options);
        if explain.sort_by_index == Some(true) {
            served += 1;
        }
        let read = |h: &flumeview_query::QueryHandle| -> Vec<u64> {
            ids_in_order(
                h.read(&pipeline, options.clone())
                    .unwrap()
                    .map(Result::unwrap),
            )
        };
        assert_eq!(
            read(&indexed),
            read(&plain),
            "case {case}: {stages:?}\nplan: {explain}"
        );
    }
    assert!(
        served > 100,
        "only {served} of 400 sorts were served by an index"
    );
}
