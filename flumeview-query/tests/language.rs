//! The query language: every stage and operator, with the edge cases JS map-filter-reduce got
//! wrong (falsy map results, `$min`/`$max`, reducer objects, array literals and prefixes,
//! sticky `$reverse`), and typed errors for malformed queries.

use flumedb_core::{Error, Flume, Json};
use flumelog_memory::MemoryLog;
use flumeview_query::{
    Aggregate, AggregateField, Filter, Index, JsonType, Map, Pipeline, Query, QueryError,
    QueryHandle, QueryOptions, SortKey,
};
use serde_json::{Value, json};

fn people() -> Vec<Value> {
    vec![
        json!({"name": "bob", "age": 10, "country": "nz", "tags": ["a", "b"], "n": 0}),
        json!({"name": "bobby", "age": 20, "country": "nz", "tags": ["a"], "n": ""}),
        json!({"name": "alice", "age": 30, "country": "us", "tags": [], "n": false}),
        json!({"name": "carol", "age": 25, "country": "us", "n": null}),
    ]
}

/// A database holding `records`, with a query view that has an index on every field used
/// below (results must not depend on it: see the differential tests), and one without.
fn db(records: &[Value]) -> (Flume<MemoryLog, Value>, QueryHandle, QueryHandle) {
    let db = Flume::open(MemoryLog::new(), Json).unwrap();
    let indexed = db
        .add_view(
            "indexed",
            Query::new(
                1,
                vec![
                    Index::new("name", ["name"]),
                    Index::new("age", ["age"]),
                    Index::new("cn", ["country", "name"]),
                    Index::new("tags", ["tags"]),
                    Index::new("n", ["n"]),
                ],
            )
            .unwrap(),
        )
        .unwrap();
    let scan = db.add_view("scan", Query::new(1, vec![]).unwrap()).unwrap();
    db.append_batch(records).unwrap();
    (db, indexed, scan)
}

fn run(records: &[Value], query: Value) -> Vec<Value> {
    let pipeline = Pipeline::parse(&query).unwrap();
    let (_db, indexed, scan) = db(records);
    let read = |h: &QueryHandle| -> Vec<Value> {
        h.read(&pipeline, QueryOptions::new())
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    };
    let mut a = read(&indexed);
    let b = read(&scan);
    let sorted = pipeline.stages().iter().any(|s| {
        matches!(
            s,
            flumeview_query::Stage::Sort(_) | flumeview_query::Stage::Reduce(_)
        )
    });
    if !sorted {
        // Index order and log order differ; compare as sets, return log order.
        let key = |v: &Value| v.to_string();
        a.sort_by_key(key);
        let mut b2 = b.clone();
        b2.sort_by_key(key);
        assert_eq!(a, b2, "indexed and scanned results differ for {query}");
    } else {
        assert_eq!(a, b, "indexed and scanned results differ for {query}");
    }
    b
}

fn names(records: &[Value], filter: Value) -> Vec<String> {
    run(records, json!([{"$filter": filter}, {"$map": "name"}]))
        .into_iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect()
}

#[test]
fn literals_and_nested_objects() {
    let p = people();
    assert_eq!(names(&p, json!({"country": "nz"})), ["bob", "bobby"]);
    assert_eq!(names(&p, json!({"age": 30.0})), ["alice"]);
    assert_eq!(names(&p, json!({"n": 0})), ["bob"]);
    assert_eq!(names(&p, json!({"n": ""})), ["bobby"]);
    assert_eq!(names(&p, json!({"n": false})), ["alice"]);
    assert_eq!(names(&p, json!({"n": null})), ["carol"]);
    // A missing field never equals a literal, not even null.
    assert_eq!(names(&p, json!({"missing": null})), Vec::<String>::new());
    let nested = vec![
        json!({"name": "x", "value": {"type": "post", "n": {"deep": 1}}}),
        json!({"name": "y", "value": {"type": "vote"}}),
        json!({"name": "z", "value": null}),
        json!({"name": "w"}),
    ];
    assert_eq!(names(&nested, json!({"value": {"type": "post"}})), ["x"]);
    assert_eq!(names(&nested, json!({"value": {"n": {"deep": 1}}})), ["x"]);
    assert_eq!(names(&nested, json!({"value": {}})), ["x", "y"]);
}

#[test]
fn array_literals_match_the_whole_array() {
    let p = people();
    // JS matched ["a", "b"] for ["a"] (positions only, no length check).
    assert_eq!(names(&p, json!({"tags": ["a"]})), ["bobby"]);
    assert_eq!(names(&p, json!({"tags": ["a", "b"]})), ["bob"]);
    assert_eq!(names(&p, json!({"tags": []})), ["alice"]);
    assert_eq!(names(&p, json!({"tags": ["a", {"$prefix": "b"}]})), ["bob"]);
    let nested = vec![
        json!({"name": "x", "m": [["a", 1], [2]]}),
        json!({"name": "y", "m": [["a"]]}),
    ];
    assert_eq!(names(&nested, json!({"m": [["a", 1], [2]]})), ["x"]);
}

#[test]
fn prefix_on_strings_and_arrays() {
    let p = people();
    assert_eq!(
        names(&p, json!({"name": {"$prefix": "bob"}})),
        ["bob", "bobby"]
    );
    assert_eq!(
        names(&p, json!({"name": {"$prefix": ""}})),
        ["bob", "bobby", "alice", "carol"]
    );
    // JS required the input to be strictly longer: ["a"] did not match {$prefix: ["a"]}.
    assert_eq!(
        names(&p, json!({"tags": {"$prefix": ["a"]}})),
        ["bob", "bobby"]
    );
    assert_eq!(
        names(&p, json!({"tags": {"$prefix": []}})),
        ["bob", "bobby", "alice"]
    );
    assert_eq!(
        names(&p, json!({"tags": {"$prefix": ["b"]}})),
        Vec::<String>::new()
    );
    let u = vec![
        json!({"name": "é😀"}),
        json!({"name": "éa"}),
        json!({"name": "e"}),
    ];
    assert_eq!(names(&u, json!({"name": {"$prefix": "é"}})), ["é😀", "éa"]);
    // A string prefix does not match numbers, nor an array prefix strings.
    assert_eq!(
        names(&p, json!({"age": {"$prefix": "1"}})),
        Vec::<String>::new()
    );
}

#[test]
fn comparisons_use_one_order_across_types() {
    let p = people();
    assert_eq!(
        names(&p, json!({"age": {"$gte": 20, "$lt": 30}})),
        ["bobby", "carol"]
    );
    assert_eq!(names(&p, json!({"age": {"$gt": 25}})), ["alice"]);
    assert_eq!(names(&p, json!({"age": {"$lte": 10}})), ["bob"]);
    assert_eq!(
        names(&p, json!({"name": {"$gt": "bob", "$lt": "c"}})),
        ["bobby"]
    );
    // null < booleans < numbers < strings < arrays: "" is above every number.
    assert_eq!(names(&p, json!({"n": {"$gt": 1000}})), ["bobby"]);
    assert_eq!(names(&p, json!({"n": {"$lt": 0}})), ["alice", "carol"]);
    assert_eq!(
        names(&p, json!({"n": {"$gte": null, "$lte": false}})),
        ["alice", "carol"]
    );
    // Strings by code point (JS compared UTF-16 units: "\u{ffff}" > "😀" there).
    let u = vec![json!({"name": "\u{ffff}"}), json!({"name": "😀"})];
    assert_eq!(names(&u, json!({"name": {"$gt": "\u{ffff}"}})), ["😀"]);
    // A missing value matches no comparison.
    assert_eq!(
        names(&p, json!({"missing": {"$lt": "zzz"}})),
        Vec::<String>::new()
    );
}

#[test]
fn eq_ne_in() {
    let p = people();
    assert_eq!(names(&p, json!({"age": {"$eq": 30}})), ["alice"]);
    assert_eq!(names(&p, json!({"tags": {"$eq": ["a"]}})), ["bobby"]);
    assert_eq!(
        names(&p, json!({"age": {"$ne": 30}})),
        ["bob", "bobby", "carol"]
    );
    // A missing value is not equal to anything.
    assert_eq!(
        names(&p, json!({"tags": {"$ne": []}})),
        ["bob", "bobby", "carol"]
    );
    assert_eq!(
        names(&p, json!({"age": {"$in": [10, 30, "20"]}})),
        ["bob", "alice"]
    );
    assert_eq!(
        names(&p, json!({"n": {"$in": [0, null]}})),
        ["bob", "carol"]
    );
    assert_eq!(names(&p, json!({"age": {"$in": []}})), Vec::<String>::new());
}

#[test]
fn is_not_truthy_int() {
    let p = people();
    assert_eq!(names(&p, json!({"n": {"$is": "number"}})), ["bob"]);
    assert_eq!(names(&p, json!({"n": {"$is": "string"}})), ["bobby"]);
    assert_eq!(names(&p, json!({"n": {"$is": "boolean"}})), ["alice"]);
    // Stricter than JS typeof: null is "null", not "object".
    assert_eq!(names(&p, json!({"n": {"$is": "null"}})), ["carol"]);
    assert_eq!(
        names(&p, json!({"n": {"$is": "object"}})),
        Vec::<String>::new()
    );
    assert_eq!(
        names(&p, json!({"tags": {"$is": "array"}})),
        ["bob", "bobby", "alice"]
    );
    assert_eq!(names(&p, json!({"tags": {"$is": "undefined"}})), ["carol"]);
    assert_eq!(
        names(&p, json!({"n": {"$not": true}})),
        ["bob", "bobby", "alice", "carol"]
    );
    assert_eq!(
        names(&p, json!({"tags": {"$truthy": true}})),
        ["bob", "bobby", "alice"]
    );
    assert_eq!(
        names(&p, json!({"missing": {"$not": true}})),
        ["bob", "bobby", "alice", "carol"]
    );
    let nums = vec![
        json!({"name": "i", "x": 3}),
        json!({"name": "f", "x": 3.5}),
        json!({"name": "s", "x": "3"}),
        json!({"name": "z", "x": -0.0}),
    ];
    assert_eq!(names(&nums, json!({"x": {"$int": true}})), ["i", "z"]);
}

#[test]
fn maps_keep_falsy_values() {
    let p = people();
    // JS dropped 0, "", false and null.
    assert_eq!(
        run(&p, json!([{"$map": "n"}])),
        [json!(0), json!(""), json!(false), json!(null)]
    );
    // A missing result is dropped.
    assert_eq!(run(&p, json!([{"$map": ["tags", 1]}])), [json!("b")]);
    assert_eq!(
        run(&p, json!([{"$map": ["tags", -1]}])),
        [json!("b"), json!("a")]
    );
    assert_eq!(
        run(
            &p[..1],
            json!([{"$map": {"who": "name", "first": ["tags", 0], "country": true, "none": "missing"}}])
        ),
        [json!({"who": "bob", "first": "a", "country": "nz"})]
    );
    assert_eq!(run(&p[..1], json!([{"$map": true}])), [p[0].clone()]);
    assert_eq!(
        run(&p[..1], json!([{"$map": {"$get": ["tags", 0]}}])),
        [json!("a")]
    );
    assert_eq!(
        run(
            &p,
            json!([{"$map": {"t": {"$type": true}, "nt": ["n", {"$type": true}]}}])
        )
        .iter()
        .map(|v| v["nt"].clone())
        .collect::<Vec<_>>(),
        [
            json!("number"),
            json!("string"),
            json!("boolean"),
            json!("null")
        ]
    );
    assert_eq!(
        run(&p, json!([{"$map": ["age", {"$mod": 7}]}])),
        [json!(3), json!(6), json!(2), json!(4)]
    );
}

#[test]
fn reducers() {
    let p = people();
    assert_eq!(run(&p, json!([{"$reduce": {"$count": true}}])), [json!(4)]);
    assert_eq!(run(&p, json!([{"$reduce": {"$sum": "age"}}])), [json!(85)]);
    assert_eq!(
        run(&p, json!([{"$reduce": {"$product": "age"}}])),
        [json!(150000)]
    );
    // JS gave 0 (Math.min(null, 10)) and NaN.
    assert_eq!(run(&p, json!([{"$reduce": {"$min": "age"}}])), [json!(10)]);
    assert_eq!(run(&p, json!([{"$reduce": {"$max": "age"}}])), [json!(30)]);
    assert_eq!(
        run(&p, json!([{"$reduce": {"$max": "tags"}}])),
        [json!(["a", "b"])]
    );
    assert_eq!(
        run(&p, json!([{"$reduce": {"$collect": "name"}}])),
        [json!(["bob", "bobby", "alice", "carol"])]
    );
    // Found by the `query` fuzzer: values the index order cannot tell apart (an object and
    // an array holding one, `1` and `1.0`) made `$min`/`$max` depend on the read order, so a
    // reverse read gave another answer. Now ties are broken by the values' text.
    for (a, b) in [
        (json!({"x": 1}), json!([{"x": 1}])),
        (json!(1), json!(1.0)),
        (json!({"b": 1, "a": 2}), json!({"a": 2, "b": 1})),
    ] {
        let rows = [json!({"v": a}), json!({"v": b})];
        let reversed = [json!({"v": b}), json!({"v": a})];
        for reducer in ["$min", "$max"] {
            let query = json!([{"$reduce": {reducer: "v"}}]);
            assert_eq!(
                run(&rows, query.clone()),
                run(&reversed, query),
                "{reducer} of {a} and {b}"
            );
        }
    }
    // Empty input: a count of 0 (JS emitted nothing), no groups.
    let none = json!({"$filter": {"age": {"$gt": 100}}});
    assert_eq!(
        run(&p, json!([none, {"$reduce": {"$count": true}}])),
        [json!(0)]
    );
    assert_eq!(
        run(&p, json!([none, {"$reduce": {"$min": "age"}}])),
        [json!(null)]
    );
    assert_eq!(
        run(
            &p,
            json!([none, {"$reduce": {"c": "country", "n": {"$count": true}}}])
        ),
        Vec::<Value>::new()
    );
    // An object of reducers stays an object (JS flattened it to `10, 30`).
    assert_eq!(
        run(
            &p,
            json!([{"$reduce": {"young": {"$min": "age"}, "old": {"$max": "age"}}}])
        ),
        [json!({"young": 10, "old": 30})]
    );
    // Group-by, in group key order.
    assert_eq!(
        run(
            &p,
            json!([{"$reduce": {"country": "country", "population": {"$count": true}, "ages": {"$sum": "age"}}}])
        ),
        [
            json!({"country": "nz", "population": 2, "ages": 30}),
            json!({"country": "us", "population": 2, "ages": 55})
        ]
    );
    // Nested groups: each group holds its subgroups.
    assert_eq!(
        run(
            &p,
            json!([{"$reduce": {"country": "country", "by_n": {"n": ["n"], "c": {"$count": true}}}}])
        ),
        [
            json!({"country": "nz", "by_n": [{"n": 0, "c": 1}, {"n": "", "c": 1}]}),
            json!({"country": "us", "by_n": [{"n": null, "c": 1}, {"n": false, "c": 1}]}),
        ]
    );
    // Then more stages run on the reduced items.
    assert_eq!(
        run(
            &p,
            json!([{"$reduce": {"country": "country", "n": {"$count": true}}}, {"$map": "country"}])
        ),
        [json!("nz"), json!("us")]
    );
}

#[test]
fn sorts_are_stable_and_reverse_is_not_sticky() {
    let p = people();
    // JS carried $reverse over to `age` too.
    assert_eq!(
        run(
            &p,
            json!([{"$sort": [{"$reverse": "country"}, "age"]}, {"$map": "name"}])
        ),
        [json!("carol"), json!("alice"), json!("bob"), json!("bobby")]
    );
    assert_eq!(
        run(
            &p,
            json!([{"$sort": ["country", {"$reverse": "age"}]}, {"$map": "name"}])
        ),
        [json!("bobby"), json!("bob"), json!("alice"), json!("carol")]
    );
    // Missing values sort last; equal keys keep log order.
    assert_eq!(
        run(&p, json!([{"$sort": "tags"}, {"$map": "name"}])),
        [json!("alice"), json!("bobby"), json!("bob"), json!("carol")]
    );
    assert_eq!(
        run(&p, json!([{"$sort": "country"}, {"$map": "name"}])),
        [json!("bob"), json!("bobby"), json!("alice"), json!("carol")]
    );
    // Sorting mapped values (JS logged every comparison).
    assert_eq!(
        run(
            &p,
            json!([{"$map": {"a": "age"}}, {"$sort": {"$reverse": "a"}}, {"$map": "a"}])
        ),
        [json!(30), json!(25), json!(20), json!(10)]
    );
}

#[test]
fn the_rust_builder_equals_the_json_syntax() {
    let json = Pipeline::parse(&json!([
        {"$filter": {"value": {"author": "@a", "content": {"type": {"$in": ["post", "vote"]}}}, "timestamp": {"$gte": 1, "$lt": 9}}},
        {"$map": {"t": ["value", "content", "type"]}},
        {"$reduce": {"t": "t", "n": {"$count": true}}},
        {"$sort": [{"$reverse": "n"}]}
    ]))
    .unwrap();
    let built = Pipeline::new()
        .filter(
            Filter::new()
                .field("value.author", "@a")
                .field("value.content.type", Filter::one_of(["post", "vote"]))
                .field("timestamp", Filter::gte(1).and_lt(9)),
        )
        .map(Map::object([("t", Map::path("value.content.type"))]))
        .reduce(Aggregate::Object(vec![
            ("t".into(), AggregateField::Group(Map::path("t"))),
            ("n".into(), AggregateField::Aggregate(Aggregate::Count)),
        ]))
        .sort([SortKey::desc("n")]);
    assert_eq!(json, built);
    assert!(Filter::is(JsonType::String).matches(&json!("x")));
}

fn malformed(query: Value) -> (String, String) {
    match Pipeline::parse(&query) {
        Err(QueryError::Malformed { at, reason }) => (at, reason),
        other => panic!("{query}: expected a malformed-query error, got {other:?}"),
    }
}

#[test]
fn malformed_queries_name_the_offending_part() {
    assert_eq!(malformed(json!([{"$filtre": {}}])).0, "[0].$filtre");
    assert!(
        malformed(json!([{"$filtre": {}}]))
            .1
            .contains("unknown stage")
    );
    assert_eq!(
        malformed(json!([{"$filter": {"age": {"$gte": 1, "$bogus": 2}}}])).0,
        "[0].$filter.age.$bogus"
    );
    assert_eq!(
        malformed(json!([{"$filter": {"age": {"$gt": {"an": "object"}}}}])).0,
        "[0].$filter.age.$gt"
    );
    assert_eq!(
        malformed(json!([{"$filter": {"a": {"$in": 5}}}])).0,
        "[0].$filter.a.$in"
    );
    assert_eq!(
        malformed(json!([{"$filter": {"a": {"$is": "thing"}}}])).0,
        "[0].$filter.a.$is"
    );
    assert_eq!(
        malformed(json!([{"$filter": {"a": {"$prefix": 1}}}])).0,
        "[0].$filter.a.$prefix"
    );
    assert_eq!(
        malformed(json!([{"$filter": {"a": {"$not": false}}}])).0,
        "[0].$filter.a.$not"
    );
    assert_eq!(
        malformed(json!([{"$filter": {"a": {"$eq": 1, "b": 2}}}])).0,
        "[0].$filter.a"
    );
    assert_eq!(malformed(json!([{}, {"$map": 1.5}])).0, "[0]");
    assert_eq!(
        malformed(json!([{"$map": "a"}, {"$map": 1.5}])).0,
        "[1].$map"
    );
    assert_eq!(
        malformed(json!([{"$map": {"x": {"$nope": 1}}}])).0,
        "[0].$map.x.$nope"
    );
    assert_eq!(
        malformed(json!([{"$map": ["a", {"$mod": 0}]}])).0,
        "[0].$map[1].$mod"
    );
    assert_eq!(
        malformed(json!([{"$reduce": {"$median": "a"}}])).0,
        "[0].$reduce.$median"
    );
    assert_eq!(malformed(json!([{"$reduce": 3}])).0, "[0].$reduce");
    assert_eq!(malformed(json!([{"$sort": []}])).0, "[0].$sort");
    assert_eq!(
        malformed(json!([{"$sort": [{"$up": "a"}]}])).0,
        "[0].$sort[0]"
    );
    assert_eq!(malformed(json!([{"$filter": {}, "$map": true}])).0, "[0]");
    assert_eq!(malformed(json!(5)).0, "the query");
    // Through the handle: a typed error, named after the view; nothing is read.
    let (_db, indexed, _) = db(&people());
    match indexed.read_json(&json!([{"$nope": 1}]), QueryOptions::new()) {
        Err(Error::View { view, source }) => {
            assert_eq!(view, "indexed");
            assert!(source.downcast_ref::<QueryError>().is_some());
        }
        Err(other) => panic!("{other}"),
        Ok(_) => panic!("a malformed query was accepted"),
    }
}

#[test]
fn bad_index_declarations_are_refused() {
    let err = |indexes| Query::new(1, indexes).err().unwrap();
    assert!(matches!(
        err(vec![Index::new("", ["a"])]),
        QueryError::Index(_)
    ));
    assert!(matches!(
        err(vec![Index::new("a", ["a"]), Index::new("a", ["b"])]),
        QueryError::Index(_)
    ));
    assert!(matches!(
        err(vec![Index::new("a", Vec::<&str>::new())]),
        QueryError::Index(_)
    ));
    assert!(matches!(
        err(vec![Index::new("a", ["a..b"])]),
        QueryError::Index(_)
    ));
}

#[test]
fn records_that_cannot_be_keys_never_break_the_indexer() {
    // JS crashed on `{content: null}` under path value.content.type, and on object fields.
    let records = vec![
        json!({"name": "a", "value": {"content": null}}),
        json!({"name": "b", "value": {"content": {"type": {"an": "object"}}}}),
        json!({"name": "c", "value": "a string"}),
        json!({"name": "d", "value": {"content": {"type": [{"x": 1}]}}}),
        json!({"name": "e", "value": {"content": {"type": "post"}}}),
        json!("not even an object"),
        json!({"name": "f", "value": {"content": {"type": "x".repeat(70_000)}}}),
    ];
    let db = Flume::open(MemoryLog::new(), Json).unwrap();
    let q = db
        .add_view(
            "q",
            Query::new(1, vec![Index::new("typ", ["value.content.type", "name"])]).unwrap(),
        )
        .unwrap();
    db.append_batch(&records).unwrap();
    let read = |query: Value| -> Vec<Value> {
        q.read_json(&query, QueryOptions::new())
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    };
    assert_eq!(
        read(json!([{"$filter": {"value": {"content": {"type": "post"}}}}, {"$map": "name"}])),
        [json!("e")]
    );
    assert_eq!(
        read(
            json!([{"$filter": {"value": {"content": {"type": {"$is": "object"}}}}}, {"$map": "name"}])
        ),
        [json!("b")]
    );
    assert_eq!(
        read(
            json!([{"$filter": {"value": {"content": {"type": {"$gt": "post"}}}}}, {"$map": "name"}])
        ),
        [json!("b"), json!("d"), json!("f")]
    );
    assert_eq!(read(json!([{"$sort": "name"}, {"$map": "name"}])).len(), 6);
    assert_eq!(q.progress().since, db.since());
}

#[test]
fn the_builder_never_drops_a_condition() {
    // A condition on the value itself, then on its fields: both hold.
    let f = Filter::new().field("a", Filter::gte(1).field("x", 2));
    assert!(f.matches(&json!({"a": {"x": 2}})));
    assert!(!f.matches(&json!({"a": {"x": 3}})));
    let f = Filter::from("x").and_gt("a");
    assert!(f.matches(&json!("x")));
    assert!(!f.matches(&json!("y")));
    assert_eq!(
        Map::path("tags.-1").apply(&json!({"tags": [1, 2]})),
        Some(json!(2))
    );
    assert_eq!(
        Map::path("a.+1").apply(&json!({"a": {"+1": 5}})),
        Some(json!(5))
    );
}

#[test]
fn groups_of_equal_values_are_one_group() {
    let records = vec![
        json!({"name": "a", "k": 1}),
        json!({"name": "b", "k": 1.0}),
        json!({"name": "c", "k": {"x": 1, "y": 2}}),
        json!({"name": "d", "k": {"y": 2, "x": 1}}),
    ];
    assert_eq!(
        run(
            &records,
            json!([{"$reduce": {"k": "k", "n": {"$count": true}}}, {"$map": "n"}])
        ),
        [json!(2), json!(2)]
    );
}

#[test]
fn deep_arrays_and_long_values_stay_in_the_index() {
    // An array nested as deep as a key allows inside a row key, and one level deeper.
    let mut deep63 = json!(1);
    for _ in 0..63 {
        deep63 = json!([deep63]);
    }
    let deep64 = json!([deep63.clone()]);
    let records = vec![
        json!({"name": "a", "t": "post", "d": deep63}),
        json!({"name": "b", "t": "post", "d": deep64}),
        json!({"name": "c", "t": "post", "d": "x".repeat(61_000)}),
    ];
    let db = Flume::open(MemoryLog::new(), Json).unwrap();
    let q = db
        .add_view(
            "q",
            Query::new(
                1,
                vec![Index::new("typ", ["t"]), Index::new("deep", ["d", "t"])],
            )
            .unwrap(),
        )
        .unwrap();
    db.append_batch(&records).unwrap();
    let read = |query: Value| -> Vec<Value> {
        q.read_json(&query, QueryOptions::new())
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    };
    assert_eq!(
        read(json!([{"$filter": {"t": "post"}}, {"$map": "name"}])),
        [json!("a"), json!("b"), json!("c")]
    );
    assert_eq!(
        read(json!([{"$filter": {"d": {"$is": "array"}}}, {"$map": "name"}])),
        [json!("a"), json!("b")]
    );
    assert_eq!(
        read(json!([{"$sort": ["d", "t"]}, {"$map": "name"}])).len(),
        3
    );
    assert_eq!(
        q.explain(
            &Pipeline::parse(&json!([{"$sort": ["d", "t"]}])).unwrap(),
            &QueryOptions::new()
        )
        .index
        .as_deref(),
        Some("deep")
    );
}

/// Runs `f` on a thread with a large stack: building and dropping a deeply nested
/// `serde_json::Value` (or `Filter`) recurses, whatever the code under test does.
fn with_big_stack<R: Send + 'static>(f: impl FnOnce() -> R + Send + 'static) -> R {
    std::thread::Builder::new()
        .stack_size(256 << 20)
        .spawn(f)
        .unwrap()
        .join()
        .unwrap()
}

#[test]
fn queries_nested_too_deep_are_refused_not_a_stack_overflow() {
    with_big_stack(|| {
        let mut filter = json!(1);
        for _ in 0..20_000 {
            let mut level = serde_json::Map::new();
            level.insert("a".into(), filter);
            filter = Value::Object(level);
        }
        let query = json!([{ "$filter": filter }]);
        let err = Pipeline::parse(&query).unwrap_err();
        assert!(
            matches!(&err, QueryError::Malformed { reason, .. } if reason.contains("deeper than")),
            "{err:?}"
        );
        let mut arrays = json!(1);
        for _ in 0..(flumeview_query::MAX_QUERY_DEPTH + 1) {
            arrays = json!([arrays]);
        }
        assert!(Filter::parse(&arrays).is_err());
        assert!(Map::parse(&json!({ "x": arrays })).is_err());

        // Just within the limit still parses and runs.
        let mut ok = json!(1);
        for _ in 0..100 {
            ok = json!({ "a": ok });
        }
        Pipeline::parse(&json!([{ "$filter": ok }])).unwrap();

        // Built in Rust, where the builders cannot refuse: the read does.
        let (_db, indexed, _scan) = db(&people());
        let mut deep = Filter::new().field("a", 1);
        for _ in 0..2_000 {
            deep = Filter::new().field("a", deep);
        }
        let pipeline = Pipeline::new().filter(deep);
        match indexed.read(&pipeline, QueryOptions::new()) {
            Err(Error::View { source, .. }) => {
                assert!(source.to_string().contains("deeper than"), "{source}")
            }
            Err(other) => panic!("expected a malformed-query error, got {other:?}"),
            Ok(_) => panic!("expected a malformed-query error, got results"),
        }
        assert_eq!(indexed.explain(&pipeline, &QueryOptions::new()).index, None);
    });
}

#[test]
fn deep_operands_built_in_rust_are_refused_too() {
    with_big_stack(|| {
        let mut deep = json!(1);
        for _ in 0..10_000 {
            deep = Value::Array(vec![deep]);
        }
        let (_db, indexed, scan) = db(&people());
        let filters = [
            Filter::gt(deep.clone()),
            Filter::eq(deep.clone()),
            Filter::prefix(deep.clone()),
            Filter::one_of([deep.clone()]),
            Filter::from(deep.clone()),
            Filter::new().field("name", deep.clone()),
        ];
        for filter in filters {
            let pipeline = Pipeline::new().filter(filter);
            for handle in [&indexed, &scan] {
                match handle.read(&pipeline, QueryOptions::new()) {
                    Err(Error::View { source, .. }) => {
                        assert!(source.to_string().contains("deeper than"), "{source}")
                    }
                    Err(other) => panic!("expected a malformed-query error, got {other:?}"),
                    Ok(_) => panic!("expected a malformed-query error, got results"),
                }
            }
        }
    });
}
