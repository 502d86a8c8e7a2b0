//! The [`View`] trait: state built by streaming the log.

use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::time::Duration;

use std::sync::Arc;

use crate::error::Result;
use crate::seq::{Seq, Since};
use crate::sync::ViewSync;
use crate::watch::SinceWatch;

/// Reads records from the database's log, decoded and mapped like everything views see: for
/// view handles that answer with records (an index maps keys to seqs, then fetches; a query
/// view scans when no index helps, and follows the log for live reads).
pub struct LogReader<T> {
    get: Arc<GetFn<T>>,
    page: Arc<PageFn<T>>,
    since: SinceWatch,
}

/// Reads the record at a seq.
type GetFn<T> = dyn Fn(Seq) -> Result<T> + Send + Sync;
/// Reads up to `max` records within bounds, in order.
type PageFn<T> =
    dyn Fn(Bound<Seq>, Bound<Seq>, bool, usize) -> Result<Vec<Record<T>>> + Send + Sync;

impl<T> Clone for LogReader<T> {
    fn clone(&self) -> Self {
        LogReader {
            get: self.get.clone(),
            page: self.page.clone(),
            since: self.since.clone(),
        }
    }
}

impl<T> LogReader<T> {
    /// A reader from functions (the driver builds the real one): `get(seq)`, and
    /// `page(lower, upper, reverse, max)` returning up to `max` records within the bounds in
    /// order (reverse: highest seq first), and the log's since watch.
    pub fn new(
        get: impl Fn(Seq) -> Result<T> + Send + Sync + 'static,
        page: impl Fn(Bound<Seq>, Bound<Seq>, bool, usize) -> Result<Vec<Record<T>>>
        + Send
        + Sync
        + 'static,
        since: SinceWatch,
    ) -> LogReader<T> {
        LogReader {
            get: Arc::new(get),
            page: Arc::new(page),
            since,
        }
    }

    /// The value at `seq`.
    pub fn get(&self, seq: Seq) -> Result<T> {
        (self.get)(seq)
    }

    /// The records within the bounds, in order (reverse: highest seq first), read a page at a
    /// time: the iterator owns no borrow of the log and can be kept and sent to other threads.
    /// It reads what the log holds as it goes; bound it above by the log's since for a fixed
    /// cut.
    pub fn records(&self, lower: Bound<Seq>, upper: Bound<Seq>, reverse: bool) -> Records<T> {
        Records {
            reader: self.clone(),
            lower,
            upper,
            reverse,
            page: std::collections::VecDeque::new(),
            done: false,
        }
    }

    /// The records after `after`, as they are appended: the records already there, then each
    /// new one once the log has it, without gaps or repeats. It waits for appends (no timeout)
    /// and ends with [`Error::Closed`](crate::Error::Closed) when the log closes, or after any
    /// other error.
    pub fn follow(&self, after: Since) -> Follow<T> {
        Follow {
            reader: self.clone(),
            cursor: after,
            page: None,
            done: false,
        }
    }

    /// The log's since: where the log ends now, and a way to wait for it to grow.
    pub fn since_watch(&self) -> &SinceWatch {
        &self.since
    }
}

/// The iterator of [`LogReader::follow`].
pub struct Follow<T> {
    reader: LogReader<T>,
    cursor: Since,
    page: Option<Records<T>>,
    done: bool,
}

impl<T> Iterator for Follow<T> {
    type Item = Result<Record<T>>;

    fn next(&mut self) -> Option<Result<Record<T>>> {
        while !self.done {
            if let Some(page) = &mut self.page {
                match page.next() {
                    Some(Ok(record)) => {
                        self.cursor = Since::At(record.seq);
                        return Some(Ok(record));
                    }
                    Some(Err(e)) => {
                        self.done = true;
                        return Some(Err(e));
                    }
                    None => self.page = None,
                }
            }
            let watch = &self.reader.since;
            if watch.get() == self.cursor
                && let Err(e) = watch.wait_change(self.cursor, None)
            {
                self.done = true;
                return Some(Err(e));
            }
            let lower = match self.cursor {
                Since::Empty => Bound::Unbounded,
                Since::At(seq) => Bound::Excluded(seq),
            };
            self.page = Some(self.reader.records(lower, Bound::Unbounded, false));
        }
        None
    }
}

/// How many records [`Records`] reads at a time.
const PAGE: usize = 256;

/// The iterator of [`LogReader::records`].
pub struct Records<T> {
    reader: LogReader<T>,
    lower: Bound<Seq>,
    upper: Bound<Seq>,
    reverse: bool,
    page: std::collections::VecDeque<Record<T>>,
    done: bool,
}

impl<T> Iterator for Records<T> {
    type Item = Result<Record<T>>;

    fn next(&mut self) -> Option<Result<Record<T>>> {
        if let Some(record) = self.page.pop_front() {
            return Some(Ok(record));
        }
        if self.done {
            return None;
        }
        let page = match (self.reader.page)(self.lower, self.upper, self.reverse, PAGE) {
            Ok(page) => page,
            Err(err) => {
                self.done = true;
                return Some(Err(err));
            }
        };
        if page.len() < PAGE {
            self.done = true;
        }
        if let Some(last) = page.last() {
            // The next page continues after the last record read.
            if self.reverse {
                self.upper = Bound::Excluded(last.seq);
            } else {
                self.lower = Bound::Excluded(last.seq);
            }
        }
        self.page = page.into();
        self.page.pop_front().map(Ok)
    }
}

impl<T> std::fmt::Debug for LogReader<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LogReader")
    }
}

/// A decoded record as views and readers see it.
#[derive(Clone, PartialEq, Debug)]
pub struct Record<T> {
    /// The record's position in the log.
    pub seq: Seq,
    /// The decoded (and, if the database has a mapper, mapped) value.
    pub value: T,
}

/// Where a view lives: its name and, if the log has a directory, that directory.
#[derive(Clone, Debug)]
pub struct ViewContext {
    name: String,
    dir: Option<PathBuf>,
}

impl ViewContext {
    /// A context for a view called `name`, persisting under `dir` if given.
    pub fn new(name: impl Into<String>, dir: Option<PathBuf>) -> ViewContext {
        ViewContext {
            name: name.into(),
            dir,
        }
    }

    /// The name the view was added under.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The log's directory, where a persistent view keeps its files. `None` for logs that live
    /// only in memory: the view then lives only in memory too and rebuilds on every open.
    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }
}

/// What a view found on disk when it opened: the version and position it had persisted.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Stored {
    /// The version the state was built with.
    pub version: u32,
    /// The last record the persisted state includes.
    pub since: Since,
}

/// How often the driver asks a view to [`flush`](View::flush): after `records` records or
/// `interval` after the first unflushed one, whichever comes first, and always on close.
///
/// The interval runs from the first unflushed record, so a steady stream of appends can delay a
/// flush by at most `interval` (JS flumeview-reduce's debounce could starve for ever).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct CommitPolicy {
    /// Flush after this many records (at least 1).
    pub records: u64,
    /// Flush at most this long after the first unflushed record.
    pub interval: Duration,
}

impl Default for CommitPolicy {
    /// Every 10,000 records or 500 ms.
    fn default() -> Self {
        CommitPolicy {
            records: 10_000,
            interval: Duration::from_millis(500),
        }
    }
}

/// A view: query-optimised state built by streaming the log in order.
///
/// The driver ([`Flume`](crate::Flume)) owns the view and calls it from one background thread:
/// `open` once, then `apply` with batches of records in log order, each starting right after
/// the previous one, `flush` now and then, `reset` to start over, and `close` at the end.
/// Readers never touch the view itself: they use its [`Handle`](View::Handle), which the view
/// builds around a [`ViewSync`] so every read can wait until the view has caught up. The view
/// and its handle share the state the view builds (behind a lock, or in a store that allows
/// concurrent readers).
///
/// Rules for implementations:
/// - `open` reports what is persisted; if its version differs from [`version`](View::version)
///   or it is ahead of the log, the driver calls `reset` before feeding anything;
/// - after `flush` returns, the persisted state must include exactly the records applied so
///   far, together with the seq of the last one (never a newer state with an older seq, or the
///   reverse); a crash may lose recent records, never claim more than was stored;
/// - `reset` destroys the state (memory and disk) so that a later `open` reports nothing;
/// - errors put the view into a failed state; the driver does not retry on its own.
pub trait View<T>: Send + 'static {
    /// What readers use: cheap to clone, shareable between threads.
    type Handle: Clone + Send + Sync + 'static;

    /// The view's own error type.
    type Error: std::error::Error + Send + Sync + 'static;

    /// The version of the view's logic. Change it whenever the state it would build changes:
    /// stored state of another version is thrown away and rebuilt from the log.
    fn version(&self) -> u32;

    /// Loads persisted state, if any, from `ctx.dir()`.
    fn open(&mut self, ctx: &ViewContext) -> Result<Option<Stored>, Self::Error>;

    /// Builds the handle readers use. Every read on it should go through
    /// [`ViewSync::read`], which waits until the view has caught up and retries if a rebuild
    /// reset the view during the read. `log` fetches records, for handles that return them.
    fn handle(&self, sync: ViewSync, log: LogReader<T>) -> Self::Handle;

    /// Applies records, in log order, all after the ones applied before.
    fn apply(&mut self, records: &[Record<T>]) -> Result<(), Self::Error>;

    /// Makes everything applied so far durable, with the seq of the last record.
    fn flush(&mut self) -> Result<(), Self::Error>;

    /// Destroys all state, in memory and on disk: the view is empty again.
    fn reset(&mut self) -> Result<(), Self::Error>;

    /// Releases resources. The driver flushes before closing.
    fn close(&mut self) -> Result<(), Self::Error>;

    /// How often the driver flushes this view.
    fn commit_policy(&self) -> CommitPolicy {
        CommitPolicy::default()
    }
}
