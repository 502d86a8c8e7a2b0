//! The planner: which index answers a query (by score, then by the `$sort` its order serves),
//! and the key ranges to read in it.

use std::collections::BTreeMap;
use std::ops::Bound;

use flumeview_level::Key;

use serde_json::Value;

use crate::constraint::{Constraint, Interval, constraints_by_path};
use crate::filter::{Filter, Op};
use crate::index::Index;
use crate::pipeline::{Pipeline, SortKey};

/// At most this many key ranges per query (`$in` on several fields multiplies them).
const MAX_RANGES: usize = 4096;

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
    /// What of the leading `$filter` stages the index key does not decide: all of them
    /// without an index; empty when the index covers them (rows need no filtering).
    pub(crate) residual: Vec<Filter>,
    /// When the index covers the filters by fixing its first field alone to these values
    /// (one key range each): the rows read are exactly those whose first field is one of
    /// them, so counts kept by first field give how many there are.
    pub(crate) first_points: Option<Vec<Key>>,
}

/// Plans `pipeline` over `indexes`; `reverse` is the read option.
pub(crate) fn plan(indexes: &[Index], pipeline: &Pipeline, reverse: bool) -> Plan {
    let by_path = constraints_by_path(pipeline);
    let sort = pipeline.leading_sort();

    // Per index: score, the constraints used (leading fields), whether it serves the sort.
    struct Candidate<'a> {
        index: &'a Index,
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
                index,
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
            residual: pipeline.leading_filters().cloned().collect(),
            first_points: None,
        };
    };
    // An index serves a sort in its own direction: descending keys read it highest first.
    let (served_sort, reverse) = match sort {
        Some((position, keys)) if candidate.serves => (
            Some(position),
            reverse ^ keys.first().is_some_and(|k| k.descending),
        ),
        _ => (None, reverse),
    };
    let (mut ranges, fixed, ranged) = key_ranges(candidate.index, &candidate.used);
    if reverse {
        ranges.reverse();
    }
    let paths = candidate.index.paths();
    let decided = Decided {
        points: paths.get(..fixed).unwrap_or_default(),
        range: paths.get(fixed).filter(|_| ranged),
    };
    let residual = residual(pipeline, &decided);
    let first_points = match candidate.used.first() {
        Some(Constraint::Points(points)) if fixed == 1 && !ranged && residual.is_empty() => {
            Some(points.clone())
        }
        _ => None,
    };
    Plan {
        index: Some((chosen, ranges)),
        reverse,
        served_sort,
        scores,
        residual,
        first_points,
    }
}

/// The index fields whose filters the key ranges decide.
struct Decided<'a> {
    /// Fields fixed to the point values of their filters.
    points: &'a [Vec<String>],
    /// The field after them, read over the intervals of its filters.
    range: Option<&'a Vec<String>>,
}

/// The leading `$filter` stages less what the key ranges already guarantee, on the fields
/// they decide: a literal (string, boolean, `null` or number) on a field fixed to points
/// holds for every row, as does a comparison with a number (`$gt`, `$gte`, `$lt`, `$lte`) on
/// the ranged field. Filters compare in the index order, numbers as `f64` as keys hold them,
/// so a row's key is in a leaf's interval exactly when the field passes the leaf; fields
/// indexed as objects (long ones) sort above every number, as their values do. What is left
/// must still be checked on each record.
fn residual(pipeline: &Pipeline, decided: &Decided<'_>) -> Vec<Filter> {
    /// `filter` at `path` less its decided leaves; `None` when nothing is left to check.
    fn prune(filter: &Filter, path: &mut Vec<String>, decided: &Decided<'_>) -> Option<Filter> {
        match filter {
            // An empty object still asks for an object, which no key decides.
            Filter::Fields(fields) if !fields.is_empty() => {
                let left: Vec<(String, Filter)> = fields
                    .iter()
                    .filter_map(|(name, inner)| {
                        path.push(name.clone());
                        let left = prune(inner, path, decided);
                        path.pop();
                        left.map(|f| (name.clone(), f))
                    })
                    .collect();
                // With a field left, its check still asks for the objects on the way.
                (!left.is_empty()).then_some(Filter::Fields(left))
            }
            Filter::All(parts) => {
                let mut left: Vec<Filter> = parts
                    .iter()
                    .filter_map(|part| prune(part, path, decided))
                    .collect();
                match left.len() {
                    0 => None,
                    1 => left.pop(),
                    _ => Some(Filter::All(left)),
                }
            }
            Filter::Literal(Value::String(_) | Value::Bool(_) | Value::Null | Value::Number(_))
                if !path.is_empty() && decided.points.iter().any(|p| p == path) =>
            {
                None
            }
            // `$eq` and `$in` of such values on a fixed field: the key ranges are exactly them.
            Filter::Ops(ops)
                if !ops.is_empty()
                    && !path.is_empty()
                    && decided.points.iter().any(|p| p == path)
                    && ops.iter().all(|op| match op {
                        Op::Eq(v) => is_scalar(v),
                        Op::In(options) => options.iter().all(is_scalar),
                        _ => false,
                    }) =>
            {
                None
            }
            Filter::Ops(ops)
                if !ops.is_empty()
                    && !path.is_empty()
                    && decided.range == Some(&*path)
                    && ops.iter().all(|op| {
                        matches!(
                            op,
                            Op::Gt(Value::Number(_))
                                | Op::Gte(Value::Number(_))
                                | Op::Lt(Value::Number(_))
                                | Op::Lte(Value::Number(_))
                        )
                    }) =>
            {
                None
            }
            other => Some(other.clone()),
        }
    }
    pipeline
        .leading_filters()
        .filter_map(|f| prune(f, &mut Vec::new(), decided))
        .collect()
}

/// A value whose key is itself: filters compare it with a field as the key ranges do.
fn is_scalar(value: &Value) -> bool {
    matches!(
        value,
        Value::String(_) | Value::Bool(_) | Value::Null | Value::Number(_)
    )
}

/// Whether reading `index` over the ranges of `used` yields records in `$sort` order: the
/// sort keys (all one direction) are exactly the index's fields after those fixed to one
/// value (ties then fall to the seq, as in the in-memory sort).
fn serves_sort(
    index: &Index,
    used: &[&Constraint],
    keys: &[SortKey],
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
            && index.paths().iter().take(fixed).any(|p| p == path)
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
    let tail = index.paths().get(fixed..).unwrap_or_default();
    rest.len() == tail.len() && rest.iter().zip(tail).all(|(a, b)| a == b)
}

/// The key ranges of an index for its leading constraints, in key order; how many of the
/// index's leading fields they fix to point values; and whether they read the field after
/// those over intervals.
fn key_ranges(index: &Index, used: &[&Constraint]) -> (Vec<Interval>, usize, bool) {
    // Key arrays are [name, field 1, ..., field n, seq].
    let width = index.paths().len() + 2;
    let mut prefixes: Vec<Vec<Key>> = vec![vec![Key::String(index.name().to_string())]];
    let mut last: Option<&Vec<Interval>> = None;
    let mut fixed = 0;
    for c in used {
        match c {
            Constraint::Points(points) => {
                if prefixes.len() * points.len().max(1) > MAX_RANGES {
                    break;
                }
                fixed += 1;
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
    (out, fixed, last.is_some())
}
