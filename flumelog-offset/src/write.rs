//! The write path: appends (one `pwrite` per batch), group commit, and `del`.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::sync::atomic::Ordering;

use flumedb_core::{Error, Result, Seq, Since};

use crate::format::{self, Check, Format};
use crate::log::OffsetLog;
use flumedb_core::Durability;

impl OffsetLog {
    /// Appends the records in one write; under [`Durability::Fsync`] waits until they are
    /// durable.
    pub(crate) fn append_records(&self, records: &[&[u8]]) -> Result<Vec<Seq>> {
        if records.is_empty() {
            self.check_open()?;
            return Ok(Vec::new());
        }
        let mut seqs = Vec::with_capacity(records.len());
        let (_, end) = self.write_frames(records, Some(&mut seqs))?;
        if self.durability == Durability::Fsync {
            self.make_durable(end, false)?;
        }
        Ok(seqs)
    }

    /// Appends one record (no seq vector to allocate).
    pub(crate) fn append_one(&self, data: &[u8]) -> Result<Seq> {
        let (start, end) = self.write_frames(&[data], None)?;
        if self.durability == Durability::Fsync {
            self.make_durable(end, false)?;
        }
        Ok(Seq::new(start))
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

    /// Writes the frames in one `pwrite` and returns where they start and end; `seqs`, when
    /// given, receives each frame's seq.
    fn write_frames(
        &self,
        records: &[&[u8]],
        mut seqs: Option<&mut Vec<Seq>>,
    ) -> Result<(u64, u64)> {
        for data in records {
            self.validate(data)?;
        }
        let mut w = self.writer.lock();
        self.check_open()?;
        self.check_poisoned()?;
        let start = w.written;
        let mut pos = start;
        let mut buf = std::mem::take(&mut w.buf);
        buf.clear();
        let mut last = None;
        for data in records {
            if let Some(seqs) = seqs.as_deref_mut() {
                seqs.push(Seq::new(pos));
            }
            last = Some(pos);
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
                self.set_poisoned(format!("a failed append could not be undone: {undo}"));
            }
            return Err(self.file_error(err));
        }
        w.written = pos;
        w.last = last.or(w.last);
        if self.durability == Durability::Os {
            self.publish(pos, w.last);
        }
        Ok((start, pos))
    }

    /// Makes `end` and the last seq visible to readers.
    /// Only ever moves forward: publishers (appends, group-commit leaders, close) may race.
    pub(crate) fn publish(&self, end: u64, last: Option<u64>) {
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
    pub(crate) fn make_durable(&self, target: u64, force: bool) -> Result<()> {
        let mut state = self.durable.lock();
        let mut own_sync_needed = force;
        loop {
            // After a failed fsync nothing may be acknowledged, even if a later fsync on the
            // same file succeeds (the error was reported once and the pages may be gone).
            self.check_poisoned()?;
            if !own_sync_needed && state.synced >= target {
                return Ok(());
            }
            if state.syncing {
                self.durable_changed.wait(&mut state);
                continue;
            }
            if self.closed.load(Ordering::Acquire) {
                // `close` synced everything written before it; nothing may sync after it.
                return if state.synced >= target {
                    Ok(())
                } else {
                    Err(Error::Closed)
                };
            }
            state.syncing = true;
            drop(state);
            let (written, last, file) = {
                let w = self.writer.lock();
                (w.written, w.last, w.file.try_clone())
            };
            let result = file.and_then(|f| f.sync_data());
            // Only the leader gets here (`syncing`), so marks are written in order.
            let marked = match result {
                Ok(()) => self.record_synced_end(written, last, force),
                Err(_) => Ok(()),
            };
            state = self.durable.lock();
            state.syncing = false;
            match result {
                Ok(()) => {
                    own_sync_needed = false;
                    state.synced = state.synced.max(written);
                    if self.durability == Durability::Fsync {
                        self.publish(written, last);
                    }
                    self.durable_changed.notify_all();
                    // The records are durable; the mark's failure is this caller's to report.
                    marked?;
                }
                Err(err) => {
                    self.set_poisoned(format!("fsync failed: {err}"));
                    self.durable_changed.notify_all();
                    return Err(self.file_error(err));
                }
            }
        }
    }

    /// Deletes the record at `seq` as JS flumelog-offset does: the frame stays, its payload
    /// becomes zeros; `get` then returns [`Error::Deleted`] and streams skip it. Under
    /// [`Durability::Fsync`] the change is fsync'd before this returns.
    ///
    /// The bytes are rewritten in place: a crash in the middle of a delete leaves that one
    /// frame failing its checks (reported as corrupt, never returned as data). So that such a
    /// frame is never taken for an unsynced tail and cut with the records after it, the record
    /// and the synced-end mark past it are made durable first (an fsync each, when they are
    /// not yet).
    pub fn del(&self, seq: Seq) -> Result<()> {
        self.check_open()?;
        self.mark_durable_past(seq)?;
        // Scans hold `scan_lock` while `f` runs; take it before the writer lock, so a scan
        // whose `f` appends cannot deadlock with a delete. (`f` must not call `del` itself.)
        let _scans = self.scan_lock.write();
        let w = self.writer.lock();
        self.check_open()?;
        self.check_poisoned()?;
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
        let (pos, bytes) = deletion(self.format, at, len);
        let original = usize::try_from(pos)
            .ok()
            .and_then(|p| map.get(p..p.checked_add(bytes.len())?))
            .map(<[u8]>::to_vec);
        let written = self.deletes.write(|| {
            let written = w.file.write_all_at(&bytes, pos);
            if written.is_err() {
                // A write that failed part way would leave a frame failing its checks, which
                // reads (and streams) report as damage: put the record back as it was.
                let restored = original.as_ref().map(|o| w.file.write_all_at(o, pos));
                if !matches!(restored, Some(Ok(()))) {
                    self.set_poisoned(format!("a failed delete at {at} could not be undone"));
                }
            }
            written
        });
        written.map_err(|e| self.file_error(e))?;
        if self.durability == Durability::Fsync
            && let Err(err) = w.file.sync_data()
        {
            self.set_poisoned(format!("fsync failed: {err}"));
            return Err(self.file_error(err));
        }
        Ok(())
    }
}

impl OffsetLog {
    /// Before a delete rewrites the frame at `seq`: makes the frame durable and the synced-end
    /// mark durable past it. A delete torn by a power loss then lies below the mark on disk,
    /// where recovery keeps it (reported as `Corrupt`, or finished), and never cuts the
    /// records after it as it cuts an unsynced tail.
    fn mark_durable_past(&self, seq: Seq) -> Result<()> {
        let next = {
            let (map, end) = self.snapshot()?;
            match self.format.check(&map, seq.get(), end) {
                Check::Valid { next, .. } | Check::Deleted { next } | Check::Corrupt { next } => {
                    next
                }
                // No frame: `del` reports it.
                Check::NotAFrame => return Ok(()),
            }
        };
        // The newest mark covers everything fsync'd, unless its write failed: then the
        // second round forces an fsync of our own, which records a fresh mark (or fails).
        for force in [false, true] {
            let mut synced_end = self.synced_end.lock();
            if synced_end.durable().is_some_and(|mark| mark.end >= next) {
                return Ok(());
            }
            drop(synced_end);
            self.make_durable(next, force)?;
            synced_end = self.synced_end.lock();
            match synced_end.sync() {
                Ok(mark) if mark.is_some_and(|mark| mark.end >= next) => return Ok(()),
                Ok(_) => {}
                Err(err) => {
                    // As after any failed fsync: the disk cannot be trusted until reopened.
                    self.set_poisoned(format!("fsync of the synced-end mark failed: {err}"));
                    return Err(err);
                }
            }
        }
        Err(Error::File {
            path: self.synced_end.lock().file_path().to_path_buf(),
            source: std::io::Error::other(
                "the synced-end mark could not be made durable before a delete",
            ),
        })
    }
}

/// Rewrites the frame at `at` (payload length `len`) as deleted.
pub(crate) fn write_deletion(
    file: &File,
    format: Format,
    at: u64,
    len: u32,
) -> std::io::Result<()> {
    let (pos, bytes) = deletion(format, at, len);
    file.write_all_at(&bytes, pos)
}

/// Where the deleted form of the frame at `at` (payload length `len`) goes, and its bytes: one
/// write, so a failed call changes nothing.
fn deletion(format: Format, at: u64, len: u32) -> (u64, Vec<u8>) {
    match format {
        Format::Native => {
            let mut bytes = Vec::with_capacity(8 + len as usize);
            bytes.extend_from_slice(&format::native_deleted_head(at, len));
            bytes.resize(8 + len as usize, 0);
            (at, bytes)
        }
        Format::Js(_) => (at + 4, vec![0u8; len as usize]),
    }
}
