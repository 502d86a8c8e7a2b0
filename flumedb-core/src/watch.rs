//! [`SinceWatch`]: the observable `since` of a log.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::TrySendError;

use crate::loom_sync::{Condvar, Mutex, MutexGuard, Receiver, Sender};

use crate::error::{Error, Result};
use crate::seq::{Seq, Since};

/// An observable [`Since`]: read its current value, wait until it reaches a seq, or subscribe
/// to its changes.
///
/// Cloning gives another handle to the same value. A log owns one and sets it *after* a record
/// is readable, so anyone who sees `since >= seq` can read `seq`. Closing it wakes every waiter
/// with [`Error::Closed`].
///
/// ```
/// use flumedb_core::{Seq, Since, SinceWatch};
/// use std::time::Duration;
///
/// let since = SinceWatch::new(Since::Empty);
/// let waiter = since.clone();
/// let t = std::thread::spawn(move || waiter.wait_for(Seq::new(2), Some(Duration::from_secs(5))));
/// since.set(Since::At(Seq::new(2)));
/// assert_eq!(t.join().unwrap().unwrap(), Since::At(Seq::new(2)));
/// ```
#[derive(Clone)]
pub struct SinceWatch {
    inner: Arc<Inner>,
}

struct Inner {
    state: Mutex<State>,
    changed: Condvar,
}

struct State {
    since: Since,
    closed: bool,
    subscribers: Vec<Sender<()>>,
}

impl SinceWatch {
    /// A watch starting at `since`.
    pub fn new(since: Since) -> SinceWatch {
        SinceWatch {
            inner: Arc::new(Inner {
                state: Mutex::new(State {
                    since,
                    closed: false,
                    subscribers: Vec::new(),
                }),
                changed: Condvar::new(),
            }),
        }
    }

    /// The current value.
    pub fn get(&self) -> Since {
        self.inner.state.lock().since
    }

    /// Sets the value and wakes waiters and subscribers (only if it changed).
    pub fn set(&self, since: Since) {
        let state = self.inner.state.lock();
        if state.since != since {
            self.replace(state, since);
        }
    }

    /// Sets the value only if it moves forward; returns whether it did. Logs publish with this,
    /// so racing publishers can never move `since` backwards.
    pub fn advance(&self, since: Since) -> bool {
        let state = self.inner.state.lock();
        if since <= state.since {
            return false;
        }
        self.replace(state, since);
        true
    }

    /// Stores a new value and wakes waiters and subscribers.
    fn replace(&self, mut state: MutexGuard<'_, State>, since: Since) {
        state.since = since;
        state.subscribers.retain(|tx| match tx.try_send(()) {
            Ok(()) | Err(TrySendError::Full(())) => true,
            Err(TrySendError::Disconnected(())) => false,
        });
        drop(state);
        self.inner.changed.notify_all();
    }

    /// Closes the watch: waiters and subscribers wake with [`Error::Closed`]. Idempotent.
    pub fn close(&self) {
        let mut state = self.inner.state.lock();
        state.closed = true;
        state.subscribers.clear();
        drop(state);
        self.inner.changed.notify_all();
    }

    /// `true` once [`close`](Self::close) was called.
    pub fn is_closed(&self) -> bool {
        self.inner.state.lock().closed
    }

    /// Blocks until the value includes `seq` (returns the value then), the timeout passes
    /// ([`Error::Timeout`]) or the watch closes ([`Error::Closed`]). `None` waits without limit.
    pub fn wait_for(&self, seq: Seq, timeout: Option<Duration>) -> Result<Since> {
        self.wait_until(|since| since.includes(seq), Since::At(seq), timeout)
    }

    /// Blocks until the value differs from `from`; otherwise like [`wait_for`](Self::wait_for).
    pub fn wait_change(&self, from: Since, timeout: Option<Duration>) -> Result<Since> {
        self.wait_until(|since| since != from, from, timeout)
    }

    fn wait_until(
        &self,
        done: impl Fn(Since) -> bool,
        target: Since,
        timeout: Option<Duration>,
    ) -> Result<Since> {
        let start = Instant::now();
        // A timeout too large to represent means no limit.
        let deadline = timeout.and_then(|t| start.checked_add(t));
        let mut state = self.inner.state.lock();
        loop {
            if done(state.since) {
                return Ok(state.since);
            }
            if state.closed {
                return Err(Error::Closed);
            }
            match deadline {
                None => self.inner.changed.wait(&mut state),
                Some(deadline) => {
                    if self
                        .inner
                        .changed
                        .wait_until(&mut state, deadline)
                        .timed_out()
                        && !done(state.since)
                    {
                        return Err(Error::Timeout {
                            view: "log".into(),
                            waited: start.elapsed(),
                            target,
                            reached: state.since,
                        });
                    }
                }
            }
        }
    }

    /// Subscribes to changes. Changes that happen while the subscriber is not looking are
    /// coalesced: it is told that the value changed and reads the newest one.
    pub fn subscribe(&self) -> Subscription {
        let (tx, rx) = crate::loom_sync::bounded(1);
        let mut state = self.inner.state.lock();
        let last = state.since;
        if !state.closed {
            state.subscribers.push(tx);
        }
        drop(state);
        Subscription {
            rx,
            watch: self.clone(),
            last,
            #[cfg(loom)]
            inert: crossbeam_channel::never(),
        }
    }
}

impl std::fmt::Debug for SinceWatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = self.inner.state.lock();
        f.debug_struct("SinceWatch")
            .field("since", &state.since)
            .field("closed", &state.closed)
            .finish()
    }
}

/// A subscription to a [`SinceWatch`], from [`SinceWatch::subscribe`].
pub struct Subscription {
    rx: Receiver<()>,
    watch: SinceWatch,
    last: Since,
    /// Under loom the change channel is a model; `notifications` hands out this one, which
    /// never fires (the feeder's `select!` on it is not modelled).
    #[cfg(loom)]
    inert: crossbeam_channel::Receiver<()>,
}

impl Subscription {
    /// Blocks until the value differs from the one this subscription last returned, and returns
    /// the newest value; [`Error::Closed`] once the watch is closed.
    pub fn recv(&mut self) -> Result<Since> {
        loop {
            if let Some(since) = self.changed() {
                return Ok(since);
            }
            if self.rx.recv().is_err() {
                return self.changed().ok_or(Error::Closed);
            }
        }
    }

    /// Like [`recv`](Self::recv), but gives up after `timeout` with `Ok(None)`.
    pub fn recv_timeout(&mut self, timeout: Duration) -> Result<Option<Since>> {
        let Some(deadline) = Instant::now().checked_add(timeout) else {
            return self.recv().map(Some);
        };
        loop {
            if let Some(since) = self.changed() {
                return Ok(Some(since));
            }
            match self.rx.recv_deadline(deadline) {
                Ok(()) => continue,
                Err(crossbeam_channel::RecvTimeoutError::Timeout) => return Ok(None),
                Err(crossbeam_channel::RecvTimeoutError::Disconnected) => {
                    return self.changed().map(Some).ok_or(Error::Closed);
                }
            }
        }
    }

    /// The channel that is signalled on changes, for use in `crossbeam_channel::select!`.
    /// After it fires, call [`recv`](Self::recv) or [`SinceWatch::get`] for the value.
    #[cfg(not(loom))]
    pub fn notifications(&self) -> &crossbeam_channel::Receiver<()> {
        &self.rx
    }

    /// Under loom: a channel that never fires (see the `inert` field).
    #[cfg(loom)]
    pub fn notifications(&self) -> &crossbeam_channel::Receiver<()> {
        &self.inert
    }

    fn changed(&mut self) -> Option<Since> {
        let now = self.watch.get();
        if now != self.last {
            self.last = now;
            Some(now)
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wait_for_times_out_then_succeeds() {
        let w = SinceWatch::new(Since::Empty);
        let err = w
            .wait_for(Seq::new(1), Some(Duration::from_millis(20)))
            .unwrap_err();
        assert!(matches!(err, Error::Timeout { .. }), "{err}");
        w.set(Since::At(Seq::new(5)));
        assert_eq!(
            w.wait_for(Seq::new(1), Some(Duration::ZERO)).unwrap(),
            Since::At(Seq::new(5))
        );
    }

    #[test]
    fn advance_never_moves_back() {
        let w = SinceWatch::new(Since::At(Seq::new(5)));
        assert!(!w.advance(Since::At(Seq::new(3))));
        assert!(!w.advance(Since::Empty));
        assert_eq!(w.get(), Since::At(Seq::new(5)));
        assert!(w.advance(Since::At(Seq::new(9))));
        assert_eq!(w.get(), Since::At(Seq::new(9)));
    }

    #[test]
    fn huge_timeouts_mean_no_limit() {
        let w = SinceWatch::new(Since::Empty);
        let w2 = w.clone();
        let t = std::thread::spawn(move || w2.wait_for(Seq::new(1), Some(Duration::MAX)));
        let mut sub = w.subscribe();
        std::thread::sleep(Duration::from_millis(20));
        w.set(Since::At(Seq::new(1)));
        assert_eq!(t.join().unwrap().unwrap(), Since::At(Seq::new(1)));
        assert_eq!(
            sub.recv_timeout(Duration::MAX).unwrap(),
            Some(Since::At(Seq::new(1)))
        );
    }

    #[test]
    fn close_wakes_waiters_and_subscribers() {
        let w = SinceWatch::new(Since::Empty);
        let mut sub = w.subscribe();
        let w2 = w.clone();
        let t = std::thread::spawn(move || w2.wait_for(Seq::new(1), None));
        std::thread::sleep(Duration::from_millis(20));
        w.close();
        assert!(matches!(t.join().unwrap(), Err(Error::Closed)));
        assert!(matches!(sub.recv(), Err(Error::Closed)));
    }

    #[test]
    fn subscription_coalesces_to_newest() {
        let w = SinceWatch::new(Since::Empty);
        let mut sub = w.subscribe();
        for i in 0..10 {
            w.set(Since::At(Seq::new(i)));
        }
        assert_eq!(sub.recv().unwrap(), Since::At(Seq::new(9)));
        assert_eq!(sub.recv_timeout(Duration::from_millis(10)).unwrap(), None);
        w.set(Since::At(Seq::new(10)));
        assert_eq!(
            sub.recv_timeout(Duration::from_secs(1)).unwrap(),
            Some(Since::At(Seq::new(10)))
        );
    }
}
