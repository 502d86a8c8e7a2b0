//! [`Chunk`]: the records the feeder reads for one group of views at the same position,
//! decoded once, and their application to every view of the group (on threads of their own
//! when that pays).

use std::ops::Bound;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use crate::codec::Codec;
use crate::error::Error;
use crate::log::Log;
use crate::panic::panic_message;
use crate::record::Record;
use crate::seq::{Seq, Since};
use crate::slot::Slot;
use crate::typed_log::TypedLog;
use crate::view::Checkpoint;
use crate::views_watch::Failure;

/// Chunks of fewer records are applied to their views one after the other (a thread per
/// view costs tens of microseconds).
const PARALLEL_FROM: usize = 64;

/// Whether this machine has more than one core.
fn parallel() -> bool {
    static CORES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get())) > 1
}

/// Records read for one group of views.
pub(crate) struct Chunk<T> {
    pub(crate) records: Vec<Record<T>>,
    /// The last record read (applied, or skipped), for the views' checkpoints.
    pub(crate) last: Option<Checkpoint>,
    /// What stopped the reading early, if anything.
    pub(crate) failure: Option<Failure>,
    /// Whether the log had no more records up to the target.
    exhausted: bool,
}

impl<T: Send + Sync> Chunk<T> {
    /// Reads, decodes and maps up to `batch_size` records after `since`, up to `upto`. A
    /// panic of the log (or codec) stops the chunk with [`Error::Panicked`].
    pub(crate) fn read<L: Log, C: Codec<T>>(
        typed: &TypedLog<L, T, C>,
        since: Since,
        upto: Seq,
        batch_size: usize,
    ) -> Chunk<T> {
        catch_unwind(AssertUnwindSafe(|| {
            Chunk::read_unguarded(typed, since, upto, batch_size)
        }))
        .unwrap_or_else(|panic| {
            let cause = Arc::new(Error::Panicked {
                what: "the log, read for the views,".into(),
                message: panic_message(&panic),
            });
            Chunk {
                records: Vec::new(),
                last: None,
                failure: Some(Failure { seq: None, cause }),
                exhausted: false,
            }
        })
    }

    fn read_unguarded<L: Log, C: Codec<T>>(
        typed: &TypedLog<L, T, C>,
        since: Since,
        upto: Seq,
        batch_size: usize,
    ) -> Chunk<T> {
        let lower = match since {
            Since::Empty => Bound::Unbounded,
            Since::At(seq) => Bound::Excluded(seq),
        };
        let mut chunk = Chunk {
            records: Vec::with_capacity(batch_size.min(4096)),
            last: None,
            failure: None,
            exhausted: false,
        };
        let iter = match typed.log.range(lower, Bound::Included(upto), false) {
            Ok(iter) => iter,
            Err(error) => {
                let cause = Arc::new(error);
                chunk.failure = Some(Failure { seq: None, cause });
                return chunk;
            }
        };
        let mut iter = iter.fuse();
        let mut read = 0;
        let mut last_data = None;
        for entry in iter.by_ref().take(batch_size) {
            let entry = match entry {
                Ok(entry) => entry,
                Err(error) => {
                    let seq = record_seq(&error);
                    let cause = Arc::new(error);
                    chunk.failure = Some(Failure { seq, cause });
                    break;
                }
            };
            read += 1;
            let seq = entry.seq;
            match typed.decode_for_views(seq, &entry.data) {
                Ok(Some(value)) => chunk.records.push(Record { seq, value }),
                Ok(None) => {}
                Err(error) => {
                    chunk.failure = Some(Failure {
                        seq: Some(seq),
                        cause: Arc::new(error),
                    });
                    break;
                }
            }
            last_data = Some(entry);
        }
        // The fingerprint is taken once per chunk, of the last record the views passed.
        chunk.last = last_data.map(|entry| Checkpoint::of(entry.seq, &entry.data));
        chunk.exhausted = chunk.failure.is_none() && (read < batch_size || iter.next().is_none());
        chunk
    }

    /// How far views that take this chunk (read after `since`, up to `upto`) have come.
    pub(crate) fn reached(&self, since: Since, upto: Seq) -> Since {
        // A chunk that ends before `batch_size` covers everything up to `upto`, even when
        // the last records were deleted and so not yielded: the views have then seen all.
        match (self.exhausted && self.failure.is_none(), self.last) {
            (true, _) => Since::At(upto),
            (false, Some(last)) => last.since,
            (false, None) => since,
        }
    }

    /// Applies the records to each of `slots` and returns the results in order (none when
    /// nothing was read). Views run on threads of their own when there are several and
    /// enough records (each view owns its state, so they can run at once; the feeder is
    /// otherwise the bottleneck of indexing and rebuilds on more than one core).
    pub(crate) fn apply_to(&self, mut slots: Vec<&mut Slot<T>>) -> Vec<Result<(), Failure>> {
        let Some(checkpoint) = self.last else {
            return Vec::new();
        };
        let records = &self.records[..];
        let apply = |slot: &mut Slot<T>| slot.apply(records, checkpoint);
        if slots.len() < 2 || records.len() < PARALLEL_FROM || !parallel() {
            return slots.into_iter().map(apply).collect();
        }
        let first = slots.remove(0);
        std::thread::scope(|scope| {
            let others: Vec<_> = slots
                .into_iter()
                .map(|slot| scope.spawn(move || apply(slot)))
                .collect();
            let mut results = vec![apply(first)];
            for handle in others {
                // Slots catch a view's panic, so a join error cannot come from a view.
                results.push(handle.join().unwrap_or_else(|panic| {
                    Err(Failure {
                        seq: None,
                        cause: Arc::new(Error::Panicked {
                            what: "a view's apply thread".into(),
                            message: panic_message(&panic),
                        }),
                    })
                }));
            }
            results
        })
    }
}

/// The seq a record-level log error belongs to.
fn record_seq(error: &Error) -> Option<Seq> {
    match error {
        Error::NotFound { seq }
        | Error::InvalidSeq { seq, .. }
        | Error::Deleted { seq }
        | Error::Mapper { seq, .. } => Some(*seq),
        Error::Corrupt { seq, .. } => *seq,
        _ => None,
    }
}
