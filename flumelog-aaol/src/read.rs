//! Range reads: one block read at a time, its records walked, deleted ones skipped.

use std::collections::VecDeque;
use std::ops::Bound;
use std::sync::atomic::Ordering;

use flumedb_core::{Entry, Result, Seq};

use crate::block;
use crate::log::AaolLog;

pub(crate) struct Range<'a> {
    log: &'a AaolLog,
    lower: Bound<u64>,
    upper: Bound<u64>,
    reverse: bool,
    /// The readable end when the range began: records appended later are not read.
    end: u64,
    /// The next block to read (forward: ascending; reverse: the block below it, until 0).
    next_block: Option<u64>,
    ready: VecDeque<Result<Entry>>,
}

impl<'a> Range<'a> {
    pub(crate) fn new(
        log: &'a AaolLog,
        lower: Bound<Seq>,
        upper: Bound<Seq>,
        reverse: bool,
    ) -> Self {
        let end = log.readable.load(Ordering::Acquire);
        let lower = lower.map(Seq::get);
        let upper = upper.map(Seq::get);
        let b = log.block;
        let next_block = if end == 0 {
            None
        } else if reverse {
            let top = match upper {
                Bound::Included(u) => Some(u.min(end - 1)),
                Bound::Excluded(u) => u.checked_sub(1).map(|u| u.min(end - 1)),
                Bound::Unbounded => Some(end - 1),
            };
            top.map(|top| top - top % b)
        } else {
            let bottom = match lower {
                Bound::Included(l) => l,
                Bound::Excluded(l) => l.saturating_add(1),
                Bound::Unbounded => 0,
            };
            (bottom < end).then(|| bottom - bottom % b)
        };
        Range {
            log,
            lower,
            upper,
            reverse,
            end,
            next_block,
            ready: VecDeque::new(),
        }
    }

    fn within(&self, at: u64) -> bool {
        let above = match self.lower {
            Bound::Included(l) => at >= l,
            Bound::Excluded(l) => at > l,
            Bound::Unbounded => true,
        };
        let below = match self.upper {
            Bound::Included(u) => at <= u,
            Bound::Excluded(u) => at < u,
            Bound::Unbounded => true,
        };
        above && below
    }

    /// Reads the next block's records into `ready`; false when there is no block left.
    fn fill(&mut self) -> bool {
        let Some(start) = self.next_block else {
            return false;
        };
        let b = self.log.block;
        self.next_block = if self.reverse {
            start.checked_sub(b)
        } else {
            Some(start + b).filter(|&next| next < self.end)
        };
        // Past the range: stop early.
        let past = if self.reverse {
            // Every record of this block lies below the lower bound.
            match self.lower {
                Bound::Included(l) => start + b <= l,
                Bound::Excluded(l) => start + b <= l + 1,
                Bound::Unbounded => false,
            }
        } else {
            match self.upper {
                Bound::Included(u) => start > u,
                Bound::Excluded(u) => start >= u,
                Bound::Unbounded => false,
            }
        };
        if past {
            self.next_block = None;
            return false;
        }
        let valid = (self.end - start).min(b);
        let block = match self.log.read_block_stable(start, valid) {
            Ok(block) => block,
            Err(e) => {
                self.ready.push_back(Err(e));
                self.next_block = None;
                return true;
            }
        };
        let mut slots = Vec::new();
        block::walk(&block, valid as usize, |slot| {
            slots.push(slot);
            true
        });
        if self.log.is_complete(start, self.end) {
            self.log.cache_slots(start, slots.as_slice().into());
        }
        if self.reverse {
            slots.reverse();
        }
        for slot in slots {
            let at = start + slot.pos as u64;
            if !self.within(at) {
                continue;
            }
            let payload = block.get(slot.payload()..slot.end()).unwrap_or_default();
            if block::is_zeroed(payload) {
                continue;
            }
            let data = payload.to_vec();
            self.ready.push_back(Ok(Entry {
                seq: Seq::new(at),
                data,
            }));
        }
        true
    }
}

impl Iterator for Range<'_> {
    type Item = Result<Entry>;

    fn next(&mut self) -> Option<Result<Entry>> {
        loop {
            if let Some(entry) = self.ready.pop_front() {
                return Some(entry);
            }
            if !self.fill() {
                return None;
            }
        }
    }
}
