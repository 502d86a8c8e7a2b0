//! [`Level`]: the view that maps records to keys and keeps `key -> seq` rows.

use std::sync::Arc;

use crossbeam_channel::Sender;
use flumedb_core::{Checkpoint, LogReader, Record, Seq, Stored, View, ViewContext, ViewSync};
use parking_lot::{Mutex, RwLock};

use crate::error::LevelError;
use crate::key::{Key, KeyError};
use crate::read::LevelHandle;
use crate::store::{self, Store};

/// The META row: below every encoded key (their tags start at 0x10).
pub(crate) const META: &[u8] = &[0x00];

/// Rows written by one applied batch, sent to live readers: (encoded key, seq).
pub(crate) type LiveBatch = Arc<Vec<(Vec<u8>, Seq)>>;

type MapFn<T> = Box<dyn FnMut(&T, Seq) -> Result<Vec<Key>, KeyError> + Send>;

/// A record whose keys could not be indexed.
#[derive(Clone, PartialEq, Debug)]
pub struct Rejected {
    /// The record.
    pub seq: Seq,
    /// Why.
    pub error: KeyError,
}

/// How many rejected records a view remembers (the count is kept in full).
const REJECTED_KEPT: usize = 100;

/// State shared by the view (which writes) and its handles (which read).
pub(crate) struct Shared {
    pub(crate) store: RwLock<Option<Arc<dyn Store>>>,
    /// Live readers. Writes and broadcasts happen under this lock, so a reader that
    /// subscribes and takes its snapshot under it sees every batch exactly once.
    pub(crate) live: Mutex<Vec<Sender<LiveBatch>>>,
    pub(crate) rejected: Mutex<(u64, Vec<Rejected>)>,
}

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
    shared: Arc<Shared>,
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
            shared: Arc::new(Shared {
                store: RwLock::new(None),
                live: Mutex::new(Vec::new()),
                rejected: Mutex::new((0, Vec::new())),
            }),
        }
    }

    fn store(&self) -> Result<Arc<dyn Store>, LevelError> {
        self.shared
            .store
            .read()
            .clone()
            .ok_or_else(|| LevelError::Corrupt("the view is not open".into()))
    }

    fn reject(&self, seq: Seq, error: KeyError) {
        let mut rejected = self.shared.rejected.lock();
        rejected.0 += 1;
        if rejected.1.len() < REJECTED_KEPT {
            rejected.1.push(Rejected { seq, error });
        }
    }
}

/// META: version (u32 LE), then the checkpoint ([`Checkpoint::encode`]).
fn encode_meta(version: u32, checkpoint: Checkpoint) -> Vec<u8> {
    let mut out = version.to_le_bytes().to_vec();
    out.extend_from_slice(&checkpoint.encode());
    out
}

/// Reads META; an older layout (a bare since, without the record's fingerprint) does not
/// decode, so that index is rebuilt once.
fn decode_meta(bytes: &[u8]) -> Result<Stored, LevelError> {
    let bad = || LevelError::Corrupt(format!("META row of {} bytes", bytes.len()));
    let (version, checkpoint) = bytes.split_at_checked(4).ok_or_else(bad)?;
    let version = u32::from_le_bytes(version.try_into().map_err(|_| bad())?);
    let checkpoint = Checkpoint::decode(checkpoint).ok_or_else(bad)?;
    Ok(Stored {
        version,
        checkpoint,
    })
}

impl<T: Send + 'static> View<T> for Level<T> {
    type Handle = LevelHandle<T>;
    type Error = LevelError;

    fn version(&self) -> u32 {
        self.version
    }

    fn open(&mut self, ctx: &ViewContext) -> Result<Option<Stored>, LevelError> {
        let store = store::open(ctx.dir(), ctx.name())?;
        *self.shared.store.write() = Some(store.clone());
        match store.get(META)?.map(|meta| decode_meta(&meta)) {
            Some(Ok(stored)) => Ok(Some(stored)),
            // Rows without a (readable) META cannot be trusted (JS left such indexes): clear
            // them, durably, and rebuild.
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
        LevelHandle::new(self.shared.clone(), sync, log)
    }

    fn apply(&mut self, records: &[Record<T>], checkpoint: Checkpoint) -> Result<(), LevelError> {
        let store = self.store()?;
        // Every key is encoded into one buffer; rows point into it (no allocation per row).
        let mut keys: Vec<u8> = Vec::with_capacity(records.len() * 48);
        let mut spans: Vec<(usize, usize, [u8; 8])> = Vec::with_capacity(records.len() * 2);
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
            let seq = record.seq.get().to_be_bytes();
            for key in &record_keys {
                let start = keys.len();
                if let Err(error) = key.encode_into(&mut keys) {
                    // All of this record's keys or none.
                    keys.truncate(keys_mark);
                    spans.truncate(spans_mark);
                    rejected.push((record.seq, error));
                    break;
                }
                spans.push((start, keys.len(), seq));
            }
        }
        let meta = encode_meta(self.version, checkpoint);
        let mut rows: Vec<(&[u8], &[u8])> = spans
            .iter()
            .map(|(start, end, seq)| (&keys[*start..*end], &seq[..]))
            .collect();
        // Sorted, consecutive inserts find their place in the engine's memtable near the last
        // one (measured: see the README). Equal keys keep their log order (stable sort), so
        // the later record still wins.
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
            let mut subscribers = self.shared.live.lock();
            if let Err(err) = store.write(&rows) {
                // The view fails on this error: end live reads, so they see the failure.
                subscribers.clear();
                return Err(err);
            }
            if !subscribers.is_empty() && !spans.is_empty() {
                let batch: LiveBatch = Arc::new(
                    spans
                        .iter()
                        .map(|(start, end, seq)| {
                            (
                                keys[*start..*end].to_vec(),
                                Seq::new(u64::from_be_bytes(*seq)),
                            )
                        })
                        .collect(),
                );
                subscribers.retain(|tx| tx.send(batch.clone()).is_ok());
            }
        }
        for (seq, error) in rejected {
            self.reject(seq, error);
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), LevelError> {
        self.store()?.persist()
    }

    fn reset(&mut self) -> Result<(), LevelError> {
        // Cleared before the rebuild starts (JS cleared without waiting, racing the rebuild,
        // and left indexes empty). Live readers end: their old rows are gone.
        let mut subscribers = self.shared.live.lock();
        let store = self.store()?;
        store.clear()?;
        // Durable before any rebuilt row is written: otherwise a power loss could bring back
        // old rows under the new META.
        store.persist()?;
        subscribers.clear();
        *self.shared.rejected.lock() = (0, Vec::new());
        Ok(())
    }

    fn close(&mut self) -> Result<(), LevelError> {
        self.shared.live.lock().clear();
        // Flushes (within a deadline: a full disk must not hang close) and releases the store;
        // it is let go of even if that fails, and the error reported.
        let closed = self.store().map_or(Ok(()), |store| store.close());
        *self.shared.store.write() = None;
        closed
    }
}
