//! The read path: `get`, range iterators in both directions, `scan`, and finding the frame
//! where a bound starts. Every copy out of the map runs under the `del` seqlock.

use std::ops::Bound;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use flumedb_core::{Entry, Error, LogIter, Result, Seq, bounds};
use memmap2::Mmap;

use crate::format::Check;
use crate::log::OffsetLog;

impl OffsetLog {
    /// The record at `seq` (`Log::get`).
    pub(crate) fn read_record(&self, seq: Seq) -> Result<Vec<u8>> {
        self.check_open()?;
        let at = seq.get();
        let end = self.end.load(Ordering::Acquire);
        if at >= end {
            return Err(Error::NotFound { seq });
        }
        let read = self.map.with(end, |map| self.record(map, at, end, false));
        read.map_err(|e| self.file_error(e))?
    }

    /// Whether the record at `seq` is deleted (`Log::is_deleted`): its frame is checked, its
    /// payload not copied.
    pub(crate) fn read_is_deleted(&self, seq: Seq) -> Result<bool> {
        self.check_open()?;
        let at = seq.get();
        let end = self.end.load(Ordering::Acquire);
        if at >= end {
            return Err(Error::NotFound { seq });
        }
        let checked = self.map.with(end, |map| {
            self.deletes.read(|| self.format.check(map, at, end))
        });
        match checked.map_err(|e| self.file_error(e))? {
            Check::Valid { .. } => Ok(false),
            Check::Deleted { .. } => Ok(true),
            Check::Corrupt { .. } => Err(corrupt(at, "the record fails its checksum")),
            Check::NotAFrame => Err(Error::InvalidSeq {
                seq,
                reason: "no frame starts here (not a record's seq, or its frame is damaged: \
                         verify() tells which)"
                    .into(),
            }),
        }
    }

    /// The records between the bounds (`Log::range`).
    pub(crate) fn read_range(
        &self,
        lower: Bound<Seq>,
        upper: Bound<Seq>,
        reverse: bool,
    ) -> Result<LogIter<'_>> {
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
                touched: Touched::new(from),
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
                touched: Touched::new(at),
            }))
        }
    }

    /// A map covering the committed bytes, and the committed end.
    pub(crate) fn snapshot(&self) -> Result<(Arc<Mmap>, u64)> {
        let end = self.end.load(Ordering::Acquire);
        let map = self.map.covering(end).map_err(|e| self.file_error(e))?;
        Ok((map, end))
    }

    /// The frame at `seq`, its payload copied out under the `del` seqlock. The result is small
    /// on purpose: a large `Result` returned through the seqlock's closure costs a
    /// store-forwarding stall per record, so errors are built by the callers, outside it.
    fn read_frame(&self, bytes: &[u8], seq: u64, end: u64) -> Found {
        self.deletes
            .read(|| match self.format.check(bytes, seq, end) {
                Check::Valid { payload, next } => bytes
                    .get(payload.0..payload.1)
                    .map_or(Found::Outside, |data| Found::Record(data.to_vec(), next)),
                Check::Deleted { next } => Found::Deleted(next),
                Check::Corrupt { .. } => Found::Corrupt,
                Check::NotAFrame => Found::NotAFrame,
            })
    }

    /// The record at `seq` (`known_start`: `seq` is known to be a frame start).
    fn record(&self, bytes: &[u8], seq: u64, end: u64, known_start: bool) -> Result<Vec<u8>> {
        let found = self.read_frame(bytes, seq, end);
        match found {
            Found::Record(data, _) => Ok(data),
            Found::Deleted(_) => Err(Error::Deleted { seq: Seq::new(seq) }),
            Found::Corrupt => Err(corrupt(seq, "the record fails its checksum")),
            Found::Outside => Err(corrupt(seq, "the frame's payload lies outside the log")),
            Found::NotAFrame if known_start => Err(corrupt(
                seq,
                "the frame's lengths or end offset do not match",
            )),
            Found::NotAFrame => Err(Error::InvalidSeq {
                seq: Seq::new(seq),
                reason: "no frame starts here (not a record's seq, or its frame is damaged: \
                         verify() tells which)"
                    .into(),
            }),
        }
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
        let mut touched = Touched::new(at);
        while at < end && bounds::within_upper(&upper, &Seq::new(at)) {
            touched.at(self, &map, at);
            match self.format.check(&map, at, end) {
                Check::Valid { payload, next } => {
                    seen += 1;
                    if !f(Seq::new(at), payload_of(&map, payload, at)?) {
                        break;
                    }
                    at = next;
                }
                Check::Deleted { next } => at = next,
                _ => return Err(corrupt(at, "the frame fails its checks")),
            }
        }
        touched.finish(self, &map, at);
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
}

/// The payload `check` found; `check` only reports ranges inside `bytes`, so the error is for
/// a broken invariant, never expected.
fn payload_of(bytes: &[u8], (start, end): (usize, usize), seq: u64) -> Result<&[u8]> {
    bytes
        .get(start..end)
        .ok_or_else(|| corrupt(seq, "the frame's payload lies outside the log"))
}

fn corrupt(seq: u64, reason: &str) -> Error {
    Error::Corrupt {
        seq: Some(Seq::new(seq)),
        reason: reason.to_string(),
    }
}

/// Where a sequential read was when it last reported the bytes it passed to the map (see
/// [`crate::map`]).
struct Touched {
    reported: u64,
}

impl Touched {
    /// Reports in steps of this many bytes: few atomic updates on a shared counter.
    const STEP: u64 = 1 << 20;

    fn new(at: u64) -> Touched {
        Touched { reported: at }
    }

    /// The read is at `at`: reports the bytes passed since the last report, in steps.
    fn at(&mut self, log: &OffsetLog, map: &Mmap, at: u64) {
        if at.abs_diff(self.reported) >= Self::STEP {
            self.finish(log, map, at);
        }
    }

    /// The read stops at `at`: reports what it passed since the last report.
    fn finish(&mut self, log: &OffsetLog, map: &Mmap, at: u64) {
        let passed = at.abs_diff(self.reported);
        if passed > 0 {
            log.map.passed(map, passed);
            self.reported = at;
        }
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
    touched: Touched,
}

impl Iterator for Forward<'_> {
    type Item = Result<Entry>;

    fn next(&mut self) -> Option<Result<Entry>> {
        while !self.done
            && self.at < self.end
            && bounds::within_upper(&self.upper, &Seq::new(self.at))
        {
            let at = self.at;
            let (end, map) = (self.end, &self.map);
            self.touched.at(self.log, map, at);
            match self.log.read_frame(map, at, end) {
                Found::Record(data, next) => {
                    self.at = next;
                    return Some(Ok(Entry {
                        seq: Seq::new(at),
                        data,
                    }));
                }
                Found::Deleted(next) => self.at = next,
                Found::Corrupt | Found::Outside | Found::NotAFrame => {
                    self.done = true;
                    return Some(Err(corrupt(at, "the frame fails its checks")));
                }
            }
        }
        None
    }
}

impl Drop for Forward<'_> {
    fn drop(&mut self) {
        self.touched.finish(self.log, &self.map, self.at);
    }
}

/// What reading one frame found; a record or a deleted one carries where the next frame starts.
enum Found {
    Record(Vec<u8>, u64),
    Deleted(u64),
    Corrupt,
    /// A payload range outside the bytes (never expected: `check` only reports ranges inside).
    Outside,
    NotAFrame,
}

/// Reverse iteration from a frame end.
struct Backward<'a> {
    log: &'a OffsetLog,
    map: Arc<Mmap>,
    frame_end: u64,
    end: u64,
    lower: Bound<Seq>,
    done: bool,
    touched: Touched,
}

impl Iterator for Backward<'_> {
    type Item = Result<Entry>;

    fn next(&mut self) -> Option<Result<Entry>> {
        while !self.done && self.frame_end > self.log.format.first() {
            let frame_end = self.frame_end;
            let map = &self.map;
            self.touched.at(self.log, map, frame_end);
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
            if !bounds::within_lower(&self.lower, &Seq::new(at)) {
                return None;
            }
            self.frame_end = at;
            let (end, map) = (self.end, &self.map);
            match self.log.record(map, at, end, true) {
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

impl Drop for Backward<'_> {
    fn drop(&mut self) {
        self.touched.finish(self.log, &self.map, self.frame_end);
    }
}
