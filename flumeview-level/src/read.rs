//! Reading a level view: [`LevelHandle`], [`ReadOptions`], and the row iterators.

use std::collections::VecDeque;
use std::ops::{Bound, RangeBounds};
use std::sync::Arc;

use crossbeam_channel::Receiver;
use flumedb_core::{Error, LogReader, Progress, Seq, ViewSync, Wait};

use crate::error::LevelError;
use crate::key::Key;
use crate::store::Rows;
use crate::view::{LiveBatch, Rejected, Shared};

/// Which rows to read, in which order, with what: JS flumeview-level's `read` options.
///
/// ```
/// use flumeview_level::{Key, ReadOptions};
/// // Every row of author "@a": keys [author, ...] from ["@a"] up to ["@a", Max].
/// let opts = ReadOptions::new()
///     .gte(Key::array(["@a"]))
///     .lt(Key::Array(vec![Key::from("@a"), Key::Max]))
///     .reverse()
///     .limit(10);
/// ```
#[derive(Clone, Debug)]
pub struct ReadOptions {
    lower: Bound<Key>,
    upper: Bound<Key>,
    reverse: bool,
    limit: Option<usize>,
    keys: bool,
    values: bool,
    old: bool,
    sync: bool,
    wait: Wait,
}

impl Default for ReadOptions {
    fn default() -> Self {
        ReadOptions {
            lower: Bound::Unbounded,
            upper: Bound::Unbounded,
            reverse: false,
            limit: None,
            keys: true,
            values: true,
            old: true,
            sync: true,
            wait: Wait::Latest,
        }
    }
}

impl ReadOptions {
    /// Every row, in key order, with values.
    pub fn new() -> ReadOptions {
        ReadOptions::default()
    }
    /// Keys greater than `key`.
    pub fn gt(mut self, key: impl Into<Key>) -> Self {
        self.lower = Bound::Excluded(key.into());
        self
    }
    /// Keys greater than or equal to `key`.
    pub fn gte(mut self, key: impl Into<Key>) -> Self {
        self.lower = Bound::Included(key.into());
        self
    }
    /// Keys less than `key`.
    pub fn lt(mut self, key: impl Into<Key>) -> Self {
        self.upper = Bound::Excluded(key.into());
        self
    }
    /// Keys less than or equal to `key`.
    pub fn lte(mut self, key: impl Into<Key>) -> Self {
        self.upper = Bound::Included(key.into());
        self
    }
    /// Keys within `lower` and `upper`, given as [`Bound`]s (replacing any set before).
    pub fn bounds(mut self, lower: Bound<Key>, upper: Bound<Key>) -> Self {
        self.lower = lower;
        self.upper = upper;
        self
    }
    /// Highest key first (stored rows only; live rows come in indexing order).
    pub fn reverse(mut self) -> Self {
        self.reverse = true;
        self
    }
    /// At most `n` stored rows (applied before values are fetched).
    pub fn limit(mut self, n: usize) -> Self {
        self.limit = Some(n);
        self
    }
    /// With `false`, rows carry no key (`Row::key` is `None`; keys are not decoded).
    pub fn keys(mut self, keys: bool) -> Self {
        self.keys = keys;
        self
    }
    /// With `false`, rows carry no value (no log reads): keys and seqs only.
    pub fn values(mut self, values: bool) -> Self {
        self.values = values;
        self
    }
    /// Live reads: with `false`, only rows indexed after the read starts.
    pub fn old(mut self, old: bool) -> Self {
        self.old = old;
        self
    }
    /// Live reads: with `false`, no [`LiveItem::Sync`] marker between old and new rows.
    pub fn sync(mut self, sync: bool) -> Self {
        self.sync = sync;
        self
    }

    /// How long `read` waits for the view first (default [`Wait::Latest`]: everything
    /// appended before the read began).
    pub fn wait(mut self, wait: Wait) -> Self {
        self.wait = wait;
        self
    }

    fn shape(&self) -> Shape {
        Shape {
            keys: self.keys,
            values: self.values,
        }
    }

    /// The bounds as encoded keys; the lower one always above the META row.
    fn encoded(&self) -> Result<EncodedBounds, Error> {
        let enc = |k: &Key| {
            k.encode()
                .map_err(|e| Error::InvalidArgument(format!("bound {k:?}: {e}")))
        };
        let lower = match &self.lower {
            Bound::Unbounded => Bound::Included(vec![0x01]),
            Bound::Included(k) => Bound::Included(enc(k)?),
            Bound::Excluded(k) => Bound::Excluded(enc(k)?),
        };
        let upper = match &self.upper {
            Bound::Unbounded => Bound::Unbounded,
            Bound::Included(k) => Bound::Included(enc(k)?),
            Bound::Excluded(k) => Bound::Excluded(enc(k)?),
        };
        Ok((lower, upper))
    }
}

/// Lower and upper bounds as encoded keys.
type EncodedBounds = (Bound<Vec<u8>>, Bound<Vec<u8>>);

/// One index row: its key (unless `keys(false)`), the record's seq, and (unless
/// `values(false)`) the record.
#[derive(Clone, PartialEq, Debug)]
pub struct Row<T> {
    /// The key.
    pub key: Option<Key>,
    /// The record's seq.
    pub seq: Seq,
    /// The record, fetched from the log.
    pub value: Option<T>,
}

/// What a live read yields.
#[derive(Clone, PartialEq, Debug)]
pub enum LiveItem<T> {
    /// A row.
    Row(Row<T>),
    /// Every stored row has been read; what follows was indexed after the read started.
    Sync,
}

/// Reads a level view. Every read waits until the view has caught up (see [`Wait`]).
pub struct LevelHandle<T> {
    shared: Arc<Shared>,
    sync: ViewSync,
    log: LogReader<T>,
}

impl<T> Clone for LevelHandle<T> {
    fn clone(&self) -> Self {
        LevelHandle {
            shared: self.shared.clone(),
            sync: self.sync.clone(),
            log: self.log.clone(),
        }
    }
}

fn seq_of(value: &[u8]) -> Result<Seq, Error> {
    let bytes: [u8; 8] = value.try_into().map_err(|_| Error::Corrupt {
        seq: None,
        reason: format!("an index row's value has {} bytes, not 8", value.len()),
    })?;
    Ok(Seq::new(u64::from_be_bytes(bytes)))
}

fn in_bounds(key: &[u8], lower: &Bound<Vec<u8>>, upper: &Bound<Vec<u8>>) -> bool {
    (
        lower.as_ref().map(Vec::as_slice),
        upper.as_ref().map(Vec::as_slice),
    )
        .contains(key)
}

/// A storage error as the view's error, named after the view.
fn store_error(view: &str, err: LevelError) -> Error {
    Error::View {
        view: view.to_string(),
        source: Box::new(err),
    }
}

impl<T: Send + 'static> LevelHandle<T> {
    pub(crate) fn new(shared: Arc<Shared>, sync: ViewSync, log: LogReader<T>) -> Self {
        LevelHandle { shared, sync, log }
    }

    fn store(&self) -> Result<Arc<dyn crate::store::Store>, Error> {
        self.shared.store.read().clone().ok_or(Error::Closed)
    }

    /// The seq indexed under `key`, once the view has caught up.
    pub fn get_seq(&self, key: &Key) -> Result<Option<Seq>, Error> {
        let encoded = key
            .encode()
            // The error says what is wrong; the key itself may be too large (or deep) to print.
            .map_err(|e| Error::InvalidArgument(format!("the key cannot be looked up: {e}")))?;
        let found = self.sync.read(Wait::Latest, || {
            self.store().and_then(|s| {
                s.get(&encoded)
                    .map_err(|e| store_error(self.sync.name(), e))
            })
        })??;
        found.map(|v| seq_of(&v)).transpose()
    }

    /// The record indexed under `key` (its seq and value), once the view has caught up.
    pub fn get(&self, key: &Key) -> Result<Option<(Seq, T)>, Error> {
        match self.get_seq(key)? {
            Some(seq) => Ok(Some((seq, self.log.get(seq)?))),
            None => Ok(None),
        }
    }

    /// The stored rows within the options' bounds, once the view has caught up. Rows of
    /// deleted records are skipped.
    pub fn read(&self, options: ReadOptions) -> Result<LevelIter<T>, Error> {
        let (lower, upper) = options.encoded()?;
        let rows = self.sync.read(options.wait, || {
            self.store()
                .map(|s| s.range(lower.clone(), upper.clone(), options.reverse))
        })??;
        Ok(LevelIter {
            view: self.sync.name().to_string(),
            rows,
            log: self.log.clone(),
            shape: options.shape(),
            remaining: options.limit,
        })
    }

    /// A live read: the stored rows (unless `old(false)`), then [`LiveItem::Sync`] (unless
    /// `sync(false)`), then each row as it is indexed, exactly once. It ends with
    /// [`Error::Closed`] when the database closes, or an error when the view is rebuilt.
    pub fn live(&self, options: ReadOptions) -> Result<LiveIter<T>, Error> {
        let (lower, upper) = options.encoded()?;
        if options.old {
            self.sync.wait(Wait::Latest)?;
        } else {
            self.sync.check()?;
        }
        let (tx, rx) = crossbeam_channel::unbounded();
        // Subscribing and taking the snapshot under the lock that writes happen under: every
        // batch is either in the snapshot or on the channel, never both, never neither.
        let old = {
            let mut subscribers = self.shared.live.lock();
            let old = if options.old {
                Some(
                    self.store()?
                        .range(lower.clone(), upper.clone(), options.reverse),
                )
            } else {
                None
            };
            subscribers.push(tx);
            old
        };
        Ok(LiveIter {
            old: old.map(|rows| LevelIter {
                view: self.sync.name().to_string(),
                rows,
                log: self.log.clone(),
                shape: options.shape(),
                remaining: options.limit,
            }),
            marker: options.old && options.sync,
            pending: VecDeque::new(),
            rx,
            lower,
            upper,
            log: self.log.clone(),
            shape: options.shape(),
            sync: self.sync.clone(),
            done: false,
        })
    }

    /// Whether this view's index files were found damaged and thrown away (so the view
    /// rebuilt from the log), and why; `None` if they were not, or the view is closed.
    ///
    /// Damage is found when the index opens (a clean close leaves a check file, verified
    /// before the storage engine reads anything) or when a read meets it (then the read fails
    /// with [`LevelError::Damaged`] and `Flume::rebuild` repairs
    /// the view).
    pub fn repaired(&self) -> Option<crate::Repaired> {
        self.shared.store.read().as_ref()?.repaired()
    }

    /// How many records had keys that could not be indexed, and (up to 100 of) which.
    pub fn rejected(&self) -> (u64, Vec<Rejected>) {
        self.shared.rejected.lock().clone()
    }

    /// The view's progress against the log.
    pub fn progress(&self) -> Progress {
        self.sync.progress()
    }
}

/// What each row carries.
#[derive(Clone, Copy)]
struct Shape {
    keys: bool,
    values: bool,
}

fn row<T>(log: &LogReader<T>, shape: Shape, key: &[u8], seq: Seq) -> Option<Result<Row<T>, Error>> {
    let key = if shape.keys {
        match Key::decode(key) {
            Ok(key) => Some(key),
            Err(e) => {
                return Some(Err(Error::Corrupt {
                    seq: Some(seq),
                    reason: format!("index row key: {e}"),
                }));
            }
        }
    } else {
        None
    };
    let values = shape.values;
    let value = if values {
        match log.get(seq) {
            Ok(value) => Some(value),
            Err(Error::Deleted { .. }) => return None,
            Err(e) => return Some(Err(e)),
        }
    } else {
        None
    };
    Some(Ok(Row { key, seq, value }))
}

/// Stored rows, from a snapshot taken when the read began.
pub struct LevelIter<T> {
    view: String,
    rows: Rows,
    log: LogReader<T>,
    shape: Shape,
    remaining: Option<usize>,
}

impl<T> Iterator for LevelIter<T> {
    type Item = Result<Row<T>, Error>;

    fn next(&mut self) -> Option<Result<Row<T>, Error>> {
        loop {
            if self.remaining == Some(0) {
                return None;
            }
            let (key, value) = match self.rows.next()? {
                Ok(kv) => kv,
                Err(e) => return Some(Err(store_error(&self.view, e))),
            };
            let seq = Seq::new(u64::from_be_bytes(value));
            if let Some(item) = row(&self.log, self.shape, &key, seq) {
                if let Some(n) = &mut self.remaining {
                    *n -= 1;
                }
                return Some(item);
            }
        }
    }
}

/// The iterator of [`LevelHandle::live`].
pub struct LiveIter<T> {
    old: Option<LevelIter<T>>,
    marker: bool,
    pending: VecDeque<(Vec<u8>, Seq)>,
    rx: Receiver<LiveBatch>,
    lower: Bound<Vec<u8>>,
    upper: Bound<Vec<u8>>,
    log: LogReader<T>,
    shape: Shape,
    sync: ViewSync,
    done: bool,
}

impl<T> Iterator for LiveIter<T> {
    type Item = Result<LiveItem<T>, Error>;

    fn next(&mut self) -> Option<Result<LiveItem<T>, Error>> {
        loop {
            if self.done {
                return None;
            }
            if let Some(old) = &mut self.old {
                match old.next() {
                    Some(item) => return Some(item.map(LiveItem::Row)),
                    None => {
                        self.old = None;
                        if self.marker {
                            return Some(Ok(LiveItem::Sync));
                        }
                    }
                }
                continue;
            }
            if let Some((key, seq)) = self.pending.pop_front() {
                if let Some(item) = row(&self.log, self.shape, &key, seq) {
                    return Some(item.map(LiveItem::Row));
                }
                continue;
            }
            match self.rx.recv() {
                Ok(batch) => self.pending.extend(
                    batch
                        .iter()
                        .filter(|(key, _)| in_bounds(key, &self.lower, &self.upper))
                        .cloned(),
                ),
                Err(_) => {
                    self.done = true;
                    return Some(Err(match self.sync.check() {
                        Err(e) => e,
                        Ok(()) => Error::View {
                            view: self.sync.name().to_string(),
                            source: "the view was rebuilt; start the live read again".into(),
                        },
                    }));
                }
            }
        }
    }
}

/// What a handle is built around, for views that read through a level view.
impl<T> LevelHandle<T> {
    /// The [`ViewSync`] the handle was built with: how the view's reads wait until it has
    /// caught up.
    pub fn view_sync(&self) -> &ViewSync {
        &self.sync
    }

    /// The log the view indexes, which fetches the records its rows point to.
    pub fn log(&self) -> &LogReader<T> {
        &self.log
    }
}
