//! Read waiting: how a read on a view waits until the view has caught up with the log.
//!
//! The driver keeps one [`Shared`] record per database: whether it is closed or ready, and each
//! view's processed `since` and status, under one lock with one condition variable. The feeder
//! updates it after every batch; readers wait on it through their view's [`ViewSync`].

use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex, MutexGuard};

use crate::error::{Error, Result};
use crate::seq::{Seq, Since};
use crate::watch::SinceWatch;

/// How long a read on a view waits before it looks at the view's state.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub enum Wait {
    /// Until the view has processed every record appended before the read began (the default:
    /// read-your-writes), and the database's readiness gate is open.
    #[default]
    Latest,
    /// Until the view has processed this seq (for example one returned by `append`), and the
    /// readiness gate is open.
    For(Seq),
    /// Not at all: read the state as it is now, even before the readiness gate opens.
    /// A failed or closed view still returns its error.
    Now,
}

/// Where a view stands.
#[derive(Clone, Debug)]
pub enum ViewStatus {
    /// Being fed: caught up, or catching up.
    Active,
    /// Stopped on an error until `rebuild()`.
    Failed {
        /// The record it failed on, if the error belongs to one.
        seq: Option<Seq>,
        /// What went wrong.
        cause: Arc<Error>,
    },
    /// The database is closed.
    Closed,
}

/// A view's progress against the log, for progress bars and health checks.
#[derive(Clone, Debug)]
pub struct Progress {
    /// The view's name.
    pub view: String,
    /// The last record the view has processed.
    pub since: Since,
    /// The last record in the log.
    pub log_since: Since,
    /// Whether the view is being fed, failed or closed.
    pub status: ViewStatus,
}

impl Progress {
    /// `true` when the view has processed every record in the log.
    pub fn is_current(&self) -> bool {
        self.since >= self.log_since
    }

    /// How far the view is, from 0.0 to 1.0, measured in seqs (bytes for an offset log).
    pub fn ratio(&self) -> f64 {
        match (self.since, self.log_since) {
            (_, Since::Empty) => 1.0,
            (Since::Empty, Since::At(_)) => 0.0,
            (Since::At(v), Since::At(l)) if l.get() == 0 || v >= l => 1.0,
            (Since::At(v), Since::At(l)) => v.get() as f64 / l.get() as f64,
        }
    }
}

pub(crate) struct Shared {
    state: Mutex<SharedState>,
    changed: Condvar,
    pub(crate) read_timeout: Option<Duration>,
}

pub(crate) struct SharedState {
    pub(crate) closed: bool,
    pub(crate) ready: bool,
    pub(crate) views: Vec<ViewEntry>,
    /// Names of views being opened by `add_view`, not yet in `views`.
    pub(crate) reserved: Vec<Arc<str>>,
}

pub(crate) struct ViewEntry {
    pub(crate) name: Arc<str>,
    pub(crate) since: Since,
    pub(crate) failure: Option<(Option<Seq>, Arc<Error>)>,
    /// Bumped before every reset, so a read that raced a reset can tell and retry.
    pub(crate) epoch: u64,
}

impl ViewEntry {
    fn failed_error(&self) -> Option<Error> {
        self.failure.as_ref().map(|(seq, cause)| Error::ViewFailed {
            view: self.name.to_string(),
            seq: *seq,
            cause: cause.clone(),
        })
    }
}

impl Shared {
    pub(crate) fn new(ready: bool, read_timeout: Option<Duration>) -> Shared {
        Shared {
            state: Mutex::new(SharedState {
                closed: false,
                ready,
                views: Vec::new(),
                reserved: Vec::new(),
            }),
            changed: Condvar::new(),
            read_timeout,
        }
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, SharedState> {
        self.state.lock()
    }

    /// Changes the state under the lock and wakes every waiting reader.
    pub(crate) fn update<R>(&self, f: impl FnOnce(&mut SharedState) -> R) -> R {
        let result = f(&mut self.state.lock());
        self.changed.notify_all();
        result
    }

    pub(crate) fn progress(&self, id: usize, log_since: Since) -> Progress {
        let state = self.lock();
        let entry = &state.views[id];
        Progress {
            view: entry.name.to_string(),
            since: entry.since,
            log_since,
            status: if let Some((seq, cause)) = &entry.failure {
                ViewStatus::Failed {
                    seq: *seq,
                    cause: cause.clone(),
                }
            } else if state.closed {
                ViewStatus::Closed
            } else {
                ViewStatus::Active
            },
        }
    }
}

/// The link between a view's handle and the driver: every read on a view waits through it.
///
/// A view implementation receives one in [`View::handle`](crate::View::handle) and calls
/// [`wait`](ViewSync::wait) at the start of each read.
#[derive(Clone)]
pub struct ViewSync {
    id: usize,
    name: Arc<str>,
    shared: Arc<Shared>,
    log_since: SinceWatch,
}

impl ViewSync {
    pub(crate) fn new(
        id: usize,
        name: Arc<str>,
        shared: Arc<Shared>,
        log_since: SinceWatch,
    ) -> ViewSync {
        ViewSync {
            id,
            name,
            shared,
            log_since,
        }
    }

    /// The view's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Waits as `wait` says, up to the database's read timeout; returns the view's `since`.
    ///
    /// Errors: [`Error::Timeout`], [`Error::Closed`] (also for reads pending when the database
    /// closes) and [`Error::ViewFailed`].
    ///
    /// A handle that reads the view's state after this returns could race a `rebuild()` that
    /// resets the view in between; [`read`](Self::read) closes that gap.
    pub fn wait(&self, wait: Wait) -> Result<Since> {
        self.wait_timeout(wait, self.shared.read_timeout)
    }

    /// Like [`wait`](Self::wait) with an explicit timeout (`None`: no limit).
    pub fn wait_timeout(&self, wait: Wait, timeout: Option<Duration>) -> Result<Since> {
        let target = self.target(wait);
        self.wait_for_target(wait, target, timeout)
            .map(|(since, _)| since)
    }

    /// Waits as `wait` says, then runs `f` to read the view's state. If the view was reset
    /// (by `rebuild()`) while `f` ran, waits again and reruns `f`, so the answer always holds
    /// every record appended before the call. This is how view handles should read.
    pub fn read<R>(&self, wait: Wait, mut f: impl FnMut() -> R) -> Result<R> {
        let target = self.target(wait);
        loop {
            let (_, epoch) = self.wait_for_target(wait, target, self.shared.read_timeout)?;
            let answer = f();
            if self.shared.lock().views[self.id].epoch == epoch {
                return Ok(answer);
            }
        }
    }

    fn target(&self, wait: Wait) -> Since {
        match wait {
            Wait::Latest => self.log_since.get(),
            Wait::For(seq) => Since::At(seq),
            Wait::Now => Since::Empty,
        }
    }

    /// Waits until the view reaches `target`; returns its since and epoch.
    fn wait_for_target(
        &self,
        wait: Wait,
        target: Since,
        timeout: Option<Duration>,
    ) -> Result<(Since, u64)> {
        let start = Instant::now();
        // A timeout too large to represent means no limit.
        let deadline = timeout.and_then(|t| start.checked_add(t));
        let mut state = self.shared.lock();
        let mut timed_out = false;
        loop {
            if state.closed {
                return Err(Error::Closed);
            }
            let entry = &state.views[self.id];
            if let Some(err) = entry.failed_error() {
                return Err(err);
            }
            if entry.since >= target && (state.ready || wait == Wait::Now) {
                return Ok((entry.since, entry.epoch));
            }
            if timed_out {
                return Err(Error::Timeout {
                    view: self.name.to_string(),
                    waited: start.elapsed(),
                    target,
                    reached: entry.since,
                });
            }
            match deadline {
                None => self.shared.changed.wait(&mut state),
                Some(deadline) => {
                    timed_out = self
                        .shared
                        .changed
                        .wait_until(&mut state, deadline)
                        .timed_out();
                }
            }
        }
    }

    /// The last record the view has processed (without waiting).
    pub fn since(&self) -> Since {
        self.shared.lock().views[self.id].since
    }

    /// The view's progress against the log.
    pub fn progress(&self) -> Progress {
        self.shared.progress(self.id, self.log_since.get())
    }

    /// The view's failure, if it is stopped on one; `Closed` after the database closes.
    pub fn check(&self) -> Result<()> {
        let state = self.shared.lock();
        if state.closed {
            return Err(Error::Closed);
        }
        match state.views[self.id].failed_error() {
            Some(err) => Err(err),
            None => Ok(()),
        }
    }
}

impl std::fmt::Debug for ViewSync {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ViewSync")
            .field("view", &self.name)
            .finish_non_exhaustive()
    }
}
