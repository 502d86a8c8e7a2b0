#![doc = include_str!("../README.md")]
#![warn(missing_docs)]
// Library code never panics on input; tests may.
#![cfg_attr(
    not(test),
    warn(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::indexing_slicing,
        clippy::panic
    )
)]
#![forbid(unsafe_code)]

mod error;
mod store;

use std::sync::Arc;
use std::time::Duration;

use flumedb_core::persist::{Loaded, Saved};
use flumedb_core::{
    Checkpoint, Codec, CommitPolicy, Error, Json, LogReader, Progress, Record, Since, Stored, View,
    ViewContext, ViewSync, Wait,
};
use parking_lot::{Condvar, Mutex};
use serde::Serialize;
use serde::de::DeserializeOwned;

pub use error::ReduceError;
use store::ReduceFile;

/// The bound on a reduce view's state: cloned for readers, serialised to persist it.
pub trait State: Clone + Serialize + DeserializeOwned + Send + Sync + 'static {}
impl<S: Clone + Serialize + DeserializeOwned + Send + Sync + 'static> State for S {}

type Fold<T, S> = Box<dyn FnMut(&mut S, &T) -> bool + Send>;

/// Whether `state`, written as JSON, loads as the same state.
fn reads_back<S: State>(state: &S) -> bool {
    let mut bytes = Vec::new();
    Codec::<S>::encode(&Json, state, &mut bytes).is_ok()
        && Codec::<S>::check(&Json, state, &bytes).is_ok()
}

/// A view that folds every record into one value, like JS flumeview-reduce.
///
/// Give it a version, an initial state and a reduce function (and, with
/// [`with_map`](Reduce::with_map), a map that picks what to reduce and skips records on
/// `None`). When the log has a directory the state is persisted in `<dir>/<name>.reduce`
/// together with the seq it belongs to.
///
/// ```
/// use flumedb_core::{Flume, Json};
/// use flumelog_memory::MemoryLog;
/// use flumeview_reduce::Reduce;
/// use serde_json::{Value, json};
///
/// let db = Flume::open(MemoryLog::new(), Json)?;
/// let posts = db.add_view(
///     "posts",
///     Reduce::with_map(
///         1,
///         0u64,
///         |msg: &Value| (msg["type"] == "post").then_some(()),
///         |count: &mut u64, ()| *count += 1,
///     ),
/// )?;
/// db.append(&json!({"type": "post"}))?;
/// db.append(&json!({"type": "vote"}))?;
/// assert_eq!(posts.get()?, 1);
/// # Ok::<(), flumedb_core::Error>(())
/// ```
#[must_use = "a view does nothing until it is added to a database"]
pub struct Reduce<T, S: State> {
    version: u32,
    initial: S,
    step: Fold<T, S>,
    cell: Arc<StateCell<S>>,
    file: Option<ReduceFile>,
    policy: CommitPolicy,
    dirty: bool,
}

/// The state readers and the view share, and the signal that it changed.
struct StateCell<S> {
    current: Mutex<Current<S>>,
    changed: Condvar,
}

struct Current<S> {
    value: S,
    /// The last record folded in (or passed over), as the driver gave it.
    checkpoint: Checkpoint,
    /// Counts changes of `value`, so streams can tell whether there is something new.
    changes: u64,
    closed: bool,
}

impl<T: 'static, S: State> Reduce<T, S> {
    /// A reduce view: `reduce` folds every record's value into the state.
    pub fn new(
        version: u32,
        initial: S,
        mut reduce: impl FnMut(&mut S, &T) + Send + 'static,
    ) -> Self {
        Self::from_step(
            version,
            initial,
            Box::new(move |state, value| {
                reduce(state, value);
                true
            }),
        )
    }

    /// A reduce view with a map: `map` turns each value into what `reduce` folds in, and
    /// records it maps to `None` are skipped.
    pub fn with_map<M>(
        version: u32,
        initial: S,
        mut map: impl FnMut(&T) -> Option<M> + Send + 'static,
        mut reduce: impl FnMut(&mut S, M) + Send + 'static,
    ) -> Self {
        Self::from_step(
            version,
            initial,
            Box::new(move |state, value| match map(value) {
                Some(mapped) => {
                    reduce(state, mapped);
                    true
                }
                None => false,
            }),
        )
    }

    fn from_step(version: u32, initial: S, step: Fold<T, S>) -> Self {
        Reduce {
            version,
            cell: Arc::new(StateCell {
                current: Mutex::new(Current {
                    value: initial.clone(),
                    checkpoint: Checkpoint::EMPTY,
                    changes: 0,
                    closed: false,
                }),
                changed: Condvar::new(),
            }),
            initial,
            step,
            file: None,
            policy: CommitPolicy {
                records: 10_000,
                interval: Duration::from_millis(500),
            },
            dirty: false,
        }
    }

    /// How often the state is written: after `records` records or `interval` after the first
    /// unwritten one, whichever comes first, and always on close. Default: 10,000 records or
    /// 500 ms. A steady stream of appends cannot postpone a write past `interval`.
    pub fn write_every(mut self, records: u64, interval: Duration) -> Self {
        self.policy = CommitPolicy {
            records: records.max(1),
            interval,
        };
        self
    }
}

impl<T: Send + 'static, S: State> View<T> for Reduce<T, S> {
    type Handle = ReduceHandle<S>;
    type Error = ReduceError;

    fn version(&self) -> u32 {
        self.version
    }

    fn open(&mut self, ctx: &ViewContext) -> Result<Option<Stored>, ReduceError> {
        let Some(dir) = ctx.dir() else {
            return Ok(None);
        };
        let file = ReduceFile::new(dir.join(format!("{}.reduce", ctx.name())));
        let loaded = file.load::<S>()?;
        self.file = Some(file);
        match loaded {
            Loaded::Missing | Loaded::Corrupt => Ok(None),
            Loaded::State(Saved { stored, value }) => {
                if stored.version == self.version {
                    let mut current = self.cell.current.lock();
                    current.value = value;
                    current.checkpoint = stored.checkpoint;
                    current.changes += 1;
                }
                Ok(Some(stored))
            }
        }
    }

    fn handle(&self, sync: ViewSync, _log: LogReader<T>) -> ReduceHandle<S> {
        ReduceHandle {
            cell: self.cell.clone(),
            sync,
            version: self.version,
        }
    }

    fn apply(&mut self, records: &[Record<T>], checkpoint: Checkpoint) -> Result<(), ReduceError> {
        let mut current = self.cell.current.lock();
        let mut changed = false;
        for record in records {
            changed |= (self.step)(&mut current.value, &record.value);
        }
        current.checkpoint = checkpoint;
        if changed {
            current.changes += 1;
        }
        drop(current);
        if changed {
            self.cell.changed.notify_all();
        }
        self.dirty = true;
        Ok(())
    }

    fn flush(&mut self) -> Result<(), ReduceError> {
        let (Some(file), true) = (&self.file, self.dirty) else {
            return Ok(());
        };
        // The value and its seq are serialised together, under one lock, from the one thread
        // that applies records: the file never pairs a newer value with an older seq.
        let bytes = {
            let current = self.cell.current.lock();
            if !reads_back(&current.value) {
                // Written, it would load as another state (JSON stores NaN and infinity as
                // null): keep the last state written, which a reopen catches up from.
                return Ok(());
            }
            let stored = Stored {
                version: self.version,
                checkpoint: current.checkpoint,
            };
            file.encode(stored, &current.value)?
        };
        file.write(&bytes)?;
        self.dirty = false;
        Ok(())
    }

    fn reset(&mut self) -> Result<(), ReduceError> {
        {
            let mut current = self.cell.current.lock();
            current.value = self.initial.clone();
            current.checkpoint = Checkpoint::EMPTY;
            current.changes += 1;
        }
        self.cell.changed.notify_all();
        self.dirty = false;
        match &self.file {
            Some(file) => file.remove(),
            None => Ok(()),
        }
    }

    fn close(&mut self) -> Result<(), ReduceError> {
        self.cell.current.lock().closed = true;
        self.cell.changed.notify_all();
        Ok(())
    }

    fn commit_policy(&self) -> CommitPolicy {
        self.policy
    }
}

/// The state of a reduce view with the position and version it belongs to (JS
/// `get({meta: true})`'s `{seq, version, value}`).
#[derive(Clone, PartialEq, Debug)]
pub struct Reduced<S> {
    /// The last record folded into `value`.
    pub since: Since,
    /// The view's version.
    pub version: u32,
    /// The state.
    pub value: S,
}

/// Reads a reduce view. Every read waits until the view has caught up (see [`Wait`]).
#[derive(Clone)]
pub struct ReduceHandle<S> {
    cell: Arc<StateCell<S>>,
    sync: ViewSync,
    version: u32,
}

impl<S: State> ReduceHandle<S> {
    /// The current state, once the view has processed everything appended before this call.
    pub fn get(&self) -> Result<S, Error> {
        self.get_with(Wait::Latest)
    }

    /// The state after waiting as `wait` says.
    pub fn get_with(&self, wait: Wait) -> Result<S, Error> {
        self.read_with(wait, S::clone)
    }

    /// The state with its seq and version.
    pub fn get_meta(&self) -> Result<Reduced<S>, Error> {
        self.get_meta_with(Wait::Latest)
    }

    /// The state with its seq and version, after waiting as `wait` says.
    pub fn get_meta_with(&self, wait: Wait) -> Result<Reduced<S>, Error> {
        self.sync.read(wait, || {
            let current = self.cell.current.lock();
            Reduced {
                since: current.checkpoint.since,
                version: self.version,
                value: current.value.clone(),
            }
        })
    }

    /// Runs `f` on the current state without cloning it (keep `f` short: it holds the lock
    /// the view needs to apply records). `f` runs again if a rebuild reset the view while it
    /// ran.
    pub fn read<R>(&self, f: impl FnMut(&S) -> R) -> Result<R, Error> {
        self.read_with(Wait::Latest, f)
    }

    fn read_with<R>(&self, wait: Wait, mut f: impl FnMut(&S) -> R) -> Result<R, Error> {
        self.sync.read(wait, || f(&self.cell.current.lock().value))
    }

    /// A live iterator of states: the current state (once caught up), then the new state each
    /// time it changes. Changes made within one applied batch arrive as one state. It ends
    /// with [`Error::Closed`] when the database closes, or the view's error if it fails.
    pub fn stream(&self) -> LiveStates<S> {
        LiveStates {
            handle: self.clone(),
            seen: None,
            done: false,
        }
    }

    /// The view's progress against the log.
    pub fn progress(&self) -> Progress {
        self.sync.progress()
    }
}

/// The live iterator from [`ReduceHandle::stream`].
#[must_use = "iterators are lazy and do nothing unless consumed"]
pub struct LiveStates<S> {
    handle: ReduceHandle<S>,
    seen: Option<u64>,
    done: bool,
}

impl<S: State> Iterator for LiveStates<S> {
    type Item = Result<S, Error>;

    fn next(&mut self) -> Option<Result<S, Error>> {
        if self.done {
            return None;
        }
        if let Some(seen) = self.seen {
            let cell = &self.handle.cell;
            let mut current = cell.current.lock();
            while current.changes == seen {
                if current.closed {
                    self.done = true;
                    return Some(Err(Error::Closed));
                }
                // Closing wakes this wait; a failed view does not, so look now and then.
                let _ = cell
                    .changed
                    .wait_for(&mut current, Duration::from_millis(100));
                if current.changes == seen
                    && let Err(err) = self.handle.sync.check()
                {
                    self.done = true;
                    return Some(Err(err));
                }
            }
        }
        // Read like any other read: behind the readiness gate, caught up, safe from resets.
        let read = self.handle.sync.read(Wait::Latest, || {
            let current = self.handle.cell.current.lock();
            (current.changes, current.value.clone())
        });
        match read {
            Ok((changes, value)) => {
                self.seen = Some(changes);
                Some(Ok(value))
            }
            Err(err) => {
                self.done = true;
                Some(Err(err))
            }
        }
    }
}
