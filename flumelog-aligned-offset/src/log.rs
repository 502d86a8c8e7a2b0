//! [`AlignedLog`]: the log, its reads, and the `Log` implementation.

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
use crate::options::AlignedOptions;
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
    /// The records written to the current block, when this writer wrote all of them (it
    /// started the block): handed to the slot cache when the block is complete.
    pub(crate) current_slots: Option<Vec<Slot>>,
}

/// Group commit: how far the file is known durable, and whether an fsync is running.
pub(crate) struct Durable {
    pub(crate) synced: u64,
    pub(crate) syncing: bool,
}

/// A flumelog-aligned-offset file: records `[u16 length][payload][u16 length]` in blocks of
/// 64 KiB (by default; at most), a record's seq its byte offset. Files written by the npm
/// package 1.1.4 open here and the other way round (see the crate README for the format and
/// what differs from JS on purpose).
///
/// ```
/// use flumedb_core::Log;
/// use flumelog_aligned_offset::AlignedLog;
///
/// let dir = tempfile::tempdir()?;
/// let log = AlignedLog::open(dir.path().join("log.aligned"))?;
/// let seq = log.append(b"hello")?;
/// assert_eq!(log.get(seq)?, b"hello");
/// log.del(seq)?;
/// assert!(log.get(seq).is_err());
/// log.close()?;
/// # Ok::<(), flumedb_core::Error>(())
/// ```
pub struct AlignedLog {
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

impl AlignedLog {
    /// Opens (or creates) the log at `path` with the default options (64 KiB blocks,
    /// [`Durability::Os`]).
    pub fn open(path: impl AsRef<Path>) -> Result<AlignedLog> {
        AlignedOptions::default().open(path)
    }

    /// Options to open a log with another block size or durability.
    pub fn options() -> AlignedOptions {
        AlignedOptions::default()
    }

    pub(crate) fn open_with(path: &Path, options: AlignedOptions) -> Result<AlignedLog> {
        let opened = open::open(path, options.block_size)?;
        Ok(AlignedLog {
            path: path.to_path_buf(),
            file: opened.file,
            block: u64::from(options.block_size),
            durability: options.durability,
            writer: Mutex::new(Writer {
                next: opened.next,
                last: opened.since,
                current_slots: opened.open_slots,
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
    pub(crate) fn slot(&self, seq: Seq) -> Result<(u64, Slot)> {
        let at = seq.get();
        let readable = self.readable.load(Ordering::Acquire);
        if at >= readable {
            return Err(Error::NotFound { seq });
        }
        let start = at - at % self.block;
        let pos = (at - start) as usize;
        let slots = self.slots(start, readable)?;
        if let Ok(i) = slots.binary_search_by_key(&pos, |slot| slot.pos)
            && let Some(slot) = slots.get(i)
        {
            return Ok((start, *slot));
        }
        Err(Error::InvalidSeq {
            seq,
            reason: format!(
                "not the start of a record in its block of {} bytes",
                self.block
            ),
        })
    }

    /// The seq of the record JS's `append` reported as `js_seq`. For a record that opened a
    /// new block the JS package reported the position of the previous block's end mark (the
    /// fixtures' `aligned_append_seq`), and its `get` followed the mark; this maps such a
    /// position to the record's real seq (what streams, a reopen and this crate's `append`
    /// give), and any record's own seq to itself. For seqs that views built by JS stored.
    ///
    /// ```
    /// use flumedb_core::{Log, Seq};
    /// use flumelog_aligned_offset::AlignedLog;
    ///
    /// let dir = tempfile::tempdir()?;
    /// let log = AlignedLog::options().block_size(64).open(dir.path().join("log.aligned"))?;
    /// let first = log.append(&[1; 30])?;
    /// let second = log.append(&[2; 30])?; // does not fit: it opens the next block
    /// assert_eq!(second, Seq::new(64));
    /// // JS reported the end mark after the first record (30 + 4 bytes in): 34.
    /// assert_eq!(log.real_seq(Seq::new(34))?, second);
    /// assert_eq!(log.real_seq(first)?, first);
    /// assert!(log.get(Seq::new(34)).is_err()); // not a record's seq
    /// # Ok::<(), flumedb_core::Error>(())
    /// ```
    pub fn real_seq(&self, js_seq: Seq) -> Result<Seq> {
        self.check_open()?;
        match self.slot(js_seq) {
            Ok((start, slot)) => return Ok(Seq::new(start + slot.pos as u64)),
            Err(Error::InvalidSeq { .. }) => {}
            Err(err) => return Err(err),
        }
        let at = js_seq.get();
        let readable = self.readable.load(Ordering::Acquire);
        let start = at - at % self.block;
        let next = start + self.block;
        let slots = self.slots(start, readable)?;
        if self.is_complete(start, readable)
            && slots
                .last()
                .is_some_and(|last| last.end() as u64 == at - start)
            && next < readable
            && let Some(first) = self.slots(next, readable)?.first()
        {
            return Ok(Seq::new(next + first.pos as u64));
        }
        Err(Error::InvalidSeq {
            seq: js_seq,
            reason: "neither a record nor the end mark of a block".into(),
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

impl Log for AlignedLog {
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
        let (start, slot) = self.slot(seq)?;
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
        let (start, slot) = self.slot(seq)?;
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

impl Drop for AlignedLog {
    fn drop(&mut self) {
        if !self.closed.load(Ordering::Acquire) {
            let _ = self.close();
        }
    }
}
