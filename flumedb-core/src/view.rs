//! The [`View`] trait: state built by streaming the log.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::reader::LogReader;
use crate::record::Record;
use crate::seq::{Seq, Since};
use crate::sync::ViewSync;

/// Where a view lives: its name, the directory of its views if the database has one, and the
/// database's memory budget.
#[derive(Clone, Debug)]
pub struct ViewContext {
    name: String,
    dir: Option<PathBuf>,
    memory_budget: u64,
}

impl ViewContext {
    /// A context for a view called `name`, persisting under `dir` if given, with the default
    /// memory budget ([`DEFAULT_MEMORY_BUDGET`]).
    pub fn new(name: impl Into<String>, dir: Option<PathBuf>) -> ViewContext {
        ViewContext {
            name: name.into(),
            dir,
            memory_budget: DEFAULT_MEMORY_BUDGET,
        }
    }

    /// The same context with `bytes` as the memory budget.
    #[must_use]
    pub fn with_memory_budget(mut self, bytes: u64) -> ViewContext {
        self.memory_budget = bytes;
        self
    }

    /// The bytes the database's persistent views may keep in memory for caches and write
    /// buffers, all together ([`FlumeOptions::memory_budget`](crate::FlumeOptions::memory_budget)).
    /// Views that share a store (the level views of one directory) size it from this once, when
    /// the first of them opens it; a view's own state (a reduce's value) is not counted.
    pub fn memory_budget(&self) -> u64 {
        self.memory_budget
    }

    /// The name the view was added under.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The directory where a persistent view keeps its files: one per log
    /// ([`FlumeOptions::view_dir`](crate::FlumeOptions::view_dir), by default the log's
    /// [`Log::view_dir`](crate::Log::view_dir)), so views of two logs never share state.
    /// `None` when neither gives one (a log that lives only in memory): the view then lives
    /// only in memory too and rebuilds on every open.
    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }
}

/// The memory budget of a database's views unless
/// [`FlumeOptions::memory_budget`](crate::FlumeOptions::memory_budget) says otherwise: 16 MiB,
/// small enough for a phone, large enough that the level store's cache holds the hot part of
/// an index of a million records.
pub const DEFAULT_MEMORY_BUDGET: u64 = 16 << 20;

/// What a view found on disk when it opened: the version and checkpoint it had persisted.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Stored {
    /// The version the state was built with.
    pub version: u32,
    /// The last record the persisted state includes, as [`View::flush`] was given it.
    pub checkpoint: Checkpoint,
}

/// How far a view's persisted state reaches: the seq of the last record it includes and a
/// fingerprint of that record's stored bytes.
///
/// A view stores the checkpoint [`View::apply`] hands it next to its state and returns it from
/// [`View::open`]. At open the driver reads the record at `since` from the log and compares
/// fingerprints: a log that lost its tail and was appended to again has other records at the
/// same seqs, and a view's state may have been built from another log; either way the view
/// is rebuilt rather than trusted.
///
/// ```
/// use flumedb_core::{Checkpoint, Seq, Since};
///
/// let cp = Checkpoint::of(Seq::new(42), b"{\"n\":1}");
/// assert_eq!(cp.since, Since::At(Seq::new(42)));
/// assert!(cp.matches(b"{\"n\":1}"));
/// assert!(!cp.matches(b"{\"n\":2}"));
/// assert_eq!(Checkpoint::decode(&cp.encode()), Some(cp));
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default, Serialize, Deserialize)]
pub struct Checkpoint {
    /// The last record included (`Empty`: none).
    pub since: Since,
    /// [`Checkpoint::fingerprint`] of that record's bytes (0 when `since` is empty).
    pub fingerprint: u64,
}

impl Checkpoint {
    /// Bytes of [`encode`](Checkpoint::encode)'s output.
    pub const ENCODED_LEN: usize = 17;

    /// Nothing included yet.
    pub const EMPTY: Checkpoint = Checkpoint {
        since: Since::Empty,
        fingerprint: 0,
    };

    /// The checkpoint of the record at `seq` whose stored bytes are `bytes`.
    pub fn of(seq: Seq, bytes: &[u8]) -> Checkpoint {
        Checkpoint {
            since: Since::At(seq),
            fingerprint: Checkpoint::fingerprint(bytes),
        }
    }

    /// A record's fingerprint: CRC32 of its bytes in the low half, its length in the high
    /// half. Stable across versions (it is persisted).
    pub fn fingerprint(bytes: &[u8]) -> u64 {
        u64::from(crc32fast::hash(bytes)) | ((bytes.len() as u64 & 0xffff_ffff) << 32)
    }

    /// Whether `bytes` are the bytes of the record this checkpoint was taken at.
    pub fn matches(&self, bytes: &[u8]) -> bool {
        Checkpoint::fingerprint(bytes) == self.fingerprint
    }

    /// A fixed-size encoding for binary stores: a tag byte (0 empty, 1 at a seq), the seq and
    /// the fingerprint, little-endian.
    pub fn encode(&self) -> [u8; Checkpoint::ENCODED_LEN] {
        let mut out = [0u8; Checkpoint::ENCODED_LEN];
        if let Since::At(seq) = self.since {
            out[0] = 1;
            out[1..9].copy_from_slice(&seq.get().to_le_bytes());
            out[9..17].copy_from_slice(&self.fingerprint.to_le_bytes());
        }
        out
    }

    /// Reads [`encode`](Checkpoint::encode)'s output; `None` if it is not one.
    pub fn decode(bytes: &[u8]) -> Option<Checkpoint> {
        let bytes: &[u8; Checkpoint::ENCODED_LEN] = bytes.try_into().ok()?;
        let (tag, rest) = bytes.split_first()?;
        let (seq, fingerprint) = rest.split_at(8);
        let seq = u64::from_le_bytes(seq.try_into().ok()?);
        let fingerprint = u64::from_le_bytes(fingerprint.try_into().ok()?);
        match tag {
            0 if seq == 0 && fingerprint == 0 => Some(Checkpoint::EMPTY),
            1 => Some(Checkpoint {
                since: Since::At(Seq::new(seq)),
                fingerprint,
            }),
            _ => None,
        }
    }
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
/// - `open` reports what is persisted; if its version differs from [`version`](View::version),
///   it is ahead of the log, or the log no longer holds the record of its checkpoint (see
///   [`Checkpoint`]), the driver calls `reset` before feeding anything;
/// - after `flush` returns, the persisted state must include exactly the records applied so
///   far, together with the checkpoint of the last `apply` (never a newer state with an older
///   checkpoint, or the reverse), and `open` must return that checkpoint as it was given; a
///   crash may lose recent records, never claim more than was stored;
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

    /// Applies records, in log order, all after the ones applied before. The state then
    /// reaches `checkpoint` (the last record applied, or one after it that the driver passed
    /// over; `records` may be empty): whenever the view persists its state, it persists the
    /// checkpoint of the same moment with it, atomically, and a later [`open`](View::open)
    /// returns it as it was given.
    fn apply(&mut self, records: &[Record<T>], checkpoint: Checkpoint) -> Result<(), Self::Error>;

    /// Makes everything applied so far durable, with the checkpoint of the last `apply`.
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
