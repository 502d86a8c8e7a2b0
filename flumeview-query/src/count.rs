//! Counts of each index's rows by the value of its first field, so that a `$count` the index
//! decides by that field alone, or counts grouped by that field, are answered without reading
//! rows or records.
//!
//! The counts live in memory. A value's count is built the first time a count asks for it,
//! by one pass over the index rows with that first field (keys only; with a log that can
//! delete, each row's record is checked, deletes of earlier processes included); a grouped
//! count builds every value's count in one pass over the index. From then on every applied
//! batch adds its rows. A delete the log reports, a reset, a failed batch or a close drops
//! them, and the next count builds them again.

use std::collections::HashMap;
use std::ops::Bound;

use flumedb_core::{Error, LogReader, Seq, Wait};
use flumeview_level::{Key, LevelHandle, ReadOptions};
use parking_lot::{Mutex, MutexGuard};
use serde_json::{Map as JsonMap, Value};

use crate::index::Index;
use crate::map::Map;
use crate::pipeline::Pipeline;
use crate::plan::Plan;
use crate::record::QueryRecord;
use crate::reduce::{Aggregate, AggregateField};
use crate::value::Step;

/// One index's counts.
struct IndexCounts {
    /// The log's delete counter when they were built: a change means records may be gone.
    deletes: Option<u64>,
    /// Rows by the encoded key of their first field, for the values counted so far.
    by_first: HashMap<Vec<u8>, u64>,
    /// Whether `by_first` holds every value the index has (a grouped count built it).
    complete: bool,
}

/// Row first fields noted during a batch: (index, encoded first field).
type Noted = Vec<(usize, Vec<u8>)>;

/// Counts of rows per index, shared by the view (which keeps them current) and its handles
/// (which build and read them).
pub(crate) struct Counts {
    /// Per index, in declaration order: `None` until a count asks for it. The view holds this
    /// lock while it applies a batch, so a build never sees half a batch.
    indexes: Mutex<Vec<Option<IndexCounts>>>,
    /// The first fields of the batch being applied, per index, while any index is counted.
    pending: Mutex<Option<Noted>>,
}

/// The view's hold on the counts while it applies a batch.
pub(crate) struct Applying<'a> {
    counts: &'a Counts,
    indexes: MutexGuard<'a, Vec<Option<IndexCounts>>>,
}

/// A read the counts answer.
pub(crate) enum Counting<'p> {
    /// One total: the rows of the index whose first field is one of `points`.
    Total { index: usize, points: &'p [Key] },
    /// One object per value of the index's first field with rows (among `points` when the
    /// filters fix it), in the index order: the group field and the counts of `fields`.
    Groups {
        index: usize,
        points: Option<&'p [Key]>,
        fields: &'p [(String, AggregateField)],
    },
}

/// Whether `pipeline`, planned as `plan` over `indexes`, is a count the counts answer: `$filter`
/// stages the index decides by fixing its first field alone (or none), then a `$reduce` of
/// `{$count: true}`, or an object of counts grouped by the index's first field.
pub(crate) fn counting<'p>(
    indexes: &[Index],
    pipeline: &'p Pipeline,
    plan: &'p Plan,
) -> Option<Counting<'p>> {
    let aggregate = pipeline.filtered_reduce()?;
    let fixed = match (&plan.index, &plan.first_points) {
        (Some((index, _)), Some(points)) => Some((*index, points.as_slice())),
        _ => None,
    };
    match aggregate {
        Aggregate::Count => {
            let (index, points) = fixed?;
            Some(Counting::Total { index, points })
        }
        Aggregate::Object(fields) => {
            let group = grouped_by(fields)?;
            let first_is_group = |index: &Index| {
                index.paths().first().is_some_and(|first| {
                    first.len() == group.len()
                        && first
                            .iter()
                            .zip(group)
                            .all(|(name, step)| matches!(step, Step::Field(field) if field == name))
                })
            };
            if pipeline.stages().len() > 1 {
                let (index, points) = fixed?;
                first_is_group(indexes.get(index)?).then_some(Counting::Groups {
                    index,
                    points: Some(points),
                    fields,
                })
            } else {
                let index = indexes.iter().position(first_is_group)?;
                Some(Counting::Groups {
                    index,
                    points: None,
                    fields,
                })
            }
        }
        _ => None,
    }
}

/// The path of the one group field of `fields` when every other field is a `$count`.
fn grouped_by(fields: &[(String, AggregateField)]) -> Option<&[Step]> {
    let mut group = None;
    for (_, field) in fields {
        match field {
            AggregateField::Group(Map::Path(path)) if group.is_none() && !path.is_empty() => {
                group = Some(path.as_slice());
            }
            AggregateField::Aggregate(Aggregate::Count) => {}
            _ => return None,
        }
    }
    group
}

/// The objects of a grouped count, from each group's value and count; `None` when a group's
/// value cannot be given back from its key as the records hold it (a number, whose JSON
/// text the key does not keep, or an array or object), so the rows must be read.
pub(crate) fn group_objects(
    fields: &[(String, AggregateField)],
    groups: Vec<(Key, u64)>,
) -> Option<Vec<Value>> {
    groups
        .into_iter()
        .map(|(key, n)| {
            let value = match key {
                Key::Null => Some(Value::Null),
                Key::Bool(b) => Some(Value::Bool(b)),
                Key::String(s) => Some(Value::String(s)),
                // A missing field: the group object leaves it out.
                Key::Max => None,
                Key::Number(_) | Key::Array(_) => return None,
            };
            let mut out = JsonMap::new();
            for (name, field) in fields {
                match field {
                    AggregateField::Group(_) => {
                        if let Some(value) = &value {
                            out.insert(name.clone(), value.clone());
                        }
                    }
                    AggregateField::Aggregate(_) => {
                        out.insert(name.clone(), Value::from(n));
                    }
                }
            }
            Some(Value::Object(out))
        })
        .collect()
}

impl Counts {
    pub(crate) fn new(indexes: usize) -> Counts {
        Counts {
            indexes: Mutex::new((0..indexes).map(|_| None).collect()),
            pending: Mutex::new(None),
        }
    }

    /// Before a batch: from here until [`Applying::applied`], the rows' first fields are noted.
    pub(crate) fn begin(&self) -> Applying<'_> {
        let indexes = self.indexes.lock();
        if indexes.iter().any(Option::is_some) {
            *self.pending.lock() = Some(Vec::new());
        }
        Applying {
            counts: self,
            indexes,
        }
    }

    /// Notes a record's row keys (one per index, in declaration order: `[name, first field,
    /// ..., seq]`) while a batch is applied and counts are kept.
    pub(crate) fn note(&self, keys: &[Key]) {
        let mut pending = self.pending.lock();
        let Some(pending) = pending.as_mut() else {
            return;
        };
        for (index, key) in keys.iter().enumerate() {
            pending.push((index, first_field(key)));
        }
    }

    /// Forgets every index's counts (a reset or a close).
    pub(crate) fn clear(&self) {
        self.indexes.lock().iter_mut().for_each(|c| *c = None);
    }

    /// How many rows of `index` have one of `points` as their first field, counting every
    /// row the view holds now (at least everything up to `last`, which it waits for).
    pub(crate) fn count<T: QueryRecord>(
        &self,
        level: &LevelHandle<T>,
        index: (usize, &Index),
        points: &[Key],
        last: Seq,
    ) -> Result<u64, Error> {
        Ok(self
            .groups(level, index, Some(points), last)?
            .iter()
            .map(|(_, n)| n)
            .sum())
    }

    /// The rows of `index` per value of its first field (those of `points`, or all), with
    /// rows only, in the index order, counting every row the view holds now (at least
    /// everything up to `last`, which it waits for).
    pub(crate) fn groups<T: QueryRecord>(
        &self,
        level: &LevelHandle<T>,
        index: (usize, &Index),
        points: Option<&[Key]>,
        last: Seq,
    ) -> Result<Vec<(Key, u64)>, Error> {
        // Wait before taking the lock: the view takes it to apply the batches waited for.
        level.view_sync().wait(Wait::For(last))?;
        let mut indexes = self.indexes.lock();
        let log = level.log();
        let deletes = log.deletes();
        let slot = indexes
            .get_mut(index.0)
            .ok_or_else(|| Error::InvalidArgument(format!("no index {}", index.0)))?;
        let counts = match slot {
            Some(counts) if counts.deletes == deletes => counts,
            _ => slot.insert(IndexCounts {
                deletes,
                by_first: HashMap::new(),
                complete: false,
            }),
        };
        let encoded = |key: &Key| {
            key.encode()
                .map_err(|e| Error::InvalidArgument(format!("count of {key:?}: {e}")))
        };
        let mut out: Vec<(Vec<u8>, u64)> = Vec::new();
        match points {
            Some(points) => {
                for point in points {
                    let first = encoded(point)?;
                    let n = match counts.by_first.get(&first) {
                        Some(n) => *n,
                        None => {
                            let n = count_value(level, log, index.1, point, deletes.is_some())?;
                            counts.by_first.insert(first.clone(), n);
                            n
                        }
                    };
                    out.push((first, n));
                }
            }
            None => {
                if !counts.complete {
                    counts.by_first = count_values(level, log, index.1, deletes.is_some())?;
                    counts.complete = true;
                }
                out.extend(counts.by_first.iter().map(|(k, n)| (k.clone(), *n)));
            }
        }
        // The encoding keeps the key order, so bytes sort as keys do.
        out.retain(|(_, n)| *n > 0);
        out.sort();
        out.dedup_by(|a, b| a.0 == b.0);
        out.into_iter()
            .map(|(bytes, n)| {
                Key::decode(&bytes)
                    .map(|key| (key, n))
                    .map_err(|e| Error::InvalidArgument(format!("count key: {e}")))
            })
            .collect()
    }
}

impl Applying<'_> {
    /// After the batch: its rows are added to the counts kept, or, if it failed, every count
    /// is dropped (what the store holds is not known).
    pub(crate) fn applied(mut self, ok: bool) {
        let pending = self.counts.pending.lock().take();
        if !ok {
            self.indexes.iter_mut().for_each(|c| *c = None);
            return;
        }
        // Only values counted already, unless all are: the others are counted when asked.
        for (index, first) in pending.into_iter().flatten() {
            let Some(Some(counts)) = self.indexes.get_mut(index) else {
                continue;
            };
            if counts.complete {
                *counts.by_first.entry(first).or_insert(0) += 1;
            } else if let Some(n) = counts.by_first.get_mut(&first) {
                *n += 1;
            }
        }
    }
}

/// The encoded first field of a row key `[name, first field, ..., seq]` (empty for a key of
/// another shape, which [`Index::key`] never gives).
fn first_field(key: &Key) -> Vec<u8> {
    match key {
        Key::Array(items) => items
            .get(1)
            .and_then(|first| first.encode().ok())
            .unwrap_or_default(),
        _ => Vec::new(),
    }
}

/// The key bounds of `index`'s rows whose first field is `point`, or of all its rows.
fn bounds(index: &Index, point: Option<&Key>) -> (Bound<Key>, Bound<Key>) {
    let mut lower = vec![Key::String(index.name().to_string())];
    lower.extend(point.cloned());
    let mut upper = lower.clone();
    upper.resize(index.paths().len() + 2, Key::Max);
    (
        Bound::Included(Key::Array(lower)),
        Bound::Included(Key::Array(upper)),
    )
}

/// Counts `index`'s rows whose first field is `point`, leaving out rows whose record the log
/// deleted when `deletes` (the log can delete).
fn count_value<T: QueryRecord>(
    level: &LevelHandle<T>,
    log: &LogReader<T>,
    index: &Index,
    point: &Key,
    deletes: bool,
) -> Result<u64, Error> {
    let (lower, upper) = bounds(index, Some(point));
    let rows = level.read(
        ReadOptions::new()
            .keys(false)
            .values(false)
            .wait(Wait::Now)
            .bounds(lower, upper),
    )?;
    let mut n = 0;
    for row in rows {
        let row = row?;
        if deletes && log.is_deleted(row.seq)? {
            continue;
        }
        n += 1;
    }
    Ok(n)
}

/// Counts all of `index`'s rows by first field, leaving out rows whose record the log deleted
/// when `deletes`.
fn count_values<T: QueryRecord>(
    level: &LevelHandle<T>,
    log: &LogReader<T>,
    index: &Index,
    deletes: bool,
) -> Result<HashMap<Vec<u8>, u64>, Error> {
    let (lower, upper) = bounds(index, None);
    let rows = level.read(
        ReadOptions::new()
            .values(false)
            .wait(Wait::Now)
            .bounds(lower, upper),
    )?;
    let mut by_first: HashMap<Vec<u8>, u64> = HashMap::new();
    for row in rows {
        let row = row?;
        if deletes && log.is_deleted(row.seq)? {
            continue;
        }
        let first = row.key.as_ref().map(first_field).unwrap_or_default();
        *by_first.entry(first).or_insert(0) += 1;
    }
    Ok(by_first)
}
