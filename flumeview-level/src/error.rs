//! The level view's error type.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::key::KeyError;

/// What can go wrong in a level view's storage.
#[derive(Debug)]
#[non_exhaustive]
pub enum LevelError {
    /// The storage engine failed.
    Store {
        /// The index directory.
        path: PathBuf,
        /// The engine's error.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A view of this name is already open on this directory's index (two logs in one
    /// directory with views of the same name would share rows).
    InUse {
        /// The index directory.
        path: PathBuf,
        /// The view's name.
        view: String,
    },
    /// A stored row or META entry is not in the expected form.
    Corrupt(String),
    /// A key could not be encoded.
    Key(KeyError),
    /// The index files are damaged (a checksum mismatch, an undecodable structure, a missing
    /// file). [`Flume::rebuild`](flumedb_core::Flume::rebuild) clears the view and rebuilds it
    /// from the log, and the next open throws the damaged files away.
    Damaged {
        /// The index directory.
        path: PathBuf,
        /// What was found.
        reason: String,
    },
    /// The index was repaired (thrown away or reopened) while this view had rows in it: the
    /// view must be rebuilt ([`Flume::rebuild`](flumedb_core::Flume::rebuild)) before it
    /// can be used again.
    Stale {
        /// The index directory.
        path: PathBuf,
        /// Why the index was repaired.
        reason: String,
    },
    /// Closing waited too long for the storage engine (for example, a flush that cannot
    /// finish on a full disk). The index was closed anyway; its journal keeps the data.
    Timeout {
        /// The index directory.
        path: PathBuf,
        /// What was waited for.
        what: String,
        /// How long.
        after: Duration,
    },
    /// The view is not open: it is used before the driver opened it, or after it closed.
    NotOpen,
    /// The view's index is closed.
    Closed {
        /// The index directory.
        path: PathBuf,
    },
    /// The view's name cannot name an index keyspace.
    InvalidName {
        /// The view's name.
        view: String,
        /// Why.
        reason: String,
    },
}

impl LevelError {
    pub(crate) fn store(
        path: &Path,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> LevelError {
        LevelError::Store {
            path: path.to_path_buf(),
            source: Box::new(source),
        }
    }
}

impl fmt::Display for LevelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LevelError::Store { path, source } => {
                write!(f, "level index at {}: {source}", path.display())
            }
            LevelError::InUse { path, view } => write!(
                f,
                "level index at {}: a view named '{view}' is already open there",
                path.display()
            ),
            LevelError::Corrupt(why) => write!(f, "level index damaged: {why}"),
            LevelError::Key(err) => write!(f, "{err}"),
            LevelError::Damaged { path, reason } => write!(
                f,
                "level index at {} is damaged ({reason}): rebuild the view; the next open \
                 throws the damaged files away",
                path.display()
            ),
            LevelError::Stale { path, reason } => write!(
                f,
                "level index at {} was repaired under this view ({reason}): rebuild the view",
                path.display()
            ),
            LevelError::Timeout { path, what, after } => write!(
                f,
                "level index at {}: gave up waiting for {what} after {after:?} (closed anyway; \
                 the journal keeps the data)",
                path.display()
            ),
            LevelError::NotOpen => f.write_str("the level view is not open"),
            LevelError::Closed { path } => {
                write!(f, "level index at {} is closed", path.display())
            }
            LevelError::InvalidName { view, reason } => {
                write!(f, "level view name {view:?}: {reason}")
            }
        }
    }
}

impl std::error::Error for LevelError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            LevelError::Store { source, .. } => Some(source.as_ref()),
            LevelError::Key(err) => Some(err),
            LevelError::Corrupt(_)
            | LevelError::InUse { .. }
            | LevelError::Damaged { .. }
            | LevelError::Stale { .. }
            | LevelError::Timeout { .. }
            | LevelError::NotOpen
            | LevelError::Closed { .. }
            | LevelError::InvalidName { .. } => None,
        }
    }
}

impl From<KeyError> for LevelError {
    fn from(err: KeyError) -> Self {
        LevelError::Key(err)
    }
}
