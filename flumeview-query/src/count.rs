//! Counts of each index's rows by the value of its first field, so that a `$count` the index
//! decides by that field alone is answered without reading rows or records.
//!
//! The counts live in memory. A value's count is built the first time a count asks for it,
//! by one pass over the index rows with that first field (keys only; with a log that can
//! delete, each row's record is checked, deletes of earlier processes included); from then on
//! every applied batch adds its rows. A delete the log reports, a reset, a failed batch or a
//! close drops them, and the next count builds them again.

use std::collections::HashMap;
use std::ops::Bound;

use flumedb_core::{Error, LogReader, Wait};
use flumeview_level::{Key, LevelHandle, ReadOptions};
use parking_lot::{Mutex, MutexGuard};

use crate::index::Index;
use crate::record::QueryRecord;

/// One index's counts.
struct IndexCounts {
    /// The log's delete counter when they were built: a change means records may be gone.
    deletes: Option<u64>,
    /// Rows by the encoded key of their first field, for the values counted so far.
    by_first: HashMap<Vec<u8>, u64>,
}

/// Row first fields noted during a batch: (index, encoded first field).
type Noted = Vec<(usize, Vec<u8>)>;

/// Counts of rows per index, shared by the view (which keeps them current) and its handles
/// (which build and read them).
#[derive(Default)]
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
        last: flumedb_core::Seq,
    ) -> Result<u64, Error> {
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
            }),
        };
        let mut total = 0;
        for point in points {
            let first = point
                .encode()
                .map_err(|e| Error::InvalidArgument(format!("count of {point:?}: {e}")))?;
            let n = match counts.by_first.get(&first) {
                Some(n) => *n,
                None => {
                    let n = build(level, log, index.1, point, deletes.is_some())?;
                    counts.by_first.insert(first, n);
                    n
                }
            };
            total += n;
        }
        Ok(total)
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
        // Only values counted already: the others are counted from the store when asked.
        for (index, first) in pending.into_iter().flatten() {
            if let Some(Some(counts)) = self.indexes.get_mut(index)
                && let Some(n) = counts.by_first.get_mut(&first)
            {
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

/// Counts `index`'s rows whose first field is `point`, leaving out rows whose record the log
/// deleted when `deletes` (the log can delete).
fn build<T: QueryRecord>(
    level: &LevelHandle<T>,
    log: &LogReader<T>,
    index: &Index,
    point: &Key,
    deletes: bool,
) -> Result<u64, Error> {
    let name = Key::String(index.name().to_string());
    let lower = vec![name, point.clone()];
    let mut upper = lower.clone();
    upper.resize(index.paths().len() + 2, Key::Max);
    let rows = level.read(
        ReadOptions::new()
            .keys(false)
            .values(false)
            .wait(Wait::Now)
            .bounds(
                Bound::Included(Key::Array(lower)),
                Bound::Included(Key::Array(upper)),
            ),
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
