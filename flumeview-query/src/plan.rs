//! The planner: which index answers a query, over which key ranges, and [`Explain`].

use std::collections::BTreeMap;
use std::fmt;
use std::ops::Bound;

use flumeview_level::Key;
use serde_json::Value;

use crate::filter::{Filter, Op};
use crate::index::Index;
use crate::pipeline::Pipeline;
use crate::value::{JsonType, exact_key, top};

/// At most this many key ranges per query (`$in` on several fields multiplies them).
const MAX_RANGES: usize = 4096;

/// What the planner knows about one field: a set of point values, or intervals.
#[derive(Clone, Debug)]
enum Constraint {
    /// The field equals one of these (sorted, no duplicates).
    Points(Vec<Key>),
    /// The field is within one of these intervals (sorted, disjoint).
    Ranges(Vec<Interval>),
}

type Interval = (Bound<Key>, Bound<Key>);

/// The plan for a query.
#[derive(Clone, PartialEq, Debug)]
pub(crate) struct Plan {
    /// The chosen index's position, and the key ranges to read in it (in read order).
    pub(crate) index: Option<(usize, Vec<Interval>)>,
    /// Read the source highest first.
    pub(crate) reverse: bool,
    /// The `$sort` stage the index order serves.
    pub(crate) served_sort: Option<usize>,
    /// Every index's score.
    pub(crate) scores: Vec<(String, u64)>,
}

/// How a query will run: the chosen index (or a scan of the log), its key ranges, and every
/// index's score. `Display` prints it in the shape of JS flumeview-query's `explain`.
#[derive(Clone, PartialEq, Debug)]
pub struct Explain {
    /// The index used, or `None` for a full scan of the log.
    pub index: Option<String>,
    /// The key ranges read from the index, in read order (keys start with the index name
    /// and end with the seq).
    pub ranges: Vec<(Bound<Key>, Bound<Key>)>,
    /// Each index's score (JS's: per leading path, 2 for an exact value, 1 for a range,
    /// `score = score * score + s`; here counting stops after the first range).
    pub scores: Vec<(String, u64)>,
    /// Whether the source is read highest first.
    pub reverse: bool,
    /// How a `$sort` is done: `None` without one, `Some(true)` by the index order,
    /// `Some(false)` in memory.
    pub sort_by_index: Option<bool>,
}

impl fmt::Display for Explain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.index {
            None => write!(f, "scan")?,
            Some(index) => {
                write!(f, "index {index}")?;
                for (lower, upper) in &self.ranges {
                    let show = |b: &Bound<Key>, open: &str, closed: &str| match b {
                        Bound::Included(k) => format!("{closed} {}", show_key(k)),
                        Bound::Excluded(k) => format!("{open} {}", show_key(k)),
                        Bound::Unbounded => "unbounded".into(),
                    };
                    write!(
                        f,
                        "; {} .. {}",
                        show(lower, "gt", "gte"),
                        show(upper, "lt", "lte")
                    )?;
                }
            }
        }
        if self.reverse {
            write!(f, "; reverse")?;
        }
        match self.sort_by_index {
            Some(true) => write!(f, "; sorted by the index")?,
            Some(false) => write!(f, "; sorted in memory")?,
            None => {}
        }
        let scores: Vec<String> = self
            .scores
            .iter()
            .map(|(n, s)| format!("{n}: {s}"))
            .collect();
        write!(f, "; scores {{{}}}", scores.join(", "))
    }
}

/// A key as JSON-like text (`Max` for the top key).
fn show_key(key: &Key) -> String {
    match key {
        Key::Null => "null".into(),
        Key::Bool(b) => b.to_string(),
        Key::Number(n) => crate::value::number_value(*n).to_string(),
        Key::String(s) => Value::from(s.as_str()).to_string(),
        Key::Array(items) => {
            let items: Vec<String> = items.iter().map(show_key).collect();
            format!("[{}]", items.join(", "))
        }
        Key::Max => "Max".into(),
    }
}

/// Collects each path's leaf filters from the leading `$filter` stages.
fn collect<'a>(
    filter: &'a Filter,
    path: &mut Vec<String>,
    out: &mut BTreeMap<Vec<String>, Vec<&'a Filter>>,
) {
    match filter {
        Filter::Fields(fields) => {
            for (name, inner) in fields {
                path.push(name.clone());
                collect(inner, path, out);
                path.pop();
            }
        }
        Filter::All(parts) => {
            for part in parts {
                collect(part, path, out);
            }
        }
        leaf => out.entry(path.clone()).or_default().push(leaf),
    }
}

/// `lower` is tighter (higher) than `other`.
fn higher_lower(lower: &Bound<Key>, other: &Bound<Key>) -> bool {
    match (lower, other) {
        (Bound::Unbounded, _) => false,
        (_, Bound::Unbounded) => true,
        (Bound::Included(a) | Bound::Excluded(a), Bound::Included(b) | Bound::Excluded(b)) => {
            a > b || (a == b && matches!(lower, Bound::Excluded(_)))
        }
    }
}

/// `upper` is tighter (lower) than `other`.
fn lower_upper(upper: &Bound<Key>, other: &Bound<Key>) -> bool {
    match (upper, other) {
        (Bound::Unbounded, _) => false,
        (_, Bound::Unbounded) => true,
        (Bound::Included(a) | Bound::Excluded(a), Bound::Included(b) | Bound::Excluded(b)) => {
            a < b || (a == b && matches!(upper, Bound::Excluded(_)))
        }
    }
}

fn is_empty(interval: &Interval) -> bool {
    match interval {
        (Bound::Included(a), Bound::Included(b)) => a > b,
        (Bound::Included(a) | Bound::Excluded(a), Bound::Included(b) | Bound::Excluded(b)) => {
            a >= b
        }
        _ => false,
    }
}

fn intersect(a: &[Interval], b: &[Interval]) -> Vec<Interval> {
    let mut out = Vec::new();
    for x in a {
        for y in b {
            let lower = if higher_lower(&y.0, &x.0) {
                y.0.clone()
            } else {
                x.0.clone()
            };
            let upper = if lower_upper(&y.1, &x.1) {
                y.1.clone()
            } else {
                x.1.clone()
            };
            let interval = (lower, upper);
            if !is_empty(&interval) {
                out.push(interval);
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

const ALL: (Bound<Key>, Bound<Key>) = (Bound::Unbounded, Bound::Unbounded);

fn point(key: Key) -> Interval {
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
        JsonType::Undefined => vec![point(Key::Max)],
        // Objects, and arrays that hold them.
        JsonType::Object => vec![point(top())],
        JsonType::Null => vec![point(Key::Null)],
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
        // Arrays that hold objects are indexed as `top`.
        JsonType::Array => vec![(
            Bound::Included(Key::Array(Vec::new())),
            Bound::Included(top()),
        )],
    }
}

/// Where an operator's matches are, if it narrows the field (`None`: anywhere).
fn op_intervals(op: &Op) -> Option<Vec<Interval>> {
    let key = |v: &Value| exact_key(v);
    Some(match op {
        // Up to `top` (objects compare above all keys); a missing value never matches.
        Op::Gt(v) => vec![(Bound::Excluded(key(v)?), Bound::Included(top()))],
        Op::Gte(v) => vec![(Bound::Included(key(v)?), Bound::Included(top()))],
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
                // Every array, including those holding objects (indexed as `top`).
                return Some(type_intervals(JsonType::Array));
            }
            let mut upper = items.clone();
            upper.push(Key::Max);
            vec![
                (
                    Bound::Included(Key::Array(items)),
                    Bound::Included(Key::Array(upper)),
                ),
                // Arrays that also hold objects are indexed as `top`.
                point(top()),
            ]
        }
        Op::Is(ty) => type_intervals(*ty),
        Op::Int => type_intervals(JsonType::Number),
        _ => return None,
    })
}

/// What a leaf filter tells about its field.
fn constraint(leaf: &Filter) -> Option<Constraint> {
    match leaf {
        Filter::Literal(v) => Some(Constraint::Points(vec![exact_key(v)?])),
        Filter::Fields(_) => None,
        Filter::All(parts) => merge(parts.iter().filter_map(constraint).collect()),
        Filter::Items(items) => {
            let parts: Vec<Constraint> = items.iter().map(constraint).collect::<Option<_>>()?;
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
                        // An item is never missing: at most `top`, which keeps the hull
                        // below `top` itself (the arrays holding objects).
                        let hi = match &r.last()?.1 {
                            Bound::Included(k) | Bound::Excluded(k) => k.clone(),
                            Bound::Unbounded => top(),
                        };
                        let hi = if hi > top() { top() } else { hi };
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
                // Arrays that hold objects are indexed as `top`.
                point(top()),
            ]))
        }
        Filter::Ops(ops) => {
            let mut points: Option<Vec<Key>> = None;
            let mut ranges = vec![ALL];
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

/// Merges the constraints of several leaves on one field (they all hold).
fn merge(constraints: Vec<Constraint>) -> Option<Constraint> {
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

/// Plans `pipeline` over `indexes`; `reverse` is the read option.
pub(crate) fn plan(indexes: &[Index], pipeline: &Pipeline, reverse: bool) -> Plan {
    let mut leaves = BTreeMap::new();
    for filter in pipeline.leading_filters() {
        collect(filter, &mut Vec::new(), &mut leaves);
    }
    let by_path: BTreeMap<Vec<String>, Constraint> = leaves
        .into_iter()
        .filter_map(|(path, leaves)| {
            let constraints: Vec<Constraint> = leaves.into_iter().filter_map(constraint).collect();
            Some((path, merge(constraints)?))
        })
        .collect();
    let sort = pipeline.leading_sort();

    // Per index: score, the constraints used (leading fields), whether it serves the sort.
    struct Candidate<'a> {
        score: u64,
        used: Vec<&'a Constraint>,
        serves: bool,
    }
    let candidates: Vec<Candidate> = indexes
        .iter()
        .map(|index| {
            let mut score: u64 = 0;
            let mut used = Vec::new();
            for path in index.paths() {
                let Some(c) = by_path.get(path) else { break };
                let s = match c {
                    Constraint::Points(_) => 2,
                    Constraint::Ranges(_) => 1,
                };
                score = score.saturating_mul(score).saturating_add(s);
                used.push(c);
                if s == 1 {
                    break;
                }
            }
            let serves = sort.is_some_and(|(_, keys)| serves_sort(index, &used, keys, &by_path));
            Candidate {
                score,
                used,
                serves,
            }
        })
        .collect();
    let scores = indexes
        .iter()
        .zip(&candidates)
        .map(|(i, c)| (i.name().to_string(), c.score))
        .collect();
    // The highest score; then one whose order serves the `$sort`; then the first declared.
    let best = candidates
        .iter()
        .enumerate()
        .filter(|(_, c)| c.score > 0 || c.serves)
        .max_by(|(i, a), (j, b)| {
            (a.score, a.serves, std::cmp::Reverse(*i)).cmp(&(
                b.score,
                b.serves,
                std::cmp::Reverse(*j),
            ))
        });
    let Some((chosen, candidate)) = best else {
        return Plan {
            index: None,
            reverse,
            served_sort: None,
            scores,
        };
    };
    let index = &indexes[chosen];
    // An index serves a sort in its own direction: descending keys read it highest first.
    let (served_sort, reverse) = match sort {
        Some((position, keys)) if candidate.serves => (
            Some(position),
            reverse ^ keys.first().is_some_and(|k| k.descending),
        ),
        _ => (None, reverse),
    };
    let mut ranges = key_ranges(index, &candidate.used);
    if reverse {
        ranges.reverse();
    }
    Plan {
        index: Some((chosen, ranges)),
        reverse,
        served_sort,
        scores,
    }
}

/// Whether reading `index` over the ranges of `used` yields records in `$sort` order: the
/// sort keys (all one direction) are exactly the index's fields after those fixed to one
/// value (ties then fall to the seq, as in the in-memory sort).
fn serves_sort(
    index: &Index,
    used: &[&Constraint],
    keys: &[crate::pipeline::SortKey],
    by_path: &BTreeMap<Vec<String>, Constraint>,
) -> bool {
    let Some(first) = keys.first() else {
        return false;
    };
    if keys.iter().any(|k| k.descending != first.descending) {
        return false;
    }
    let fixed = used
        .iter()
        .take_while(|c| matches!(c, Constraint::Points(p) if p.len() == 1))
        .count();
    let is_fixed = |path: &[&str]| {
        by_path
            .get(&path.iter().map(|s| s.to_string()).collect::<Vec<_>>())
            .is_some_and(|c| matches!(c, Constraint::Points(p) if p.len() == 1))
            && index.paths()[..fixed].iter().any(|p| p == path)
    };
    let mut rest = Vec::new();
    for key in keys {
        let Some(fields) = key.fields() else {
            return false;
        };
        if !is_fixed(&fields) {
            rest.push(fields);
        }
    }
    let tail = &index.paths()[fixed..];
    rest.len() == tail.len() && rest.iter().zip(tail).all(|(a, b)| a == b)
}

/// The key ranges of an index for its leading constraints, in key order.
fn key_ranges(index: &Index, used: &[&Constraint]) -> Vec<Interval> {
    // Key arrays are [name, field 1, ..., field n, seq].
    let width = index.paths().len() + 2;
    let mut prefixes: Vec<Vec<Key>> = vec![vec![Key::String(index.name().to_string())]];
    let mut last: Option<&Vec<Interval>> = None;
    for c in used {
        match c {
            Constraint::Points(points) => {
                if prefixes.len() * points.len().max(1) > MAX_RANGES {
                    break;
                }
                prefixes = prefixes
                    .iter()
                    .flat_map(|p| {
                        points.iter().map(move |k| {
                            let mut p = p.clone();
                            p.push(k.clone());
                            p
                        })
                    })
                    .collect();
            }
            Constraint::Ranges(intervals) => {
                if prefixes.len() * intervals.len().max(1) <= MAX_RANGES {
                    last = Some(intervals);
                }
                break;
            }
        }
    }
    let padded = |mut items: Vec<Key>| {
        while items.len() < width {
            items.push(Key::Max);
        }
        Key::Array(items)
    };
    let with = |prefix: &[Key], k: &Key| {
        let mut items = prefix.to_vec();
        items.push(k.clone());
        items
    };
    let mut out = Vec::new();
    for prefix in &prefixes {
        match last {
            None => out.push((
                Bound::Included(Key::Array(prefix.clone())),
                Bound::Included(padded(prefix.clone())),
            )),
            Some(intervals) => {
                for (lower, upper) in intervals {
                    let lower = match lower {
                        Bound::Unbounded => Bound::Included(Key::Array(prefix.clone())),
                        Bound::Included(k) => Bound::Included(Key::Array(with(prefix, k))),
                        Bound::Excluded(k) => Bound::Excluded(padded(with(prefix, k))),
                    };
                    let upper = match upper {
                        Bound::Unbounded => Bound::Included(padded(prefix.clone())),
                        Bound::Included(k) => Bound::Included(padded(with(prefix, k))),
                        Bound::Excluded(k) => Bound::Excluded(Key::Array(with(prefix, k))),
                    };
                    out.push((lower, upper));
                }
            }
        }
    }
    out
}
