//! [`Pipeline`]: a map-filter-reduce query, its stages, and how they run.

use std::cmp::Ordering;

use flumedb_core::Error;
use serde_json::Value;

use crate::error::QueryError;
use crate::filter::Filter;
use crate::map::{Map, parse_dotted};
use crate::reduce::Aggregate;
use crate::value::{Step, lookup, to_key};

/// One stage of a [`Pipeline`].
#[derive(Clone, PartialEq, Debug)]
pub enum Stage {
    /// Keep the values that match (`$filter`).
    Filter(Filter),
    /// Replace each value (`$map`).
    Map(Map),
    /// Aggregate all values (`$reduce`).
    Reduce(Aggregate),
    /// Order the values (`$sort`).
    Sort(Vec<SortKey>),
}

/// A `$sort` key: a path, ascending or descending (`{$reverse: path}`).
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct SortKey {
    /// Where the sorted-by value is.
    pub path: Vec<Step>,
    /// Highest first.
    pub descending: bool,
}

impl SortKey {
    /// Ascending by the value at a dotted path.
    pub fn asc(path: &str) -> SortKey {
        SortKey {
            path: parse_dotted(path),
            descending: false,
        }
    }

    /// Descending by the value at a dotted path.
    pub fn desc(path: &str) -> SortKey {
        SortKey {
            path: parse_dotted(path),
            descending: true,
        }
    }

    /// The path if it is made of field names only (as index paths are).
    pub(crate) fn fields(&self) -> Option<Vec<&str>> {
        self.path
            .iter()
            .map(|s| match s {
                Step::Field(f) => Some(f.as_str()),
                Step::Index(_) => None,
            })
            .collect()
    }
}

/// A map-filter-reduce query: stages that run in order over the records.
///
/// From JSON (the JS syntax), or built in Rust:
///
/// ```
/// use flumeview_query::{Filter, Map, Pipeline, SortKey};
/// use serde_json::json;
///
/// let from_json = Pipeline::parse(&json!([
///     {"$filter": {"value": {"content": {"type": "post"}}}},
///     {"$map": {"text": ["value", "content", "text"]}},
/// ]))?;
/// let built = Pipeline::new()
///     .filter(Filter::new().field("value.content.type", "post"))
///     .map(Map::object([("text", Map::path("value.content.text"))]));
/// assert_eq!(from_json, built);
///
/// let newest_first = Pipeline::new().sort([SortKey::desc("timestamp")]);
/// # let _ = newest_first;
/// # Ok::<(), flumeview_query::QueryError>(())
/// ```
#[derive(Clone, PartialEq, Debug, Default)]
pub struct Pipeline {
    stages: Vec<Stage>,
}

impl Pipeline {
    /// No stages: every record, as it is.
    pub fn new() -> Pipeline {
        Pipeline::default()
    }

    /// Adds a `$filter` stage.
    #[must_use]
    pub fn filter(mut self, filter: Filter) -> Pipeline {
        self.stages.push(Stage::Filter(filter));
        self
    }

    /// Adds a `$map` stage.
    #[must_use]
    pub fn map(mut self, map: Map) -> Pipeline {
        self.stages.push(Stage::Map(map));
        self
    }

    /// Adds a `$reduce` stage.
    #[must_use]
    pub fn reduce(mut self, reduce: Aggregate) -> Pipeline {
        self.stages.push(Stage::Reduce(reduce));
        self
    }

    /// Adds a `$sort` stage.
    #[must_use]
    pub fn sort(mut self, keys: impl IntoIterator<Item = SortKey>) -> Pipeline {
        self.stages.push(Stage::Sort(keys.into_iter().collect()));
        self
    }

    /// The stages.
    pub fn stages(&self) -> &[Stage] {
        &self.stages
    }

    /// Parses the JS syntax: an array of stages (`{$filter}`, `{$map}`, `{$reduce}`,
    /// `{$sort}`), one stage object, or a bare object, which is a filter.
    pub fn parse(json: &Value) -> Result<Pipeline, QueryError> {
        crate::depth::check_json(json, "")?;
        let stages = match json {
            Value::Array(stages) => stages
                .iter()
                .enumerate()
                .map(|(i, stage)| parse_stage(stage, &format!("[{i}]")))
                .collect::<Result<_, _>>()?,
            Value::Object(obj)
                if obj
                    .keys()
                    .any(|k| matches!(k.as_str(), "$filter" | "$map" | "$reduce" | "$sort")) =>
            {
                vec![parse_stage(json, "")?]
            }
            Value::Object(_) => vec![Stage::Filter(Filter::parse_at(json, "$filter")?)],
            other => {
                return Err(QueryError::malformed(
                    "",
                    format!("expected an array of stages, not {other}"),
                ));
            }
        };
        Ok(Pipeline { stages })
    }

    /// Whether the query ends (reduces) rather than streams.
    pub(crate) fn reduces(&self) -> bool {
        self.stages.iter().any(|s| matches!(s, Stage::Reduce(_)))
    }

    /// The first `$sort`, if only filters come before it (so an index order can serve it):
    /// its stage position and keys.
    pub(crate) fn leading_sort(&self) -> Option<(usize, &[SortKey])> {
        for (i, stage) in self.stages.iter().enumerate() {
            match stage {
                Stage::Filter(_) => {}
                Stage::Sort(keys) => return Some((i, keys)),
                _ => return None,
            }
        }
        None
    }

    /// The `$reduce` stage of a pipeline of `$filter` stages then one `$reduce`: what a read
    /// may answer from the counts an index keeps.
    pub(crate) fn filtered_reduce(&self) -> Option<&Aggregate> {
        match self.stages.split_last() {
            Some((Stage::Reduce(aggregate), filters))
                if filters.iter().all(|s| matches!(s, Stage::Filter(_))) =>
            {
                Some(aggregate)
            }
            _ => None,
        }
    }

    /// The `$filter` stages before any other stage: what an index can narrow.
    pub(crate) fn leading_filters(&self) -> impl Iterator<Item = &Filter> {
        self.stages.iter().map_while(|s| match s {
            Stage::Filter(f) => Some(f),
            _ => None,
        })
    }
}

fn parse_stage(json: &Value, at: &str) -> Result<Stage, QueryError> {
    let Value::Object(obj) = json else {
        return Err(QueryError::malformed(
            at,
            format!("a stage is an object like {{\"$filter\": ...}}, not {json}"),
        ));
    };
    let mut entries = obj.iter();
    let (Some((name, arg)), None) = (entries.next(), entries.next()) else {
        return Err(QueryError::malformed(at, "a stage has exactly one key"));
    };
    let at = if at.is_empty() {
        name.clone()
    } else {
        format!("{at}.{name}")
    };
    Ok(match name.as_str() {
        "$filter" => Stage::Filter(Filter::parse_at(arg, &at)?),
        "$map" => Stage::Map(Map::parse_at(arg, &at)?),
        "$reduce" => Stage::Reduce(Aggregate::parse_at(arg, &at)?),
        "$sort" => Stage::Sort(parse_sort(arg, &at)?),
        other => {
            return Err(QueryError::malformed(
                &at,
                format!("unknown stage {other} (expected $filter, $map, $reduce or $sort)"),
            ));
        }
    })
}

fn parse_sort(json: &Value, at: &str) -> Result<Vec<SortKey>, QueryError> {
    let key = |json: &Value, at: &str| -> Result<SortKey, QueryError> {
        let (path, descending) = match json {
            Value::Object(obj) if obj.len() == 1 && obj.contains_key("$reverse") => {
                (&obj["$reverse"], true)
            }
            Value::Object(_) => {
                return Err(QueryError::malformed(
                    at,
                    "a sort key is a path or {\"$reverse\": path}",
                ));
            }
            other => (other, false),
        };
        match Map::parse_at(path, at)? {
            Map::Path(path) => Ok(SortKey { path, descending }),
            _ => Err(QueryError::malformed(at, format!("{path} is not a path"))),
        }
    };
    match json {
        Value::Array(keys) if !keys.is_empty() => keys
            .iter()
            .enumerate()
            .map(|(i, k)| key(k, &format!("{at}[{i}]")))
            .collect(),
        Value::Array(_) => Err(QueryError::malformed(at, "no sort keys")),
        other => Ok(vec![key(other, at)?]),
    }
}

/// Items flowing through a pipeline: an ordinal (the record's seq; a reduce's output
/// position) for stable tie-breaks, and the value.
pub(crate) type Items = Box<dyn Iterator<Item = Result<(u64, Value), Error>> + Send>;

/// Runs `stages` over `source`. `served` is the position of a `$sort` the source's order
/// already satisfies; `live` skips every sort (live items come in arrival order); `reverse`
/// reverses sorted output.
pub(crate) fn run(
    stages: &[Stage],
    mut source: Items,
    served: Option<usize>,
    live: bool,
    reverse: bool,
) -> Items {
    for (i, stage) in stages.iter().enumerate() {
        source = match stage.clone() {
            Stage::Filter(filter) => Box::new(source.filter(move |item| match item {
                Ok((_, value)) => filter.matches(value),
                Err(_) => true,
            })),
            Stage::Map(map) => Box::new(source.filter_map(move |item| match item {
                Ok((ord, value)) => map.apply(&value).map(|v| Ok((ord, v))),
                Err(e) => Some(Err(e)),
            })),
            Stage::Reduce(reduce) => {
                let mut values = Vec::new();
                let mut failed = None;
                for item in source {
                    match item {
                        Ok((_, value)) => values.push(value),
                        Err(e) => {
                            failed = Some(e);
                            break;
                        }
                    }
                }
                match failed {
                    Some(e) => Box::new(std::iter::once(Err(e))),
                    None => Box::new(
                        reduce
                            .run(values.iter())
                            .into_iter()
                            .enumerate()
                            .map(|(i, v)| Ok((i as u64, v)))
                            .collect::<Vec<_>>()
                            .into_iter(),
                    ),
                }
            }
            Stage::Sort(_) if live || served == Some(i) => source,
            Stage::Sort(keys) => sort(source, &keys, reverse),
        };
    }
    source
}

/// Sorts in memory: by the keys in the index order, then by ordinal (descending when the last
/// key is), so that an index scan and this sort agree; `reverse` flips the result.
fn sort(source: Items, keys: &[SortKey], reverse: bool) -> Items {
    let mut rows = Vec::new();
    for item in source {
        match item {
            Ok((ord, value)) => {
                let sort_keys: Vec<_> = keys
                    .iter()
                    .map(|k| to_key(lookup(&value, &k.path)))
                    .collect();
                rows.push((sort_keys, ord, value));
            }
            Err(e) => return Box::new(std::iter::once(Err(e))),
        }
    }
    let last_desc = keys.last().is_some_and(|k| k.descending);
    rows.sort_by(|a, b| {
        for ((x, y), key) in a.0.iter().zip(&b.0).zip(keys) {
            let order = if key.descending { y.cmp(x) } else { x.cmp(y) };
            if order != Ordering::Equal {
                return order;
            }
        }
        if last_desc {
            b.1.cmp(&a.1)
        } else {
            a.1.cmp(&b.1)
        }
    });
    if reverse {
        rows.reverse();
    }
    Box::new(rows.into_iter().map(|(_, ord, value)| Ok((ord, value))))
}
