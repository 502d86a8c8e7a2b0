//! [`LevelHandle`]: reading a level view by key, by key range, and live.

use std::sync::Arc;

use flumedb_core::{Error, LogReader, Progress, Record, Seq, ViewSync, Wait};

use crate::check::Repaired;
use crate::key::Key;
use crate::layout;
use crate::options::ReadOptions;
use crate::rows::{LiveRows, Rows, store_error};
use crate::state::{LevelState, Rejected};
use crate::store::Store;

/// Reads a level view. Every read waits until the view has caught up (see [`Wait`]).
pub struct LevelHandle<T> {
    state: Arc<LevelState>,
    sync: ViewSync,
    log: LogReader<T>,
}

impl<T> Clone for LevelHandle<T> {
    fn clone(&self) -> Self {
        LevelHandle {
            state: self.state.clone(),
            sync: self.sync.clone(),
            log: self.log.clone(),
        }
    }
}

impl<T: Send + 'static> LevelHandle<T> {
    pub(crate) fn new(state: Arc<LevelState>, sync: ViewSync, log: LogReader<T>) -> Self {
        LevelHandle { state, sync, log }
    }

    fn store(&self) -> Result<Arc<dyn Store>, Error> {
        self.state.store().ok_or(Error::Closed)
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
        found
            .map(|value| layout::decode_seq(&value))
            .transpose()
            .map_err(|e| store_error(self.sync.name(), e))
    }

    /// The record indexed under `key`, once the view has caught up: a [`Record`] (seq and
    /// value), the shape of the database's streams and of flumeview-query's `records`.
    pub fn get(&self, key: &Key) -> Result<Option<Record<T>>, Error> {
        match self.get_seq(key)? {
            Some(seq) => Ok(Some(Record {
                seq,
                value: self.log.get(seq)?,
            })),
            None => Ok(None),
        }
    }

    /// The stored rows within the options' bounds, once the view has caught up. Rows of
    /// deleted records are skipped.
    pub fn read(&self, options: ReadOptions) -> Result<Rows<T>, Error> {
        let (lower, upper) = options.encoded()?;
        let rows = self.sync.read(options.wait, || {
            self.store()
                .map(|s| s.range(lower.clone(), upper.clone(), options.reverse))
        })??;
        Ok(Rows::new(
            self.sync.name(),
            rows,
            self.log.clone(),
            &options,
        ))
    }

    /// A live read: the stored rows (unless `old(false)`), then [`LiveItem::Sync`] (unless
    /// `sync(false)`), then each row as it is indexed, exactly once. It ends with
    /// [`Error::Closed`] when the database closes, or an error when the view is rebuilt.
    ///
    /// [`LiveItem::Sync`]: crate::LiveItem::Sync
    pub fn live(&self, options: ReadOptions) -> Result<LiveRows<T>, Error> {
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
            let mut subscribers = self.state.live();
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
        let old = old.map(|rows| Rows::new(self.sync.name(), rows, self.log.clone(), &options));
        Ok(LiveRows::new(
            old,
            rx,
            (lower, upper),
            self.log.clone(),
            self.sync.clone(),
            &options,
        ))
    }

    /// Whether this view's index files were found damaged and thrown away (so the view
    /// rebuilt from the log), and why; `None` if they were not, or the view is closed.
    ///
    /// Damage is found when the index opens (a clean close leaves a check file, verified
    /// before the storage engine reads anything) or when a read meets it (then the read fails
    /// with [`LevelError::Damaged`](crate::LevelError::Damaged) and `Flume::rebuild` repairs
    /// the view).
    pub fn repaired(&self) -> Option<Repaired> {
        self.state.store()?.repaired()
    }

    /// How many records had keys that could not be indexed, and (up to 100 of) which.
    pub fn rejected(&self) -> (u64, Vec<Rejected>) {
        self.state.rejected()
    }

    /// The view's progress against the log.
    pub fn progress(&self) -> Progress {
        self.sync.progress()
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
