//! The offset log's error type.

use std::fmt;
use std::io;
use std::path::PathBuf;

/// What can go wrong opening or checking an offset log file. (Reads and appends return
/// [`flumedb_core::Error`], the error of the `Log` trait; an `OffsetError` converts into it.)
#[derive(Debug)]
#[non_exhaustive]
pub enum OffsetError {
    /// An I/O error on the log file.
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
    /// The file looks like a native log, but its header is damaged: the magic bytes or the
    /// header checksum do not match. Nothing was changed.
    BadHeader {
        /// The file.
        path: PathBuf,
    },
    /// The file is in a newer native format version than this crate reads.
    UnsupportedVersion {
        /// The file.
        path: PathBuf,
        /// The version found.
        version: u32,
    },
    /// The options ask for one format and the file is in the other.
    FormatMismatch {
        /// The file.
        path: PathBuf,
        /// What the file is.
        found: &'static str,
        /// What the options asked for.
        requested: &'static str,
    },
    /// Another process (or another open in this one) has the log open.
    Locked {
        /// The file.
        path: PathBuf,
    },
    /// A native file with a valid header but not one complete valid record after it, and
    /// bytes that are not all zeros there (damage, not a cut-short first append). Nothing was
    /// changed.
    NoValidRecord {
        /// The file.
        path: PathBuf,
        /// The bytes after the header.
        bytes: u64,
    },
    /// The file is not a log this crate can open safely (e.g. no valid frame at all).
    Unsupported {
        /// The file.
        path: PathBuf,
        /// Why it is not one.
        reason: String,
    },
}

impl fmt::Display for OffsetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OffsetError::Io { path, source } => write!(f, "{}: {source}", path.display()),
            OffsetError::BadHeader { path } => write!(
                f,
                "{}: the file looks like a native flumelog-offset log with a damaged header \
                 (its magic bytes or header checksum do not match); nothing was changed: keep it \
                 for inspection or restore it from a backup",
                path.display()
            ),
            OffsetError::NoValidRecord { path, bytes } => write!(
                f,
                "{}: the file holds {bytes} bytes after its header but no complete valid \
                 record; nothing was changed. If it is a new log whose first append was \
                 interrupted, it holds nothing acknowledged and can be removed; otherwise it is \
                 damaged: keep it for inspection or restore it from a backup",
                path.display()
            ),
            OffsetError::UnsupportedVersion { path, version } => write!(
                f,
                "{}: native format version {version} is newer than this crate reads (1)",
                path.display()
            ),
            OffsetError::FormatMismatch {
                path,
                found,
                requested,
            } => write!(
                f,
                "{}: the file is a {found} log, but the options ask for {requested}",
                path.display()
            ),
            OffsetError::Locked { path } => write!(
                f,
                "{}: the log is open elsewhere (another process, or another open in this one); close \
                 it there, then open it here",
                path.display()
            ),
            OffsetError::Unsupported { path, reason } => {
                write!(f, "{}: {reason}", path.display())
            }
        }
    }
}

impl std::error::Error for OffsetError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            OffsetError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// Each kind keeps its path and stays matchable: I/O errors become
/// [`Error::File`](flumedb_core::Error::File), a damaged header or a file without one valid
/// record [`Error::DamagedFile`](flumedb_core::Error::DamagedFile),
/// a log held elsewhere [`Error::Locked`](flumedb_core::Error::Locked), and a file of another
/// format or version [`Error::Unsupported`](flumedb_core::Error::Unsupported), whose source is
/// this `OffsetError` (downcast it for the details).
impl From<OffsetError> for flumedb_core::Error {
    fn from(err: OffsetError) -> Self {
        use flumedb_core::Error;
        match err {
            // Keep the path: a bare "Permission denied" does not say which file.
            OffsetError::Io { path, source } => Error::File { path, source },
            OffsetError::BadHeader { ref path } | OffsetError::NoValidRecord { ref path, .. } => {
                Error::DamagedFile {
                    path: path.clone(),
                    source: Box::new(err),
                }
            }
            OffsetError::Locked { path } => Error::Locked { path },
            OffsetError::UnsupportedVersion { ref path, .. }
            | OffsetError::FormatMismatch { ref path, .. } => Error::Unsupported {
                path: Some(path.clone()),
                source: Box::new(err),
            },
            OffsetError::Unsupported { ref path, .. } => Error::Unsupported {
                path: Some(path.clone()),
                source: Box::new(err),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flumedb_core::Error;

    #[test]
    fn conversions_keep_the_kind_and_the_path() {
        let path = PathBuf::from("/db/log.offset");
        let locked: Error = OffsetError::Locked { path: path.clone() }.into();
        assert!(
            matches!(&locked, Error::Locked { path: p } if *p == path),
            "{locked:?}"
        );
        assert!(locked.to_string().contains("open elsewhere"), "{locked}");

        let newer: Error = OffsetError::UnsupportedVersion {
            path: path.clone(),
            version: 9,
        }
        .into();
        let Error::Unsupported {
            path: Some(p),
            source,
        } = &newer
        else {
            panic!("expected Unsupported, got {newer:?}");
        };
        assert_eq!(*p, path);
        assert!(matches!(
            source.downcast_ref::<OffsetError>(),
            Some(OffsetError::UnsupportedVersion { version: 9, .. })
        ));
        assert!(newer.to_string().contains("version 9"), "{newer}");

        let mismatch: Error = OffsetError::FormatMismatch {
            path: path.clone(),
            found: "js",
            requested: "native",
        }
        .into();
        assert!(
            matches!(&mismatch, Error::Unsupported { path: Some(p), .. } if *p == path),
            "{mismatch:?}"
        );
        let other: Error = OffsetError::Unsupported {
            path: path.clone(),
            reason: "not a log".into(),
        }
        .into();
        assert!(
            matches!(&other, Error::Unsupported { path: Some(p), source }
                if *p == path && source.downcast_ref::<OffsetError>().is_some()),
            "{other:?}"
        );
        let damaged: Error = OffsetError::BadHeader { path: path.clone() }.into();
        assert!(
            matches!(&damaged, Error::DamagedFile { path: p, source }
                if *p == path
                    && matches!(source.downcast_ref::<OffsetError>(), Some(OffsetError::BadHeader { .. }))),
            "{damaged:?}"
        );
    }
}
