//! The lock, condition variable and change channel the watches use: parking_lot's and
//! crossbeam's in normal builds, loom's under `--cfg loom`, so the loom models in `watch`,
//! `sync` and `live` explore every interleaving of the real code.
//!
//! Only the calls the watches make are offered, with parking_lot's and crossbeam's signatures,
//! so the watch code reads the same in both builds. Loom does not model time: under loom a
//! wait with a deadline never times out, so the models use waits without a limit.

#[cfg(not(loom))]
pub(crate) use crossbeam_channel::{Receiver, Sender, bounded};
#[cfg(not(loom))]
pub(crate) use parking_lot::{Condvar, Mutex, MutexGuard};

#[cfg(loom)]
pub(crate) use model::{Condvar, Mutex, MutexGuard, Receiver, Sender, bounded};

#[cfg(loom)]
mod model {
    use std::marker::PhantomData;
    use std::ops::{Deref, DerefMut};
    use std::sync::{Arc, PoisonError};
    use std::time::Instant;

    use crossbeam_channel::{RecvError, RecvTimeoutError, TrySendError};

    /// A loom mutex with parking_lot's `lock` (no poisoning).
    pub(crate) struct Mutex<T>(loom::sync::Mutex<T>);

    impl<T> Mutex<T> {
        pub(crate) fn new(value: T) -> Mutex<T> {
            Mutex(loom::sync::Mutex::new(value))
        }

        pub(crate) fn lock(&self) -> MutexGuard<'_, T> {
            MutexGuard(Some(self.0.lock().unwrap_or_else(PoisonError::into_inner)))
        }
    }

    /// The guard; `None` only while a condition variable wait holds it.
    pub(crate) struct MutexGuard<'a, T>(Option<loom::sync::MutexGuard<'a, T>>);

    #[allow(
        clippy::expect_used,
        reason = "loom models only: the guard is taken only inside Condvar::wait, which puts it back"
    )]
    impl<T> Deref for MutexGuard<'_, T> {
        type Target = T;
        fn deref(&self) -> &T {
            self.0.as_deref().expect("guard present outside a wait")
        }
    }

    #[allow(
        clippy::expect_used,
        reason = "loom models only: the guard is taken only inside Condvar::wait, which puts it back"
    )]
    impl<T> DerefMut for MutexGuard<'_, T> {
        fn deref_mut(&mut self) -> &mut T {
            self.0.as_deref_mut().expect("guard present outside a wait")
        }
    }

    /// The result of a wait with a deadline: under loom it never times out.
    pub(crate) struct WaitTimeoutResult;

    impl WaitTimeoutResult {
        pub(crate) fn timed_out(&self) -> bool {
            false
        }
    }

    /// A loom condition variable with parking_lot's `wait(&mut guard)`.
    pub(crate) struct Condvar(loom::sync::Condvar);

    impl Condvar {
        pub(crate) fn new() -> Condvar {
            Condvar(loom::sync::Condvar::new())
        }

        pub(crate) fn notify_all(&self) {
            self.0.notify_all();
        }

        pub(crate) fn wait<T>(&self, guard: &mut MutexGuard<'_, T>) {
            if let Some(inner) = guard.0.take() {
                guard.0 = Some(self.0.wait(inner).unwrap_or_else(PoisonError::into_inner));
            }
        }

        pub(crate) fn wait_until<T>(
            &self,
            guard: &mut MutexGuard<'_, T>,
            _deadline: Instant,
        ) -> WaitTimeoutResult {
            self.wait(guard);
            WaitTimeoutResult
        }
    }

    /// A channel of capacity one for `()`, like `crossbeam_channel::bounded(1)`.
    struct Chan {
        state: loom::sync::Mutex<ChanState>,
        changed: loom::sync::Condvar,
    }

    struct ChanState {
        full: bool,
        senders: usize,
        receiver: bool,
    }

    impl Chan {
        fn lock(&self) -> loom::sync::MutexGuard<'_, ChanState> {
            self.state.lock().unwrap_or_else(PoisonError::into_inner)
        }
    }

    pub(crate) fn bounded<T>(_capacity: usize) -> (Sender<T>, Receiver<T>) {
        let chan = Arc::new(Chan {
            state: loom::sync::Mutex::new(ChanState {
                full: false,
                senders: 1,
                receiver: true,
            }),
            changed: loom::sync::Condvar::new(),
        });
        (
            Sender(chan.clone(), PhantomData),
            Receiver(chan, PhantomData),
        )
    }

    pub(crate) struct Sender<T>(Arc<Chan>, PhantomData<T>);
    pub(crate) struct Receiver<T>(Arc<Chan>, PhantomData<T>);

    impl Sender<()> {
        pub(crate) fn try_send(&self, (): ()) -> Result<(), TrySendError<()>> {
            let mut state = self.0.lock();
            if !state.receiver {
                return Err(TrySendError::Disconnected(()));
            }
            if state.full {
                return Err(TrySendError::Full(()));
            }
            state.full = true;
            drop(state);
            self.0.changed.notify_all();
            Ok(())
        }
    }

    impl<T> Drop for Sender<T> {
        fn drop(&mut self) {
            let mut state = self.0.lock();
            state.senders = state.senders.saturating_sub(1);
            drop(state);
            self.0.changed.notify_all();
        }
    }

    impl Receiver<()> {
        pub(crate) fn recv(&self) -> Result<(), RecvError> {
            let mut state = self.0.lock();
            loop {
                if state.full {
                    state.full = false;
                    return Ok(());
                }
                if state.senders == 0 {
                    return Err(RecvError);
                }
                state = self
                    .0
                    .changed
                    .wait(state)
                    .unwrap_or_else(PoisonError::into_inner);
            }
        }

        /// Like `recv`: loom does not model time, so this never times out.
        pub(crate) fn recv_deadline(&self, _deadline: Instant) -> Result<(), RecvTimeoutError> {
            self.recv()
                .map_err(|RecvError| RecvTimeoutError::Disconnected)
        }
    }

    impl<T> Drop for Receiver<T> {
        fn drop(&mut self) {
            self.0.lock().receiver = false;
        }
    }
}
