//! The write path: appends (one `pwrite` per block a batch touches), group commit, and `del`.

use std::os::unix::fs::FileExt;
use std::sync::atomic::Ordering;

use flumedb_core::{Error, Result, Seq, Since};

use crate::block;
use crate::log::AlignedLog;
use flumedb_core::Durability;

impl AlignedLog {
    /// The longest record a block holds: block size − 10 (its two lengths, and room for the
    /// end mark and the pointer).
    pub fn max_record_len(&self) -> usize {
        usize::try_from(self.block - 10).unwrap_or(usize::from(u16::MAX))
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
        // One contiguous write: a block closed on the way (end mark, zeros, pointer) runs
        // straight into the next block's first record.
        let at = w.next;
        let mut bytes = Vec::new();
        let mut next = w.next;
        let mut finished = Vec::new();
        for data in records {
            let pos = (next % b) as usize;
            if !block::fits(pos, data.len(), b as usize) {
                let block_start = next - pos as u64;
                bytes.extend(block::closing(pos, b as usize));
                next = block_start + b;
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
            seqs.push(Seq::new(next));
            let len = u16::try_from(data.len())
                .map_err(|_| Error::InvalidArgument("record longer than a u16".into()))?
                .to_le_bytes();
            bytes.extend_from_slice(&len);
            bytes.extend_from_slice(data);
            bytes.extend_from_slice(&len);
            next += data.len() as u64 + 4;
        }
        // Nothing is published on a failed write: the next append writes over it.
        if let Err(err) = self.file.write_all_at(&bytes, at) {
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
    /// (its lengths stay, so the records after it keep their seqs). `get` then gives
    /// [`Error::Deleted`] and streams skip it. With [`Durability::Fsync`] the change is
    /// fsync'd before this returns. (Unlike the JS package, a delete in the last block does
    /// not pad the file, which made JS lose the records appended after it.)
    pub fn del(&self, seq: Seq) -> Result<()> {
        self.check_open()?;
        let _w = self.writer.lock();
        let (start, slot) = self.slot(seq)?;
        let payload_at = start + slot.payload() as u64;
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
        self.deletes.fetch_add(1, Ordering::AcqRel);
        Ok(())
    }
}
