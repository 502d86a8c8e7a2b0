//! The planner cases of JS flumeview-query's `select.js`, `query.js` and `ssb-query.js`,
//! re-expressed (which index, which key ranges), with this port's fixes and additions: `$eq`,
//! `$in`, `$sort` served by an index, and scoring that stops at the first range.

use std::ops::Bound::{Excluded, Included};

use flumedb_core::{Flume, Json};
use flumelog_memory::MemoryLog;
use flumeview_query::{Explain, Index, Key, Pipeline, Query, QueryHandle, QueryOptions};
use serde_json::{Value, json};

fn handle(indexes: Vec<Index>) -> (Flume<MemoryLog, Value>, QueryHandle) {
    let db = Flume::open(MemoryLog::new(), Json).unwrap();
    let handle = db.add_view("q", Query::new(1, indexes).unwrap()).unwrap();
    (db, handle)
}

fn explain(handle: &QueryHandle, query: Value) -> Explain {
    explain_with(handle, query, QueryOptions::new())
}

fn explain_with(handle: &QueryHandle, query: Value, options: QueryOptions) -> Explain {
    handle.explain(&Pipeline::parse(&query).unwrap(), &options)
}

/// A key array from JSON items; the string "MAX" is `Key::Max`, "TOP" the key of objects.
fn k(items: Value) -> Key {
    fn one(v: &Value) -> Key {
        match v {
            Value::String(s) if s == "MAX" => Key::Max,
            Value::String(s) if s == "TOP" => Key::Array(vec![Key::Max]),
            Value::Array(items) => Key::Array(items.iter().map(one).collect()),
            other => Key::try_from(other).unwrap(),
        }
    }
    one(&items)
}

fn sdr() -> Vec<Index> {
    vec![
        Index::new("SDR", ["source", "dest", "rel"]),
        Index::new("DRS", ["dest", "rel", "source"]),
        Index::new("RDS", ["rel", "source", "dest"]),
    ]
}

fn chosen(e: &Explain) -> Option<&str> {
    e.index.as_deref()
}

#[test]
fn select_js() {
    let (_db, q) = handle(sdr());
    // source and dest are exact
    let e = explain(&q, json!({"source": "foo", "dest": "bar"}));
    assert_eq!(chosen(&e), Some("SDR"));
    assert_eq!(
        e.ranges,
        [(
            Included(k(json!(["SDR", "foo", "bar"]))),
            Included(k(json!(["SDR", "foo", "bar", "MAX", "MAX"])))
        )]
    );
    assert_eq!(
        e.scores,
        [("SDR".into(), 6), ("DRS".into(), 2), ("RDS".into(), 0)]
    );
    // dest exact, rel is a range
    assert_eq!(
        chosen(&explain(
            &q,
            json!({"dest": "bar", "rel": {"$prefix": "a"}})
        )),
        Some("DRS")
    );
    // range only
    assert_eq!(
        chosen(&explain(&q, json!({"rel": {"$prefix": "b"}}))),
        Some("RDS")
    );
    // all exact
    assert_eq!(
        chosen(&explain(
            &q,
            json!({"source": "foo", "dest": "bar", "rel": "x"})
        )),
        Some("SDR")
    );
    // all ranges: counting stops at the first range (JS scored SDR 2), SDR and DRS tie at 1
    // and the first declared wins, as in JS.
    let e = explain(
        &q,
        json!({"source": {"$prefix": "f"}, "dest": {"$prefix": "b"}}),
    );
    assert_eq!(chosen(&e), Some("SDR"));
    assert_eq!(
        e.scores,
        [("SDR".into(), 1), ("DRS".into(), 1), ("RDS".into(), 0)]
    );
    // all ranges except rel
    assert_eq!(
        chosen(&explain(
            &q,
            json!({"source": {"$prefix": "f"}, "dest": {"$prefix": "b"}, "rel": "x"})
        )),
        Some("RDS")
    );
    // a nested range
    let (_db, q) = handle(vec![
        Index::new("on", ["value.nest.okay", "value.nest.number"]),
        Index::new("no", ["value.nest.number", "value.nest.okay"]),
    ]);
    let e = explain(
        &q,
        json!({"value": {"nest": {"number": {"$gte": 0, "$lte": 3}}}}),
    );
    assert_eq!(chosen(&e), Some("no"));
    assert_eq!(
        e.ranges,
        [(
            Included(k(json!(["no", 0]))),
            Included(k(json!(["no", 3, "MAX", "MAX"])))
        )]
    );
}

#[test]
fn query_js_bounds() {
    let (_db, q) = handle(sdr());
    let e = explain(&q, json!({"source": "foo", "dest": "bar"}));
    assert_eq!(
        e.ranges,
        [(
            Included(k(json!(["SDR", "foo", "bar"]))),
            Included(k(json!(["SDR", "foo", "bar", "MAX", "MAX"])))
        )]
    );
    // $prefix inside an array: JS gave gte [['mentions','@'], …] lte [['mentions','@\uffff'], …];
    // here the upper item is the next string ("A"), and arrays holding objects (`top`) are
    // read too, since the filter could match them.
    let (_db, q) = handle(vec![Index::new("RDS", ["rel", "dest", "source"])]);
    let e = explain(&q, json!({"rel": ["mentions", {"$prefix": "@"}]}));
    assert_eq!(chosen(&e), Some("RDS"));
    assert_eq!(
        e.ranges,
        [
            (
                Included(k(json!(["RDS", ["mentions", "@"]]))),
                Included(k(json!(["RDS", ["mentions", "A"], "MAX", "MAX", "MAX"])))
            ),
            (
                Included(k(json!(["RDS", "TOP"]))),
                Included(k(json!(["RDS", "TOP", "MAX", "MAX", "MAX"])))
            ),
        ]
    );
}

fn ssb_indexes() -> Vec<Index> {
    vec![
        Index::new("clk", ["value.author", "value.sequence"]),
        Index::new("typ", ["value.content.type", "timestamp"]),
        Index::new("cha", ["value.content.channel", "timestamp"]),
        Index::new("aty", ["value.author", "value.content.type", "timestamp"]),
    ]
}

#[test]
fn ssb_query_js() {
    let (_db, q) = handle(ssb_indexes());
    // simple: posts later than a time
    let e = explain(
        &q,
        json!({"value": {"content": {"type": "post"}}, "timestamp": {"$gt": 1516596815720u64}}),
    );
    assert_eq!(chosen(&e), Some("typ"));
    assert_eq!(
        e.ranges,
        [(
            Excluded(k(json!(["typ", "post", 1516596815720u64, "MAX"]))),
            Included(k(json!(["typ", "post", "TOP", "MAX"])))
        )]
    );
    assert_eq!(
        e.to_string(),
        "index typ; gt [\"typ\", \"post\", 1516596815720, Max] .. lte [\"typ\", \"post\", [Max], Max]; \
         filters decided by the index; scores {clk: 0, typ: 5, cha: 0, aty: 0}"
    );
    // right hand match not selected 1: no index starts with value.content or timestamp
    let e = explain(
        &q,
        json!({"value": {"content": {"$is": "string"}}, "timestamp": {"$gt": 1}}),
    );
    assert_eq!(chosen(&e), None);
    assert_eq!(
        e.to_string(),
        "scan; scores {clk: 0, typ: 0, cha: 0, aty: 0}"
    );
    // right hand match not selected 2: + author; clk and aty tie at 2, clk is declared first
    let e = explain(
        &q,
        json!({"value": {"content": {"$is": "string"}, "author": "@bob"}, "timestamp": {"$gt": 1}}),
    );
    assert_eq!(chosen(&e), Some("clk"));
    assert_eq!(
        e.ranges,
        [(
            Included(k(json!(["clk", "@bob"]))),
            Included(k(json!(["clk", "@bob", "MAX", "MAX"])))
        )]
    );
    // from random: $lt 52 (the upper bound excludes 52 itself; JS read it and filtered)
    let (_db, q) = handle(vec![
        Index::new("i", ["index"]),
        Index::new("r", ["random"]),
        Index::new("t", ["timestamp"]),
    ]);
    let e = explain(&q, json!({"index": {"$lt": 52}}));
    assert_eq!(chosen(&e), Some("i"));
    assert_eq!(
        e.ranges,
        [(Included(k(json!(["i"]))), Excluded(k(json!(["i", 52]))))]
    );
}

#[test]
fn ne_is_not_used_for_an_index_and_the_best_of_many_is_chosen() {
    let (_db, q) = handle(vec![
        Index::new("log", ["timestamp"]),
        Index::new("vtt", ["value.timestamp", "timestamp"]),
        Index::new("clk", ["value.author", "value.sequence"]),
        Index::new("typ", ["value.content.type", "timestamp"]),
        Index::new("tya", ["value.content.type", "value.timestamp"]),
        Index::new("cha", ["value.content.channel", "timestamp"]),
        Index::new("aty", ["value.author", "value.content.type", "timestamp"]),
        Index::new(
            "ata",
            ["value.author", "value.content.type", "value.timestamp"],
        ),
        Index::new("art", ["value.content.root", "value.timestamp"]),
        Index::new("lor", ["rts"]),
    ]);
    let e = explain(
        &q,
        json!({"value": {"timestamp": {"$gt": 0}, "author": {"$ne": "@ye"}, "content": {"type": "post"}}}),
    );
    assert_eq!(chosen(&e), Some("tya"));
    let score = |name: &str| e.scores.iter().find(|(n, _)| n == name).unwrap().1;
    assert_eq!(
        (score("tya"), score("typ"), score("vtt"), score("ata")),
        (5, 2, 1, 0)
    );
    assert_eq!(
        e.ranges,
        [(
            Excluded(k(json!(["tya", "post", 0, "MAX"]))),
            Included(k(json!(["tya", "post", "TOP", "MAX"])))
        )]
    );
    // value.content.type alone: typ and tya tie at 2; typ is declared first.
    assert_eq!(
        chosen(&explain(
            &q,
            json!({"value": {"content": {"type": "address"}}})
        )),
        Some("typ")
    );
}

#[test]
fn eq_and_in_are_exact_values() {
    let (_db, q) = handle(ssb_indexes());
    // JS put {$eq: 5} into the bound as an object and crashed; here it is an exact value.
    let e = explain(
        &q,
        json!({"value": {"author": {"$eq": "@a"}, "content": {"type": "post"}}}),
    );
    assert_eq!(chosen(&e), Some("aty"));
    assert_eq!(e.scores[3], ("aty".into(), 6));
    // $in: one range per value, in key order, without duplicates.
    let e = explain(
        &q,
        json!({"value": {"content": {"type": {"$in": ["vote", "post", "vote"]}}}}),
    );
    assert_eq!(chosen(&e), Some("typ"));
    assert_eq!(
        e.ranges,
        [
            (
                Included(k(json!(["typ", "post"]))),
                Included(k(json!(["typ", "post", "MAX", "MAX"])))
            ),
            (
                Included(k(json!(["typ", "vote"]))),
                Included(k(json!(["typ", "vote", "MAX", "MAX"])))
            ),
        ]
    );
    // $in on two fields: the product, then the range.
    let e = explain(
        &q,
        json!({"value": {"author": {"$in": ["@b", "@a"]}, "content": {"type": {"$in": ["x", "y"]}}}, "timestamp": {"$lte": 5}}),
    );
    assert_eq!(chosen(&e), Some("aty"));
    let firsts: Vec<Key> = e
        .ranges
        .iter()
        .map(|(lower, _)| match lower {
            Included(key) => key.clone(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        firsts,
        [
            k(json!(["aty", "@a", "x"])),
            k(json!(["aty", "@a", "y"])),
            k(json!(["aty", "@b", "x"])),
            k(json!(["aty", "@b", "y"]))
        ]
    );
    assert_eq!(
        e.ranges[0].1,
        Included(k(json!(["aty", "@a", "x", 5, "MAX"])))
    );
    // $in with no values matches nothing: no ranges at all.
    let e = explain(&q, json!({"value": {"content": {"type": {"$in": []}}}}));
    assert_eq!((chosen(&e), e.ranges.len()), (Some("typ"), 0));
}

#[test]
fn unicode_prefix_bounds_cover_every_code_point() {
    let (db, q) = handle(vec![Index::new("t", ["t"])]);
    let e = explain(&q, json!({"t": {"$prefix": "po"}}));
    assert_eq!(
        e.ranges,
        [(
            Included(k(json!(["t", "po"]))),
            Excluded(k(json!(["t", "pp"])))
        )]
    );
    // JS's '\uffff' upper bound missed 'po😀st'.
    for t in ["po", "po😀st", "po\u{10ffff}", "pp", "p", "pn\u{10ffff}"] {
        db.append(&json!({ "t": t })).unwrap();
    }
    let found: Vec<Value> = q
        .read(
            &Pipeline::parse(&json!({"t": {"$prefix": "po"}})).unwrap(),
            QueryOptions::new(),
        )
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(
        found,
        [
            json!({"t": "po"}),
            json!({"t": "po😀st"}),
            json!({"t": "po\u{10ffff}"})
        ]
    );
    // A prefix ending in the last code point: the successor carries.
    let e = explain(&q, json!({"t": {"$prefix": "a\u{10ffff}"}}));
    assert_eq!(e.ranges[0].1, Excluded(k(json!(["t", "b"]))));
}

#[test]
fn sort_hints_prefer_an_index_whose_order_serves_the_sort() {
    let (_db, q) = handle(vec![
        Index::new("aut", ["value.author"]),
        Index::new("ts", ["timestamp"]),
        Index::new("ats", ["value.author", "timestamp"]),
    ]);
    // No filter: the index on exactly the sort paths is read in full, in order.
    let e = explain(&q, json!([{"$sort": ["timestamp"]}]));
    assert_eq!((chosen(&e), e.sort_by_index), (Some("ts"), Some(true)));
    assert_eq!(
        e.ranges,
        [(
            Included(k(json!(["ts"]))),
            Included(k(json!(["ts", "MAX", "MAX"])))
        )]
    );
    // Descending: the same index read backwards.
    let e = explain(&q, json!([{"$sort": [{"$reverse": "timestamp"}]}]));
    assert_eq!(
        (chosen(&e), e.sort_by_index, e.reverse),
        (Some("ts"), Some(true), true)
    );
    // ...and `reverse` flips it back.
    let e = explain_with(
        &q,
        json!([{"$sort": [{"$reverse": "timestamp"}]}]),
        QueryOptions::new().reverse(),
    );
    assert_eq!(
        (chosen(&e), e.sort_by_index, e.reverse),
        (Some("ts"), Some(true), false)
    );
    // An exact author then sort by time: aut and ats tie on score 2; ats serves the sort.
    let e = explain(
        &q,
        json!([{"$filter": {"value": {"author": "@a"}}}, {"$sort": "timestamp"}]),
    );
    assert_eq!((chosen(&e), e.sort_by_index), (Some("ats"), Some(true)));
    // Sorting by the fixed field too changes nothing.
    let e = explain(
        &q,
        json!([{"$filter": {"value": {"author": "@a"}}}, {"$sort": [["value", "author"], "timestamp"]}]),
    );
    assert_eq!((chosen(&e), e.sort_by_index), (Some("ats"), Some(true)));
    // A higher score beats serving the sort: the sort is then done in memory.
    let (_db, q2) = handle(vec![
        Index::new("ts", ["timestamp"]),
        Index::new("aty", ["value.author", "value.type"]),
    ]);
    let e = explain(
        &q2,
        json!([{"$filter": {"value": {"author": "@a", "type": "x"}}}, {"$sort": "timestamp"}]),
    );
    assert_eq!((chosen(&e), e.sort_by_index), (Some("aty"), Some(false)));
    // Mixed directions, or a sort after a map: no index serves it.
    let e = explain(
        &q,
        json!([{"$sort": [{"$reverse": "value.author"}, "timestamp"]}]),
    );
    assert_eq!((chosen(&e), e.sort_by_index), (None, Some(false)));
    let e = explain(&q, json!([{"$map": true}, {"$sort": "timestamp"}]));
    assert_eq!((chosen(&e), e.sort_by_index), (None, Some(false)));
    // A sort on a prefix of an index's fields is not served (ties would be broken by the rest
    // of the key, not by log order).
    let e = explain(&q, json!([{"$sort": [["value", "author"]]}]));
    assert_eq!((chosen(&e), e.sort_by_index), (Some("aut"), Some(true)));
    let (_db, q3) = handle(vec![Index::new("ats", ["value.author", "timestamp"])]);
    let e = explain(&q3, json!([{"$sort": [["value", "author"]]}]));
    assert_eq!((chosen(&e), e.sort_by_index), (None, Some(false)));
}

#[test]
fn ties_are_broken_by_declaration_order_deterministically() {
    let (_db, q) = handle(vec![
        Index::new("x1", ["a", "b"]),
        Index::new("x2", ["a", "c"]),
    ]);
    for _ in 0..3 {
        assert_eq!(chosen(&explain(&q, json!({"a": 1}))), Some("x1"));
    }
    let (_db, q) = handle(vec![
        Index::new("x2", ["a", "c"]),
        Index::new("x1", ["a", "b"]),
    ]);
    assert_eq!(chosen(&explain(&q, json!({"a": 1}))), Some("x2"));
}

#[test]
fn only_leading_filters_narrow_the_read() {
    let (_db, q) = handle(vec![Index::new("a", ["a"])]);
    // A filter after a map filters mapped values: it cannot use the index.
    assert_eq!(
        chosen(&explain(
            &q,
            json!([{"$map": {"a": "b"}}, {"$filter": {"a": 1}}])
        )),
        None
    );
    // Two leading filters: both narrow (here, the intersection of two ranges).
    let e = explain(
        &q,
        json!([{"$filter": {"a": {"$gt": 1}}}, {"$filter": {"a": {"$lt": 5}}}]),
    );
    assert_eq!(
        e.ranges,
        [(
            Excluded(k(json!(["a", 1, "MAX"]))),
            Excluded(k(json!(["a", 5])))
        )]
    );
    // An object-form query is a filter (JS chose an index for it but never filtered).
    let e = explain(&q, json!({"a": {"$gt": 1}}));
    assert_eq!(chosen(&e), Some("a"));
}

#[test]
fn an_index_covers_literals_on_its_fixed_fields_and_number_ranges_on_the_next() {
    let (_db, q) = handle(vec![
        Index::new("typ", ["value.content.type", "timestamp"]),
        Index::new("ats", ["value.author", "value.private", "timestamp"]),
    ]);
    let covered = |query: Value| {
        let e = explain(&q, query.clone());
        assert!(e.index.is_some(), "{query}: an index is chosen");
        e.covered
    };
    // Decided by the key alone.
    assert!(covered(json!({"value": {"content": {"type": "vote"}}})));
    assert!(covered(json!({"value": {"author": "@a", "private": true}})));
    assert!(covered(json!({"value": {"author": "@a", "private": null}})));
    assert!(covered(
        json!([{"$filter": {"value": {"author": "@a"}}}, {"$filter": {"value": {"private": false}}}])
    ));
    // A field the index does not fix, or does not hold, is read from the record.
    assert!(!covered(
        json!({"value": {"content": {"type": "vote"}, "author": "@a"}, "x": "y"})
    ));
    assert!(!covered(
        json!({"value": {"private": true, "author": "@a", "sequence": "1"}})
    ));
    // Numbers compare as f64 in filters as in keys: decided too.
    assert!(covered(json!({"value": {"content": {"type": 1}}})));
    // Comparisons with numbers on the field read over a range (after the fixed ones).
    assert!(covered(
        json!({"value": {"content": {"type": "vote"}}, "timestamp": {"$gt": 5, "$lte": 9}})
    ));
    assert!(covered(
        json!({"value": {"author": "@a", "private": true}, "timestamp": {"$lt": 5}})
    ));
    // ...but not with a string (long strings are indexed as objects), nor with `$ne`.
    assert!(!covered(
        json!({"value": {"content": {"type": "vote"}}, "timestamp": {"$gt": "a"}})
    ));
    assert!(!covered(
        json!({"value": {"content": {"type": "vote"}}, "timestamp": {"$gt": 5, "$ne": 7}})
    ));
    // A range on a field before the last fixed one decides nothing after it.
    assert!(!covered(
        json!({"value": {"author": {"$gt": 5}, "private": true}})
    ));
    // `$eq` and `$in` of such values on a fixed field are decided as literals are...
    assert!(covered(
        json!({"value": {"content": {"type": {"$eq": "vote"}}}})
    ));
    assert!(covered(
        json!({"value": {"content": {"type": {"$in": ["vote", "post", 1, null]}}}})
    ));
    // ...but not of arrays or objects, nor with another operator; empty objects are not.
    assert!(!covered(
        json!({"value": {"content": {"type": {"$eq": ["vote"]}}}})
    ));
    assert!(!covered(
        json!({"value": {"content": {"type": {"$in": ["vote", ["a"]]}}}})
    ));
    assert!(!covered(
        json!({"value": {"content": {"type": {"$in": ["vote"], "$ne": "post"}}}})
    ));
    assert!(!covered(
        json!({"value": {"content": {"type": "vote"}, "author": {}}})
    ));
    // Without filters nothing is covered, and a scan never is.
    let e = explain(&q, json!([{"$sort": ["value", "author"]}]));
    assert!(!e.covered);
    let e = explain(&q, json!({"other": "x"}));
    assert_eq!((chosen(&e), e.covered), (None, false));
    assert!(
        explain(&q, json!({"value": {"content": {"type": "vote"}}}))
            .to_string()
            .contains("; filters decided by the index")
    );
}

/// A `$count` is answered from the counts the view keeps when its filters are covered and fix
/// the chosen index's first field alone; any other shape is counted by reading.
#[test]
fn counts_answer_a_count_whose_filters_fix_the_first_field_alone() {
    let (_db, q) = handle(vec![
        Index::new("typ", ["type", "ts"]),
        Index::new("aut", ["author"]),
    ]);
    let counted = |filter: Value| {
        explain(
            &q,
            json!([{"$filter": filter}, {"$reduce": {"$count": true}}]),
        )
        .counted
    };
    assert!(counted(json!({"type": "vote"})));
    assert!(counted(json!({"author": "@a"})));
    assert!(counted(json!({"type": 1})));
    assert!(counted(json!({"type": {"$in": ["a", "b"]}})));
    assert!(counted(json!({"author": {"$eq": null}})));
    // The second field fixed too, a range, an $in with an object, a field no index decides.
    assert!(!counted(json!({"type": "vote", "ts": 1})));
    assert!(!counted(json!({"type": {"$gt": "a"}})));
    assert!(!counted(json!({"type": {"$in": ["a", {"x": 1}]}})));
    assert!(!counted(json!({"type": "vote", "text": "hi"})));
    assert!(!counted(json!({"type": {"$eq": "a"}, "author": "@a"})));
    // Not a count, or more than one.
    assert!(!explain(&q, json!({"type": "vote"})).counted);
    assert!(
        !explain(
            &q,
            json!([{"$filter": {"type": "vote"}}, {"$map": "ts"}, {"$reduce": {"$count": true}}])
        )
        .counted
    );
    assert!(
        !explain(
            &q,
            json!([{"$filter": {"type": "vote"}}, {"$reduce": {"n": {"$count": true}}}])
        )
        .counted
    );
    // Counts grouped by an index's first field, over everything or over filters that fix it.
    let grouped = |pipeline: Value| explain(&q, pipeline);
    let all = grouped(json!([{"$reduce": {"type": "type", "n": {"$count": true}}}]));
    assert!(all.counted);
    assert_eq!(all.index.as_deref(), Some("typ"));
    assert!(grouped(json!([{"$reduce": {"n": {"$count": true}, "who": ["author"]}}])).counted);
    assert!(
        grouped(json!([
            {"$filter": {"type": {"$in": ["post", "vote"]}}},
            {"$reduce": {"type": "type", "n": {"$count": true}}}
        ]))
        .counted
    );
    // Grouped by a second field, filtered through another index, other reducers, two groups.
    assert!(!grouped(json!([{"$reduce": {"t": "ts", "n": {"$count": true}}}])).counted);
    assert!(
        !grouped(json!([
            {"$filter": {"author": "@a"}},
            {"$reduce": {"type": "type", "n": {"$count": true}}}
        ]))
        .counted
    );
    assert!(!grouped(json!([{"$reduce": {"type": "type", "n": {"$sum": "ts"}}}])).counted);
    assert!(
        !grouped(json!([{"$reduce": {"type": "type", "a": "author", "n": {"$count": true}}}]))
            .counted
    );
    let shown = explain(
        &q,
        json!([{"$filter": {"type": "vote"}}, {"$reduce": {"$count": true}}]),
    );
    assert!(
        shown
            .to_string()
            .contains("counted from the index's counts"),
        "{shown}"
    );
}
