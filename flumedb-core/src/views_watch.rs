//! [`ViewsWatch`]: the observable state of a database's views, that reads wait on.
//!
//! One per database: whether it is closed or ready, and each view's processed `since` and
//! status, under one lock with one condition variable. The feeder updates it after every batch;
//! readers wait on it through their view's [`ViewSync`](crate::ViewSync).

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::error::Error;
use crate::loom_sync::{Condvar, Mutex, MutexGuard};
use crate::progress::{Progress, ViewStatus};
use crate::seq::{Seq, Since};

/// The views' state behind one lock, and the condition variable readers wait on.
pub(crate) struct ViewsWatch {
    state: Mutex<ViewsState>,
    changed: Condvar,
    /// How long a read waits for its view by default (`None`: no limit).
    pub(crate) read_timeout: Option<Duration>,
}

/// What [`ViewsWatch`] guards.
pub(crate) struct ViewsState {
    /// The database is closed (or closing): waits end with `Error::Closed`.
    pub(crate) closed: bool,
    /// The readiness gate: while shut, reads (except `Wait::Now`) wait.
    pub(crate) ready: bool,
    /// Every added view, indexed by its id.
    pub(crate) views: Vec<ViewEntry>,
    /// Names of views being opened by `add_view`, not yet in `views`.
    pub(crate) reserved: Vec<Arc<str>>,
}

impl ViewsState {
    /// The entry of view `id`.
    #[allow(
        clippy::indexing_slicing,
        reason = "ids are positions handed out as views are added; entries are never removed"
    )]
    pub(crate) fn entry(&self, id: usize) -> &ViewEntry {
        &self.views[id]
    }

    /// The entry of view `id`, to update.
    #[allow(
        clippy::indexing_slicing,
        reason = "ids are positions handed out as views are added; entries are never removed"
    )]
    pub(crate) fn entry_mut(&mut self, id: usize) -> &mut ViewEntry {
        &mut self.views[id]
    }
}

/// What stopped a view (or the reading of a chunk for views): the record it stopped on, if
/// the error belongs to one, and the error.
#[derive(Clone)]
pub(crate) struct Failure {
    pub(crate) seq: Option<Seq>,
    pub(crate) cause: Arc<Error>,
}

/// One view as readers see it.
pub(crate) struct ViewEntry {
    pub(crate) name: Arc<str>,
    /// The last record the view has processed.
    pub(crate) since: Since,
    /// What stopped the view (and the record it stopped on), until a rebuild.
    pub(crate) failure: Option<Failure>,
    /// Bumped before every reset, so a read that raced a reset can tell and retry.
    pub(crate) epoch: u64,
}

impl ViewEntry {
    /// A new view that has processed everything up to `since`.
    pub(crate) fn new(name: Arc<str>, since: Since) -> ViewEntry {
        ViewEntry {
            name,
            since,
            failure: None,
            epoch: 0,
        }
    }

    /// The error reads of a failed view return.
    pub(crate) fn failed_error(&self) -> Option<Error> {
        self.failure.as_ref().map(|failure| Error::ViewFailed {
            view: self.name.to_string(),
            seq: failure.seq,
            cause: failure.cause.clone(),
        })
    }
}

impl ViewsWatch {
    pub(crate) fn new(ready: bool, read_timeout: Option<Duration>) -> ViewsWatch {
        ViewsWatch {
            state: Mutex::new(ViewsState {
                closed: false,
                ready,
                views: Vec::new(),
                reserved: Vec::new(),
            }),
            changed: Condvar::new(),
            read_timeout,
        }
    }

    /// The state, locked (without waking anyone afterwards: only for reading, or for changes
    /// no reader waits on).
    pub(crate) fn lock(&self) -> MutexGuard<'_, ViewsState> {
        self.state.lock()
    }

    /// Changes the state under the lock and wakes every waiting reader.
    pub(crate) fn update<R>(&self, f: impl FnOnce(&mut ViewsState) -> R) -> R {
        let result = f(&mut self.state.lock());
        self.changed.notify_all();
        result
    }

    /// Blocks until the state changes (and is locked again), or `deadline` passes; returns
    /// whether it passed.
    pub(crate) fn wait_change(
        &self,
        state: &mut MutexGuard<'_, ViewsState>,
        deadline: Option<Instant>,
    ) -> bool {
        match deadline {
            None => {
                self.changed.wait(state);
                false
            }
            Some(deadline) => self.changed.wait_until(state, deadline).timed_out(),
        }
    }

    /// Waits until every view added so far has processed `target` (see
    /// [`Flume::sync`](crate::Flume::sync)): the first failed view's error, [`Error::Closed`],
    /// or [`Error::Timeout`] naming a view still behind when `timeout` passes.
    pub(crate) fn wait_all(&self, target: Since, timeout: Option<Duration>) -> Result<(), Error> {
        let start = Instant::now();
        let deadline = timeout.and_then(|t| start.checked_add(t));
        let mut state = self.lock();
        let count = state.views.len();
        let mut timed_out = false;
        loop {
            if state.closed {
                return Err(Error::Closed);
            }
            let views = state.views.iter().take(count);
            if let Some(err) = views.clone().find_map(ViewEntry::failed_error) {
                return Err(err);
            }
            let Some(behind) = views.into_iter().find(|entry| entry.since < target) else {
                return Ok(());
            };
            if timed_out {
                return Err(Error::Timeout {
                    view: behind.name.to_string(),
                    waited: start.elapsed(),
                    target,
                    reached: behind.since,
                });
            }
            timed_out = self.wait_change(&mut state, deadline);
        }
    }

    /// View `id`'s progress against the log's `log_since`.
    pub(crate) fn progress(&self, id: usize, log_since: Since) -> Progress {
        let state = self.lock();
        let entry = state.entry(id);
        Progress {
            view: entry.name.to_string(),
            since: entry.since,
            log_since,
            status: if let Some(failure) = &entry.failure {
                ViewStatus::Failed {
                    seq: failure.seq,
                    cause: failure.cause.clone(),
                }
            } else if state.closed {
                ViewStatus::Closed
            } else {
                ViewStatus::Active
            },
        }
    }
}
