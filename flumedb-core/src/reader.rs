//! [`LogReader`]: decoded records of the database's log for view handles, a page at a time
//! ([`Records`]) or live as they are appended ([`LiveRecords`]).

use std::collections::VecDeque;
use std::ops::Bound;
use std::sync::Arc;

use crate::error::Result;
use crate::live::LiveCursor;
use crate::record::Record;
use crate::seq::{Seq, Since};
use crate::watch::SinceWatch;

/// Where a [`LogReader`] gets its records: the database's log with its codec and mapper, or
/// the functions given to [`LogReader::new`].
pub(crate) trait RecordSource<T>: Send + Sync {
    /// The value at `seq`.
    fn get(&self, seq: Seq) -> Result<T>;

    /// Up to `max` records within the bounds, in order (reverse: highest seq first). Records
    /// the source passes over do not count: a page shorter than `max` ends the range.
    fn page(
        &self,
        lower: Bound<Seq>,
        upper: Bound<Seq>,
        reverse: bool,
        max: usize,
    ) -> Result<Vec<Record<T>>>;

    /// The log's [`deletes`](crate::Log::deletes) counter.
    fn deletes(&self) -> Option<u64>;

    /// Whether the record at `seq` is deleted ([`Log::is_deleted`](crate::Log::is_deleted)).
    fn is_deleted(&self, seq: Seq) -> Result<bool>;
}

/// A [`RecordSource`] made of two functions, for [`LogReader::new`].
struct Functions<G, P> {
    get: G,
    page: P,
}

impl<T, G, P> RecordSource<T> for Functions<G, P>
where
    G: Fn(Seq) -> Result<T> + Send + Sync,
    P: Fn(Bound<Seq>, Bound<Seq>, bool, usize) -> Result<Vec<Record<T>>> + Send + Sync,
{
    fn get(&self, seq: Seq) -> Result<T> {
        (self.get)(seq)
    }

    fn page(
        &self,
        lower: Bound<Seq>,
        upper: Bound<Seq>,
        reverse: bool,
        max: usize,
    ) -> Result<Vec<Record<T>>> {
        (self.page)(lower, upper, reverse, max)
    }

    /// Functions cannot say whether records get deleted later: reported as a log that
    /// cannot delete (see [`LogReader::new`]).
    fn deletes(&self) -> Option<u64> {
        None
    }

    fn is_deleted(&self, seq: Seq) -> Result<bool> {
        match (self.get)(seq) {
            Ok(_) => Ok(false),
            Err(crate::Error::Deleted { .. }) => Ok(true),
            Err(err) => Err(err),
        }
    }
}

/// Reads records from the database's log, decoded and mapped like everything views see: for
/// view handles that answer with records (an index maps keys to seqs, then fetches; a query
/// view scans when no index helps, and follows the log for live reads).
pub struct LogReader<T> {
    source: Arc<dyn RecordSource<T>>,
    since: SinceWatch,
}

impl<T> Clone for LogReader<T> {
    fn clone(&self) -> Self {
        LogReader {
            source: self.source.clone(),
            since: self.since.clone(),
        }
    }
}

impl<T> LogReader<T> {
    /// A reader from functions (the driver builds the real one): `get(seq)`, and
    /// `page(lower, upper, reverse, max)` returning up to `max` records within the bounds in
    /// order (reverse: highest seq first), and the log's since watch. Such a reader reports
    /// no [`deletes`](Self::deletes): views that keep counts of what they indexed assume
    /// that nothing they counted is deleted later.
    pub fn new(
        get: impl Fn(Seq) -> Result<T> + Send + Sync + 'static,
        page: impl Fn(Bound<Seq>, Bound<Seq>, bool, usize) -> Result<Vec<Record<T>>>
        + Send
        + Sync
        + 'static,
        since: SinceWatch,
    ) -> LogReader<T> {
        LogReader::from_source(Arc::new(Functions { get, page }), since)
    }

    /// A reader of `source`, whose log's since is `since`.
    pub(crate) fn from_source(source: Arc<dyn RecordSource<T>>, since: SinceWatch) -> Self {
        LogReader { source, since }
    }

    /// The value at `seq`.
    pub fn get(&self, seq: Seq) -> Result<T> {
        self.source.get(seq)
    }

    /// The log's [`deletes`](crate::Log::deletes): how many records it has deleted since it
    /// opened, or `None` when it cannot delete. A view that keeps counts of what it indexed
    /// compares it over time to notice deletes.
    pub fn deletes(&self) -> Option<u64> {
        self.source.deletes()
    }

    /// Whether the record at `seq` is deleted, without decoding it
    /// ([`Log::is_deleted`](crate::Log::is_deleted)).
    pub fn is_deleted(&self, seq: Seq) -> Result<bool> {
        self.source.is_deleted(seq)
    }

    /// The records within the bounds, in order (reverse: highest seq first), read a page at a
    /// time: the iterator owns no borrow of the log and can be kept and sent to other threads.
    /// It reads what the log holds as it goes; bound it above by the log's since for a fixed
    /// cut.
    pub fn records(&self, lower: Bound<Seq>, upper: Bound<Seq>, reverse: bool) -> Records<T> {
        Records {
            reader: self.clone(),
            lower,
            upper,
            reverse,
            page: VecDeque::new(),
            done: false,
        }
    }

    /// The records after `after`, as they are appended: the records already there, then each
    /// new one once the log has it, without gaps or repeats. It waits for appends (no timeout)
    /// and ends with [`Error::Closed`](crate::Error::Closed) when the log closes, or after any
    /// other error.
    pub fn follow(&self, after: Since) -> LiveRecords<T> {
        LiveRecords {
            reader: self.clone(),
            cursor: LiveCursor::new(after, None),
        }
    }

    /// The log's since: where the log ends now, and a way to wait for it to grow.
    pub fn since_watch(&self) -> &SinceWatch {
        &self.since
    }
}

impl<T> std::fmt::Debug for LogReader<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LogReader")
    }
}

/// How many records [`Records`] reads at a time.
const PAGE: usize = 256;

/// The iterator of [`LogReader::records`]: the records within bounds, a page at a time.
#[must_use = "iterators are lazy and do nothing unless consumed"]
pub struct Records<T> {
    reader: LogReader<T>,
    lower: Bound<Seq>,
    upper: Bound<Seq>,
    reverse: bool,
    page: VecDeque<Record<T>>,
    done: bool,
}

impl<T> Iterator for Records<T> {
    type Item = Result<Record<T>>;

    fn next(&mut self) -> Option<Result<Record<T>>> {
        if let Some(record) = self.page.pop_front() {
            return Some(Ok(record));
        }
        if self.done {
            return None;
        }
        let page = match self
            .reader
            .source
            .page(self.lower, self.upper, self.reverse, PAGE)
        {
            Ok(page) => page,
            Err(err) => {
                self.done = true;
                return Some(Err(err));
            }
        };
        if page.len() < PAGE {
            self.done = true;
        }
        if let Some(last) = page.last() {
            // The next page continues after the last record read.
            if self.reverse {
                self.upper = Bound::Excluded(last.seq);
            } else {
                self.lower = Bound::Excluded(last.seq);
            }
        }
        self.page = page.into();
        self.page.pop_front().map(Ok)
    }
}

/// The iterator of [`LogReader::follow`]: each record after a point, live as it is appended.
#[must_use = "iterators are lazy and do nothing unless consumed"]
pub struct LiveRecords<T> {
    reader: LogReader<T>,
    cursor: LiveCursor<Records<T>>,
}

impl<T> Iterator for LiveRecords<T> {
    type Item = Result<Record<T>>;

    fn next(&mut self) -> Option<Result<Record<T>>> {
        let reader = &self.reader;
        self.cursor.next(
            &reader.since,
            |_| true,
            |after, upto| Ok(reader.records(after, Bound::Included(upto), false)),
        )
    }
}
