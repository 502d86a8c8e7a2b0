//! [`Query`]: the view that keeps the declared indexes.

use std::sync::Arc;

use flumedb_core::{
    Checkpoint, CommitPolicy, Doc, LogReader, Record, Stored, View, ViewContext, ViewSync,
};
use flumeview_level::Level;
use serde_json::Value;

use crate::count::Counts;
use crate::error::QueryError;
use crate::index::Index;
use crate::read::QueryHandle;
use crate::record::{Indexes, QueryRecord};

/// A query view: keeps the declared [`Index`]es (one row per record per index, in a
/// flumeview-level store) and answers map-filter-reduce [`Pipeline`](crate::Pipeline)s,
/// reading the best index's key ranges, or the whole log when no index helps.
///
/// The stored version is derived from `version` *and* the index declarations, so adding,
/// removing or changing an index rebuilds the view by itself.
///
/// ```
/// use flumedb_core::{Flume, Json};
/// use flumelog_memory::MemoryLog;
/// use flumeview_query::{Index, Pipeline, Query, QueryOptions};
/// use serde_json::json;
///
/// let db = Flume::open(MemoryLog::new(), Json)?;
/// let query = db.add_view(
///     "query",
///     Query::new(1, vec![Index::new("typ", ["value.content.type", "timestamp"])])?,
/// )?;
/// db.append(&json!({"value": {"content": {"type": "post"}}, "timestamp": 1}))?;
/// db.append(&json!({"value": {"content": {"type": "vote"}}, "timestamp": 2}))?;
///
/// let posts = Pipeline::parse(&json!([{"$filter": {"value": {"content": {"type": "post"}}}}]))?;
/// let found: Vec<_> = query.read(&posts, QueryOptions::new())?.collect::<Result<_, _>>()?;
/// assert_eq!(found, [json!({"value": {"content": {"type": "post"}}, "timestamp": 1})]);
/// assert_eq!(query.explain(&posts, &QueryOptions::new()).index.as_deref(), Some("typ"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// `Query<Doc>` keeps a database of [`Doc`](flumedb_core::Doc) records: it reads the indexed
/// fields of each record in place, in one pass over its bytes, and decodes a record only when
/// a read returns it. Both kinds give every record the same index rows.
pub struct Query<T: QueryRecord = Value> {
    level: Level<T>,
    indexes: Arc<Indexes>,
    counts: Arc<Counts>,
}

impl Query {
    /// A query view of `version` with these indexes (names unique and non-empty, each with at
    /// least one path), for a database of `serde_json::Value`s. With no indexes every query
    /// scans the log.
    pub fn new(version: u32, indexes: Vec<Index>) -> Result<Query, QueryError> {
        Query::build(version, indexes)
    }
}

impl Query<Doc> {
    /// [`Query::new`] for a database of [`Doc`] records: the indexed fields are read in place.
    /// Every record gets the same index rows as under `Query::new`.
    ///
    /// ```
    /// use flumedb_core::{Doc, Flume, Json};
    /// use flumelog_memory::MemoryLog;
    /// use flumeview_query::{Index, Pipeline, Query, QueryOptions};
    /// use serde_json::json;
    ///
    /// let db: Flume<MemoryLog, Doc> = Flume::open(MemoryLog::new(), Json)?;
    /// let query = db.add_view("query", Query::for_docs(1, vec![Index::new("typ", ["type"])])?)?;
    /// db.append(&Doc::from_json(r#"{"type":"post","text":"hi"}"#))?;
    /// let posts = Pipeline::parse(&json!({"type": "post"}))?;
    /// let found: Vec<_> = query.read(&posts, QueryOptions::new())?.collect::<Result<_, _>>()?;
    /// assert_eq!(found, [json!({"type": "post", "text": "hi"})]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn for_docs(version: u32, indexes: Vec<Index>) -> Result<Query<Doc>, QueryError> {
        Query::build(version, indexes)
    }
}

#[cfg(feature = "bipf")]
impl Query<flumecodec_bipf::BipfDoc> {
    /// [`Query::new`] for a database of BIPF records (`Flume<L, BipfDoc, Bipf>`, such as
    /// ssb-db2's log): the indexed fields are read in place. Every record gets the same index
    /// rows as its decoded value under `Query::new`. Feature `bipf`.
    ///
    /// ```
    /// use flumecodec_bipf::{Bipf, BipfDoc};
    /// use flumedb_core::Flume;
    /// use flumelog_memory::MemoryLog;
    /// use flumeview_query::{Index, Pipeline, Query, QueryOptions};
    /// use serde_json::json;
    ///
    /// let db: Flume<MemoryLog, BipfDoc, Bipf> = Flume::open(MemoryLog::new(), Bipf)?;
    /// let query = db.add_view(
    ///     "query",
    ///     Query::for_bipf(1, vec![Index::new("typ", ["value.content.type"])])?,
    /// )?;
    /// db.append(&BipfDoc::encode(&json!({"value": {"content": {"type": "vote"}}}))?)?;
    /// db.append(&BipfDoc::encode(&json!({"value": {"content": {"type": "post"}}}))?)?;
    /// let votes = Pipeline::parse(&json!({"value": {"content": {"type": "vote"}}}))?;
    /// let found: Vec<_> = query.read(&votes, QueryOptions::new())?.collect::<Result<_, _>>()?;
    /// assert_eq!(found, [json!({"value": {"content": {"type": "vote"}}})]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn for_bipf(
        version: u32,
        indexes: Vec<Index>,
    ) -> Result<Query<flumecodec_bipf::BipfDoc>, QueryError> {
        Query::build(version, indexes)
    }
}

impl<T: QueryRecord> Query<T> {
    fn build(version: u32, indexes: Vec<Index>) -> Result<Query<T>, QueryError> {
        Index::check(&indexes)?;
        let mut hasher = crc32fast::Hasher::new();
        hasher.update(&version.to_le_bytes());
        hasher.update(&(indexes.len() as u64).to_le_bytes());
        for index in &indexes {
            hasher.update(&index.describe());
        }
        let stored_version = hasher.finalize();
        let counts = Arc::new(Counts::new(indexes.len()));
        let indexes = Arc::new(Indexes::new(indexes));
        let (keys_of, noted) = (indexes.clone(), counts.clone());
        let level = Level::new(stored_version, move |record: &T, seq| {
            let keys = record.index_keys(&keys_of, seq);
            noted.note(&keys);
            Ok(keys)
        });
        Ok(Query {
            level,
            indexes,
            counts,
        })
    }
}

impl<T: QueryRecord> View<T> for Query<T> {
    type Handle = QueryHandle<T>;
    type Error = QueryError;

    fn version(&self) -> u32 {
        self.level.version()
    }

    fn open(&mut self, ctx: &ViewContext) -> Result<Option<Stored>, QueryError> {
        self.counts.clear();
        Ok(self.level.open(ctx)?)
    }

    fn handle(&self, sync: ViewSync, log: LogReader<T>) -> QueryHandle<T> {
        QueryHandle::new(
            self.level.handle(sync, log),
            self.indexes.clone(),
            self.counts.clone(),
        )
    }

    fn apply(&mut self, records: &[Record<T>], checkpoint: Checkpoint) -> Result<(), QueryError> {
        let applying = self.counts.begin();
        let applied = self.level.apply(records, checkpoint);
        applying.applied(applied.is_ok());
        Ok(applied?)
    }

    fn flush(&mut self) -> Result<(), QueryError> {
        Ok(self.level.flush()?)
    }

    fn reset(&mut self) -> Result<(), QueryError> {
        self.counts.clear();
        Ok(self.level.reset()?)
    }

    fn close(&mut self) -> Result<(), QueryError> {
        self.counts.clear();
        Ok(self.level.close()?)
    }

    fn commit_policy(&self) -> CommitPolicy {
        self.level.commit_policy()
    }
}
