//! [`Flume`]: one log, any number of views, and the driver that keeps them caught up.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};

use crate::codec::{Codec, Json};
use crate::error::{Error, Result};
use crate::feeder::FeederLink;
use crate::log::{Log, StreamOptions};
use crate::options::FlumeOptions;
use crate::panic::panic_message;
use crate::progress::Progress;
use crate::seq::{Seq, Since};
use crate::slot::Slot;
use crate::sync::ViewSync;
use crate::typed_log::{RecordStream, Skipped, TypedLog};
use crate::view::{Checkpoint, View, ViewContext};
use crate::views_watch::{ViewEntry, ViewsWatch};
use crate::watch::SinceWatch;

impl<T: Send + Sync + 'static> FlumeOptions<T> {
    /// Opens the database on `log`, storing values with `codec`.
    pub fn open<L: Log, C: Codec<T>>(self, log: L, codec: C) -> Result<Flume<L, T, C>> {
        if log.since_watch().is_closed() {
            return Err(Error::Closed);
        }
        let view_dir = self.view_dir.or_else(|| log.view_dir());
        let typed = Arc::new(TypedLog::new(log, codec, self.mapper, self.undecodable));
        let views_watch = Arc::new(ViewsWatch::new(self.ready, self.read_timeout));
        let feeder = FeederLink::spawn(typed.clone(), views_watch.clone(), self.batch_size)?;
        Ok(Flume {
            opened_since: typed.log.since(),
            typed,
            views_watch,
            view_dir,
            memory_budget: self.memory_budget,
            closed: RwLock::new(false),
            closing: Mutex::new(()),
            feeder: Mutex::new(Some(feeder)),
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
    typed: Arc<TypedLog<L, T, C>>,
    /// The log's since when the database opened. A view's stored state was written before
    /// that, so it can never legitimately be ahead of it (even after new appends).
    opened_since: Since,
    views_watch: Arc<ViewsWatch>,
    /// Where views keep their state: `FlumeOptions::view_dir`, else the log's.
    view_dir: Option<PathBuf>,
    /// `FlumeOptions::memory_budget`, handed to every view.
    memory_budget: u64,
    /// `true` once closing began; appends hold the read side, so close waits for them.
    closed: RwLock<bool>,
    /// Serialises `close` calls.
    closing: Mutex<()>,
    feeder: Mutex<Option<FeederLink<T>>>,
}

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
        let buf = self.typed.encode(value)?;
        self.typed.log.append(&buf)
    }

    /// Appends values in order, as one write where the log can, and returns each one's seq.
    /// If any value is refused (see [`append`](Flume::append)), none is written.
    pub fn append_batch(&self, values: &[T]) -> Result<Vec<Seq>> {
        let _open = self.check_open()?;
        let mut encoded = Vec::with_capacity(values.len());
        for value in values {
            encoded.push(self.typed.encode(value)?);
        }
        let slices: Vec<&[u8]> = encoded.iter().map(Vec::as_slice).collect();
        self.typed.log.append_batch(&slices)
    }

    /// The value at `seq`, decoded and mapped.
    pub fn get(&self, seq: Seq) -> Result<T> {
        let _open = self.check_open()?;
        self.typed.get(seq)
    }

    /// Streams decoded (and mapped) records with JS flumedb's stream options.
    pub fn stream(&self, options: StreamOptions) -> Result<RecordStream<'_, L, T, C>> {
        let _open = self.check_open()?;
        Ok(RecordStream::new(
            self.typed.log.stream(options)?,
            &self.typed,
        ))
    }

    /// The position of the last appended record.
    pub fn since(&self) -> Since {
        self.typed.log.since()
    }

    /// The log's observable `since`.
    pub fn since_watch(&self) -> &SinceWatch {
        self.typed.log.since_watch()
    }

    /// The log, for methods of a particular log (for example deleting a record).
    pub fn log(&self) -> &L {
        &self.typed.log
    }

    /// The directory where views keep their state: [`FlumeOptions::view_dir`] if set, else the
    /// log's [`view_dir`](Log::view_dir). `None`: views live in memory and rebuild on every
    /// open.
    pub fn view_dir(&self) -> Option<&Path> {
        self.view_dir.as_deref()
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
        self.reserve(&name)?;
        // A view's open may panic (its storage engine on damaged files): the name is released
        // and the panic becomes this view's error, never the application's.
        let opened = catch_unwind(AssertUnwindSafe(|| self.open_view(&name, &mut view)))
            .unwrap_or_else(|panic| {
                Err(Error::View {
                    view: name.to_string(),
                    source: format!("panicked while opening: {}", panic_message(&panic)).into(),
                })
            });
        let (id, checkpoint) = match self.register(&name, opened) {
            Ok(registered) => registered,
            Err(err) => {
                let _ = catch_unwind(AssertUnwindSafe(|| view.close()));
                return Err(err);
            }
        };
        let sync = ViewSync::new(
            id,
            name.clone(),
            self.views_watch.clone(),
            self.since_watch().clone(),
        );
        let handle = view.handle(sync, self.typed.reader());
        let slot = Slot::new(id, name, view, checkpoint.since);
        match &*self.feeder.lock() {
            Some(feeder) => feeder.add(slot).map(|()| handle),
            None => Err(Error::Closed),
        }
    }

    /// Reserves `name` while its view opens, so a second view of the same name cannot open
    /// (and perhaps reset) the same files meanwhile.
    fn reserve(&self, name: &Arc<str>) -> Result<()> {
        let mut state = self.views_watch.lock();
        if state.closed {
            return Err(Error::Closed);
        }
        if state.views.iter().any(|entry| entry.name == *name) || state.reserved.contains(name) {
            return Err(Error::DuplicateView {
                name: name.to_string(),
            });
        }
        state.reserved.push(name.clone());
        Ok(())
    }

    /// Releases the reservation of `name` and, if its view `opened` (and the database is still
    /// open), registers the view for reads; returns its id and where feeding starts.
    fn register(&self, name: &Arc<str>, opened: Result<Checkpoint>) -> Result<(usize, Checkpoint)> {
        let mut state = self.views_watch.lock();
        state.reserved.retain(|reserved| reserved != name);
        let checkpoint = opened?;
        if state.closed {
            return Err(Error::Closed);
        }
        state
            .views
            .push(ViewEntry::new(name.clone(), checkpoint.since));
        Ok((state.views.len() - 1, checkpoint))
    }

    /// Opens a view and decides where feeding starts: its stored since, or (after a reset)
    /// the beginning, if the stored state is of another version or its checkpoint is not a
    /// record the log holds (see [`Checkpoint`](crate::Checkpoint)).
    fn open_view<V: View<T>>(&self, name: &str, view: &mut V) -> Result<Checkpoint> {
        let view_error = |source: V::Error| Error::View {
            view: name.to_string(),
            source: Box::new(source),
        };
        if let Some(dir) = &self.view_dir {
            crate::persist::create_dir_durably(dir)?;
        }
        let ctx =
            ViewContext::new(name, self.view_dir.clone()).with_memory_budget(self.memory_budget);
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
        match self.typed.log.get(seq) {
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

    /// The records views went on without under [`Undecodable::Skip`](crate::Undecodable::Skip), in the order they were
    /// met (the first 1000 with their errors), and how many distinct records were skipped.
    pub fn skipped(&self) -> (u64, Vec<Skipped>) {
        self.typed.skipped()
    }

    /// Resets every view and rebuilds it from the log; returns when all have caught up with
    /// the log as it was when the rebuild began. Concurrent calls are safe: a view is only
    /// ever fed by one thread, and rebuilds asked for together share one reset.
    ///
    /// This also restarts views that failed; if one fails again, its error is returned.
    pub fn rebuild(&self) -> Result<()> {
        let answer = {
            let _open = self.check_open()?;
            let feeder = self.feeder.lock();
            feeder.as_ref().ok_or(Error::Closed)?.rebuild()?
        };
        answer.recv().map_err(|_| Error::Closed)?
    }

    /// Waits until every view has processed everything appended before the call, and
    /// returns that position: after it, reads on any view answer without waiting. Reads wait
    /// on their own, so this is for when the application wants all views current at once (at
    /// startup, before a batch of reads, in tests). It does not wait for the readiness gate
    /// ([`set_ready`](Flume::set_ready)).
    ///
    /// Errors: a view that failed ([`Error::ViewFailed`]), [`Error::Closed`], or
    /// [`Error::Timeout`] after [`FlumeOptions::read_timeout`] naming a view still behind.
    ///
    /// ```
    /// use flumedb_core::{Flume, Json, Since};
    /// use flumelog_memory::MemoryLog;
    ///
    /// let db: Flume<MemoryLog, u64> = Flume::open(MemoryLog::new(), Json)?;
    /// let seq = db.append(&7)?;
    /// assert_eq!(db.sync()?, Since::At(seq));
    /// # Ok::<(), flumedb_core::Error>(())
    /// ```
    pub fn sync(&self) -> Result<Since> {
        let _open = self.check_open()?;
        let target = self.typed.log.since();
        self.views_watch
            .wait_all(target, self.views_watch.read_timeout)?;
        Ok(target)
    }

    /// Each view's position against the log's, in the order the views were added.
    pub fn progress(&self) -> Vec<Progress> {
        let log_since = self.typed.log.since();
        let count = self.views_watch.lock().views.len();
        (0..count)
            .map(|id| self.views_watch.progress(id, log_since))
            .collect()
    }

    /// Opens (`true`) or shuts (`false`) the readiness gate. While it is shut, views keep
    /// indexing but reads on them wait (except [`Wait::Now`](crate::Wait::Now) reads).
    pub fn set_ready(&self, ready: bool) {
        self.views_watch.update(|state| state.ready = ready);
    }

    /// Whether the readiness gate is open.
    pub fn is_ready(&self) -> bool {
        self.views_watch.lock().ready
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
        self.views_watch.update(|state| state.closed = true);
        let mut errors = Vec::new();
        let feeder = self.feeder.lock().take();
        if let Some(feeder) = feeder {
            errors.extend(feeder.close());
        }
        if let Err(err) = self.typed.log.close() {
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

/// View names become file names in the view directory: keep them to one plain path part.
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
             '/', '\\', ':' or control characters (it names files in the view directory)"
        )));
    }
    Ok(())
}
