//! What a query's leading filters tell about each field: a set of values or intervals, in the
//! index order (the order of [`Key`]s), for the planner to turn into key ranges.

use std::collections::BTreeMap;
use std::ops::Bound;

use flumedb_core::bounds;
use flumeview_level::Key;
use serde_json::Value;

use crate::filter::{Filter, Op};
use crate::pipeline::Pipeline;
use crate::value::{exact_key, object_key};
use flumedb_core::JsonType;

/// What the planner knows about one field: a set of point values, or intervals.
#[derive(Clone, Debug)]
pub(crate) enum Constraint {
    /// The field equals one of these (sorted, no duplicates).
    Points(Vec<Key>),
    /// The field is within one of these intervals (sorted, disjoint).
    Ranges(Vec<Interval>),
}

/// A lower and an upper bound.
pub(crate) type Interval = (Bound<Key>, Bound<Key>);

/// The constraint on each field path that the pipeline's leading `$filter` stages narrow.
pub(crate) fn constraints_by_path(pipeline: &Pipeline) -> BTreeMap<Vec<String>, Constraint> {
    let mut leaves = BTreeMap::new();
    for filter in pipeline.leading_filters() {
        collect_leaves(filter, &mut Vec::new(), &mut leaves);
    }
    leaves
        .into_iter()
        .filter_map(|(path, leaves)| {
            let constraints: Vec<Constraint> =
                leaves.into_iter().filter_map(leaf_constraint).collect();
            Some((path, all_of(constraints)?))
        })
        .collect()
}

/// Collects each path's leaf filters (the filters on that field's value).
fn collect_leaves<'a>(
    filter: &'a Filter,
    path: &mut Vec<String>,
    out: &mut BTreeMap<Vec<String>, Vec<&'a Filter>>,
) {
    match filter {
        Filter::Fields(fields) => {
            for (name, inner) in fields {
                path.push(name.clone());
                collect_leaves(inner, path, out);
                path.pop();
            }
        }
        Filter::All(parts) => {
            for part in parts {
                collect_leaves(part, path, out);
            }
        }
        leaf => out.entry(path.clone()).or_default().push(leaf),
    }
}

/// The intervals every value in both `a` and `b` is in, sorted by lower bound.
fn intersect(a: &[Interval], b: &[Interval]) -> Vec<Interval> {
    let mut out = Vec::new();
    for x in a {
        for y in b {
            let lower = bounds::tighter_lower(&x.0, &y.0);
            let upper = bounds::tighter_upper(&x.1, &y.1);
            if !bounds::is_empty(&lower, &upper) {
                out.push((lower, upper));
            }
        }
    }
    out.sort_by(|a, b| {
        let key = |b: &Bound<Key>| match b {
            Bound::Unbounded => None,
            Bound::Included(k) | Bound::Excluded(k) => Some(k.clone()),
        };
        key(&a.0).cmp(&key(&b.0))
    });
    out
}

/// Every key.
const EVERY_KEY: Interval = (Bound::Unbounded, Bound::Unbounded);

/// The interval holding `key` alone.
fn just(key: Key) -> Interval {
    (Bound::Included(key.clone()), Bound::Included(key))
}

/// The smallest string above every string starting with `p`, if there is one.
fn string_successor(p: &str) -> Option<String> {
    let mut chars: Vec<char> = p.chars().collect();
    while let Some(last) = chars.pop() {
        let next = match last {
            '\u{d7ff}' => Some('\u{e000}'),
            c => char::from_u32(c as u32 + 1),
        };
        if let Some(next) = next {
            chars.push(next);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

/// Where values of a type are in the index order.
fn type_intervals(ty: JsonType) -> Vec<Interval> {
    match ty {
        JsonType::Undefined => vec![just(Key::Max)],
        // Objects, and arrays that hold them.
        JsonType::Object => vec![just(object_key())],
        JsonType::Null => vec![just(Key::Null)],
        JsonType::Boolean => vec![(
            Bound::Included(Key::Bool(false)),
            Bound::Included(Key::Bool(true)),
        )],
        JsonType::Number => vec![(
            Bound::Included(Key::Number(f64::NEG_INFINITY)),
            Bound::Excluded(Key::String(String::new())),
        )],
        JsonType::String => vec![(
            Bound::Included(Key::String(String::new())),
            Bound::Excluded(Key::Array(Vec::new())),
        )],
        // Arrays that hold objects are indexed as objects are.
        JsonType::Array => vec![(
            Bound::Included(Key::Array(Vec::new())),
            Bound::Included(object_key()),
        )],
    }
}

/// Where an operator's matches are, if it narrows the field (`None`: anywhere).
fn op_intervals(op: &Op) -> Option<Vec<Interval>> {
    let key = |v: &Value| exact_key(v);
    Some(match op {
        // Up to objects (which compare above all keys); a missing value never matches.
        Op::Gt(v) => vec![(Bound::Excluded(key(v)?), Bound::Included(object_key()))],
        Op::Gte(v) => vec![(Bound::Included(key(v)?), Bound::Included(object_key()))],
        Op::Lt(v) => vec![(Bound::Unbounded, Bound::Excluded(key(v)?))],
        Op::Lte(v) => vec![(Bound::Unbounded, Bound::Included(key(v)?))],
        Op::Prefix(Value::String(p)) => vec![(
            Bound::Included(Key::String(p.clone())),
            Bound::Excluded(match string_successor(p) {
                Some(next) => Key::String(next),
                None => Key::Array(Vec::new()),
            }),
        )],
        Op::Prefix(prefix @ Value::Array(_)) => {
            let Key::Array(items) = key(prefix)? else {
                return None;
            };
            if items.is_empty() {
                // Every array, including those holding objects (indexed as objects are).
                return Some(type_intervals(JsonType::Array));
            }
            let mut upper = items.clone();
            upper.push(Key::Max);
            vec![
                (
                    Bound::Included(Key::Array(items)),
                    Bound::Included(Key::Array(upper)),
                ),
                // Arrays that also hold objects are indexed as objects are.
                just(object_key()),
            ]
        }
        Op::Is(ty) => type_intervals(*ty),
        Op::Int => type_intervals(JsonType::Number),
        _ => return None,
    })
}

/// What a leaf filter tells about its field.
fn leaf_constraint(leaf: &Filter) -> Option<Constraint> {
    match leaf {
        Filter::Literal(v) => Some(Constraint::Points(vec![exact_key(v)?])),
        Filter::Fields(_) => None,
        Filter::All(parts) => all_of(parts.iter().filter_map(leaf_constraint).collect()),
        Filter::Items(items) => {
            let parts: Vec<Constraint> =
                items.iter().map(leaf_constraint).collect::<Option<_>>()?;
            if parts
                .iter()
                .all(|c| matches!(c, Constraint::Points(p) if p.len() == 1))
            {
                let keys = parts
                    .into_iter()
                    .filter_map(|c| match c {
                        Constraint::Points(mut p) => p.pop(),
                        Constraint::Ranges(_) => None,
                    })
                    .collect();
                return Some(Constraint::Points(vec![Key::Array(keys)]));
            }
            // Item by item, the hull of each item's values: an inclusive superset.
            let (mut lower, mut upper) = (Vec::new(), Vec::new());
            for part in parts {
                let (lo, hi) = match part {
                    Constraint::Points(p) => (p.first()?.clone(), p.last()?.clone()),
                    Constraint::Ranges(r) => {
                        let lo = match &r.first()?.0 {
                            Bound::Included(k) | Bound::Excluded(k) => k.clone(),
                            Bound::Unbounded => Key::Null,
                        };
                        // An item is never missing: at most the objects' key, which keeps
                        // the hull below that key itself (the arrays holding objects).
                        let hi = match &r.last()?.1 {
                            Bound::Included(k) | Bound::Excluded(k) => k.clone(),
                            Bound::Unbounded => object_key(),
                        };
                        let hi = if hi > object_key() { object_key() } else { hi };
                        (lo, hi)
                    }
                };
                lower.push(lo);
                upper.push(hi);
            }
            Some(Constraint::Ranges(vec![
                (
                    Bound::Included(Key::Array(lower)),
                    Bound::Included(Key::Array(upper)),
                ),
                // Arrays that hold objects are indexed as objects are.
                just(object_key()),
            ]))
        }
        Filter::Ops(ops) => {
            let mut points: Option<Vec<Key>> = None;
            let mut ranges = vec![EVERY_KEY];
            let mut narrowed = false;
            for op in ops {
                let these = match op {
                    Op::Eq(v) => exact_key(v).map(|k| vec![k]),
                    Op::In(vs) => vs.iter().map(exact_key).collect::<Option<Vec<_>>>(),
                    _ => None,
                };
                if let Some(mut these) = these {
                    these.sort();
                    these.dedup();
                    points = Some(match points {
                        None => these,
                        Some(prev) => prev.into_iter().filter(|k| these.contains(k)).collect(),
                    });
                } else if let Some(intervals) = op_intervals(op) {
                    ranges = intersect(&ranges, &intervals);
                    narrowed = true;
                }
            }
            match (points, narrowed) {
                (Some(points), _) => Some(Constraint::Points(points)),
                (None, true) => Some(Constraint::Ranges(ranges)),
                (None, false) => None,
            }
        }
    }
}

/// The constraint of several leaves on one field that all hold (`None` if none narrows it).
fn all_of(constraints: Vec<Constraint>) -> Option<Constraint> {
    let mut points: Option<Vec<Key>> = None;
    let mut ranges: Option<Vec<Interval>> = None;
    for c in constraints {
        match c {
            Constraint::Points(p) => {
                points = Some(match points {
                    None => p,
                    Some(prev) => prev.into_iter().filter(|k| p.contains(k)).collect(),
                })
            }
            Constraint::Ranges(r) => {
                ranges = Some(match ranges {
                    None => r,
                    Some(prev) => intersect(&prev, &r),
                })
            }
        }
    }
    match (points, ranges) {
        (Some(p), _) => Some(Constraint::Points(p)),
        (None, Some(r)) => Some(Constraint::Ranges(r)),
        (None, None) => None,
    }
}
