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

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::ops::{Bound, Range};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use flumedb_core::persist::{Mark, SyncedEnd};
use flumedb_core::{Entry, Error, Log, LogIter, Result, Seq, Since, SinceWatch};
use parking_lot::{Mutex, RwLock};

/// The file a persisted memory log keeps in its directory.
pub const FILE_NAME: &str = "log.memory";

/// The directory next to the log file where the log's views keep their state.
pub const VIEW_DIR_NAME: &str = "log.memory.views";

/// Bytes before each record's data in the file: length, CRC32 of the data, and CRC32 of those
/// first 8 bytes, all u32 little-endian.
const FRAME_HEADER: usize = 12;

/// A log held in memory; `seq` is the record's index (the first record is seq 0).
///
/// [`MemoryLog::new`] keeps nothing on disk. [`MemoryLog::open`] also writes every record to a
/// file in a directory and loads it back on open (like JS flumelog-memory with a filename);
/// views then persist their state in the same directory.
pub struct MemoryLog {
    records: RwLock<Vec<Vec<u8>>>,
    since: SinceWatch,
    closed: AtomicBool,
    /// Set when a failed append could not be undone in the file (appending more would put
    /// records after a partial one), or an fsync failed (the kernel may have dropped the
    /// written pages, and a later fsync would not say so): the log refuses appends until it
    /// is reopened.
    poisoned: AtomicBool,
    file: Option<Mutex<File>>,
    /// Where the file was last fsync'd (`log.memory.synced`), for a persisted log.
    synced_end: Option<Mutex<SyncedEnd>>,
    dir: Option<PathBuf>,
    recovered: u64,
}

impl Default for MemoryLog {
    fn default() -> Self {
        MemoryLog::new()
    }
}

impl MemoryLog {
    /// An empty log that lives only in memory.
    pub fn new() -> MemoryLog {
        MemoryLog {
            records: RwLock::new(Vec::new()),
            since: SinceWatch::new(Since::Empty),
            closed: AtomicBool::new(false),
            poisoned: AtomicBool::new(false),
            file: None,
            synced_end: None,
            dir: None,
            recovered: 0,
        }
    }

    /// Opens (or creates) a log persisted in `dir`, loading every record into memory.
    ///
    /// Each append is written to the operating system before it returns; [`Log::flush`] and
    /// [`Log::close`] also fsync. A torn tail (a partial record, or a last record whose
    /// checksum fails) is cut off and counted in [`recovered_bytes`](Self::recovered_bytes);
    /// a bad record followed by more data is [`Error::Corrupt`], never silently dropped,
    /// unless it lies past where the file was last fsync'd (kept in `log.memory.synced`):
    /// there it is what a power loss leaves of unsynced appends, and is cut with what follows.
    pub fn open(dir: impl AsRef<Path>) -> Result<MemoryLog> {
        let dir = dir.as_ref();
        let on = |path: &Path| {
            let path = path.to_path_buf();
            move |source| Error::File { path, source }
        };
        // New directories and a new file are made durable in their parents: otherwise a
        // power loss can take the file, with everything flushed to it, away.
        flumedb_core::persist::create_dir_durably(dir)?;
        let path = dir.join(FILE_NAME);
        let existed = path.exists();
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(&path)
            .map_err(on(&path))?;
        if !existed {
            flumedb_core::persist::sync_dir(dir).map_err(on(dir))?;
        }
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).map_err(on(&path))?;
        let (mut synced_end, mark) = SyncedEnd::open(&path)?;
        let (records, good) = parse(&bytes, mark).map_err(|err| match err {
            Error::Corrupt { seq, reason } => Error::Corrupt {
                seq,
                reason: format!("{}: {reason}", path.display()),
            },
            other => other,
        })?;
        let recovered = (bytes.len() - good) as u64;
        if recovered > 0 {
            file.set_len(good as u64).map_err(on(&path))?;
        }
        let now = Mark {
            end: good as u64,
            check: records.len() as u64,
        };
        if mark != Some(now) || recovered > 0 {
            // What recovery kept is durable before the mark says so.
            file.sync_all().map_err(on(&path))?;
            synced_end.record_durably(now)?;
        }
        let since = match records.len() {
            0 => Since::Empty,
            n => Since::At(Seq::new(n as u64 - 1)),
        };
        Ok(MemoryLog {
            records: RwLock::new(records),
            since: SinceWatch::new(since),
            closed: AtomicBool::new(false),
            poisoned: AtomicBool::new(false),
            file: Some(Mutex::new(file)),
            synced_end: Some(Mutex::new(synced_end)),
            dir: Some(dir.to_path_buf()),
            recovered,
        })
    }

    /// Records that the file is durable up to `mark` (after an fsync that covered it), and
    /// fsyncs the mark: one far behind the file would let open take synced records past it for
    /// an unsynced tail should one of them be damaged. A failed write leaves an older mark,
    /// which is still true; a failed fsync poisons the log, as any failed fsync does; either
    /// error reaches the caller.
    fn record_synced_end(&self, mark: Mark) -> Result<()> {
        let Some(synced_end) = &self.synced_end else {
            return Ok(());
        };
        let mut synced_end = synced_end.lock();
        synced_end.record(mark)?;
        synced_end.sync().map(|_| ()).inspect_err(|_| {
            self.poisoned.store(true, Ordering::Release);
        })
    }

    /// An I/O error on the log file, with its path.
    fn file_error(&self, source: std::io::Error) -> Error {
        match &self.dir {
            Some(dir) => Error::File {
                path: dir.join(FILE_NAME),
                source,
            },
            None => Error::Io(source),
        }
    }

    /// How many bytes of a torn tail [`open`](Self::open) cut off (0 for a clean file).
    pub fn recovered_bytes(&self) -> u64 {
        self.recovered
    }

    /// The number of records.
    pub fn len(&self) -> usize {
        self.records.read().len()
    }

    /// Whether the log has no records.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn check_open(&self) -> Result<()> {
        if self.closed.load(Ordering::Acquire) {
            Err(Error::Closed)
        } else {
            Ok(())
        }
    }

    /// Writes `batch` to the file (if any) and then to memory, all or nothing; returns the
    /// seqs it took (consecutive).
    fn push(&self, batch: &[&[u8]]) -> Result<Range<u64>> {
        let mut records = self.records.write();
        // Checked under the lock `close` takes, so no append lands after close.
        self.check_open()?;
        if self.poisoned.load(Ordering::Acquire) {
            return Err(Error::Poisoned {
                path: self.dir.as_ref().map(|dir| dir.join(FILE_NAME)),
                reason: "a failed append could not be undone in the log file, or an fsync \
                         of it failed"
                    .into(),
            });
        }
        if let Some(file) = &self.file {
            let mut buf = Vec::with_capacity(batch.iter().map(|d| d.len() + FRAME_HEADER).sum());
            for data in batch {
                let len = u32::try_from(data.len()).map_err(|_| {
                    Error::InvalidArgument(format!(
                        "a record of {} bytes is larger than the 4 GiB a memory log can store",
                        data.len()
                    ))
                })?;
                let mut header = [0u8; FRAME_HEADER];
                header[..4].copy_from_slice(&len.to_le_bytes());
                header[4..8].copy_from_slice(&crc32fast::hash(data).to_le_bytes());
                let check = crc32fast::hash(&header[..8]);
                header[8..].copy_from_slice(&check.to_le_bytes());
                buf.extend_from_slice(&header);
                buf.extend_from_slice(data);
            }
            let mut file = file.lock();
            let before = file.metadata().map_err(|e| self.file_error(e))?.len();
            if let Err(err) = file.write_all(&buf) {
                // Undo a partial write so that memory and file agree.
                if file.set_len(before).is_err() {
                    self.poisoned.store(true, Ordering::Release);
                }
                return Err(self.file_error(err));
            }
        }
        let first = records.len() as u64;
        records.extend(batch.iter().map(|d| d.to_vec()));
        let end = records.len() as u64;
        if end > first {
            self.since.set(Since::At(Seq::new(end - 1)));
        }
        Ok(first..end)
    }
}

/// Parses the frames of a persisted log; returns the records and the length of the good part.
///
/// What follows the last good frame is a torn tail (cut off by `open`) only if it could be the
/// remains of one interrupted append: a partial header, a valid header whose data runs past
/// the end, or a last frame whose data fails its checksum, each followed by nothing but zeros.
/// Anything else is corruption and an error, unless it lies past `mark` (where the file was
/// last fsync'd, if the frames show a boundary there with as many records before it): then it
/// is the unsynced tail a power loss left, lost pages and all, and is cut.
fn parse(bytes: &[u8], mark: Option<Mark>) -> Result<(Vec<Vec<u8>>, usize)> {
    let mut records = Vec::new();
    let mut at = 0;
    let mut past_mark = false;
    let zeros = |from: usize| {
        bytes
            .get(from..)
            .is_none_or(|rest| rest.iter().all(|b| *b == 0))
    };
    let corrupt = |records: &Vec<Vec<u8>>, at: usize, what: &str| Error::Corrupt {
        seq: Some(Seq::new(records.len() as u64)),
        reason: format!("{what} in the record at byte {at} of {FILE_NAME}, with data after it"),
    };
    while at < bytes.len() {
        past_mark |= mark.is_some_and(|m| m.end == at as u64 && m.check == records.len() as u64);
        let Some(header) = bytes.get(at..at + FRAME_HEADER) else {
            break; // a torn header
        };
        let word = |i: usize| {
            header
                .get(i..i + 4)
                .and_then(|b| <[u8; 4]>::try_from(b).ok())
                .map_or(0, u32::from_le_bytes)
        };
        if header.get(..8).map(crc32fast::hash) != Some(word(8)) {
            if past_mark || zeros(at + FRAME_HEADER) {
                break; // a torn or zero-filled header at the end
            }
            return Err(corrupt(&records, at, "bad frame header"));
        }
        let len = word(0) as usize;
        let end = at + FRAME_HEADER + len;
        let Some(data) = bytes.get(at + FRAME_HEADER..end) else {
            break; // a valid header whose data was not all written
        };
        if crc32fast::hash(data) != word(4) {
            if past_mark || zeros(end) {
                break; // the last record was torn
            }
            return Err(corrupt(&records, at, "checksum mismatch"));
        }
        records.push(data.to_vec());
        at = end;
    }
    Ok((records, at))
}

impl Log for MemoryLog {
    fn append(&self, data: &[u8]) -> Result<Seq> {
        Ok(Seq::new(self.push(&[data])?.start))
    }

    fn append_batch(&self, records: &[&[u8]]) -> Result<Vec<Seq>> {
        Ok(self.push(records)?.map(Seq::new).collect())
    }

    fn get(&self, seq: Seq) -> Result<Vec<u8>> {
        self.check_open()?;
        let records = self.records.read();
        usize::try_from(seq.get())
            .ok()
            .and_then(|index| records.get(index))
            .cloned()
            .ok_or(Error::NotFound { seq })
    }

    fn since_watch(&self) -> &SinceWatch {
        &self.since
    }

    fn range(&self, lower: Bound<Seq>, upper: Bound<Seq>, reverse: bool) -> Result<LogIter<'_>> {
        self.check_open()?;
        let len = self.records.read().len() as u64;
        let start = match lower {
            Bound::Unbounded => 0,
            Bound::Included(s) => s.get(),
            Bound::Excluded(s) => s.get().saturating_add(1),
        };
        let end = match upper {
            Bound::Unbounded => len,
            Bound::Included(s) => s.get().saturating_add(1).min(len),
            Bound::Excluded(s) => s.get().min(len),
        };
        let indices = start..end.max(start);
        let read = move |index: u64| {
            let seq = Seq::new(index);
            let records = self.records.read();
            // Records are never removed, so an index below the length read above exists.
            let data = records.get(index as usize).ok_or(Error::NotFound { seq })?;
            Ok(Entry {
                seq,
                data: data.clone(),
            })
        };
        if reverse {
            Ok(Box::new(indices.rev().map(read)))
        } else {
            Ok(Box::new(indices.map(read)))
        }
    }

    fn flush(&self) -> Result<()> {
        self.check_open()?;
        if self.poisoned.load(Ordering::Acquire) {
            // A later fsync can succeed on pages the kernel dropped: it proves nothing.
            return Err(Error::Poisoned {
                path: self.dir.as_ref().map(|dir| dir.join(FILE_NAME)),
                reason: "an fsync of the log file failed earlier; reopen the log".into(),
            });
        }
        let Some(file) = &self.file else {
            return Ok(());
        };
        // The frames and their count as of now; the fsync below covers at least those.
        let mark = {
            let records = self.records.read();
            let end = file
                .lock()
                .metadata()
                .map_err(|e| self.file_error(e))?
                .len();
            Mark {
                end,
                check: records.len() as u64,
            }
        };
        if let Err(err) = file.lock().sync_data() {
            // Nothing written before may be acknowledged as durable any more.
            self.poisoned.store(true, Ordering::Release);
            return Err(self.file_error(err));
        }
        self.record_synced_end(mark)
    }

    fn close(&self) -> Result<()> {
        if self.closed.swap(true, Ordering::AcqRel) {
            return Err(Error::Closed);
        }
        // Wait for appends in flight, then make the file durable.
        let records = self.records.write();
        let (durable, end) = match &self.file {
            Some(file) => {
                let file = file.lock();
                (file.sync_all(), file.metadata().map(|m| m.len()))
            }
            None => (Ok(()), Ok(0)),
        };
        self.since.close();
        durable.map_err(|e| self.file_error(e))?;
        let end = end.map_err(|e| self.file_error(e))?;
        if self.poisoned.load(Ordering::Acquire) {
            return Ok(());
        }
        self.record_synced_end(Mark {
            end,
            check: records.len() as u64,
        })
    }

    fn view_dir(&self) -> Option<PathBuf> {
        self.dir.as_ref().map(|dir| dir.join(VIEW_DIR_NAME))
    }
}

#[cfg(test)]
mod tests {
    use std::fs;

    #[test]
    fn open_errors_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        // The log file is a directory.
        std::fs::create_dir(dir.path().join(FILE_NAME)).unwrap();
        let err = MemoryLog::open(dir.path()).err().expect("refused");
        assert!(matches!(err, Error::File { .. }), "{err:?}");
        assert!(err.to_string().contains(FILE_NAME), "{err}");
        // The log directory is a file.
        let file = dir.path().join("plain");
        std::fs::write(&file, b"x").unwrap();
        let err = MemoryLog::open(&file).err().expect("refused");
        assert!(err.to_string().contains("plain"), "{err}");
    }

    use super::*;

    #[test]
    fn get_of_len_is_not_found() {
        // JS flumelog-memory returned nothing for get(length) instead of an error.
        let log = MemoryLog::new();
        log.append(b"a").unwrap();
        assert!(matches!(log.get(Seq::new(1)), Err(Error::NotFound { .. })));
        assert!(matches!(
            log.get(Seq::new(u64::MAX)),
            Err(Error::NotFound { .. })
        ));
    }

    #[test]
    fn a_poisoned_log_refuses_appends_with_a_typed_error_until_reopened() {
        let dir = tempfile::tempdir().unwrap();
        let log = MemoryLog::open(dir.path()).unwrap();
        log.append(b"one").unwrap();
        // What a failed append whose partial write could not be cut off leaves behind.
        log.poisoned.store(true, Ordering::Release);
        match log.append(b"two") {
            Err(Error::Poisoned {
                path: Some(path), ..
            }) => assert_eq!(path, dir.path().join(FILE_NAME)),
            other => panic!("expected Poisoned, got {other:?}"),
        }
        assert_eq!(log.get(Seq::new(0)).unwrap(), b"one");
        log.close().unwrap();
        let log = MemoryLog::open(dir.path()).unwrap();
        assert_eq!(log.append(b"two").unwrap(), Seq::new(1));
    }

    #[test]
    fn torn_tail_is_cut_and_reported() {
        let dir = tempfile::tempdir().unwrap();
        {
            let log = MemoryLog::open(dir.path()).unwrap();
            log.append_batch(&[b"one", b"two", b"three"]).unwrap();
            log.close().unwrap();
        }
        let path = dir.path().join(FILE_NAME);
        let full = fs::metadata(&path).unwrap().len();
        let file = OpenOptions::new().write(true).open(&path).unwrap();
        file.set_len(full - 2).unwrap();
        let log = MemoryLog::open(dir.path()).unwrap();
        assert_eq!(log.recovered_bytes(), (FRAME_HEADER + 5 - 2) as u64);
        assert_eq!(log.since(), Since::At(Seq::new(1)));
        assert_eq!(log.append(b"four").unwrap(), Seq::new(2));
        log.close().unwrap();
        let log = MemoryLog::open(dir.path()).unwrap();
        assert_eq!(log.get(Seq::new(2)).unwrap(), b"four");
    }

    fn write_two_then(dir: &Path, damage: impl FnOnce(&mut Vec<u8>)) -> Result<MemoryLog> {
        {
            let log = MemoryLog::open(dir).unwrap();
            log.append_batch(&[b"one", b"two"]).unwrap();
            log.close().unwrap();
        }
        let path = dir.join(FILE_NAME);
        let mut bytes = fs::read(&path).unwrap();
        damage(&mut bytes);
        fs::write(&path, &bytes).unwrap();
        MemoryLog::open(dir)
    }

    #[test]
    fn a_corrupt_length_in_the_middle_is_an_error_not_a_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        let mut damaged = Vec::new();
        let opened = write_two_then(dir.path(), |bytes| {
            bytes[1] = 0x7f; // the first record's length now points far past the end
            damaged = bytes.clone();
        });
        assert!(
            matches!(opened, Err(Error::Corrupt { .. })),
            "{:?}",
            opened.map(|_| ())
        );
        assert_eq!(fs::read(dir.path().join(FILE_NAME)).unwrap(), damaged);
    }

    #[test]
    fn a_zero_filled_tail_is_repaired() {
        let dir = tempfile::tempdir().unwrap();
        let log = write_two_then(dir.path(), |bytes| bytes.extend([0u8; 4096])).unwrap();
        assert_eq!(log.recovered_bytes(), 4096);
        assert_eq!(log.len(), 2);
        drop(log);
        let dir = tempfile::tempdir().unwrap();
        // A partial header followed by zeros (a torn write into a preallocated block).
        let log = write_two_then(dir.path(), |bytes| {
            bytes.extend([5, 0, 0, 0, 9]);
            bytes.extend([0u8; 100]);
        })
        .unwrap();
        assert_eq!(log.recovered_bytes(), 105);
        assert_eq!(log.get(Seq::new(1)).unwrap(), b"two");
    }

    /// Issue 13, finding B: a power loss that lost an unflushed page and kept a later one
    /// leaves a hole with records after it. Past the synced end (the last flush) open cuts it;
    /// the same damage before it is corruption, reported and never cut.
    #[test]
    fn a_hole_past_the_synced_end_is_cut_and_damage_before_it_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE_NAME);
        let log = MemoryLog::open(dir.path()).unwrap();
        log.append_batch(&[b"one", b"two", b"three"]).unwrap();
        log.flush().unwrap();
        let flushed = fs::metadata(&path).unwrap().len() as usize;
        log.append_batch(&[b"four", b"five", b"six"]).unwrap();
        // A crash now: no close, the mark says the first three are synced.
        drop(log);
        let good = fs::read(&path).unwrap();
        let fifth = flushed + FRAME_HEADER + 4;

        let mut hole = good.clone();
        hole[fifth..fifth + FRAME_HEADER].fill(0);
        fs::write(&path, &hole).unwrap();
        let log = MemoryLog::open(dir.path()).unwrap();
        assert_eq!(log.len(), 4);
        assert_eq!(log.recovered_bytes(), (good.len() - fifth) as u64);
        assert_eq!(log.get(Seq::new(3)).unwrap(), b"four");
        log.append(b"seven").unwrap();
        log.close().unwrap();
        let log = MemoryLog::open(dir.path()).unwrap();
        assert_eq!(log.recovered_bytes(), 0);
        assert_eq!(log.get(Seq::new(4)).unwrap(), b"seven");
        log.close().unwrap();

        // The same damage in the second record, which was flushed: an error, nothing cut.
        let mut damaged = good.clone();
        let second = FRAME_HEADER + 3;
        damaged[second..second + FRAME_HEADER].fill(0);
        fs::write(&path, &damaged).unwrap();
        match MemoryLog::open(dir.path()) {
            Err(Error::Corrupt { seq, .. }) => assert_eq!(seq, Some(Seq::new(1))),
            other => panic!("expected Corrupt, got {:?}", other.map(|_| ())),
        }
        assert_eq!(fs::read(&path).unwrap(), damaged);
    }

    #[test]
    fn every_byte_flip_is_detected_or_harmless() {
        let dir = tempfile::tempdir().unwrap();
        {
            let log = MemoryLog::open(dir.path()).unwrap();
            log.append_batch(&[b"alpha", b"beta", b"gamma"]).unwrap();
            log.close().unwrap();
        }
        let path = dir.path().join(FILE_NAME);
        let good = fs::read(&path).unwrap();
        for i in 0..good.len() {
            let mut bad = good.clone();
            bad[i] ^= 0x10;
            match parse(&bad, None) {
                Err(Error::Corrupt { .. }) => {}
                // A flip in the last record can only ever cost that record, as a torn tail.
                Ok((records, _)) => {
                    assert!(
                        i >= good.len() - FRAME_HEADER - 5,
                        "flip at {i} not detected"
                    );
                    assert_eq!(records, vec![b"alpha".to_vec(), b"beta".to_vec()]);
                }
                Err(other) => panic!("unexpected {other}"),
            }
        }
    }

    #[test]
    fn corruption_in_the_middle_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        {
            let log = MemoryLog::open(dir.path()).unwrap();
            log.append_batch(&[b"one", b"two"]).unwrap();
            log.close().unwrap();
        }
        let path = dir.path().join(FILE_NAME);
        let mut bytes = fs::read(&path).unwrap();
        bytes[FRAME_HEADER] ^= 0xff;
        fs::write(&path, &bytes).unwrap();
        match MemoryLog::open(dir.path()) {
            Err(Error::Corrupt { seq, .. }) => assert_eq!(seq, Some(Seq::new(0))),
            other => panic!("expected Corrupt, got {:?}", other.map(|_| ())),
        }
        // Nothing was truncated.
        assert_eq!(fs::read(&path).unwrap(), bytes);
    }
}
