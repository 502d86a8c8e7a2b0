//! What a [`Level`](crate::Level) view shares with its handles: the open store, the live
//! readers' channels, and the records whose keys were rejected.

use std::sync::Arc;

use crossbeam_channel::Sender;
use flumedb_core::Seq;
use parking_lot::{Mutex, MutexGuard, RwLock};

use crate::key::KeyError;
use crate::store::Store;

/// Rows written by one applied batch, sent to live readers: (encoded key, seq).
pub(crate) type LiveBatch = Arc<Vec<(Vec<u8>, Seq)>>;

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

/// The state of one level view: written by the view, read by its handles.
#[derive(Default)]
pub(crate) struct LevelState {
    /// `None` until the view opens, and after it closes.
    store: RwLock<Option<Arc<dyn Store>>>,
    /// Live readers. Writes and broadcasts happen under this lock, so a reader that
    /// subscribes and takes its snapshot under it sees every batch exactly once.
    live: Mutex<Vec<Sender<LiveBatch>>>,
    /// How many records were rejected, and the first [`REJECTED_KEPT`] of them.
    rejected: Mutex<(u64, Vec<Rejected>)>,
}

impl LevelState {
    /// The open store, if the view is open.
    pub(crate) fn store(&self) -> Option<Arc<dyn Store>> {
        self.store.read().clone()
    }

    /// Sets (on open) or releases (on close) the store.
    pub(crate) fn set_store(&self, store: Option<Arc<dyn Store>>) {
        *self.store.write() = store;
    }

    /// The live readers' channels, locked: hold the lock while writing a batch and sending
    /// it, or while subscribing and taking a snapshot.
    pub(crate) fn live(&self) -> MutexGuard<'_, Vec<Sender<LiveBatch>>> {
        self.live.lock()
    }

    /// Notes a record whose keys could not be indexed.
    pub(crate) fn reject(&self, seq: Seq, error: KeyError) {
        let mut rejected = self.rejected.lock();
        rejected.0 += 1;
        if rejected.1.len() < REJECTED_KEPT {
            rejected.1.push(Rejected { seq, error });
        }
    }

    /// How many records were rejected, and (up to [`REJECTED_KEPT`] of) which.
    pub(crate) fn rejected(&self) -> (u64, Vec<Rejected>) {
        self.rejected.lock().clone()
    }

    /// Forgets the rejected records (the view is rebuilt).
    pub(crate) fn clear_rejected(&self) {
        *self.rejected.lock() = (0, Vec::new());
    }
}
