//! [`Explain`]: how a query will run, for people (`Display`) and for tests (its fields).

use std::fmt;
use std::ops::Bound;

use flumeview_level::Key;
use serde_json::Value;

use crate::count::{Counting, counting};
use crate::index::Index;
use crate::pipeline::{Pipeline, Stage};
use crate::pipeline_depth::check_pipeline;
use crate::plan::plan;
use crate::value::to_json_number;

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
    /// Whether the index decides the leading `$filter` stages alone (a covering index):
    /// [`records`](crate::QueryHandle::records) then returns the rows it reads without
    /// reading their records' fields.
    pub covered: bool,
    /// Whether the pipeline is answered from the counts the view keeps per value of an
    /// index's first field, without reading rows or records: a `$count` whose filters the
    /// index covers by fixing its first field alone (to one value or several), or an object
    /// of `$count`s grouped by an index's first field (with no filters, or such filters).
    /// Groups whose value is a number, an array or an object still read the rows: keys do
    /// not keep a number's JSON text, which groups go by.
    pub counted: bool,
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
        if self.covered {
            write!(f, "; filters decided by the index")?;
        }
        if self.counted {
            write!(f, "; counted from the index's counts")?;
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
        Key::Number(n) => to_json_number(*n).to_string(),
        Key::String(s) => Value::from(s.as_str()).to_string(),
        Key::Array(items) => {
            let items: Vec<String> = items.iter().map(show_key).collect();
            format!("[{}]", items.join(", "))
        }
        Key::Max => "Max".into(),
    }
}

impl Explain {
    /// How `pipeline` runs over `indexes`, read highest first if `reverse`. A pipeline nested
    /// too deep to plan (reads refuse it) is explained as a scan.
    pub(crate) fn new(indexes: &[Index], pipeline: &Pipeline, reverse: bool) -> Explain {
        if check_pipeline(pipeline).is_err() {
            return Explain {
                index: None,
                ranges: Vec::new(),
                scores: Vec::new(),
                reverse,
                sort_by_index: None,
                covered: false,
                counted: false,
            };
        }
        let plan = plan(indexes, pipeline, reverse);
        let covered = plan.index.is_some()
            && plan.residual.is_empty()
            && pipeline.leading_filters().next().is_some();
        let counting = counting(indexes, pipeline, &plan);
        // A grouped count over everything uses an index the filters did not choose.
        let index = match &counting {
            Some(Counting::Groups { index, .. }) => Some(*index),
            _ => plan.index.as_ref().map(|(i, _)| *i),
        };
        let counted = counting.is_some();
        Explain {
            index: index
                .and_then(|i| indexes.get(i))
                .map(|index| index.name().to_string()),
            ranges: plan.index.map(|(_, r)| r).unwrap_or_default(),
            scores: plan.scores,
            reverse: plan.reverse,
            sort_by_index: pipeline
                .leading_sort()
                .map(|(i, _)| plan.served_sort == Some(i))
                .or_else(|| {
                    pipeline
                        .stages()
                        .iter()
                        .any(|s| matches!(s, Stage::Sort(_)))
                        .then_some(false)
                }),
            covered,
            counted,
        }
    }
}
