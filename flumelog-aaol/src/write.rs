//! The write path: appends (one `pwrite` per block a batch touches), group commit, and `del`.

use std::os::unix::fs::FileExt;
use std::sync::atomic::Ordering;

use flumedb_core::{Error, Result, Seq, Since};

use crate::block;
use crate::log::AaolLog;
use flumedb_core::Durability;

impl AaolLog {
    /// The longest record a block holds: its length field is a u16, and a block keeps room for
    /// the 2-byte end mark.
    pub fn max_record_len(&self) -> usize {
        usize::try_from((self.block - 4).min(u64::from(u16::MAX))).unwrap_or(usize::from(u16::MAX))
    }

    fn validate(&self, data: &[u8]) -> Result<()> {
        if data.is_empty() {
            return Err(Error::InvalidArgument(
                "an empty record would read as the end of its block (and hide the records after \
                 it); nothing appended"
                    .into(),
            ));
        }
        let max = self.max_record_len();
        if data.len() > max {
            return Err(Error::InvalidArgument(format!(
                "a record of {} bytes is longer than the {max} a block of {} bytes holds; \
                 nothing appended",
                data.len(),
                self.block
            )));
        }
        if block::is_zeroed(data) {
            return Err(Error::InvalidArgument(
                "a record of zero bytes only would read as deleted; nothing appended".into(),
            ));
        }
        Ok(())
    }

    pub(crate) fn append_records(&self, records: &[&[u8]]) -> Result<Vec<Seq>> {
        self.check_open()?;
        if let Some(reason) = self.poisoned.lock().clone() {
            return Err(Error::Poisoned {
                path: Some(self.path.clone()),
                reason,
            });
        }
        for data in records {
            self.validate(data)?;
        }
        let Some(_) = records.first() else {
            return Ok(Vec::new());
        };
        let b = self.block;
        let mut w = self.writer.lock();
        let mut seqs = Vec::with_capacity(records.len());
        let mut segments: Vec<(u64, Vec<u8>)> = Vec::new();
        let mut next = w.next;
        let mut segment = (next, Vec::new());
        let mut file_len = w.file_len;
        let mut finished = Vec::new();
        for data in records {
            let pos = (next % b) as usize;
            if !block::fits(pos, data.len(), b as usize) {
                // The rest of this block stays zeros: its end mark.
                let block_start = next - pos as u64;
                next = block_start + b;
                segments.push(std::mem::replace(&mut segment, (next, Vec::new())));
                if let Some(slots) = w.current_slots.replace(Vec::new()) {
                    finished.push((block_start, slots));
                }
            }
            if next.is_multiple_of(b) {
                w.current_slots = Some(Vec::new());
            }
            if let Some(slots) = &mut w.current_slots {
                slots.push(block::Slot {
                    pos: (next % b) as usize,
                    len: data.len(),
                });
            }
            // The file grows by whole blocks, so it always ends on a block boundary as the
            // JS package expects.
            file_len = file_len.max(next - next % b + b);
            seqs.push(Seq::new(next));
            let len = u16::try_from(data.len())
                .map_err(|_| Error::InvalidArgument("record longer than a u16".into()))?;
            segment.1.extend_from_slice(&len.to_le_bytes());
            segment.1.extend_from_slice(data);
            next += 2 + data.len() as u64;
        }
        segments.push(segment);
        // Nothing is published on a failed write: the next append writes over it.
        let written = (|| {
            if file_len > w.file_len {
                self.file.set_len(file_len)?;
                w.file_len = file_len;
            }
            for (at, bytes) in segments.iter().filter(|(_, bytes)| !bytes.is_empty()) {
                self.file.write_all_at(bytes, *at)?;
            }
            Ok(())
        })();
        if let Err(err) = written {
            w.current_slots = None;
            return Err(self.io()(err));
        }
        for (start, slots) in finished {
            self.cache_slots(start, slots.into());
        }
        let last = Since::from(seqs.last().copied());
        w.next = next;
        w.last = last;
        self.written.fetch_max(next, Ordering::AcqRel);
        match self.durability {
            Durability::Os => {
                self.readable.fetch_max(next, Ordering::AcqRel);
                self.since.advance(last);
            }
            Durability::Fsync => {
                drop(w);
                self.make_durable(next)?;
                self.readable.fetch_max(next, Ordering::AcqRel);
                self.since.advance(last);
            }
        }
        Ok(seqs)
    }

    /// Makes everything written up to `target` durable, sharing fsyncs between concurrent
    /// callers: one runs while the others wait, and each fsync covers everything written
    /// when it began.
    pub(crate) fn make_durable(&self, target: u64) -> Result<()> {
        let mut state = self.durable.lock();
        loop {
            if state.synced >= target {
                return Ok(());
            }
            if !state.syncing {
                break;
            }
            self.durable_changed.wait(&mut state);
        }
        state.syncing = true;
        let upto = self.written.load(Ordering::Acquire);
        drop(state);
        let result = self.file.sync_data();
        let mut state = self.durable.lock();
        state.syncing = false;
        match &result {
            Ok(()) => state.synced = state.synced.max(upto),
            // After a failed fsync the OS may have dropped the pages: nothing more is
            // acknowledged until the log is reopened.
            Err(err) => *self.poisoned.lock() = Some(format!("fsync failed: {err}")),
        }
        self.durable_changed.notify_all();
        result.map_err(self.io())
    }

    /// Makes every appended record durable, and readable in `Fsync` mode.
    pub(crate) fn sync_written(&self) -> Result<()> {
        let written = self.written.load(Ordering::Acquire);
        self.make_durable(written)?;
        self.readable.fetch_max(written, Ordering::AcqRel);
        let last = self.writer.lock().last;
        self.since.advance(last);
        Ok(())
    }

    /// Deletes the record at `seq`, as the JS package does: its payload is zeroed in place
    /// (its length stays, so the records after it keep their seqs), and `<log>.stats` counts
    /// its bytes. `get` then gives [`Error::Deleted`] and streams skip it. With
    /// [`Durability::Fsync`] the change is fsync'd before this returns; the stats file always
    /// is (it is written atomically).
    pub fn del(&self, seq: Seq) -> Result<()> {
        self.check_open()?;
        let mut w = self.writer.lock();
        let slot = self.slot(seq)?;
        let payload_at = seq.get() - slot.pos as u64 + slot.payload() as u64;
        if self.read_payload(payload_at, slot.len)?.is_none() {
            return Err(Error::Deleted { seq });
        }
        let zeros = vec![0u8; slot.len];
        self.deleting.fetch_add(1, Ordering::AcqRel);
        let written = self.file.write_all_at(&zeros, payload_at);
        self.deleting.fetch_add(1, Ordering::AcqRel);
        written.map_err(self.io())?;
        if self.durability == Durability::Fsync {
            self.file.sync_data().map_err(self.io())?;
        }
        w.deleted_bytes += 2 + slot.len as u64;
        crate::stats::store(&self.path, w.deleted_bytes)?;
        self.deletes.fetch_add(1, Ordering::AcqRel);
        Ok(())
    }
}
