//! Reading a query view: [`QueryHandle`], [`QueryOptions`] and the result iterators.

use std::collections::VecDeque;
use std::ops::Bound;
use std::sync::Arc;

use flumedb_core::{Error, LogReader, Progress, Record, Seq, Since, ViewSync, Wait};
use flumeview_level::{LevelError, LevelHandle, ReadOptions, Rows};
use serde_json::Value;

use crate::count::{Counting, Counts, counting, group_objects};
use crate::error::QueryError;
use crate::explain::Explain;
use crate::filter::Filter;
use crate::pipeline::{Items, Pipeline, Stage, run};
use crate::pipeline_depth::check_pipeline;
use crate::plan::{Plan, plan};
use crate::record::{Indexes, QueryRecord};

/// How to read: JS flumeview-query's `read` options.
#[derive(Clone, Debug)]
#[must_use = "options do nothing until passed to a read"]
pub struct QueryOptions {
    limit: Option<usize>,
    reverse: bool,
    old: bool,
    sync: bool,
}

impl Default for QueryOptions {
    fn default() -> Self {
        QueryOptions {
            limit: None,
            reverse: false,
            old: true,
            sync: true,
        }
    }
}

impl QueryOptions {
    /// Every result, in index (or log) order.
    pub fn new() -> QueryOptions {
        QueryOptions::default()
    }
    /// At most `n` results (stored ones, for live reads). Records are fetched lazily, so
    /// a limit also bounds the records read (unless a `$sort` or `$reduce` needs them all).
    pub fn limit(mut self, n: usize) -> Self {
        self.limit = Some(n);
        self
    }
    /// Highest first: reverse index (or log) order; with a `$sort`, the sort order reversed.
    /// Live results still come in arrival order.
    pub fn reverse(mut self) -> Self {
        self.reverse = true;
        self
    }
    /// Live reads: with `false`, only records appended after the read starts.
    pub fn old(mut self, old: bool) -> Self {
        self.old = old;
        self
    }
    /// Live reads: with `false`, no [`LiveResult::Sync`] between old and new results.
    pub fn sync(mut self, sync: bool) -> Self {
        self.sync = sync;
        self
    }
}

/// What a live read yields.
#[derive(Clone, PartialEq, Debug)]
pub enum LiveResult {
    /// A result.
    Value(Value),
    /// Every stored result has been read; what follows was appended after the read began.
    Sync,
}

/// Reads a query view. Every read waits until the view has caught up with the log as it was
/// when the read began.
#[derive(Clone)]
pub struct QueryHandle<T: QueryRecord = Value> {
    /// The index rows; it also holds the view's sync and the log.
    level: LevelHandle<T>,
    indexes: Arc<Indexes>,
    counts: Arc<Counts>,
}

impl<T: QueryRecord> QueryHandle<T> {
    pub(crate) fn new(
        level: LevelHandle<T>,
        indexes: Arc<Indexes>,
        counts: Arc<Counts>,
    ) -> QueryHandle<T> {
        QueryHandle {
            level,
            indexes,
            counts,
        }
    }

    fn sync(&self) -> &ViewSync {
        self.level.view_sync()
    }

    fn log(&self) -> &LogReader<T> {
        self.level.log()
    }

    fn error(&self, err: QueryError) -> Error {
        Error::View {
            view: self.sync().name().to_string(),
            source: Box::new(err),
        }
    }

    /// The plan for `pipeline`: which index and ranges, or a scan (JS `explain`).
    ///
    /// A pipeline nested deeper than [`MAX_QUERY_DEPTH`](crate::MAX_QUERY_DEPTH) (which
    /// `read` refuses) is explained as a scan, without planning it.
    pub fn explain(&self, pipeline: &Pipeline, options: &QueryOptions) -> Explain {
        Explain::new(&self.indexes.list, pipeline, options.reverse)
    }

    /// The results of `pipeline` over the records in the log when the read began.
    pub fn read(&self, pipeline: &Pipeline, options: QueryOptions) -> Result<Results, Error> {
        check_pipeline(pipeline).map_err(|e| self.error(e))?;
        let cut = self.log().since_watch().get();
        let plan = plan(&self.indexes.list, pipeline, options.reverse);
        let mut items: Items = match self.counted(pipeline, &plan, cut)? {
            Some(answer) => Box::new(answer.into_iter().map(|v| Ok((0, v)))),
            None => {
                let served = plan.served_sort;
                let source = self.source(plan, cut)?;
                run(pipeline.stages(), source, served, false, options.reverse)
            }
        };
        if let Some(n) = options.limit {
            items = Box::new(items.take(n));
        }
        Ok(Results { items, done: false })
    }

    /// The records a filter selects, as the log stores them, each with its seq: for a
    /// pipeline of `$filter` stages only. On a `Query<Doc>` the records are not decoded: the
    /// filter reads the fields it names in place, and a caller who reads one field of each
    /// result pays for that field (a `$map` or a full decode is one call on the record).
    /// Filters the chosen index decides (literal values, `$eq` and `$in` of strings, numbers,
    /// booleans or `null` on the fields it fixes; comparisons with a number on the field it
    /// reads over a range) are not checked again on the records; when it decides them all
    /// ([`Explain::covered`](crate::Explain::covered)), the records are not even read to
    /// filter them. The order is the chosen index's (or the log's), reversed
    /// with `reverse`; `limit` bounds the records fetched.
    ///
    /// A pipeline with `$map`, `$reduce` or `$sort` stages is refused
    /// ([`QueryError::Malformed`]): use [`read`](Self::read).
    ///
    /// ```
    /// use flumedb_core::{Doc, Flume, Json};
    /// use flumelog_memory::MemoryLog;
    /// use flumeview_query::{Index, Pipeline, Query, QueryOptions};
    /// use serde_json::json;
    ///
    /// let db: Flume<MemoryLog, Doc> = Flume::open(MemoryLog::new(), Json)?;
    /// let query = db.add_view("query", Query::for_docs(1, vec![Index::new("typ", ["type"])])?)?;
    /// let seq = db.append(&Doc::from_json(r#"{"type":"post","text":"hi"}"#))?;
    /// db.append(&Doc::from_json(r#"{"type":"vote"}"#))?;
    /// let posts = Pipeline::parse(&json!({"type": "post"}))?;
    /// let hits: Vec<_> = query.records(&posts, QueryOptions::new())?.collect::<Result<_, _>>()?;
    /// assert_eq!(hits.len(), 1);
    /// assert_eq!(hits[0].seq, seq);
    /// assert_eq!(hits[0].value.get(&["text"])?.and_then(|f| f.as_str()).as_deref(), Some("hi"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn records(
        &self,
        pipeline: &Pipeline,
        options: QueryOptions,
    ) -> Result<RecordResults<T>, Error> {
        check_pipeline(pipeline).map_err(|e| self.error(e))?;
        for (i, stage) in pipeline.stages().iter().enumerate() {
            match stage {
                Stage::Filter(_) => {}
                _ => {
                    return Err(self.error(QueryError::malformed(
                        &format!("[{i}]"),
                        "records() takes $filter stages only; use read() for $map, $reduce \
                         and $sort",
                    )));
                }
            }
        }
        let cut = self.log().since_watch().get();
        let plan = plan(&self.indexes.list, pipeline, options.reverse);
        // Only what the index ranges do not guarantee is checked on each record (nothing,
        // when the index covers the filters: no record is read to filter it).
        let filters = plan.residual.clone();
        Ok(RecordResults {
            records: self.record_source(plan, cut)?,
            filters,
            remaining: options.limit,
            done: false,
        })
    }

    /// Like [`read`](Self::read) with the pipeline in the JS syntax.
    pub fn read_json(&self, query: &Value, options: QueryOptions) -> Result<Results, Error> {
        let pipeline = Pipeline::parse(query).map_err(|e| self.error(e))?;
        self.read(&pipeline, options)
    }

    /// A live read: the stored results (unless `old(false)`), then [`LiveResult::Sync`]
    /// (unless `sync(false)`), then a result for each matching record as it is appended,
    /// exactly once. Only `$filter`, `$map` and `$sort` stages can run live. A `$sort` orders
    /// the stored results; new results always come in arrival (log) order. With `old(false)`
    /// there are no stored results, and a `$sort` is accepted only when an index order serves
    /// it (as for JS's `$sort` hint); otherwise it is an error rather than a sort that silently
    /// does nothing.
    pub fn live(&self, pipeline: &Pipeline, options: QueryOptions) -> Result<LiveResults, Error> {
        check_pipeline(pipeline).map_err(|e| self.error(e))?;
        if pipeline.reduces() {
            return Err(self.error(QueryError::NotLive(
                "a $reduce gives its result at the end, and a live read has none; use read() \
                 for the reduced result"
                    .into(),
            )));
        }
        let cut = self.log().since_watch().get();
        let plan = plan(&self.indexes.list, pipeline, options.reverse);
        let has_sort = pipeline
            .stages()
            .iter()
            .any(|s| matches!(s, Stage::Sort(_)));
        if has_sort && !options.old && plan.served_sort.is_none() {
            return Err(self.error(QueryError::NotLive(
                "no index serves its $sort, and records that have not arrived cannot be sorted; \
                 read with old(true) to sort the stored results, declare an index on the sort \
                 paths, or drop the $sort"
                    .into(),
            )));
        }
        let old = if options.old {
            let served = plan.served_sort;
            let source = self.source(plan, cut)?;
            let mut items = run(pipeline.stages(), source, served, false, options.reverse);
            if let Some(n) = options.limit {
                items = Box::new(items.take(n));
            }
            Some(items)
        } else {
            self.sync().check()?;
            None
        };
        let tail: Items = Box::new(self.log().follow(cut).map(item));
        Ok(LiveResults {
            marker: options.old && options.sync,
            old,
            live: run(pipeline.stages(), tail, None, true, false),
            done: false,
        })
    }

    /// The answer of a count the counts answer (see [`Explain::counted`](crate::Explain::counted)):
    /// a `$count` the plan's index decides by its first field alone, or counts grouped by
    /// an index's first field; `None` for any other pipeline, and for groups whose values
    /// the keys cannot give back as written.
    fn counted(
        &self,
        pipeline: &Pipeline,
        plan: &Plan,
        cut: Since,
    ) -> Result<Option<Vec<Value>>, Error> {
        let Since::At(last) = cut else {
            return Ok(None);
        };
        let list = &self.indexes.list;
        match counting(list, pipeline, plan) {
            Some(Counting::Total { index, points }) => {
                let Some(declared) = list.get(index) else {
                    return Ok(None);
                };
                let n = self
                    .counts
                    .count(&self.level, (index, declared), points, last)?;
                Ok(Some(vec![Value::from(n)]))
            }
            Some(Counting::Groups {
                index,
                points,
                fields,
            }) => {
                let Some(declared) = list.get(index) else {
                    return Ok(None);
                };
                let groups = self
                    .counts
                    .groups(&self.level, (index, declared), points, last)?;
                Ok(group_objects(fields, groups))
            }
            None => Ok(None),
        }
    }

    /// The records the plan reads, up to `cut`, as pipeline items.
    fn source(&self, plan: Plan, cut: Since) -> Result<Items, Error> {
        Ok(Box::new(self.record_source(plan, cut)?.map(item)))
    }

    /// The records the plan reads, up to `cut`.
    fn record_source(&self, plan: Plan, cut: Since) -> Result<RecordIter<T>, Error> {
        let Since::At(last) = cut else {
            return Ok(Box::new(std::iter::empty()));
        };
        match plan.index {
            None => Ok(Box::new(self.log().records(
                Bound::Unbounded,
                Bound::Included(last),
                plan.reverse,
            ))),
            Some((_, ranges)) => {
                // Wait once here, so errors (timeout, failure) come from `read`, not later.
                self.sync().wait(Wait::For(last))?;
                Ok(Box::new(IndexRows {
                    level: self.level.clone(),
                    ranges: ranges.into(),
                    reverse: plan.reverse,
                    current: None,
                    last,
                }))
            }
        }
    }

    /// The view's progress against the log.
    pub fn progress(&self) -> Progress {
        self.sync().progress()
    }
}

/// The rows of an index over key ranges, one range after the other; records appended after
/// the read began (`last`) are left to the live part. Records are fetched one at a time, as
/// the reader asks: a read that stops early (a limit) fetches nothing more.
struct IndexRows<T: QueryRecord> {
    level: LevelHandle<T>,
    ranges: VecDeque<(Bound<flumeview_level::Key>, Bound<flumeview_level::Key>)>,
    reverse: bool,
    current: Option<Rows<T>>,
    last: Seq,
}

/// A record as a pipeline item: its seq and its value.
fn item<T: QueryRecord>(record: Result<Record<T>, Error>) -> Result<(u64, Value), Error> {
    let record = record?;
    Ok((record.seq.get(), record.value.into_value()?))
}

/// Records as a source yields them.
type RecordIter<T> = Box<dyn Iterator<Item = Result<Record<T>, Error>> + Send>;

impl<T: QueryRecord> Iterator for IndexRows<T> {
    type Item = Result<Record<T>, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(rows) = &mut self.current {
                match rows.next() {
                    // Appended after the read began.
                    Some(Ok(row)) if row.seq > self.last => continue,
                    Some(Ok(row)) => match row.value {
                        Some(value) => {
                            return Some(Ok(Record {
                                seq: row.seq,
                                value,
                            }));
                        }
                        None => continue,
                    },
                    Some(Err(e)) => return Some(Err(level_error(e))),
                    None => self.current = None,
                }
            }
            let (lower, upper) = self.ranges.pop_front()?;
            // Only what the read's cut needs (the first wait already covered it).
            let mut options = ReadOptions::new()
                .keys(false)
                .wait(Wait::For(self.last))
                .bounds(lower, upper);
            if self.reverse {
                options = options.reverse();
            }
            match self.level.read(options) {
                Ok(rows) => self.current = Some(rows),
                Err(e) => {
                    self.ranges.clear();
                    return Some(Err(level_error(e)));
                }
            }
        }
    }
}

/// A level read's error, with a store failure given as this crate's [`QueryError::Level`], so
/// every error source a query view reports is a [`QueryError`].
fn level_error(err: Error) -> Error {
    match err {
        Error::View { view, source } => match source.downcast::<LevelError>() {
            Ok(level) => Error::View {
                view,
                source: Box::new(QueryError::Level(*level)),
            },
            Err(source) => Error::View { view, source },
        },
        other => other,
    }
}

/// The results of [`QueryHandle::read`]. After an error, it ends.
#[must_use = "iterators are lazy and do nothing unless consumed"]
pub struct Results {
    items: Items,
    done: bool,
}

impl Iterator for Results {
    type Item = Result<Value, Error>;

    fn next(&mut self) -> Option<Result<Value, Error>> {
        if self.done {
            return None;
        }
        let item = self.items.next();
        self.done = !matches!(item, Some(Ok(_)));
        item.map(|item| item.map(|(_, value)| value))
    }
}

/// The results of [`QueryHandle::records`]: each selected record with its seq, as the log
/// stores it. After an error, it ends.
#[must_use = "iterators are lazy and do nothing unless consumed"]
pub struct RecordResults<T> {
    records: RecordIter<T>,
    filters: Vec<Filter>,
    remaining: Option<usize>,
    done: bool,
}

impl<T: QueryRecord> Iterator for RecordResults<T> {
    type Item = Result<Record<T>, Error>;

    fn next(&mut self) -> Option<Result<Record<T>, Error>> {
        if self.done || self.remaining == Some(0) {
            return None;
        }
        loop {
            let record = match self.records.next()? {
                Ok(record) => record,
                Err(err) => {
                    self.done = true;
                    return Some(Err(err));
                }
            };
            let mut passes = true;
            for filter in &self.filters {
                match record.value.passes(filter) {
                    Ok(true) => {}
                    Ok(false) => {
                        passes = false;
                        break;
                    }
                    Err(err) => {
                        self.done = true;
                        return Some(Err(err.into()));
                    }
                }
            }
            if passes {
                if let Some(n) = &mut self.remaining {
                    *n -= 1;
                }
                return Some(Ok(record));
            }
        }
    }
}

/// The results of [`QueryHandle::live`]. It ends with [`Error::Closed`] when the database
/// closes, and after any other error.
#[must_use = "iterators are lazy and do nothing unless consumed"]
pub struct LiveResults {
    marker: bool,
    old: Option<Items>,
    live: Items,
    done: bool,
}

impl LiveResults {
    fn next_result(&mut self) -> Option<Result<LiveResult, Error>> {
        if let Some(old) = &mut self.old {
            match old.next() {
                Some(item) => return Some(item.map(|(_, v)| LiveResult::Value(v))),
                None => {
                    self.old = None;
                    if self.marker {
                        return Some(Ok(LiveResult::Sync));
                    }
                }
            }
        }
        self.live
            .next()
            .map(|item| item.map(|(_, v)| LiveResult::Value(v)))
    }
}

impl Iterator for LiveResults {
    type Item = Result<LiveResult, Error>;

    fn next(&mut self) -> Option<Result<LiveResult, Error>> {
        if self.done {
            return None;
        }
        let item = self.next_result();
        self.done = !matches!(item, Some(Ok(_)));
        item
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn level_read_errors_become_query_errors_and_others_stay() {
        let err = level_error(Error::View {
            view: "q".into(),
            source: Box::new(LevelError::Corrupt("a row".into())),
        });
        let Error::View { view, source } = err else {
            panic!("still a view error")
        };
        assert_eq!(view, "q");
        assert!(matches!(
            source.downcast_ref::<QueryError>(),
            Some(QueryError::Level(LevelError::Corrupt(why))) if why == "a row"
        ));
        let other = level_error(Error::View {
            view: "q".into(),
            source: "not a level error".into(),
        });
        assert!(
            matches!(other, Error::View { source, .. } if source.to_string() == "not a level error")
        );
        assert!(matches!(level_error(Error::Closed), Error::Closed));
    }
}
