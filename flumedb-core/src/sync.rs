//! Read waiting: how a read on a view waits until the view has caught up with the log.
//!
//! Each view's handle holds a [`ViewSync`]: it waits on the database's views watch (the views'
//! processed `since`, readiness and closing) until the view has caught up.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::progress::Progress;
use crate::seq::{Seq, Since};
use crate::views_watch::ViewsWatch;
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

/// The link between a view's handle and the driver: every read on a view waits through it.
///
/// A view implementation receives one in [`View::handle`](crate::View::handle) and calls
/// [`wait`](ViewSync::wait) at the start of each read.
#[derive(Clone)]
pub struct ViewSync {
    id: usize,
    name: Arc<str>,
    views_watch: Arc<ViewsWatch>,
    log_since: SinceWatch,
}

impl ViewSync {
    pub(crate) fn new(
        id: usize,
        name: Arc<str>,
        views_watch: Arc<ViewsWatch>,
        log_since: SinceWatch,
    ) -> ViewSync {
        ViewSync {
            id,
            name,
            views_watch,
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
        self.wait_timeout(wait, self.views_watch.read_timeout)
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
            let (_, epoch) = self.wait_for_target(wait, target, self.views_watch.read_timeout)?;
            let answer = f();
            if self.views_watch.lock().entry(self.id).epoch == epoch {
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
        let mut state = self.views_watch.lock();
        let mut timed_out = false;
        loop {
            if state.closed {
                return Err(Error::Closed);
            }
            let entry = &state.entry(self.id);
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
            timed_out = self.views_watch.wait_change(&mut state, deadline);
        }
    }

    /// The last record the view has processed (without waiting).
    pub fn since(&self) -> Since {
        self.views_watch.lock().entry(self.id).since
    }

    /// The view's progress against the log.
    pub fn progress(&self) -> Progress {
        self.views_watch.progress(self.id, self.log_since.get())
    }

    /// The view's failure, if it is stopped on one; `Closed` after the database closes.
    pub fn check(&self) -> Result<()> {
        let state = self.views_watch.lock();
        if state.closed {
            return Err(Error::Closed);
        }
        match state.entry(self.id).failed_error() {
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
