//! [`OffsetLog`]: the log's state, its accessors and its [`Log`] implementation. Opening is in
//! `open.rs`, appends and deletes in `write.rs`, reads in `read.rs`, `verify` in `verify.rs`.

use std::fs::File;
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use flumedb_core::persist::{Mark, SyncedEnd};
use flumedb_core::{Durability, Error, Log, LogIter, Result, Seq, SinceWatch};
use parking_lot::{Condvar, Mutex, RwLock};

use crate::format::Format;
use crate::map::GrowingMap;
use crate::seqlock::SeqLock;

/// How far the synced-end mark on disk may lag the log before a group commit fsyncs it too.
const MARK_SYNC_LAG: u64 = 1 << 20;

/// What `open` found and repaired at the end of the file.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct Recovery {
    /// Bytes cut off the end: a torn or zero-filled tail, or a last frame that failed its
    /// checks. 0 for a cleanly closed log.
    pub dropped_bytes: u64,
    /// The file size before the cut.
    pub file_size: u64,
}

/// A durable append-only log in one file; a record's seq is the byte offset of its frame.
///
/// With [`Durability::Os`], appends a power loss tore or zero-filled are found by their
/// checksums at the next open, which keeps the appends up to the first one that did not
/// survive whole.
///
/// ```
/// use flumedb_core::{Log, Seq};
/// use flumelog_offset::{Durability, OffsetLog};
///
/// let dir = tempfile::tempdir()?;
/// let log = OffsetLog::options()
///     .durability(Durability::Fsync)
///     .open(dir.path().join("log.offset"))?;
/// let seq = log.append(b"hello")?;
/// assert_eq!(log.get(seq)?, b"hello");
/// log.del(seq)?;
/// assert!(log.get(seq).is_err());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct OffsetLog {
    pub(crate) path: PathBuf,
    pub(crate) dir: Option<PathBuf>,
    pub(crate) format: Format,
    pub(crate) durability: Durability,
    pub(crate) map: GrowingMap,
    /// Bytes below this are complete frames that readers may read.
    pub(crate) end: AtomicU64,
    pub(crate) since: SinceWatch,
    pub(crate) writer: Mutex<Writer>,
    /// Set when a failed write could not be undone, or an fsync failed: after a failed fsync
    /// the kernel may have dropped dirty pages, so nothing may be acknowledged any more. The
    /// log refuses appends (and publishes nothing) until it is reopened and recovered.
    pub(crate) poisoned: Mutex<Option<String>>,
    /// Group commit: who is syncing, and how far the file is durable.
    pub(crate) durable: Mutex<DurableState>,
    pub(crate) durable_changed: Condvar,
    /// The mark file beside the log: where the log was last fsync'd (`<log>.synced`).
    pub(crate) synced_end: Mutex<SyncedEnd>,
    /// Readers that overlapped a `del` rewriting bytes they copy retry.
    pub(crate) deletes: SeqLock,
    /// Held for reading by scans that hand out borrowed bytes, for writing by `del`.
    pub(crate) scan_lock: RwLock<()>,
    pub(crate) closed: AtomicBool,
    pub(crate) recovery: Recovery,
}

pub(crate) struct Writer {
    pub(crate) file: File,
    /// The end of the written bytes (ahead of the committed `end` while an fsync is pending).
    pub(crate) written: u64,
    /// The seq of the last written frame.
    pub(crate) last: Option<u64>,
    pub(crate) buf: Vec<u8>,
}

pub(crate) struct DurableState {
    pub(crate) syncing: bool,
    /// Everything below this is durable and published.
    pub(crate) synced: u64,
}

impl OffsetLog {
    /// The file's format.
    pub fn format(&self) -> Format {
        self.format
    }

    /// The durability mode.
    pub fn durability(&self) -> Durability {
        self.durability
    }

    /// The path of the log file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// What opening the log repaired.
    pub fn recovery(&self) -> Recovery {
        self.recovery
    }

    /// The size of the log's data in bytes (the end of the last record).
    pub fn size(&self) -> u64 {
        self.end.load(Ordering::Acquire)
    }

    /// An I/O error on the log file, with its path: a bare OS error does not say which file.
    pub(crate) fn file_error(&self, source: std::io::Error) -> Error {
        Error::File {
            path: self.path.clone(),
            source,
        }
    }

    pub(crate) fn check_poisoned(&self) -> Result<()> {
        match &*self.poisoned.lock() {
            Some(why) => Err(Error::Poisoned {
                path: Some(self.path.clone()),
                reason: why.clone(),
            }),
            None => Ok(()),
        }
    }

    pub(crate) fn set_poisoned(&self, why: String) {
        self.poisoned.lock().get_or_insert(why);
    }

    /// Records that the file is durable up to `end` (whose last frame starts at `last`): call
    /// only after an fsync that covered it.
    ///
    /// A failure leaves an older mark, which is still true (open then checks more of the
    /// tail), so the log stays usable; the error still reaches the caller, since the disk
    /// failed a write.
    ///
    /// The mark is fsync'd too when `durably` (flush, close), or when the one on disk lags by
    /// `MARK_SYNC_LAG` bytes: a mark on disk far behind the log would let open take synced
    /// frames past it for an unsynced tail should one of them be damaged. A failed fsync of
    /// it poisons the log, as any failed fsync does.
    pub(crate) fn record_synced_end(
        &self,
        end: u64,
        last: Option<u64>,
        durably: bool,
    ) -> Result<()> {
        let mark = Mark {
            end,
            check: last.unwrap_or(crate::open::NO_FRAME),
        };
        let mut synced_end = self.synced_end.lock();
        synced_end.record(mark)?;
        let on_disk = synced_end.durable().map_or(0, |m| m.end);
        if (durably || end.saturating_sub(on_disk) >= MARK_SYNC_LAG)
            && let Err(err) = synced_end.sync()
        {
            self.set_poisoned(format!("fsync of the synced-end mark failed: {err}"));
            return Err(err);
        }
        Ok(())
    }

    pub(crate) fn check_open(&self) -> Result<()> {
        if self.closed.load(Ordering::Acquire) {
            Err(Error::Closed)
        } else {
            Ok(())
        }
    }
}

impl Log for OffsetLog {
    fn append(&self, data: &[u8]) -> Result<Seq> {
        self.append_one(data)
    }

    fn append_batch(&self, records: &[&[u8]]) -> Result<Vec<Seq>> {
        self.append_records(records)
    }

    fn get(&self, seq: Seq) -> Result<Vec<u8>> {
        self.read_record(seq)
    }

    fn since_watch(&self) -> &SinceWatch {
        &self.since
    }

    fn range(&self, lower: Bound<Seq>, upper: Bound<Seq>, reverse: bool) -> Result<LogIter<'_>> {
        self.read_range(lower, upper, reverse)
    }

    fn deletes(&self) -> Option<u64> {
        Some(self.deletes.writes())
    }

    fn is_deleted(&self, seq: Seq) -> Result<bool> {
        self.read_is_deleted(seq)
    }

    fn flush(&self) -> Result<()> {
        self.check_open()?;
        let written = self.writer.lock().written;
        self.make_durable(written, true)
    }

    fn close(&self) -> Result<()> {
        // Wait for a group commit in flight and let none start after: a leader recording its
        // mark after close would leave an older mark as the newest.
        let mut state = self.durable.lock();
        while state.syncing {
            self.durable_changed.wait(&mut state);
        }
        if self.closed.swap(true, Ordering::AcqRel) {
            return Err(Error::Closed);
        }
        state.syncing = true;
        drop(state);
        let w = self.writer.lock();
        let synced = w.file.sync_all();
        // Anything written but not yet published (fsync mode) is durable now.
        let mut marked = Ok(());
        let durable = synced.is_ok() && self.poisoned.lock().is_none();
        if durable {
            self.publish(w.written, w.last);
            marked = self.record_synced_end(w.written, w.last, true);
        }
        let written = w.written;
        // Let another open (or process) have the file; this object is done with it.
        let unlocked = w.file.unlock();
        drop(w);
        let mut state = self.durable.lock();
        state.syncing = false;
        if durable {
            state.synced = state.synced.max(written);
        }
        self.durable_changed.notify_all();
        drop(state);
        self.since.close();
        synced.map_err(|e| self.file_error(e))?;
        unlocked.map_err(|e| self.file_error(e))?;
        marked
    }

    fn view_dir(&self) -> Option<PathBuf> {
        // One directory per log file, so two logs in one directory keep their views apart.
        let mut name = self.path.file_name()?.to_os_string();
        name.push(".views");
        Some(self.dir.as_ref()?.join(name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_failures_carry_the_log_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.offset");
        let log = OffsetLog::open(&path).unwrap();
        let seq = log.append(b"kept").unwrap();
        // A read-only handle makes writes fail (EBADF) even for root, where permissions don't.
        log.writer.lock().file = File::open(&path).unwrap();
        let is_file_error = |err: &Error| {
            matches!(err, Error::File { path: p, .. } if *p == path)
                && err.to_string().contains(path.to_str().unwrap())
        };
        let is_poisoned = |err: &Error| {
            matches!(err, Error::Poisoned { path: Some(p), .. } if *p == path)
                && err.to_string().contains(path.to_str().unwrap())
        };
        let append = log.append(b"lost").unwrap_err();
        assert!(is_file_error(&append), "{append:?}");
        // The failed append could not be undone: later writes are refused, naming the file.
        let del = log.del(seq).unwrap_err();
        assert!(is_poisoned(&del), "{del:?}");
        let refused = log.append(b"lost").unwrap_err();
        assert!(is_poisoned(&refused), "{refused:?}");
        assert_eq!(log.get(seq).unwrap(), b"kept");
    }
}
