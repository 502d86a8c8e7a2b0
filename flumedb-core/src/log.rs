//! The [`Log`] trait: the append-only source of truth, and iteration over it.

use std::ops::{Bound, RangeBounds};
use std::path::PathBuf;

use crate::bounds;
use crate::error::{Error, Result};
use crate::live::LiveCursor;
use crate::record::Entry;
use crate::seq::{Seq, Since};
use crate::watch::SinceWatch;

/// A finite iterator over raw records, as returned by [`Log::range`].
pub type LogIter<'a> = Box<dyn Iterator<Item = Result<Entry>> + Send + 'a>;

/// What an acknowledged append promises after a crash: the durability mode of a file log
/// (flumelog-offset, flumelog-aaol, flumelog-aligned-offset). Each log's documentation says
/// what its recovery keeps of appends that did not reach the disk whole.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub enum Durability {
    /// Each append (or batch) is written to the operating system (one `pwrite`) before it
    /// returns. It survives a crash of the process; after a crash of the machine (power loss)
    /// the appends since the last `flush()` may be lost. `flush()` (and `close()`) fsync.
    #[default]
    Os,
    /// Each append (or batch) is fsync'd before it returns: it survives a crash of the machine
    /// too. Concurrent appenders share fsyncs (group commit): while one fsync runs, the
    /// appends that arrive wait for it or share the next one, so throughput grows with
    /// concurrency. Readers see a record only once it is durable.
    Fsync,
}

/// An append-only log of byte records: the durable source of truth of a database.
///
/// The log defines what a [`Seq`] is; seqs grow with every append. Implementations must uphold:
///
/// - `append` and `append_batch` return each record's own seq, and update
///   [`since_watch`](Log::since_watch) (once per call) *after* the records are readable;
/// - `get` and iteration never return a partially written record;
/// - `get` of a seq that is not a record is an error ([`Error::NotFound`] past the end,
///   [`Error::InvalidSeq`] inside a record, [`Error::Deleted`] for a deleted one), never garbage;
/// - [`range`](Log::range) accepts any seq as a bound, not only record starts;
/// - after `close`, calls return [`Error::Closed`] and the since watch is closed;
/// - a log may refuse records it cannot store faithfully with [`Error::InvalidArgument`]
///   (the JS-compatible offset format cannot tell an empty or all-zero record from a deleted
///   one), and nothing is appended then.
///
/// `flumedb_core::testkit::log_suite` (feature `testkit`) checks all of this.
pub trait Log: Send + Sync + 'static {
    /// Appends one record and returns its seq.
    fn append(&self, data: &[u8]) -> Result<Seq>;

    /// Appends records in order, as one write where the log can, and returns each one's seq.
    fn append_batch(&self, records: &[&[u8]]) -> Result<Vec<Seq>>;

    /// The bytes of the record at `seq`.
    fn get(&self, seq: Seq) -> Result<Vec<u8>>;

    /// The observable position of the last appended record.
    fn since_watch(&self) -> &SinceWatch;

    /// The position of the last appended record.
    fn since(&self) -> Since {
        self.since_watch().get()
    }

    /// A finite iterator over the records whose seqs lie within the bounds, ascending, or
    /// descending when `reverse`. Bounds need not be record starts.
    fn range(&self, lower: Bound<Seq>, upper: Bound<Seq>, reverse: bool) -> Result<LogIter<'_>>;

    /// Streams records with JS flumedb's stream options: bounds, `reverse`, `limit`, `live`
    /// and `old`. Live streams are built on [`range`](Log::range) and the since watch, so every
    /// log gets them: old records, then new ones as they are appended, without gaps or
    /// duplicates.
    fn stream(&self, options: StreamOptions) -> Result<LogStream<'_, Self>>
    where
        Self: Sized,
    {
        LogStream::new(self, options)
    }

    /// How many deletes this open log has made: a counter that starts at 0 when the log opens
    /// and only grows, or `None` for a log that cannot delete records. A log that can delete
    /// must report every delete here: views that keep counts of records compare it over time
    /// to notice records that were deleted after they counted them.
    fn deletes(&self) -> Option<u64> {
        None
    }

    /// Whether the record at `seq` is deleted (`false` for a live one); an error for a seq
    /// that is not a record, as [`get`](Log::get) gives. The default reads the record; a log
    /// that can tell from less (a frame header) should.
    fn is_deleted(&self, seq: Seq) -> Result<bool> {
        match self.get(seq) {
            Ok(_) => Ok(false),
            Err(Error::Deleted { .. }) => Ok(true),
            Err(err) => Err(err),
        }
    }

    /// Makes every appended record durable (fsync for a file log), whatever the durability
    /// mode of single appends. The driver calls it before any view persists its `since`.
    fn flush(&self) -> Result<()>;

    /// Flushes and closes the log. Later calls return [`Error::Closed`].
    fn close(&self) -> Result<()>;

    /// The directory where this log's views keep their state, if the log has a local
    /// directory. It must belong to this log alone (for a log file `db/log.offset`, say,
    /// `db/log.offset.views`), so views of two logs in one directory never share state.
    /// `None`: views live in memory and rebuild on every open, unless the database is given
    /// a directory with [`FlumeOptions::view_dir`](crate::FlumeOptions::view_dir), which
    /// overrides this one.
    fn view_dir(&self) -> Option<PathBuf> {
        None
    }
}

/// Options for [`Log::stream`] and the database's `stream`: the JS flumedb stream options.
///
/// ```
/// use flumedb_core::{Seq, StreamOptions};
/// let opts = StreamOptions::new().gt(Seq::new(10)).lte(Seq::new(99)).reverse().limit(5);
/// assert_eq!(opts.limit_value(), Some(5));
/// ```
#[derive(Clone, Debug)]
#[must_use = "options do nothing until given to a stream"]
pub struct StreamOptions {
    lower: Bound<Seq>,
    upper: Bound<Seq>,
    reverse: bool,
    limit: Option<usize>,
    live: bool,
    old: bool,
}

impl Default for StreamOptions {
    fn default() -> Self {
        StreamOptions {
            lower: Bound::Unbounded,
            upper: Bound::Unbounded,
            reverse: false,
            limit: None,
            live: false,
            old: true,
        }
    }
}

impl StreamOptions {
    /// All records, oldest first, not live.
    pub fn new() -> StreamOptions {
        StreamOptions::default()
    }

    /// Only records with seq greater than `seq`.
    pub fn gt(mut self, seq: Seq) -> Self {
        self.lower = Bound::Excluded(seq);
        self
    }

    /// Only records with seq greater than or equal to `seq`.
    pub fn gte(mut self, seq: Seq) -> Self {
        self.lower = Bound::Included(seq);
        self
    }

    /// Only records with seq less than `seq`.
    pub fn lt(mut self, seq: Seq) -> Self {
        self.upper = Bound::Excluded(seq);
        self
    }

    /// Only records with seq less than or equal to `seq`.
    pub fn lte(mut self, seq: Seq) -> Self {
        self.upper = Bound::Included(seq);
        self
    }

    /// Only records after this position (`gt` its seq; everything when empty).
    pub fn after(mut self, since: Since) -> Self {
        self.lower = match since {
            Since::Empty => Bound::Unbounded,
            Since::At(seq) => Bound::Excluded(seq),
        };
        self
    }

    /// Newest first. Cannot be combined with `live`.
    pub fn reverse(mut self) -> Self {
        self.reverse = true;
        self
    }

    /// At most `n` records.
    pub fn limit(mut self, n: usize) -> Self {
        self.limit = Some(n);
        self
    }

    /// Keep streaming records as they are appended; the stream ends when the log closes.
    pub fn live(mut self) -> Self {
        self.live = true;
        self
    }

    /// With `false`, skip the records that exist when the stream starts (JS `old: false`).
    pub fn old(mut self, old: bool) -> Self {
        self.old = old;
        self
    }

    /// The lower bound.
    pub fn lower(&self) -> Bound<Seq> {
        self.lower
    }

    /// The upper bound.
    pub fn upper(&self) -> Bound<Seq> {
        self.upper
    }

    /// Whether the stream runs newest first.
    pub fn is_reverse(&self) -> bool {
        self.reverse
    }

    /// Whether the stream is live.
    pub fn is_live(&self) -> bool {
        self.live
    }

    /// Whether existing records are streamed.
    pub fn is_old(&self) -> bool {
        self.old
    }

    /// The limit, if any.
    pub fn limit_value(&self) -> Option<usize> {
        self.limit
    }

    /// Whether `seq` lies within the bounds.
    pub fn contains(&self, seq: Seq) -> bool {
        (self.lower, self.upper).contains(&seq)
    }
}

/// The iterator returned by [`Log::stream`].
///
/// It yields the records that exist when it starts (unless `old(false)`), then, if live, each
/// record appended later, exactly once and in order. A live stream blocks in `next` until a
/// record arrives; when the log closes it yields [`Error::Closed`] once and ends.
#[must_use = "iterators are lazy and do nothing unless consumed"]
pub struct LogStream<'a, L: Log> {
    log: &'a L,
    options: StreamOptions,
    cursor: LiveCursor<LogIter<'a>>,
    remaining: Option<usize>,
}

impl<'a, L: Log> LogStream<'a, L> {
    fn new(log: &'a L, options: StreamOptions) -> Result<Self> {
        if options.live && options.reverse {
            return Err(Error::InvalidArgument(
                "a stream cannot be both live and reverse".into(),
            ));
        }
        let covered = log.since();
        let old = match (options.old, covered) {
            (true, Since::At(snapshot)) => Some(log.range(
                options.lower,
                min_upper(options.upper, snapshot),
                options.reverse,
            )?),
            _ => None,
        };
        Ok(LogStream {
            log,
            remaining: options.limit,
            options,
            cursor: LiveCursor::new(covered, old),
        })
    }
}

/// Whether a live stream has covered everything up to its upper bound, so it can end.
fn past_upper(upper: Bound<Seq>, covered: Since) -> bool {
    match (upper, covered) {
        (_, Since::Empty) | (Bound::Unbounded, _) => false,
        (Bound::Included(u), Since::At(c)) => c >= u,
        (Bound::Excluded(u), Since::At(c)) => c.get().saturating_add(1) >= u.get(),
    }
}

impl<L: Log> Iterator for LogStream<'_, L> {
    type Item = Result<Entry>;

    fn next(&mut self) -> Option<Result<Entry>> {
        if self.remaining == Some(0) {
            return None;
        }
        let (log, options) = (self.log, &self.options);
        let entry = self.cursor.next(
            log.since_watch(),
            |covered| options.live && !past_upper(options.upper, covered),
            |after, upto| {
                let lower = match after {
                    Bound::Excluded(covered) => max_lower(options.lower, covered),
                    _ => options.lower,
                };
                log.range(lower, min_upper(options.upper, upto), false)
            },
        )?;
        if let (Ok(_), Some(n)) = (&entry, &mut self.remaining) {
            *n -= 1;
        }
        Some(entry)
    }
}

/// The tighter of `upper` and `..=snapshot`.
fn min_upper(upper: Bound<Seq>, snapshot: Seq) -> Bound<Seq> {
    bounds::tighter_upper(&upper, &Bound::Included(snapshot))
}

/// The tighter of `lower` and `covered..` (exclusive).
fn max_lower(lower: Bound<Seq>, covered: Seq) -> Bound<Seq> {
    bounds::tighter_lower(&lower, &Bound::Excluded(covered))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_tighten() {
        let s = Seq::new;
        assert_eq!(min_upper(Bound::Unbounded, s(5)), Bound::Included(s(5)));
        assert_eq!(
            min_upper(Bound::Excluded(s(3)), s(5)),
            Bound::Excluded(s(3))
        );
        assert_eq!(
            min_upper(Bound::Included(s(9)), s(5)),
            Bound::Included(s(5))
        );
        assert_eq!(max_lower(Bound::Unbounded, s(5)), Bound::Excluded(s(5)));
        assert_eq!(
            max_lower(Bound::Included(s(9)), s(5)),
            Bound::Included(s(9))
        );
        assert_eq!(
            max_lower(Bound::Included(s(5)), s(5)),
            Bound::Excluded(s(5))
        );
        assert_eq!(
            max_lower(Bound::Excluded(s(7)), s(5)),
            Bound::Excluded(s(7))
        );
    }

    #[test]
    fn contains_follows_bounds() {
        let o = StreamOptions::new().gt(Seq::new(2)).lte(Seq::new(4));
        let hits: Vec<u64> = (0..7).filter(|&i| o.contains(Seq::new(i))).collect();
        assert_eq!(hits, vec![3, 4]);
    }
}
