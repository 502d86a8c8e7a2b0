//! [`AaolLog`]: the log, its reads, and the `Log` implementation.

use std::collections::HashMap;
use std::fs::File;
use std::ops::Bound;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use flumedb_core::{Error, Log, LogIter, Result, Seq, Since, SinceWatch};
use parking_lot::{Condvar, Mutex, RwLock};

use crate::block::{self, Slot};
use crate::open::{self, Recovered, io};
use crate::options::AaolOptions;
use flumedb_core::Durability;

/// How many blocks' record lists `get` keeps (a few hundred bytes each for 64 KiB blocks of
/// SSB messages): 4,096 cover 256 MiB of log; when full, the list starts again.
const SLOT_CACHE_BLOCKS: usize = 4096;

/// The writer's state, under one lock: appends and deletes are serialised.
pub(crate) struct Writer {
    /// Where the next record goes.
    pub(crate) next: u64,
    /// The last record written.
    pub(crate) last: Since,
    /// The file's length (whole blocks).
    pub(crate) file_len: u64,
    /// Bytes of deleted records (length field included), as `<log>.stats` keeps them.
    pub(crate) deleted_bytes: u64,
    /// The records written to the current block, when this writer wrote all of them (it
    /// started the block): handed to the slot cache when the block is complete.
    pub(crate) current_slots: Option<Vec<Slot>>,
}

/// Group commit: how far the file is known durable, and whether an fsync is running.
pub(crate) struct Durable {
    pub(crate) synced: u64,
    pub(crate) syncing: bool,
}

/// An async-append-only-log (AAOL) file, as ssb-db2 keeps `db2/log.bipf`: records of up to
/// 64 KiB − 4 bytes in blocks of 64 KiB (by default), a record's seq its byte offset. Files
/// written by the npm package open here and the other way round (see the crate README for the
/// format and what differs from JS on purpose).
///
/// ```
/// use flumedb_core::Log;
/// use flumelog_aaol::AaolLog;
///
/// let dir = tempfile::tempdir()?;
/// let log = AaolLog::open(dir.path().join("log.bipf"))?;
/// let seq = log.append(b"hello")?;
/// assert_eq!(log.get(seq)?, b"hello");
/// log.del(seq)?;
/// assert!(log.get(seq).is_err());
/// log.close()?;
/// # Ok::<(), flumedb_core::Error>(())
/// ```
pub struct AaolLog {
    pub(crate) path: PathBuf,
    pub(crate) file: File,
    pub(crate) block: u64,
    pub(crate) durability: Durability,
    pub(crate) writer: Mutex<Writer>,
    /// The end of what readers may read: every record below it is written (and durable, in
    /// `Fsync` mode).
    pub(crate) readable: AtomicU64,
    /// Bytes written so far (what a group-commit fsync covers).
    pub(crate) written: AtomicU64,
    pub(crate) durable: Mutex<Durable>,
    pub(crate) durable_changed: Condvar,
    /// Odd while a delete zeroes a payload: readers that saw it change read again.
    pub(crate) deleting: AtomicU64,
    pub(crate) deletes: AtomicU64,
    pub(crate) since: SinceWatch,
    pub(crate) closed: AtomicBool,
    /// The record lists of complete blocks read by `get`s (see `slots`).
    pub(crate) slot_cache: RwLock<HashMap<u64, Arc<[Slot]>>>,
    /// Set by a failed fsync: appends are refused until the log is reopened.
    pub(crate) poisoned: Mutex<Option<String>>,
    pub(crate) recovered: Recovered,
}

impl AaolLog {
    /// Opens (or creates) the log at `path` with the default options (64 KiB blocks,
    /// [`Durability::Os`]).
    pub fn open(path: impl AsRef<Path>) -> Result<AaolLog> {
        AaolOptions::default().open(path)
    }

    /// Options to open a log with another block size or durability.
    pub fn options() -> AaolOptions {
        AaolOptions::default()
    }

    pub(crate) fn open_with(path: &Path, options: AaolOptions) -> Result<AaolLog> {
        let opened = open::open(path, options.block_size)?;
        let file_len = opened.file.metadata().map_err(io(path))?.len();
        let deleted_bytes = crate::stats::load(path)?;
        Ok(AaolLog {
            path: path.to_path_buf(),
            file: opened.file,
            block: u64::from(options.block_size),
            durability: options.durability,
            writer: Mutex::new(Writer {
                next: opened.next,
                last: opened.since,
                file_len,
                deleted_bytes,
                current_slots: None,
            }),
            readable: AtomicU64::new(opened.next),
            written: AtomicU64::new(opened.next),
            durable: Mutex::new(Durable {
                synced: opened.next,
                syncing: false,
            }),
            durable_changed: Condvar::new(),
            deleting: AtomicU64::new(0),
            deletes: AtomicU64::new(0),
            since: SinceWatch::new(opened.since),
            closed: AtomicBool::new(false),
            slot_cache: RwLock::new(HashMap::new()),
            poisoned: Mutex::new(None),
            recovered: opened.recovered,
        })
    }

    /// What opening found and repaired in the last block.
    pub fn recovered(&self) -> Recovered {
        self.recovered
    }

    /// The block size.
    pub fn block_size(&self) -> u32 {
        self.block as u32
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Bytes of deleted records (each with its 2-byte length), as the JS package's
    /// `stats().deletedBytes` reports and `<log>.stats` keeps.
    pub fn deleted_bytes(&self) -> u64 {
        self.writer.lock().deleted_bytes
    }

    pub(crate) fn check_open(&self) -> Result<()> {
        if self.closed.load(Ordering::Acquire) {
            Err(Error::Closed)
        } else {
            Ok(())
        }
    }

    pub(crate) fn io(&self) -> impl Fn(std::io::Error) -> Error + '_ {
        io(&self.path)
    }

    /// The record at `seq`: its slot in its block, checked to be a record start below the
    /// readable end.
    pub(crate) fn slot(&self, seq: Seq) -> Result<Slot> {
        let at = seq.get();
        let readable = self.readable.load(Ordering::Acquire);
        if at >= readable {
            return Err(Error::NotFound { seq });
        }
        let start = at - at % self.block;
        let pos = (at - start) as usize;
        let slots = self.slots(start, readable)?;
        slots
            .binary_search_by_key(&pos, |slot| slot.pos)
            .ok()
            .and_then(|i| slots.get(i).copied())
            .ok_or_else(|| Error::InvalidSeq {
                seq,
                reason: format!(
                    "not the start of a record in its block of {} bytes",
                    self.block
                ),
            })
    }

    /// The records of the block at `start`. A block below the one being written never changes
    /// its list of records (deletes keep lengths), so that list is kept for the next read; the
    /// block being written is walked again each time.
    fn slots(&self, start: u64, readable: u64) -> Result<Arc<[Slot]>> {
        let complete = self.is_complete(start, readable);
        if complete && let Some(slots) = self.slot_cache.read().get(&start) {
            return Ok(slots.clone());
        }
        let valid = (readable - start).min(self.block);
        let block = self.read_block(start, valid)?;
        let mut slots = Vec::new();
        block::walk(&block, valid as usize, |slot| {
            slots.push(slot);
            true
        });
        let slots: Arc<[Slot]> = slots.into();
        if complete {
            self.cache_slots(start, slots.clone());
        }
        Ok(slots)
    }

    /// Keeps the record list of the complete block at `start`.
    pub(crate) fn cache_slots(&self, start: u64, slots: Arc<[Slot]>) {
        let mut cache = self.slot_cache.write();
        if cache.len() >= SLOT_CACHE_BLOCKS {
            cache.clear();
        }
        cache.insert(start, slots);
    }

    /// Whether the block at `start` is complete: below the block the next record goes to.
    pub(crate) fn is_complete(&self, start: u64, readable: u64) -> bool {
        start + self.block <= readable - readable % self.block
    }

    /// `valid` bytes of the block at `start` (the rest of the buffer zeros).
    pub(crate) fn read_block(&self, start: u64, valid: u64) -> Result<Vec<u8>> {
        let mut buf = vec![0u8; self.block as usize];
        let want = buf
            .get_mut(..valid as usize)
            .ok_or_else(|| Error::InvalidArgument("block read past the block".into()))?;
        self.file.read_exact_at(want, start).map_err(self.io())?;
        Ok(buf)
    }

    /// A block read that no delete ran across (read again if one did), so no payload in it is
    /// half zeroed.
    pub(crate) fn read_block_stable(&self, start: u64, valid: u64) -> Result<Vec<u8>> {
        loop {
            let before = self.deleting.load(Ordering::Acquire);
            if before % 2 == 1 {
                std::thread::yield_now();
                continue;
            }
            let block = self.read_block(start, valid)?;
            if self.deleting.load(Ordering::Acquire) == before {
                return Ok(block);
            }
        }
    }

    /// Reads a payload, again if a delete ran meanwhile: `None` if it is deleted.
    pub(crate) fn read_payload(&self, at: u64, len: usize) -> Result<Option<Vec<u8>>> {
        loop {
            let before = self.deleting.load(Ordering::Acquire);
            if before % 2 == 1 {
                std::thread::yield_now();
                continue;
            }
            let mut data = vec![0u8; len];
            self.file.read_exact_at(&mut data, at).map_err(self.io())?;
            if self.deleting.load(Ordering::Acquire) != before {
                continue;
            }
            return Ok((!block::is_zeroed(&data)).then_some(data));
        }
    }
}

impl Log for AaolLog {
    fn append(&self, data: &[u8]) -> Result<Seq> {
        let seqs = self.append_records(&[data])?;
        seqs.first()
            .copied()
            .ok_or_else(|| Error::InvalidArgument("nothing appended".into()))
    }

    fn append_batch(&self, records: &[&[u8]]) -> Result<Vec<Seq>> {
        self.append_records(records)
    }

    fn get(&self, seq: Seq) -> Result<Vec<u8>> {
        self.check_open()?;
        let slot = self.slot(seq)?;
        let start = seq.get() - slot.pos as u64;
        self.read_payload(start + slot.payload() as u64, slot.len)?
            .ok_or(Error::Deleted { seq })
    }

    fn since_watch(&self) -> &SinceWatch {
        &self.since
    }

    fn range(&self, lower: Bound<Seq>, upper: Bound<Seq>, reverse: bool) -> Result<LogIter<'_>> {
        self.check_open()?;
        Ok(Box::new(crate::read::Range::new(
            self, lower, upper, reverse,
        )))
    }

    fn deletes(&self) -> Option<u64> {
        Some(self.deletes.load(Ordering::Acquire))
    }

    fn is_deleted(&self, seq: Seq) -> Result<bool> {
        self.check_open()?;
        let slot = self.slot(seq)?;
        let start = seq.get() - slot.pos as u64;
        Ok(self
            .read_payload(start + slot.payload() as u64, slot.len)?
            .is_none())
    }

    fn flush(&self) -> Result<()> {
        self.check_open()?;
        self.sync_written()
    }

    fn close(&self) -> Result<()> {
        let mut state = self.durable.lock();
        while state.syncing {
            self.durable_changed.wait(&mut state);
        }
        if self.closed.swap(true, Ordering::AcqRel) {
            return Err(Error::Closed);
        }
        drop(state);
        let _writer = self.writer.lock();
        let synced = self.file.sync_all().map_err(self.io());
        let _ = self.file.unlock();
        self.since.close();
        synced
    }

    fn view_dir(&self) -> Option<PathBuf> {
        let mut name = self.path.file_name()?.to_os_string();
        name.push(".views");
        Some(self.path.parent()?.join(name))
    }
}

impl Drop for AaolLog {
    fn drop(&mut self) {
        if !self.closed.load(Ordering::Acquire) {
            let _ = self.close();
        }
    }
}
