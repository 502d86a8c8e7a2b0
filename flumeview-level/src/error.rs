//! The level view's error type.

use std::fmt;
use std::path::{Path, PathBuf};

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
        }
    }
}

impl std::error::Error for LevelError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            LevelError::Store { source, .. } => Some(source.as_ref()),
            LevelError::Key(err) => Some(err),
            LevelError::Corrupt(_) | LevelError::InUse { .. } => None,
        }
    }
}

impl From<KeyError> for LevelError {
    fn from(err: KeyError) -> Self {
        LevelError::Key(err)
    }
}
