//! [`FlumeOptions`]: how a database is opened. (Its `open` lives with [`Flume`](crate::Flume),
//! which it builds, so this module needs nothing of the driver.)

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::error::BoxError;
use crate::typed_log::{Mapper, Undecodable};

/// Options for opening a [`Flume`](crate::Flume):
/// `FlumeOptions::new().mapper(..).ready(false).open(log, codec)`.
///
/// ```
/// use std::time::Duration;
/// use flumedb_core::{Flume, FlumeOptions, Json, Undecodable};
/// use flumelog_memory::MemoryLog;
/// use serde_json::Value;
///
/// let db: Flume<MemoryLog, Value> = FlumeOptions::new()
///     .read_timeout(Some(Duration::from_secs(5)))
///     .undecodable(Undecodable::Skip)
///     .open(MemoryLog::new(), Json)?;
/// db.close()?;
/// # Ok::<(), flumedb_core::Error>(())
/// ```
#[must_use = "options do nothing until `open` is called"]
pub struct FlumeOptions<T> {
    pub(crate) mapper: Option<Mapper<T>>,
    pub(crate) ready: bool,
    pub(crate) read_timeout: Option<Duration>,
    pub(crate) batch_size: usize,
    pub(crate) undecodable: Undecodable,
    pub(crate) view_dir: Option<PathBuf>,
    pub(crate) memory_budget: u64,
}

impl<T> Default for FlumeOptions<T> {
    fn default() -> Self {
        FlumeOptions {
            mapper: None,
            ready: true,
            read_timeout: Some(Duration::from_secs(60)),
            batch_size: 1024,
            undecodable: Undecodable::Fail,
            view_dir: None,
            memory_budget: crate::view::DEFAULT_MEMORY_BUDGET,
        }
    }
}

impl<T: Send + Sync + 'static> FlumeOptions<T> {
    /// The defaults: no mapper, ready, a 60 s read timeout, batches of 1024 records, views in
    /// the log's [`view_dir`](crate::Log::view_dir).
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
    /// wait until [`Flume::set_ready`](crate::Flume::set_ready)`(true)`, for example after a
    /// migration. Default `true`.
    pub fn ready(mut self, ready: bool) -> Self {
        self.ready = ready;
        self
    }

    /// How long a read on a view waits for the view to catch up before it fails with
    /// [`Error::Timeout`](crate::Error::Timeout). `None` waits without limit. Default: 60
    /// seconds.
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

    /// The directory where views keep their state, instead of the log's
    /// [`view_dir`](crate::Log::view_dir) (the default). A log with no local directory (one in
    /// memory, or on another machine) still gets persistent views this way. The database
    /// creates the directory when the first view is added. It must belong to this log alone:
    /// views of another log in the same directory would take its state for their own.
    ///
    /// ```
    /// use flumedb_core::{Flume, FlumeOptions, Json};
    /// use flumelog_memory::MemoryLog;
    /// use serde_json::Value;
    ///
    /// let dir = tempfile::tempdir()?;
    /// let views = dir.path().join("views");
    /// let db: Flume<MemoryLog, Value> = FlumeOptions::new()
    ///     .view_dir(&views)
    ///     .open(MemoryLog::new(), Json)?;
    /// assert_eq!(db.view_dir(), Some(views.as_path()));
    /// db.close()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn view_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.view_dir = Some(dir.into());
        self
    }

    /// The memory the persistent views may keep for caches and write buffers, in bytes, all
    /// views together (handed to each view as
    /// [`ViewContext::memory_budget`](crate::ViewContext::memory_budget)). Default
    /// [`DEFAULT_MEMORY_BUDGET`](crate::DEFAULT_MEMORY_BUDGET) (16 MiB). More makes index
    /// builds and reads of large indexes faster; the level store
    /// (flumeview-level, flumeview-query) gives half to its block cache and the rest to its
    /// write buffers, and its second worker thread only to budgets of 64 MiB or more.
    ///
    /// ```
    /// use flumedb_core::{Flume, FlumeOptions, Json};
    /// use flumelog_memory::MemoryLog;
    /// use serde_json::Value;
    ///
    /// let db: Flume<MemoryLog, Value> = FlumeOptions::new()
    ///     .memory_budget(64 << 20)
    ///     .open(MemoryLog::new(), Json)?;
    /// db.close()?;
    /// # Ok::<(), flumedb_core::Error>(())
    /// ```
    pub fn memory_budget(mut self, bytes: u64) -> Self {
        self.memory_budget = bytes;
        self
    }
}
