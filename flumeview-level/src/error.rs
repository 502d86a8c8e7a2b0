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
        source: fjall::Error,
    },
    /// A stored row or META entry is not in the expected form.
    Corrupt(String),
    /// A key could not be encoded.
    Key(KeyError),
}

impl LevelError {
    pub(crate) fn store(path: &Path, source: fjall::Error) -> LevelError {
        LevelError::Store {
            path: path.to_path_buf(),
            source,
        }
    }
}

impl fmt::Display for LevelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LevelError::Store { path, source } => {
                write!(f, "level index at {}: {source}", path.display())
            }
            LevelError::Corrupt(why) => write!(f, "level index damaged: {why}"),
            LevelError::Key(err) => write!(f, "{err}"),
        }
    }
}

impl std::error::Error for LevelError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            LevelError::Store { source, .. } => Some(source),
            LevelError::Key(err) => Some(err),
            LevelError::Corrupt(_) => None,
        }
    }
}

impl From<KeyError> for LevelError {
    fn from(err: KeyError) -> Self {
        LevelError::Key(err)
    }
}

impl From<LevelError> for flumedb_core::Error {
    fn from(err: LevelError) -> Self {
        flumedb_core::Error::View {
            view: "level".into(),
            source: Box::new(err),
        }
    }
}
