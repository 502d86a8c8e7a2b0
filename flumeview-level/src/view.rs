//! [`Level`]: the view that maps records to keys and keeps `key -> seq` rows.

use std::sync::Arc;

use flumedb_core::{Checkpoint, LogReader, Record, Seq, Stored, View, ViewContext, ViewSync};

use crate::error::LevelError;
use crate::handle::LevelHandle;
use crate::key::{Key, KeyError};
use crate::layout::{self, META};
use crate::state::{LevelState, LiveBatch};
use crate::store::{self, Store};

type MapFn<T> = Box<dyn FnMut(&T, Seq) -> Result<Vec<Key>, KeyError> + Send>;

/// An ordered index: `map(value, seq)` returns the record's keys, and the view keeps a row
/// `key -> seq` for each, so the handle can `get` by key and read key ranges in order, live.
///
/// Two records with the same key: the later one wins (as in JS flumeview-level). To keep
/// every record, make keys unique with [`Key::with_seq`].
///
/// ```
/// use flumedb_core::{Flume, Json};
/// use flumelog_memory::MemoryLog;
/// use flumeview_level::{Key, Level, ReadOptions};
/// use serde_json::{Value, json};
///
/// let db = Flume::open(MemoryLog::new(), Json)?;
/// let by_author = db.add_view(
///     "by_author",
///     Level::new(1, |msg: &Value, seq| {
///         Ok(vec![Key::array([Key::try_from(&msg["author"])?, Key::try_from(&msg["n"])?])])
///     }),
/// )?;
/// db.append(&json!({"author": "@b", "n": 1}))?;
/// db.append(&json!({"author": "@a", "n": 2}))?;
/// let first = by_author.read(ReadOptions::new())?.next().unwrap()?;
/// assert_eq!(first.value, Some(json!({"author": "@a", "n": 2})));
/// # Ok::<(), flumedb_core::Error>(())
/// ```
pub struct Level<T> {
    version: u32,
    map: MapFn<T>,
    state: Arc<LevelState>,
}

impl<T: Send + 'static> Level<T> {
    /// A level view of `version` whose `map` returns each record's keys (empty: not indexed).
    /// A key that cannot be built or encoded (an object, NaN) rejects the record's keys; the
    /// record is reported by [`LevelHandle::rejected`] and indexing goes on.
    pub fn new(
        version: u32,
        map: impl FnMut(&T, Seq) -> Result<Vec<Key>, KeyError> + Send + 'static,
    ) -> Level<T> {
        Level {
            version,
            map: Box::new(map),
            state: Arc::default(),
        }
    }

    fn store(&self) -> Result<Arc<dyn Store>, LevelError> {
        self.state.store().ok_or(LevelError::NotOpen)
    }
}

/// One row of an applied batch: where its key is in the batch's key buffer, and its seq.
struct Span {
    key: std::ops::Range<usize>,
    seq: Seq,
    /// The seq as the row's value.
    value: [u8; 8],
}

impl Span {
    /// The row key in the batch's key buffer (`key` was cut from that buffer, so the range
    /// always lies inside it).
    fn key_in<'a>(&self, keys: &'a [u8]) -> &'a [u8] {
        debug_assert!(
            self.key.end <= keys.len(),
            "a row key outside the key buffer"
        );
        keys.get(self.key.clone()).unwrap_or_default()
    }
}

impl<T: Send + 'static> View<T> for Level<T> {
    type Handle = LevelHandle<T>;
    type Error = LevelError;

    fn version(&self) -> u32 {
        self.version
    }

    fn open(&mut self, ctx: &ViewContext) -> Result<Option<Stored>, LevelError> {
        let store = store::open(ctx.dir(), ctx.name(), ctx.memory_budget())?;
        self.state.set_store(Some(store.clone()));
        match store.get(META)?.map(|meta| layout::decode_meta(&meta)) {
            Some(Ok(stored)) => Ok(Some(stored)),
            // Rows without a (readable) META cannot be trusted: clear them, durably, and
            // rebuild.
            Some(Err(_)) | None => {
                if !store.is_empty()? {
                    store.clear()?;
                    store.persist()?;
                }
                Ok(None)
            }
        }
    }

    fn handle(&self, sync: ViewSync, log: LogReader<T>) -> LevelHandle<T> {
        LevelHandle::new(self.state.clone(), sync, log)
    }

    fn apply(&mut self, records: &[Record<T>], checkpoint: Checkpoint) -> Result<(), LevelError> {
        let store = self.store()?;
        // Every key is encoded into one buffer; rows point into it (no allocation per row).
        let mut keys: Vec<u8> = Vec::with_capacity(records.len() * 48);
        let mut spans: Vec<Span> = Vec::with_capacity(records.len() * 2);
        let mut rejected = Vec::new();
        for record in records {
            let record_keys = match (self.map)(&record.value, record.seq) {
                Ok(keys) => keys,
                Err(error) => {
                    rejected.push((record.seq, error));
                    continue;
                }
            };
            let (keys_mark, spans_mark) = (keys.len(), spans.len());
            let value = layout::encode_seq(record.seq);
            for key in &record_keys {
                let start = keys.len();
                if let Err(error) = key.encode_into(&mut keys) {
                    // All of this record's keys or none.
                    keys.truncate(keys_mark);
                    spans.truncate(spans_mark);
                    rejected.push((record.seq, error));
                    break;
                }
                spans.push(Span {
                    key: start..keys.len(),
                    seq: record.seq,
                    value,
                });
            }
        }
        let meta = layout::encode_meta(self.version, checkpoint);
        let mut rows: Vec<(&[u8], &[u8])> = spans
            .iter()
            .map(|span| (span.key_in(&keys), &span.value[..]))
            .collect();
        // Sorted, consecutive inserts find their place in the engine's memtable near the last
        // one (docs/performance.md). Equal keys keep their log order (stable sort), so the
        // later record still wins.
        rows.sort_by(|a, b| a.0.cmp(b.0));
        // One write per key: the engine gives all of a batch's writes one sequence number, so
        // for equal keys it is this code, not the engine, that makes the later record win.
        let mut unique: Vec<(&[u8], &[u8])> = Vec::with_capacity(rows.len() + 1);
        for row in rows {
            match unique.last_mut() {
                Some(last) if last.0 == row.0 => *last = row,
                _ => unique.push(row),
            }
        }
        let mut rows = unique;
        // The rows and the META row that claims them go in one atomic batch.
        rows.push((META, &meta));
        {
            let mut subscribers = self.state.live();
            if let Err(err) = store.write(&rows) {
                // The view fails on this error: end live reads, so they see the failure.
                subscribers.clear();
                return Err(err);
            }
            if !subscribers.is_empty() && !spans.is_empty() {
                let batch: LiveBatch = Arc::new(
                    spans
                        .iter()
                        .map(|span| (span.key_in(&keys).to_vec(), span.seq))
                        .collect(),
                );
                subscribers.retain(|tx| tx.send(batch.clone()).is_ok());
            }
        }
        for (seq, error) in rejected {
            self.state.reject(seq, error);
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), LevelError> {
        self.store()?.persist()
    }

    fn reset(&mut self) -> Result<(), LevelError> {
        // Cleared before the rebuild starts, so the clear cannot race rebuilt rows. Live
        // readers end: their old rows are gone.
        let mut subscribers = self.state.live();
        let store = self.store()?;
        store.clear()?;
        // Durable before any rebuilt row is written: otherwise a power loss could bring back
        // old rows under the new META.
        store.persist()?;
        subscribers.clear();
        self.state.clear_rejected();
        Ok(())
    }

    fn close(&mut self) -> Result<(), LevelError> {
        self.state.live().clear();
        // Flushes (within a deadline: a full disk must not hang close) and releases the store;
        // it is let go of even if that fails, and the error reported.
        let closed = self.store().map_or(Ok(()), |store| store.close());
        self.state.set_store(None);
        closed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_view_used_before_it_opens_says_so_rather_than_corrupt() {
        let mut level = Level::<u64>::new(1, |_, _| Ok(Vec::new()));
        assert!(matches!(level.flush(), Err(LevelError::NotOpen)));
        assert!(matches!(level.reset(), Err(LevelError::NotOpen)));
        assert!(matches!(
            level.apply(&[], Checkpoint::default()),
            Err(LevelError::NotOpen)
        ));
        // Closing a view that never opened has nothing to release.
        assert!(level.close().is_ok());
    }
}
