//! [`ReadOptions`]: which rows a read of a level view yields, and what each carries.

use std::ops::Bound;

use flumedb_core::{Error, Wait};

use crate::key::Key;
use crate::layout::FIRST_ROW;

/// Which rows to read, in which order, with what: JS flumeview-level's `read` options.
///
/// ```
/// use flumeview_level::{Key, ReadOptions};
/// // Every row of author "@a": keys [author, ...] from ["@a"] up to ["@a", Max].
/// let opts = ReadOptions::new()
///     .gte(Key::array(["@a"]))
///     .lt(Key::Array(vec![Key::from("@a"), Key::Max]))
///     .reverse()
///     .limit(10);
/// ```
#[derive(Clone, Debug)]
#[must_use]
pub struct ReadOptions {
    lower: Bound<Key>,
    upper: Bound<Key>,
    pub(crate) reverse: bool,
    pub(crate) limit: Option<usize>,
    pub(crate) keys: bool,
    pub(crate) values: bool,
    pub(crate) old: bool,
    pub(crate) sync: bool,
    pub(crate) wait: Wait,
}

impl Default for ReadOptions {
    fn default() -> Self {
        ReadOptions {
            lower: Bound::Unbounded,
            upper: Bound::Unbounded,
            reverse: false,
            limit: None,
            keys: true,
            values: true,
            old: true,
            sync: true,
            wait: Wait::Latest,
        }
    }
}

impl ReadOptions {
    /// Every row, in key order, with values.
    pub fn new() -> ReadOptions {
        ReadOptions::default()
    }
    /// Keys greater than `key`.
    pub fn gt(mut self, key: impl Into<Key>) -> Self {
        self.lower = Bound::Excluded(key.into());
        self
    }
    /// Keys greater than or equal to `key`.
    pub fn gte(mut self, key: impl Into<Key>) -> Self {
        self.lower = Bound::Included(key.into());
        self
    }
    /// Keys less than `key`.
    pub fn lt(mut self, key: impl Into<Key>) -> Self {
        self.upper = Bound::Excluded(key.into());
        self
    }
    /// Keys less than or equal to `key`.
    pub fn lte(mut self, key: impl Into<Key>) -> Self {
        self.upper = Bound::Included(key.into());
        self
    }
    /// Keys within `lower` and `upper`, given as [`Bound`]s (replacing any set before).
    pub fn bounds(mut self, lower: Bound<Key>, upper: Bound<Key>) -> Self {
        self.lower = lower;
        self.upper = upper;
        self
    }
    /// Highest key first (stored rows only; live rows come in indexing order).
    pub fn reverse(mut self) -> Self {
        self.reverse = true;
        self
    }
    /// At most `n` stored rows (applied before values are fetched).
    pub fn limit(mut self, n: usize) -> Self {
        self.limit = Some(n);
        self
    }
    /// With `false`, rows carry no key (`Row::key` is `None`; keys are not decoded).
    pub fn keys(mut self, keys: bool) -> Self {
        self.keys = keys;
        self
    }
    /// With `false`, rows carry no value (no log reads): keys and seqs only.
    pub fn values(mut self, values: bool) -> Self {
        self.values = values;
        self
    }
    /// Live reads: with `false`, only rows indexed after the read starts.
    pub fn old(mut self, old: bool) -> Self {
        self.old = old;
        self
    }
    /// Live reads: with `false`, no [`LiveItem::Sync`](crate::LiveItem::Sync) marker between old and new rows.
    pub fn sync(mut self, sync: bool) -> Self {
        self.sync = sync;
        self
    }

    /// How long `read` waits for the view first (default [`Wait::Latest`]: everything
    /// appended before the read began).
    pub fn wait(mut self, wait: Wait) -> Self {
        self.wait = wait;
        self
    }

    /// The bounds as encoded keys; the lower one always above the META row.
    pub(crate) fn encoded(&self) -> Result<EncodedBounds, Error> {
        let enc = |k: &Key| {
            k.encode()
                .map_err(|e| Error::InvalidArgument(format!("bound {k:?}: {e}")))
        };
        let lower = match &self.lower {
            Bound::Unbounded => Bound::Included(FIRST_ROW.to_vec()),
            Bound::Included(k) => Bound::Included(enc(k)?),
            Bound::Excluded(k) => Bound::Excluded(enc(k)?),
        };
        let upper = match &self.upper {
            Bound::Unbounded => Bound::Unbounded,
            Bound::Included(k) => Bound::Included(enc(k)?),
            Bound::Excluded(k) => Bound::Excluded(enc(k)?),
        };
        Ok((lower, upper))
    }
}

/// Lower and upper bounds as encoded keys.
pub(crate) type EncodedBounds = (Bound<Vec<u8>>, Bound<Vec<u8>>);
