//! [`Flume`]: one log, any number of views, and the driver that keeps them in sync.

use std::marker::PhantomData;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::Sender;
use parking_lot::{Mutex, RwLock};

use crate::codec::{Codec, Json};
use crate::error::{BoxError, Error, Result};
use crate::feeder::{Command, Feeder, Slot, panic_message};
use crate::log::{Log, LogStream, StreamOptions};
use crate::seq::{Seq, Since};
use crate::sync::{Progress, Shared, ViewEntry, ViewSync};
use crate::view::{Checkpoint, Record, View, ViewContext};
use crate::watch::SinceWatch;

/// A function applied to every value on its way to views, `get` and `stream` (not to what is
/// stored). It may fail; a view fed a failing record stops with [`Error::Mapper`].
pub type Mapper<T> = Arc<dyn Fn(T) -> std::result::Result<T, BoxError> + Send + Sync>;

/// What views do with a stored record that cannot be given to them: its bytes do not decode
/// (a log written by another program may hold anything), or the mapper fails or panics on it.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub enum Undecodable {
    /// The views that meet it stop with [`Error::ViewFailed`] naming the record, and stay
    /// stopped (a rebuild meets it again). The default: nothing is skipped unless asked.
    #[default]
    Fail,
    /// The views go on without it; the record is reported by [`Flume::skipped`].
    Skip,
}

/// A record the views went on without, under [`Undecodable::Skip`].
#[derive(Clone, Debug)]
pub struct Skipped {
    /// The record.
    pub seq: Seq,
    /// Why it could not be given to the views.
    pub error: Arc<Error>,
}

/// How many skipped records [`Flume::skipped`] keeps with their errors (all are counted).
const SKIPPED_KEPT: usize = 1000;

/// The log, the codec and the mapper: what both the database and its feeder thread use.
pub(crate) struct Core<L, T, C> {
    pub(crate) log: L,
    codec: C,
    mapper: Option<Mapper<T>>,
    undecodable: Undecodable,
    /// Records skipped under [`Undecodable::Skip`]: every seq, and the first ones' errors.
    skipped: Mutex<(std::collections::BTreeSet<Seq>, Vec<Skipped>)>,
    _values: PhantomData<fn() -> T>,
}

impl<L: Log, T, C: Codec<T>> Core<L, T, C> {
    fn decode(&self, seq: Seq, bytes: &[u8]) -> Result<T> {
        let value = self.codec.decode(bytes)?;
        match &self.mapper {
            None => Ok(value),
            Some(mapper) => mapper(value).map_err(|source| Error::Mapper { seq, source }),
        }
    }

    /// Decodes a record for views: `Ok(None)` when it does not decode and the policy is
    /// [`Undecodable::Skip`] (it is then remembered, once however often it is met).
    pub(crate) fn decode_for_views(&self, seq: Seq, bytes: &[u8]) -> Result<Option<T>> {
        match self.decode_guarded(seq, bytes) {
            Ok(value) => Ok(Some(value)),
            Err(error) if self.undecodable == Undecodable::Skip => {
                let mut skipped = self.skipped.lock();
                if skipped.0.insert(seq) && skipped.1.len() < SKIPPED_KEPT {
                    skipped.1.push(Skipped {
                        seq,
                        error: Arc::new(error),
                    });
                }
                Ok(None)
            }
            Err(error) => Err(error),
        }
    }

    /// Like `decode`, with a panic in the codec or mapper turned into an error.
    pub(crate) fn decode_guarded(&self, seq: Seq, bytes: &[u8]) -> Result<T> {
        catch_unwind(AssertUnwindSafe(|| self.decode(seq, bytes))).unwrap_or_else(|panic| {
            Err(Error::Mapper {
                seq,
                source: format!("panicked: {}", panic_message(&panic)).into(),
            })
        })
    }
}

/// Options for opening a [`Flume`]: `FlumeOptions::new().mapper(..).ready(false).open(log, codec)`.
pub struct FlumeOptions<T> {
    mapper: Option<Mapper<T>>,
    ready: bool,
    read_timeout: Option<Duration>,
    batch_size: usize,
    undecodable: Undecodable,
}

impl<T> Default for FlumeOptions<T> {
    fn default() -> Self {
        FlumeOptions {
            mapper: None,
            ready: true,
            read_timeout: Some(Duration::from_secs(60)),
            batch_size: 1024,
            undecodable: Undecodable::Fail,
        }
    }
}

impl<T: Send + Sync + 'static> FlumeOptions<T> {
    /// The defaults: no mapper, ready, a 60 s read timeout, batches of 1024 records.
    pub fn new() -> Self {
        FlumeOptions::default()
    }

    /// Applies `mapper` to values on their way to views, `get` and `stream`; stored values
    /// are not changed. (JS flumedb's `Flume(log, isReady, mapper)`.)
    pub fn mapper(
        mut self,
        mapper: impl Fn(T) -> std::result::Result<T, BoxError> + Send + Sync + 'static,
    ) -> Self {
        self.mapper = Some(Arc::new(mapper));
        self
    }

    /// With `false`, the database opens "not ready": views index as usual, but reads on them
    /// wait until [`Flume::set_ready`]`(true)`, for example after a migration. Default `true`.
    pub fn ready(mut self, ready: bool) -> Self {
        self.ready = ready;
        self
    }

    /// How long a read on a view waits for the view to catch up before it fails with
    /// [`Error::Timeout`]. `None` waits without limit. Default: 60 seconds.
    pub fn read_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.read_timeout = timeout;
        self
    }

    /// How many records views are fed at a time. Default 1024.
    pub fn batch_size(mut self, records: usize) -> Self {
        self.batch_size = records.max(1);
        self
    }

    /// What views do with a stored record they cannot be given (it does not decode, or the
    /// mapper fails on it). Default [`Undecodable::Fail`]. Appends through the database never
    /// write such records; a log written by other programs may hold them.
    pub fn undecodable(mut self, policy: Undecodable) -> Self {
        self.undecodable = policy;
        self
    }

    /// Opens the database on `log`, storing values with `codec`.
    pub fn open<L: Log, C: Codec<T>>(self, log: L, codec: C) -> Result<Flume<L, T, C>> {
        if log.since_watch().is_closed() {
            return Err(Error::Closed);
        }
        let core = Arc::new(Core {
            log,
            codec,
            mapper: self.mapper,
            undecodable: self.undecodable,
            skipped: Mutex::new(Default::default()),
            _values: PhantomData,
        });
        let shared = Arc::new(Shared::new(self.ready, self.read_timeout));
        let (commands, receiver) = crossbeam_channel::unbounded();
        let feeder = Feeder::new(
            core.clone(),
            shared.clone(),
            receiver,
            core.log.since_watch().subscribe(),
            self.batch_size,
        );
        let guard = shared.clone();
        let thread = std::thread::Builder::new()
            .name("flumedb-feeder".into())
            .spawn(move || {
                // Views' and logs' panics are caught inside; this catches our own bugs, so
                // readers get an error instead of waiting for a feeder that is gone.
                if let Err(panic) = catch_unwind(AssertUnwindSafe(|| feeder.run())) {
                    let cause = Arc::new(Error::Io(std::io::Error::other(format!(
                        "the flumedb feeder thread panicked: {}",
                        panic_message(&panic)
                    ))));
                    guard.update(|state| {
                        for entry in &mut state.views {
                            entry.failure.get_or_insert((None, cause.clone()));
                        }
                    });
                }
            })?;
        Ok(Flume {
            opened_since: core.log.since(),
            core,
            shared,
            closed: RwLock::new(false),
            closing: Mutex::new(()),
            feeder: Mutex::new(Some((commands, thread))),
        })
    }
}

/// A database: one log and the views that stream from it.
///
/// `Flume` is `Send + Sync`: share it (in an `Arc`) to append from several threads and read
/// from many. Appends never wait for views; reads on a view wait until the view has caught up
/// with everything appended before the read began (see [`Wait`](crate::Wait)).
///
/// ```
/// use flumedb_core::{Flume, Json};
/// use flumelog_memory::MemoryLog;
/// use serde_json::{Value, json};
///
/// let db: Flume<MemoryLog, Value> = Flume::open(MemoryLog::new(), Json)?;
/// let seq = db.append(&json!({"foo": 1}))?;
/// assert_eq!(db.get(seq)?, json!({"foo": 1}));
/// db.close()?;
/// # Ok::<(), flumedb_core::Error>(())
/// ```
pub struct Flume<L: Log, T: Send + Sync + 'static, C: Codec<T> = Json> {
    core: Arc<Core<L, T, C>>,
    /// The log's since when the database opened. A view's stored state was written before
    /// that, so it can never legitimately be ahead of it (even after new appends).
    opened_since: Since,
    shared: Arc<Shared>,
    /// `true` once closing began; appends hold the read side, so close waits for them.
    closed: RwLock<bool>,
    /// Serialises `close` calls.
    closing: Mutex<()>,
    feeder: Mutex<Option<FeederLink<T>>>,
}

/// The command channel to the feeder thread, and the thread.
type FeederLink<T> = (Sender<Command<T>>, JoinHandle<()>);

impl<L: Log, T: Send + Sync + 'static, C: Codec<T>> Flume<L, T, C> {
    /// Opens a database on `log` with default options, storing values with `codec`.
    pub fn open(log: L, codec: C) -> Result<Self> {
        FlumeOptions::default().open(log, codec)
    }

    fn check_open(&self) -> Result<parking_lot::RwLockReadGuard<'_, bool>> {
        let closed = self.closed.read();
        if *closed {
            return Err(Error::Closed);
        }
        Ok(closed)
    }

    /// Appends one value and returns its seq. Returns once the log has it (with the log's
    /// durability); views catch up in the background.
    ///
    /// A value whose encoding would not decode again (for example JSON nested deeper than the
    /// decoder allows, or a NaN in a typed value, which JSON stores as `null`) is refused with
    /// [`Error::Codec`] and nothing is written: views could never read it.
    pub fn append(&self, value: &T) -> Result<Seq> {
        let _open = self.check_open()?;
        let buf = self.encode(value)?;
        self.core.log.append(&buf)
    }

    /// Encodes a value for appending and checks that it decodes again.
    fn encode(&self, value: &T) -> Result<Vec<u8>> {
        let mut buf = Vec::new();
        self.core.codec.encode(value, &mut buf)?;
        self.core.codec.check(value, &buf)?;
        Ok(buf)
    }

    /// Appends values in order, as one write where the log can, and returns each one's seq.
    /// If any value is refused (see [`append`](Flume::append)), none is written.
    pub fn append_batch(&self, values: &[T]) -> Result<Vec<Seq>> {
        let _open = self.check_open()?;
        let mut encoded = Vec::with_capacity(values.len());
        for value in values {
            encoded.push(self.encode(value)?);
        }
        let slices: Vec<&[u8]> = encoded.iter().map(Vec::as_slice).collect();
        self.core.log.append_batch(&slices)
    }

    /// The value at `seq`, decoded and mapped.
    pub fn get(&self, seq: Seq) -> Result<T> {
        let _open = self.check_open()?;
        let bytes = self.core.log.get(seq)?;
        self.core.decode_guarded(seq, &bytes)
    }

    /// Streams decoded (and mapped) records with JS flumedb's stream options.
    pub fn stream(&self, options: StreamOptions) -> Result<Stream<'_, L, T, C>> {
        let _open = self.check_open()?;
        Ok(Stream {
            inner: self.core.log.stream(options)?,
            core: &self.core,
        })
    }

    /// The position of the last appended record.
    pub fn since(&self) -> Since {
        self.core.log.since()
    }

    /// The log's observable `since`.
    pub fn since_watch(&self) -> &SinceWatch {
        self.core.log.since_watch()
    }

    /// The log, for methods of a particular log (for example deleting a record).
    pub fn log(&self) -> &L {
        &self.core.log
    }

    /// Adds a view under `name` and returns its handle. Views can be added at any time, also
    /// when the log already holds data: the view catches up in the background.
    ///
    /// The view loads its persisted state first; if that was built by another version, or is
    /// ahead of the log as it was when the database opened (the log lost records in a crash),
    /// the view is reset before it is fed.
    pub fn add_view<V: View<T>>(&self, name: &str, mut view: V) -> Result<V::Handle> {
        check_view_name(name)?;
        let name: Arc<str> = Arc::from(name);
        {
            let mut state = self.shared.lock();
            if state.closed {
                return Err(Error::Closed);
            }
            if state.views.iter().any(|entry| entry.name == name) || state.reserved.contains(&name)
            {
                return Err(Error::DuplicateView {
                    name: name.to_string(),
                });
            }
            // Reserved while the view opens, so a second view of the same name cannot open
            // (and perhaps reset) the same files meanwhile.
            state.reserved.push(name.clone());
        }
        // A view's open may panic (its storage engine on damaged files): the name is released
        // and the panic becomes this view's error, never the application's.
        let opened = catch_unwind(AssertUnwindSafe(|| self.open_view(&name, &mut view)))
            .unwrap_or_else(|panic| {
                Err(Error::View {
                    view: name.to_string(),
                    source: format!("panicked while opening: {}", panic_message(&panic)).into(),
                })
            });
        let id = {
            let mut state = self.shared.lock();
            state.reserved.retain(|reserved| *reserved != name);
            let opened = match opened {
                Ok(checkpoint) if !state.closed => Ok(checkpoint),
                Ok(_) => Err(Error::Closed),
                Err(err) => Err(err),
            };
            match opened {
                Ok(checkpoint) => {
                    state.views.push(ViewEntry {
                        name: name.clone(),
                        since: checkpoint.since,
                        failure: None,
                        epoch: 0,
                    });
                    (state.views.len() - 1, checkpoint)
                }
                Err(err) => {
                    drop(state);
                    let _ = catch_unwind(AssertUnwindSafe(|| view.close()));
                    return Err(err);
                }
            }
        };
        let (id, checkpoint) = id;
        let sync = ViewSync::new(
            id,
            name.clone(),
            self.shared.clone(),
            self.core.log.since_watch().clone(),
        );
        let (get_core, page_core) = (self.core.clone(), self.core.clone());
        let log = crate::view::LogReader::new(
            move |seq| {
                let bytes = get_core.log.get(seq)?;
                get_core.decode_guarded(seq, &bytes)
            },
            move |lower, upper, reverse, max| {
                let mut records = Vec::with_capacity(max.min(1024));
                // Skipped records do not count: a short page means the range is exhausted.
                for entry in page_core.log.range(lower, upper, reverse)? {
                    if records.len() >= max {
                        break;
                    }
                    let entry = entry?;
                    if let Some(value) = page_core.decode_for_views(entry.seq, &entry.data)? {
                        records.push(Record {
                            seq: entry.seq,
                            value,
                        });
                    }
                }
                Ok(records)
            },
            self.core.log.since_watch().clone(),
        );
        let handle = view.handle(sync, log);
        let slot = Slot {
            id,
            name,
            policy: view.commit_policy(),
            view: Box::new(view),
            since: checkpoint.since,
            failed: false,
            unflushed: 0,
            first_unflushed: None,
        };
        let feeder = self.feeder.lock();
        match feeder
            .as_ref()
            .map(|(tx, _)| tx.send(Command::Add(Box::new(slot))))
        {
            Some(Ok(())) => Ok(handle),
            Some(Err(failed)) => {
                if let Command::Add(mut slot) = failed.0 {
                    let _ = slot.view.close();
                }
                Err(Error::Closed)
            }
            None => Err(Error::Closed),
        }
    }

    /// Opens a view and decides where feeding starts: its stored since, or (after a reset)
    /// the beginning, if the stored state is of another version or its checkpoint is not a
    /// record the log holds (see [`Checkpoint`](crate::Checkpoint)).
    fn open_view<V: View<T>>(&self, name: &str, view: &mut V) -> Result<Checkpoint> {
        let view_error = |source: V::Error| Error::View {
            view: name.to_string(),
            source: Box::new(source),
        };
        let view_dir = self.core.log.view_dir();
        if let Some(dir) = &view_dir {
            create_dir_durably(dir)?;
        }
        let ctx = ViewContext::new(name, view_dir);
        match view.open(&ctx).map_err(view_error)? {
            Some(stored)
                if stored.version == view.version() && self.holds(&stored.checkpoint)? =>
            {
                Ok(stored.checkpoint)
            }
            Some(_) => {
                view.reset().map_err(view_error)?;
                Ok(Checkpoint::EMPTY)
            }
            None => Ok(Checkpoint::EMPTY),
        }
    }

    /// Whether the log still holds the record a view's checkpoint was taken at.
    ///
    /// Compared with the log as it was at open: a view ahead of that includes records the log
    /// lost (its tail, in a power loss). Below it, the record's bytes must still be the ones
    /// the view processed: a log that lost its tail while the view was not attached and was
    /// appended to again has other records at those seqs. A record deleted since cannot be
    /// checked, so it counts as not held (the view rebuilds; it never guesses).
    fn holds(&self, checkpoint: &Checkpoint) -> Result<bool> {
        let Since::At(seq) = checkpoint.since else {
            return Ok(true);
        };
        if checkpoint.since > self.opened_since {
            return Ok(false);
        }
        match self.core.log.get(seq) {
            Ok(bytes) => Ok(checkpoint.matches(&bytes)),
            Err(
                Error::NotFound { .. }
                | Error::InvalidSeq { .. }
                | Error::Deleted { .. }
                | Error::Corrupt { .. },
            ) => Ok(false),
            Err(err) => Err(err),
        }
    }

    /// The records views went on without under [`Undecodable::Skip`], in the order they were
    /// met (the first 1000 with their errors), and how many distinct records were skipped.
    pub fn skipped(&self) -> (u64, Vec<Skipped>) {
        let skipped = self.core.skipped.lock();
        (skipped.0.len() as u64, skipped.1.clone())
    }

    /// Resets every view and rebuilds it from the log; returns when all have caught up with
    /// the log as it was when the rebuild began. Concurrent calls are safe: a view is only
    /// ever fed by one thread, and rebuilds asked for together share one reset.
    ///
    /// This also restarts views that failed; if one fails again, its error is returned.
    pub fn rebuild(&self) -> Result<()> {
        let (reply, answer) = crossbeam_channel::bounded(1);
        {
            let _open = self.check_open()?;
            let feeder = self.feeder.lock();
            let (tx, _) = feeder.as_ref().ok_or(Error::Closed)?;
            tx.send(Command::Rebuild(reply))
                .map_err(|_| Error::Closed)?;
        }
        answer.recv().map_err(|_| Error::Closed)?
    }

    /// Each view's position against the log's, in the order the views were added.
    pub fn progress(&self) -> Vec<Progress> {
        let log_since = self.core.log.since();
        let count = self.shared.lock().views.len();
        (0..count)
            .map(|id| self.shared.progress(id, log_since))
            .collect()
    }

    /// Opens (`true`) or shuts (`false`) the readiness gate. While it is shut, views keep
    /// indexing but reads on them wait (except [`Wait::Now`](crate::Wait::Now) reads).
    pub fn set_ready(&self, ready: bool) {
        self.shared.update(|state| state.ready = ready);
    }

    /// Whether the readiness gate is open.
    pub fn is_ready(&self) -> bool {
        self.shared.lock().ready
    }

    /// Whether the database is closed (or closing).
    pub fn is_closed(&self) -> bool {
        *self.closed.read()
    }

    /// Closes the database: waits for appends in flight, wakes pending reads with
    /// [`Error::Closed`], stops the feeder, flushes and closes every view, then flushes and
    /// closes the log. Every call after (or during) this one returns [`Error::Closed`];
    /// calling `close` again returns `Ok(())`.
    ///
    /// Every step runs even if an earlier one fails; the first error is returned.
    pub fn close(&self) -> Result<()> {
        let _closing = self.closing.lock();
        {
            let mut closed = self.closed.write();
            if *closed {
                return Ok(());
            }
            *closed = true;
        }
        self.shared.update(|state| state.closed = true);
        let mut errors = Vec::new();
        if let Some((tx, thread)) = self.feeder.lock().take() {
            let (reply, answer) = crossbeam_channel::bounded(1);
            if tx.send(Command::Close(reply)).is_ok()
                && let Ok(view_errors) = answer.recv()
            {
                errors.extend(view_errors);
            }
            drop(tx);
            if thread.join().is_err() {
                errors.push(Error::Io(std::io::Error::other(
                    "the flumedb feeder thread panicked",
                )));
            }
        }
        if let Err(err) = self.core.log.close() {
            errors.push(err);
        }
        match errors.into_iter().next() {
            None => Ok(()),
            Some(err) => Err(err),
        }
    }
}

impl<L: Log, T: Send + Sync + 'static, C: Codec<T>> Drop for Flume<L, T, C> {
    fn drop(&mut self) {
        let _ = self.close();
    }
}

/// Creates `dir` (and its parents) if missing, with the new entry synced to its parent, so
/// the views' files in it cannot vanish with the directory in a power loss.
fn create_dir_durably(dir: &std::path::Path) -> Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    let file_error = |source| Error::File {
        path: dir.to_path_buf(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(file_error)?;
    #[cfg(unix)]
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::File::open(parent)
            .and_then(|p| p.sync_all())
            .map_err(|source| Error::File {
                path: parent.to_path_buf(),
                source,
            })?;
    }
    Ok(())
}

/// View names become file names in the log's view directory: keep them to one plain path part.
fn check_view_name(name: &str) -> Result<()> {
    let bad = name.is_empty()
        || name.starts_with('.')
        || name.len() > 200
        || name
            .chars()
            .any(|c| matches!(c, '/' | '\\' | ':' | '\0') || c.is_control());
    if bad {
        return Err(Error::InvalidArgument(format!(
            "view name {name:?}: use 1 to 200 characters, not starting with '.', without \
             '/', '\\', ':' or control characters (it names files in the log's view directory)"
        )));
    }
    Ok(())
}

/// Decoded records from [`Flume::stream`].
pub struct Stream<'a, L: Log, T, C> {
    inner: LogStream<'a, L>,
    core: &'a Core<L, T, C>,
}

impl<L: Log, T, C: Codec<T>> Iterator for Stream<'_, L, T, C> {
    type Item = Result<Record<T>>;

    fn next(&mut self) -> Option<Result<Record<T>>> {
        let entry = match self.inner.next()? {
            Ok(entry) => entry,
            Err(err) => return Some(Err(err)),
        };
        Some(
            self.core
                .decode_guarded(entry.seq, &entry.data)
                .map(|value| Record {
                    seq: entry.seq,
                    value,
                }),
        )
    }
}
