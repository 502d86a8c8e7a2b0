//! [`TypedLog`]: the log with the codec and the mapper, so it holds values instead of bytes.
//! The database appends and reads through it, its feeder decodes for views with it, and view
//! handles read records through it ([`LogReader`]).

use std::collections::BTreeSet;
use std::marker::PhantomData;
use std::ops::Bound;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use parking_lot::Mutex;

use crate::codec::Codec;
use crate::error::{BoxError, CodecError, Error, Result};
use crate::log::{Log, LogStream};
use crate::panic::panic_message;
use crate::reader::{LogReader, RecordSource};
use crate::record::Record;
use crate::seq::Seq;

/// A function applied to every value on its way to views, `get` and `stream` (not to what is
/// stored). It may fail; a view fed a failing record stops with [`Error::Mapper`].
pub type Mapper<T> = Arc<dyn Fn(T) -> std::result::Result<T, BoxError> + Send + Sync>;

/// What views do with a stored record that cannot be given to them: its bytes do not decode
/// (a log written by another program may hold anything), or the mapper fails or panics on it.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub enum Undecodable {
    /// The views that meet it stop with [`Error::ViewFailed`] naming the record, and stay
    /// stopped (a rebuild meets it again). The default: nothing is skipped unless asked.
    #[default]
    Fail,
    /// The views go on without it; the record is reported by
    /// [`Flume::skipped`](crate::Flume::skipped).
    Skip,
}

/// A record the views went on without, under [`Undecodable::Skip`].
#[derive(Clone, Debug)]
pub struct Skipped {
    /// The record.
    pub seq: Seq,
    /// Why it could not be given to the views.
    pub error: Arc<Error>,
}

/// How many skipped records [`TypedLog::skipped`] keeps with their errors (all are counted).
const SKIPPED_KEPT: usize = 1000;

/// The log, the codec and the mapper: values in, values out.
pub(crate) struct TypedLog<L, T, C> {
    pub(crate) log: L,
    codec: C,
    mapper: Option<Mapper<T>>,
    undecodable: Undecodable,
    /// Records skipped under [`Undecodable::Skip`]: every seq, and the first ones' errors.
    skipped: Mutex<(BTreeSet<Seq>, Vec<Skipped>)>,
    _values: PhantomData<fn() -> T>,
}

impl<L: Log, T, C: Codec<T>> TypedLog<L, T, C> {
    pub(crate) fn new(
        log: L,
        codec: C,
        mapper: Option<Mapper<T>>,
        undecodable: Undecodable,
    ) -> TypedLog<L, T, C> {
        TypedLog {
            log,
            codec,
            mapper,
            undecodable,
            skipped: Mutex::new(Default::default()),
            _values: PhantomData,
        }
    }

    /// Encodes a value for appending, checking that it decodes again (a record views could
    /// never read is refused before it is written).
    pub(crate) fn encode(&self, value: &T) -> Result<Vec<u8>> {
        let mut buf = Vec::new();
        self.codec.encode(value, &mut buf)?;
        self.codec.check(value, &buf)?;
        Ok(buf)
    }

    /// The value at `seq`, decoded and mapped.
    pub(crate) fn get(&self, seq: Seq) -> Result<T> {
        let bytes = self.log.get(seq)?;
        self.decode_owned_guarded(seq, bytes)
    }

    /// Maps a value `decode` gives (a codec's result), for the record at `seq`.
    fn decode_with(
        &self,
        seq: Seq,
        decode: impl FnOnce() -> std::result::Result<T, CodecError>,
    ) -> Result<T> {
        let value = decode()?;
        match &self.mapper {
            None => Ok(value),
            Some(mapper) => mapper(value).map_err(|source| Error::Mapper { seq, source }),
        }
    }

    /// Decodes a record for views: `Ok(None)` when it does not decode and the policy is
    /// [`Undecodable::Skip`] (it is then remembered, once however often it is met).
    pub(crate) fn decode_for_views(&self, seq: Seq, bytes: &[u8]) -> Result<Option<T>> {
        match self.decode_guarded(seq, bytes) {
            Ok(value) => Ok(Some(value)),
            Err(error) if self.undecodable == Undecodable::Skip => {
                let mut skipped = self.skipped.lock();
                if skipped.0.insert(seq) && skipped.1.len() < SKIPPED_KEPT {
                    skipped.1.push(Skipped {
                        seq,
                        error: Arc::new(error),
                    });
                }
                Ok(None)
            }
            Err(error) => Err(error),
        }
    }

    /// The record at `seq` from its `bytes`, decoded and mapped, with a panic in the codec
    /// or mapper turned into an error.
    pub(crate) fn decode_guarded(&self, seq: Seq, bytes: &[u8]) -> Result<T> {
        self.guarded(seq, || self.decode_with(seq, || self.codec.decode(bytes)))
    }

    /// Like [`decode_guarded`](Self::decode_guarded), the bytes handed to the codec.
    pub(crate) fn decode_owned_guarded(&self, seq: Seq, bytes: Vec<u8>) -> Result<T> {
        self.guarded(seq, || {
            self.decode_with(seq, move || self.codec.decode_owned(bytes))
        })
    }

    fn guarded(&self, seq: Seq, run: impl FnOnce() -> Result<T>) -> Result<T> {
        catch_unwind(AssertUnwindSafe(run)).unwrap_or_else(|panic| {
            Err(Error::Mapper {
                seq,
                source: format!("panicked: {}", panic_message(&panic)).into(),
            })
        })
    }

    /// How many distinct records were skipped, and the first ones with their errors.
    pub(crate) fn skipped(&self) -> (u64, Vec<Skipped>) {
        let skipped = self.skipped.lock();
        (skipped.0.len() as u64, skipped.1.clone())
    }
}

impl<L: Log, T: Send + Sync + 'static, C: Codec<T>> TypedLog<L, T, C> {
    /// A reader of this log for view handles.
    pub(crate) fn reader(self: &Arc<Self>) -> LogReader<T> {
        LogReader::from_source(self.clone(), self.log.since_watch().clone())
    }
}

impl<L: Log, T: Send + Sync, C: Codec<T>> RecordSource<T> for TypedLog<L, T, C> {
    fn get(&self, seq: Seq) -> Result<T> {
        TypedLog::get(self, seq)
    }

    fn page(
        &self,
        lower: Bound<Seq>,
        upper: Bound<Seq>,
        reverse: bool,
        max: usize,
    ) -> Result<Vec<Record<T>>> {
        let mut records = Vec::with_capacity(max.min(1024));
        // Skipped records do not count: a short page means the range is exhausted.
        for entry in self.log.range(lower, upper, reverse)? {
            if records.len() >= max {
                break;
            }
            let entry = entry?;
            if let Some(value) = self.decode_for_views(entry.seq, &entry.data)? {
                records.push(Record {
                    seq: entry.seq,
                    value,
                });
            }
        }
        Ok(records)
    }

    fn deletes(&self) -> Option<u64> {
        self.log.deletes()
    }

    fn is_deleted(&self, seq: Seq) -> Result<bool> {
        self.log.is_deleted(seq)
    }
}

/// Decoded (and mapped) records from [`Flume::stream`](crate::Flume::stream): a
/// [`LogStream`] whose options decide old and live records.
#[must_use = "iterators are lazy and do nothing unless consumed"]
pub struct RecordStream<'a, L: Log, T, C> {
    inner: LogStream<'a, L>,
    typed: &'a TypedLog<L, T, C>,
}

impl<'a, L: Log, T, C: Codec<T>> RecordStream<'a, L, T, C> {
    pub(crate) fn new(inner: LogStream<'a, L>, typed: &'a TypedLog<L, T, C>) -> Self {
        RecordStream { inner, typed }
    }
}

impl<L: Log, T, C: Codec<T>> Iterator for RecordStream<'_, L, T, C> {
    type Item = Result<Record<T>>;

    fn next(&mut self) -> Option<Result<Record<T>>> {
        let entry = match self.inner.next()? {
            Ok(entry) => entry,
            Err(err) => return Some(Err(err)),
        };
        Some(
            self.typed
                .decode_owned_guarded(entry.seq, entry.data)
                .map(|value| Record {
                    seq: entry.seq,
                    value,
                }),
        )
    }
}
