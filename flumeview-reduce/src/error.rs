//! The reduce view's error type.

use std::fmt;
use std::io;
use std::path::PathBuf;

/// What can go wrong persisting a reduce view's state.
#[derive(Debug)]
#[non_exhaustive]
pub enum ReduceError {
    /// Reading or writing the state file failed.
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
    /// The state could not be serialised to JSON.
    Encode(serde_json::Error),
}

impl fmt::Display for ReduceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReduceError::Io { path, source } => {
                write!(f, "reduce state file {}: {source}", path.display())
            }
            ReduceError::Encode(err) => write!(f, "could not serialise the reduce state: {err}"),
        }
    }
}

impl std::error::Error for ReduceError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ReduceError::Io { source, .. } => Some(source),
            ReduceError::Encode(err) => Some(err),
        }
    }
}

impl From<serde_json::Error> for ReduceError {
    fn from(err: serde_json::Error) -> Self {
        ReduceError::Encode(err)
    }
}
