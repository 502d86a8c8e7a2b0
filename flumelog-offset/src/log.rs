//! [`OffsetLog`]: the file log.

use std::fs::{File, OpenOptions};
use std::ops::{Bound, RangeBounds};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use flumedb_core::{Entry, Error, Log, LogIter, Result, Seq, Since, SinceWatch};
use memmap2::Mmap;
use parking_lot::{Condvar, Mutex, RwLock};

use crate::error::OffsetError;
use crate::format::{self, Check, Format, JsWidth};
use crate::map::GrowingMap;
use crate::options::{Durability, OffsetOptions};
use crate::seqlock::SeqLock;
use crate::verify::{Problem, VerifyReport};

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
    path: PathBuf,
    dir: Option<PathBuf>,
    format: Format,
    durability: Durability,
    map: GrowingMap,
    /// Bytes below this are complete frames that readers may read.
    end: AtomicU64,
    since: SinceWatch,
    writer: Mutex<Writer>,
    /// Set when a failed write could not be undone, or an fsync failed: after a failed fsync
    /// the kernel may have dropped dirty pages, so nothing may be acknowledged any more. The
    /// log refuses appends (and publishes nothing) until it is reopened and recovered.
    broken: Mutex<Option<String>>,
    /// Group commit: who is syncing, and how far the file is durable.
    sync: Mutex<SyncState>,
    synced: Condvar,
    /// Readers that overlapped a `del` rewriting bytes they copy retry.
    deletes: SeqLock,
    /// Held for reading by scans that hand out borrowed bytes, for writing by `del`.
    scan_lock: RwLock<()>,
    closed: AtomicBool,
    recovery: Recovery,
}

struct Writer {
    file: File,
    /// The end of the written bytes (ahead of the committed `end` while an fsync is pending).
    written: u64,
    /// The seq of the last written frame.
    last: Option<u64>,
    buf: Vec<u8>,
}

struct SyncState {
    syncing: bool,
    /// Everything below this is durable and published.
    synced: u64,
}

fn io_err(path: &Path) -> impl Fn(std::io::Error) -> OffsetError + '_ {
    move |source| OffsetError::Io {
        path: path.to_path_buf(),
        source,
    }
}

impl OffsetLog {
    /// Options for opening a log: format, durability, read-only.
    pub fn options() -> OffsetOptions {
        OffsetOptions::default()
    }

    /// Opens (or creates) the log at `path` with default options: the native format for a new
    /// file, the format found for an existing one, and [`Durability::Os`].
    pub fn open(path: impl AsRef<Path>) -> Result<OffsetLog, OffsetError> {
        OffsetOptions::default().open(path)
    }

    pub(crate) fn open_with(
        options: &OffsetOptions,
        path: &Path,
    ) -> Result<OffsetLog, OffsetError> {
        let err = io_err(path);
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(&err)?;
        }
        let existed = path.exists();
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(&err)?;
        // One process at a time: another writer would interleave frames, and its recovery could
        // cut the file under our memory map.
        if let Err(locked) = file.try_lock() {
            return Err(match locked {
                std::fs::TryLockError::WouldBlock => OffsetError::Locked {
                    path: path.to_path_buf(),
                },
                std::fs::TryLockError::Error(source) => err(source),
            });
        }
        let mut size = file.metadata().map_err(&err)?.len();
        let format = if size == 0 {
            // An empty file that already existed is what JS flumelog-offset creates: keep it
            // JS unless told otherwise, so the JS package can still open it.
            let default = if existed {
                Format::Js(JsWidth::W32)
            } else {
                Format::Native
            };
            let format = options.format.unwrap_or(default);
            if format == Format::Native {
                file.write_all_at(&format::native_header(), 0)
                    .map_err(&err)?;
                file.sync_all().map_err(&err)?;
                size = format::HEADER_LEN;
            }
            if !existed {
                sync_parent(path).map_err(&err)?;
            }
            format
        } else {
            detect(&file, size, options.format, path)?
        };
        let map = GrowingMap::new(file.try_clone().map_err(&err)?, size).map_err(&err)?;
        let bytes = map.covering(size).map_err(&err)?;
        let (format, end, interrupted_delete) = match format {
            Format::Native => {
                let (end, interrupted) = recover_tail(format, &bytes, size);
                (format, end, interrupted)
            }
            Format::Js(_) => {
                let (format, end) = js_width_by_recovery(format, options.format, &bytes, size);
                (format, end, None)
            }
        };
        if end == format.first()
            && matches!(format, Format::Js(_))
            && bytes[..size as usize].iter().any(|b| *b != 0)
        {
            // Not one valid frame: this is no JS log of this width (JS itself crashes here).
            // Cutting it to nothing could destroy someone's data, so refuse.
            return Err(OffsetError::Unsupported(format!(
                "{}: no valid {} frame anywhere in {size} bytes; not a flumelog-offset log \
                 (or not of this trailer width); nothing was changed",
                path.display(),
                format.name()
            )));
        }
        let whole = &bytes[..size as usize];
        if end == format.first()
            && format == Format::Native
            && whole[end as usize..].iter().any(|b| *b != 0)
            && !format::native_torn_first_append(whole)
        {
            // Cutting back to the header would destroy whatever is there; only a first append
            // cut short (or zeros) holds nothing that was ever a complete record.
            return Err(OffsetError::NoValidRecord {
                path: path.to_path_buf(),
                bytes: size - end,
            });
        }
        if let Some((start, len)) = interrupted_delete {
            write_deletion(&file, format, start, len).map_err(&err)?;
            file.sync_all().map_err(&err)?;
        }
        if end < size {
            file.set_len(end).map_err(&err)?;
            file.sync_all().map_err(&err)?;
        }
        let last = if end <= format.first() {
            None
        } else {
            format.frame_ending_at(&bytes, end)
        };
        let since = last.map_or(Since::Empty, |s| Since::At(Seq::new(s)));
        let dir = path
            .parent()
            .map(|d| {
                if d.as_os_str().is_empty() {
                    Path::new(".")
                } else {
                    d
                }
            })
            .map(Path::to_path_buf);
        Ok(OffsetLog {
            path: path.to_path_buf(),
            dir,
            format,
            durability: options.durability,
            map,
            end: AtomicU64::new(end),
            since: SinceWatch::new(since),
            writer: Mutex::new(Writer {
                file,
                written: end,
                last,
                buf: Vec::new(),
            }),
            broken: Mutex::new(None),
            sync: Mutex::new(SyncState {
                syncing: false,
                synced: end,
            }),
            synced: Condvar::new(),
            deletes: SeqLock::new(),
            scan_lock: RwLock::new(()),
            closed: AtomicBool::new(false),
            recovery: Recovery {
                dropped_bytes: size - end,
                file_size: size,
            },
        })
    }

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
    fn file_error(&self, source: std::io::Error) -> Error {
        Error::File {
            path: self.path.clone(),
            source,
        }
    }

    fn check_broken(&self) -> Result<()> {
        match &*self.broken.lock() {
            Some(why) => Err(self.file_error(std::io::Error::other(format!(
                "the log refuses writes after an earlier failure ({why}); reopen it to recover"
            )))),
            None => Ok(()),
        }
    }

    fn set_broken(&self, why: String) {
        self.broken.lock().get_or_insert(why);
    }

    fn check_open(&self) -> Result<()> {
        if self.closed.load(Ordering::Acquire) {
            Err(Error::Closed)
        } else {
            Ok(())
        }
    }

    /// A map covering the committed bytes, and the committed end.
    fn snapshot(&self) -> Result<(Arc<Mmap>, u64)> {
        let end = self.end.load(Ordering::Acquire);
        let map = self.map.covering(end).map_err(|e| self.file_error(e))?;
        Ok((map, end))
    }

    fn validate(&self, data: &[u8]) -> Result<()> {
        let max = match self.format {
            Format::Native => format::MAX_NATIVE_LEN,
            Format::Js(_) => u64::from(u32::MAX),
        };
        if data.len() as u64 > max {
            return Err(Error::InvalidArgument(format!(
                "a record of {} bytes is larger than the {} format allows ({max})",
                data.len(),
                self.format.name()
            )));
        }
        if matches!(self.format, Format::Js(_)) && data.iter().all(|b| *b == 0) {
            return Err(Error::InvalidArgument(
                "the JS format cannot store an empty or all-zero record: it would read as deleted"
                    .into(),
            ));
        }
        Ok(())
    }

    fn write_frames(&self, records: &[&[u8]]) -> Result<(Vec<Seq>, u64)> {
        for data in records {
            self.validate(data)?;
        }
        let mut w = self.writer.lock();
        self.check_open()?;
        self.check_broken()?;
        let start = w.written;
        let mut pos = start;
        let mut buf = std::mem::take(&mut w.buf);
        buf.clear();
        let mut seqs = Vec::with_capacity(records.len());
        for data in records {
            seqs.push(Seq::new(pos));
            self.format.encode(pos, data, &mut buf);
            pos += self.format.overhead() + data.len() as u64;
        }
        if let Format::Js(width) = self.format
            && pos > width.max_end()
        {
            w.buf = buf;
            return Err(Error::InvalidArgument(format!(
                "the log would grow to {pos} bytes, past the {} format's limit of {}",
                self.format.name(),
                width.max_end()
            )));
        }
        let written = w.file.write_all_at(&buf, start);
        w.buf = buf;
        if let Err(err) = written {
            // Undo a partial write, so no half frame stays in the file.
            if let Err(undo) = w.file.set_len(start) {
                self.set_broken(format!("a failed append could not be undone: {undo}"));
            }
            return Err(self.file_error(err));
        }
        w.written = pos;
        w.last = seqs.last().map(|s| s.get()).or(w.last);
        if self.durability == Durability::Os {
            self.publish(pos, w.last);
        }
        Ok((seqs, pos))
    }

    /// Makes `end` and the last seq visible to readers.
    /// Only ever moves forward: publishers (appends, group-commit leaders, close) may race.
    fn publish(&self, end: u64, last: Option<u64>) {
        self.end.fetch_max(end, Ordering::AcqRel);
        if let Some(last) = last {
            self.since.advance(Since::At(Seq::new(last)));
        }
    }

    /// Group commit: returns once everything up to `target` is on disk. The first caller
    /// syncs; callers arriving meanwhile wait for that sync or share the next one.
    ///
    /// With `force`, this caller's own fsync runs even if the bytes are already durable (for
    /// `flush`, which also makes deletes durable).
    fn sync_to(&self, target: u64, force: bool) -> Result<()> {
        let mut state = self.sync.lock();
        let mut own_sync_needed = force;
        loop {
            // After a failed fsync nothing may be acknowledged, even if a later fsync on the
            // same file succeeds (the error was reported once and the pages may be gone).
            self.check_broken()?;
            if !own_sync_needed && state.synced >= target {
                return Ok(());
            }
            if state.syncing {
                self.synced.wait(&mut state);
                continue;
            }
            state.syncing = true;
            drop(state);
            let (written, last, file) = {
                let w = self.writer.lock();
                (w.written, w.last, w.file.try_clone())
            };
            let result = file.and_then(|f| f.sync_data());
            state = self.sync.lock();
            state.syncing = false;
            match result {
                Ok(()) => {
                    own_sync_needed = false;
                    state.synced = state.synced.max(written);
                    if self.durability == Durability::Fsync {
                        self.publish(written, last);
                    }
                    self.synced.notify_all();
                }
                Err(err) => {
                    self.set_broken(format!("fsync failed: {err}"));
                    self.synced.notify_all();
                    return Err(self.file_error(err));
                }
            }
        }
    }

    fn record(&self, bytes: &[u8], seq: u64, end: u64, known_start: bool) -> Result<Vec<u8>> {
        match self.format.check(bytes, seq, end) {
            Check::Valid { payload, .. } => Ok(bytes[payload.0..payload.1].to_vec()),
            Check::Deleted { .. } => Err(Error::Deleted { seq: Seq::new(seq) }),
            Check::Corrupt { .. } => Err(corrupt(seq, "the record fails its checksum")),
            Check::NotAFrame if known_start => Err(corrupt(
                seq,
                "the frame's lengths or end offset do not match",
            )),
            Check::NotAFrame => Err(Error::InvalidSeq {
                seq: Seq::new(seq),
                reason: "no frame starts here (not a record's seq, or its frame is damaged: \
                         verify() tells which)"
                    .into(),
            }),
        }
    }

    /// Deletes the record at `seq` as JS flumelog-offset does: the frame stays, its payload
    /// becomes zeros; `get` then returns [`Error::Deleted`] and streams skip it. Under
    /// [`Durability::Fsync`] the change is fsync'd before this returns.
    ///
    /// The bytes are rewritten in place: a crash in the middle of a delete leaves that one
    /// frame failing its checks (reported as corrupt, never returned as data).
    pub fn del(&self, seq: Seq) -> Result<()> {
        self.check_open()?;
        // Scans hold `scan_lock` while `f` runs; take it before the writer lock, so a scan
        // whose `f` appends cannot deadlock with a delete. (`f` must not call `del` itself.)
        let _scans = self.scan_lock.write();
        let w = self.writer.lock();
        self.check_open()?;
        self.check_broken()?;
        let (map, end) = self.snapshot()?;
        let at = seq.get();
        if at >= end {
            return Err(Error::NotFound { seq });
        }
        let len = match (self.format, self.format.check(&map, at, end)) {
            (_, Check::Valid { payload, .. }) => (payload.1 - payload.0) as u32,
            (_, Check::Deleted { .. }) => return Ok(()),
            // A native frame whose lengths hold but whose checksum fails: damaged, or a delete
            // interrupted by a crash. Deleting it (again) completes it.
            (Format::Native, Check::Corrupt { next }) => {
                (next - at - self.format.overhead()) as u32
            }
            _ => {
                return Err(Error::InvalidSeq {
                    seq,
                    reason: "no valid frame starts here".into(),
                });
            }
        };
        let written = self
            .deletes
            .write(|| write_deletion(&w.file, self.format, at, len));
        written.map_err(|e| self.file_error(e))?;
        if self.durability == Durability::Fsync
            && let Err(err) = w.file.sync_data()
        {
            self.set_broken(format!("fsync failed: {err}"));
            return Err(self.file_error(err));
        }
        Ok(())
    }

    /// Calls `f(seq, payload)` for each record in the range, in order, reading payloads in
    /// place from the memory map (no copies). Deleted records are skipped. Stops at the first
    /// damaged frame with its error, or when `f` returns `false`. Returns how many records `f`
    /// saw.
    ///
    /// This is the fastest way to read the log; `del` waits while a scan runs.
    pub fn scan(
        &self,
        lower: Bound<Seq>,
        upper: Bound<Seq>,
        mut f: impl FnMut(Seq, &[u8]) -> bool,
    ) -> Result<u64> {
        self.check_open()?;
        // Recursive: a nested scan inside `f` must not block behind a waiting `del`.
        let _no_deletes = self.scan_lock.read_recursive();
        let (map, end) = self.snapshot()?;
        let Some(mut at) = self.start_for(&map, lower, end)? else {
            return Ok(0);
        };
        let mut seen = 0;
        while at < end && below(upper, at) {
            match self.format.check(&map, at, end) {
                Check::Valid { payload, next } => {
                    seen += 1;
                    if !f(Seq::new(at), &map[payload.0..payload.1]) {
                        break;
                    }
                    at = next;
                }
                Check::Deleted { next } => at = next,
                _ => return Err(corrupt(at, "the frame fails its checks")),
            }
        }
        Ok(seen)
    }

    /// The first frame start that satisfies `lower` (`None`: no record there).
    ///
    /// A bound that is a record's own seq needs no search. Any other bound lies inside some
    /// frame: the search looks for the next position where a valid frame starts *and* the
    /// valid frame ending there began before the bound, which proves that nothing between the
    /// bound and that position was skipped. A damaged region is an error, never skipped.
    fn start_for(&self, map: &[u8], lower: Bound<Seq>, end: u64) -> Result<Option<u64>> {
        let first = self.format.first();
        let from = match lower {
            Bound::Unbounded => first,
            Bound::Included(s) => s.get().max(first),
            Bound::Excluded(s) if s.get() < first => first,
            Bound::Excluded(s) => match self.format.check(map, s.get(), end) {
                Check::Valid { next, .. } | Check::Deleted { next } => next,
                _ => s.get().saturating_add(1),
            },
        };
        if from >= end {
            return Ok(None);
        }
        if from == first
            || matches!(
                self.format.check(map, from, end),
                Check::Valid { .. } | Check::Deleted { .. }
            )
        {
            return Ok(Some(from));
        }
        let mut at = from + 1;
        while at + self.format.overhead() <= end {
            if matches!(
                self.format.check(map, at, end),
                Check::Valid { .. } | Check::Deleted { .. }
            ) && self
                .format
                .frame_ending_at(map, at)
                .is_some_and(|prev| prev < from)
            {
                return Ok(Some(at));
            }
            at += 1;
        }
        // No later frame: fine if the bound lies inside the last frame.
        if self
            .format
            .frame_ending_at(map, end)
            .is_some_and(|last| last < from)
        {
            return Ok(None);
        }
        Err(Error::Corrupt {
            seq: None,
            reason: format!(
                "no valid frame after byte {from}: the log is damaged there (verify() lists it)"
            ),
        })
    }

    /// The end of the last frame that satisfies `upper` (a frame start, or `end`).
    fn end_for(&self, map: &[u8], upper: Bound<Seq>, end: u64) -> Result<u64> {
        let after = match upper {
            Bound::Unbounded => return Ok(end),
            Bound::Included(s) => Bound::Excluded(s),
            Bound::Excluded(s) => Bound::Included(s),
        };
        Ok(self.start_for(map, after, end)?.unwrap_or(end))
    }

    /// Walks the whole file and lists every damaged frame, without changing anything.
    pub fn verify(&self) -> Result<VerifyReport> {
        self.check_open()?;
        let _no_deletes = self.scan_lock.read_recursive();
        let (map, end) = self.snapshot()?;
        let mut report = VerifyReport {
            bytes: end,
            ..VerifyReport::default()
        };
        let mut at = self.format.first();
        while at < end {
            match self.format.check(&map, at, end) {
                Check::Valid { next, .. } => {
                    report.records += 1;
                    at = next;
                }
                Check::Deleted { next } => {
                    report.deleted += 1;
                    at = next;
                }
                Check::Corrupt { next } => {
                    report.problems.push(Problem {
                        seq: Seq::new(at),
                        bytes: next - at,
                        reason: "the record fails its checksum".into(),
                    });
                    at = next;
                }
                Check::NotAFrame => {
                    let resume = self
                        .format
                        .next_valid_frame_from(&map, at + 1, end)
                        .unwrap_or(end);
                    report.problems.push(Problem {
                        seq: Seq::new(at),
                        bytes: resume - at,
                        reason: "no valid frame here: lengths or end offset do not match".into(),
                    });
                    at = resume;
                }
            }
        }
        Ok(report)
    }
}

/// Rewrites the frame at `at` (payload length `len`) as deleted.
fn write_deletion(file: &File, format: Format, at: u64, len: u32) -> std::io::Result<()> {
    let zeros = vec![0u8; len as usize];
    match format {
        Format::Native => {
            file.write_all_at(&format::native_deleted_head(at, len), at)?;
            file.write_all_at(&zeros, at + 8)
        }
        Format::Js(_) => file.write_all_at(&zeros, at + 4),
    }
}

fn corrupt(seq: u64, reason: &str) -> Error {
    Error::Corrupt {
        seq: Some(Seq::new(seq)),
        reason: reason.to_string(),
    }
}

/// Whether a frame starting at `at` satisfies `upper`.
fn below(upper: Bound<Seq>, at: u64) -> bool {
    (Bound::Unbounded, upper).contains(&Seq::new(at))
}

/// Whether a frame starting at `at` satisfies `lower`.
fn above(lower: Bound<Seq>, at: u64) -> bool {
    (lower, Bound::Unbounded).contains(&Seq::new(at))
}

/// Finds the format of an existing file.
fn detect(
    file: &File,
    size: u64,
    wanted: Option<Format>,
    path: &Path,
) -> Result<Format, OffsetError> {
    let err = io_err(path);
    let mut head = [0u8; format::HEADER_LEN as usize];
    let native = size >= format::HEADER_LEN && {
        file.read_exact_at(&mut head, 0).map_err(&err)?;
        &head[..8] == format::MAGIC
    };
    let found = if native {
        if crc32fast::hash(&head[..12]).to_le_bytes() != head[12..16] {
            return Err(OffsetError::BadHeader {
                path: path.to_path_buf(),
            });
        }
        let version = u32::from_le_bytes([head[8], head[9], head[10], head[11]]);
        if version != format::VERSION {
            return Err(OffsetError::UnsupportedVersion {
                path: path.to_path_buf(),
                version,
            });
        }
        Format::Native
    } else if size >= format::HEADER_LEN && format::looks_like_damaged_native_header(&head) {
        // Falling through to the JS format would call it "not a log": say what it is.
        return Err(OffsetError::BadHeader {
            path: path.to_path_buf(),
        });
    } else {
        match (wanted, detect_width(file, size).map_err(&err)?) {
            (Some(Format::Js(asked)), Some(found)) if asked != found => {
                return Err(OffsetError::FormatMismatch {
                    path: path.to_path_buf(),
                    found: Format::Js(found).name(),
                    requested: Format::Js(asked).name(),
                });
            }
            (_, Some(found)) => Format::Js(found),
            // A torn tail hides the width: `js_width_by_recovery` decides.
            (_, None) => Format::Js(JsWidth::W32),
        }
    };
    match wanted {
        Some(wanted) if std::mem::discriminant(&wanted) != std::mem::discriminant(&found) => {
            Err(OffsetError::FormatMismatch {
                path: path.to_path_buf(),
                found: found.name(),
                requested: wanted.name(),
            })
        }
        _ => Ok(found),
    }
}

/// A JS file does not record its trailer width: the one whose last frame checks out
/// (`None` when none does, e.g. with a torn tail).
fn detect_width(file: &File, size: u64) -> std::io::Result<Option<JsWidth>> {
    let tail_len = size.min(64 << 10);
    let mut tail = vec![0u8; tail_len as usize];
    file.read_exact_at(&mut tail, size - tail_len)?;
    // Check frames in a buffer that holds the file's tail at its real offsets' end.
    for width in [JsWidth::W32, JsWidth::W53, JsWidth::W48] {
        if js_last_frame_ok(file, size, &tail, width)? {
            return Ok(Some(width));
        }
    }
    Ok(None)
}

fn js_last_frame_ok(file: &File, size: u64, tail: &[u8], width: JsWidth) -> std::io::Result<bool> {
    let w = width.bytes();
    if size < 8 + w {
        return Ok(false);
    }
    let t = tail.len() as u64;
    let at = |pos: u64, n: u64| -> Option<u64> {
        let off = pos.checked_sub(size - t)?;
        let b = tail.get(off as usize..(off + n) as usize)?;
        Some(b.iter().fold(0u64, |acc, &x| (acc << 8) | u64::from(x)))
    };
    let (Some(end), Some(len)) = (at(size - w, w), at(size - w - 4, 4)) else {
        return Ok(false);
    };
    if end != size {
        return Ok(false);
    }
    let Some(start) = size.checked_sub(len + 8 + w) else {
        return Ok(false);
    };
    let mut head = [0u8; 4];
    file.read_exact_at(&mut head, start)?;
    Ok(u64::from(u32::from_be_bytes(head)) == len)
}

/// For a JS file: the width and the recovered end. When the last frame checked out (`format`
/// came from it), that is it; when the tail is torn, the width whose recovery keeps the most
/// data wins, preferring the width the options asked for.
fn js_width_by_recovery(
    format: Format,
    asked: Option<Format>,
    bytes: &[u8],
    size: u64,
) -> (Format, u64) {
    let end = recover_end(format, bytes, size);
    if end == size {
        return (format, end);
    }
    let mut best = match asked {
        Some(asked @ Format::Js(_)) => (asked, recover_end(asked, bytes, size)),
        _ => (format, end),
    };
    for width in [JsWidth::W32, JsWidth::W53, JsWidth::W48] {
        let candidate = Format::Js(width);
        let end = recover_end(candidate, bytes, size);
        if end > best.1 {
            best = (candidate, end);
        }
    }
    best
}

/// Like [`recover_end`], and a delete interrupted in the last frame (start, length) to finish:
/// only one its checksum proves (see [`Format::interrupted_delete_ending_at`]), else it is cut.
fn recover_tail(format: Format, bytes: &[u8], size: u64) -> (u64, Option<(u64, u32)>) {
    let end = recover_end(format, bytes, size);
    if end < size
        && let Some(interrupted) = format.interrupted_delete_ending_at(bytes, size)
    {
        // The last frame is whole, only its delete was cut short: finish the delete rather
        // than drop the frame (which would give its seq to the next append).
        return (size, Some(interrupted));
    }
    (end, None)
}

/// The end of the last good frame: where a torn, zero-filled or damaged tail starts.
///
/// Scans back from the end of the file for the last position where a complete, valid frame
/// ends (for the JS format this follows flumelog-offset's own recovery, with the frame's
/// lengths checked too). Nothing before that position is touched: damage in the middle of the
/// log is left for reads and `verify()` to report.
fn recover_end(format: Format, bytes: &[u8], size: u64) -> u64 {
    let mut end = size;
    while end > format.first() {
        if format.frame_ending_at(bytes, end).is_some() {
            return end;
        }
        end -= 1;
    }
    format.first().min(size)
}

#[cfg(unix)]
fn sync_parent(path: &Path) -> std::io::Result<()> {
    match path.parent().filter(|d| !d.as_os_str().is_empty()) {
        Some(dir) => File::open(dir)?.sync_all(),
        None => File::open(".")?.sync_all(),
    }
}

impl Log for OffsetLog {
    fn append(&self, data: &[u8]) -> Result<Seq> {
        Ok(self.append_batch(&[data])?[0])
    }

    fn append_batch(&self, records: &[&[u8]]) -> Result<Vec<Seq>> {
        if records.is_empty() {
            self.check_open()?;
            return Ok(Vec::new());
        }
        let (seqs, end) = self.write_frames(records)?;
        if self.durability == Durability::Fsync {
            self.sync_to(end, false)?;
        }
        Ok(seqs)
    }

    fn get(&self, seq: Seq) -> Result<Vec<u8>> {
        self.check_open()?;
        let at = seq.get();
        let end = self.end.load(Ordering::Acquire);
        if at >= end {
            return Err(Error::NotFound { seq });
        }
        let read = self.map.with(end, |map| {
            self.deletes.read(|| self.record(map, at, end, false))
        });
        read.map_err(|e| self.file_error(e))?
    }

    fn since_watch(&self) -> &SinceWatch {
        &self.since
    }

    fn range(&self, lower: Bound<Seq>, upper: Bound<Seq>, reverse: bool) -> Result<LogIter<'_>> {
        self.check_open()?;
        let (map, end) = self.snapshot()?;
        if reverse {
            let from = self.deletes.read(|| self.end_for(&map, upper, end))?;
            Ok(Box::new(Backward {
                log: self,
                map,
                frame_end: from,
                end,
                lower,
                done: false,
            }))
        } else {
            let at = self
                .deletes
                .read(|| self.start_for(&map, lower, end))?
                .unwrap_or(end);
            Ok(Box::new(Forward {
                log: self,
                map,
                at,
                end,
                upper,
                done: false,
            }))
        }
    }

    fn flush(&self) -> Result<()> {
        self.check_open()?;
        let written = self.writer.lock().written;
        self.sync_to(written, true)
    }

    fn close(&self) -> Result<()> {
        let w = self.writer.lock();
        if self.closed.swap(true, Ordering::AcqRel) {
            return Err(Error::Closed);
        }
        let synced = w.file.sync_all();
        // Anything written but not yet published (fsync mode) is durable now.
        if synced.is_ok() && self.broken.lock().is_none() {
            self.publish(w.written, w.last);
        }
        // Let another open (or process) have the file; this object is done with it.
        let unlocked = w.file.unlock();
        drop(w);
        self.since.close();
        synced.map_err(|e| self.file_error(e))?;
        unlocked.map_err(|e| self.file_error(e))
    }

    fn view_dir(&self) -> Option<PathBuf> {
        // One directory per log file, so two logs in one directory keep their views apart.
        let mut name = self.path.file_name()?.to_os_string();
        name.push(".views");
        Some(self.dir.as_ref()?.join(name))
    }
}

/// Forward iteration from a frame start.
struct Forward<'a> {
    log: &'a OffsetLog,
    map: Arc<Mmap>,
    at: u64,
    end: u64,
    upper: Bound<Seq>,
    done: bool,
}

impl Iterator for Forward<'_> {
    type Item = Result<Entry>;

    fn next(&mut self) -> Option<Result<Entry>> {
        while !self.done && self.at < self.end && below(self.upper, self.at) {
            let at = self.at;
            let (end, map) = (self.end, &self.map);
            let step = self.log.deletes.read(|| {
                Ok(match self.log.format.check(map, at, end) {
                    Check::Valid { payload, next } => {
                        (Some(map[payload.0..payload.1].to_vec()), next)
                    }
                    Check::Deleted { next } => (None, next),
                    _ => return Err(corrupt(at, "the frame fails its checks")),
                })
            });
            match step {
                Ok((data, next)) => {
                    self.at = next;
                    if let Some(data) = data {
                        return Some(Ok(Entry {
                            seq: Seq::new(at),
                            data,
                        }));
                    }
                }
                Err(err) => {
                    self.done = true;
                    return Some(Err(err));
                }
            }
        }
        None
    }
}

/// Reverse iteration from a frame end.
struct Backward<'a> {
    log: &'a OffsetLog,
    map: Arc<Mmap>,
    frame_end: u64,
    end: u64,
    lower: Bound<Seq>,
    done: bool,
}

impl Iterator for Backward<'_> {
    type Item = Result<Entry>;

    fn next(&mut self) -> Option<Result<Entry>> {
        while !self.done && self.frame_end > self.log.format.first() {
            let frame_end = self.frame_end;
            let map = &self.map;
            let found = self
                .log
                .deletes
                .read(|| self.log.format.frame_ending_at(map, frame_end));
            let Some(at) = found else {
                self.done = true;
                return Some(Err(Error::Corrupt {
                    seq: None,
                    reason: format!(
                        "no valid frame ends at byte {} (found while reading backwards)",
                        self.frame_end
                    ),
                }));
            };
            if !above(self.lower, at) {
                return None;
            }
            self.frame_end = at;
            let (end, map) = (self.end, &self.map);
            match self
                .log
                .deletes
                .read(|| self.log.record(map, at, end, true))
            {
                Ok(data) => {
                    return Some(Ok(Entry {
                        seq: Seq::new(at),
                        data,
                    }));
                }
                Err(Error::Deleted { .. }) => continue,
                Err(err) => {
                    self.done = true;
                    return Some(Err(err));
                }
            }
        }
        None
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
        let append = log.append(b"lost").unwrap_err();
        assert!(is_file_error(&append), "{append:?}");
        let del = log.del(seq).unwrap_err();
        assert!(is_file_error(&del), "{del:?}");
        // The failed append could not be undone: later appends are refused, naming the file.
        let refused = log.append(b"lost").unwrap_err();
        assert!(is_file_error(&refused), "{refused:?}");
        assert_eq!(log.get(seq).unwrap(), b"kept");
    }
}
