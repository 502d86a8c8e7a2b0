//! What reads of a level view yield: [`Row`]s, from a snapshot ([`Rows`]) or live
//! ([`LiveRows`], [`LiveItem`]).

use std::collections::VecDeque;
use std::ops::Bound;

use crossbeam_channel::Receiver;
use flumedb_core::{Error, LogReader, Seq, ViewSync, bounds};

use crate::error::LevelError;
use crate::key::Key;
use crate::options::{EncodedBounds, ReadOptions};
use crate::state::LiveBatch;
use crate::store::EncodedRows;

/// One index row: its key (unless `keys(false)`), the record's seq, and (unless
/// `values(false)`) the record.
#[derive(Clone, PartialEq, Debug)]
pub struct Row<T> {
    /// The key.
    pub key: Option<Key>,
    /// The record's seq.
    pub seq: Seq,
    /// The record, fetched from the log.
    pub value: Option<T>,
}

/// What a live read yields.
#[derive(Clone, PartialEq, Debug)]
pub enum LiveItem<T> {
    /// A row.
    Row(Row<T>),
    /// Every stored row has been read; what follows was indexed after the read started.
    Sync,
}

/// A storage error as the view's error, named after the view.
pub(crate) fn store_error(view: &str, err: LevelError) -> Error {
    Error::View {
        view: view.to_string(),
        source: Box::new(err),
    }
}

/// What each row carries.
#[derive(Clone, Copy)]
struct Shape {
    keys: bool,
    values: bool,
}

impl Shape {
    fn of(options: &ReadOptions) -> Shape {
        Shape {
            keys: options.keys,
            values: options.values,
        }
    }
}

/// The row for `key -> seq`, shaped; `None` if the record was deleted.
fn row<T>(log: &LogReader<T>, shape: Shape, key: &[u8], seq: Seq) -> Option<Result<Row<T>, Error>> {
    let key = if shape.keys {
        match Key::decode(key) {
            Ok(key) => Some(key),
            Err(e) => {
                return Some(Err(Error::Corrupt {
                    seq: Some(seq),
                    reason: format!("index row key: {e}"),
                }));
            }
        }
    } else {
        None
    };
    let value = if shape.values {
        match log.get(seq) {
            Ok(value) => Some(value),
            Err(Error::Deleted { .. }) => return None,
            Err(e) => return Some(Err(e)),
        }
    } else {
        None
    };
    Some(Ok(Row { key, seq, value }))
}

/// The rows of [`LevelHandle::read`](crate::LevelHandle::read): stored rows, from a snapshot
/// taken when the read began.
#[must_use = "iterators are lazy and do nothing unless consumed"]
pub struct Rows<T> {
    view: String,
    rows: EncodedRows,
    log: LogReader<T>,
    shape: Shape,
    remaining: Option<usize>,
}

impl<T> Rows<T> {
    /// The rows of `view` that `rows` holds, as `options` shape and limit them.
    pub(crate) fn new(
        view: &str,
        rows: EncodedRows,
        log: LogReader<T>,
        options: &ReadOptions,
    ) -> Rows<T> {
        Rows {
            view: view.to_string(),
            rows,
            log,
            shape: Shape::of(options),
            remaining: options.limit,
        }
    }
}

impl<T> Iterator for Rows<T> {
    type Item = Result<Row<T>, Error>;

    fn next(&mut self) -> Option<Result<Row<T>, Error>> {
        loop {
            if self.remaining == Some(0) {
                return None;
            }
            let (key, seq) = match self.rows.next()? {
                Ok(row) => row,
                Err(e) => return Some(Err(store_error(&self.view, e))),
            };
            if let Some(item) = row(&self.log, self.shape, &key, seq) {
                if let Some(n) = &mut self.remaining {
                    *n -= 1;
                }
                return Some(item);
            }
        }
    }
}

/// The rows of [`LevelHandle::live`](crate::LevelHandle::live): the stored rows, then each
/// row as it is indexed.
#[must_use = "iterators are lazy and do nothing unless consumed"]
pub struct LiveRows<T> {
    old: Option<Rows<T>>,
    marker: bool,
    pending: VecDeque<(Vec<u8>, Seq)>,
    rx: Receiver<LiveBatch>,
    lower: Bound<Vec<u8>>,
    upper: Bound<Vec<u8>>,
    log: LogReader<T>,
    shape: Shape,
    sync: ViewSync,
    done: bool,
}

impl<T> LiveRows<T> {
    /// The rows `old` holds (unless `None`), then those of the batches `rx` receives within
    /// `bounds`, as `options` shape them.
    pub(crate) fn new(
        old: Option<Rows<T>>,
        rx: Receiver<LiveBatch>,
        (lower, upper): EncodedBounds,
        log: LogReader<T>,
        sync: ViewSync,
        options: &ReadOptions,
    ) -> LiveRows<T> {
        LiveRows {
            old,
            marker: options.old && options.sync,
            pending: VecDeque::new(),
            rx,
            lower,
            upper,
            log,
            shape: Shape::of(options),
            sync,
            done: false,
        }
    }
}

impl<T> Iterator for LiveRows<T> {
    type Item = Result<LiveItem<T>, Error>;

    fn next(&mut self) -> Option<Result<LiveItem<T>, Error>> {
        loop {
            if self.done {
                return None;
            }
            if let Some(old) = &mut self.old {
                match old.next() {
                    Some(item) => return Some(item.map(LiveItem::Row)),
                    None => {
                        self.old = None;
                        if self.marker {
                            return Some(Ok(LiveItem::Sync));
                        }
                    }
                }
                continue;
            }
            if let Some((key, seq)) = self.pending.pop_front() {
                if let Some(item) = row(&self.log, self.shape, &key, seq) {
                    return Some(item.map(LiveItem::Row));
                }
                continue;
            }
            match self.rx.recv() {
                Ok(batch) => self.pending.extend(
                    batch
                        .iter()
                        .filter(|(key, _)| {
                            bounds::within_lower(&self.lower, key.as_slice())
                                && bounds::within_upper(&self.upper, key.as_slice())
                        })
                        .cloned(),
                ),
                Err(_) => {
                    self.done = true;
                    return Some(Err(match self.sync.check() {
                        Err(e) => e,
                        Ok(()) => Error::View {
                            view: self.sync.name().to_string(),
                            source: "the view was rebuilt; start the live read again".into(),
                        },
                    }));
                }
            }
        }
    }
}
