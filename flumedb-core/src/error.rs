//! The error type of the core traits and the driver.

use std::fmt;
use std::io;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::seq::{Seq, Since};

/// A boxed error from user code (a mapper) or from a view implementation.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// A `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in a log, a view or the driver.
///
/// Logs return the record-level variants (`NotFound`, `InvalidSeq`, `Deleted`, `Corrupt`) so that
/// generic code can tell them apart, whatever the log.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// There is no record at this seq: it is past the end of the log.
    NotFound {
        /// The seq asked for.
        seq: Seq,
    },
    /// This seq is not the start of a record (for example inside a frame of a file log).
    InvalidSeq {
        /// The seq asked for.
        seq: Seq,
        /// Why it is not a record's seq.
        reason: String,
    },
    /// The record at this seq was deleted.
    Deleted {
        /// The deleted record's seq.
        seq: Seq,
    },
    /// Stored data does not pass its checks.
    Corrupt {
        /// The record where the corruption was found, if it belongs to one.
        seq: Option<Seq>,
        /// What is wrong.
        reason: String,
    },
    /// A value could not be encoded, or stored bytes could not be decoded.
    Codec(CodecError),
    /// The mapper given to the driver failed on a record.
    Mapper {
        /// The record the mapper failed on.
        seq: Seq,
        /// The mapper's error.
        source: BoxError,
    },
    /// A view implementation returned an error.
    View {
        /// The view's name.
        view: String,
        /// The view's own error.
        source: BoxError,
    },
    /// The view stopped on an error and stays stopped until `rebuild()`: reads return this.
    ViewFailed {
        /// The view's name.
        view: String,
        /// The record the view failed on, if the failure belongs to one.
        seq: Option<Seq>,
        /// The error that stopped it.
        cause: Arc<Error>,
    },
    /// A view with this name is already in use.
    DuplicateView {
        /// The name.
        name: String,
    },
    /// Options that contradict each other or are out of range.
    InvalidArgument(String),
    /// Input a view crate refused outside any one view: a malformed query, a bad index
    /// declaration, a key that cannot be built. `source` is that crate's own error
    /// (`flumeview_query::QueryError`, `flumeview_level::KeyError`, …), to downcast to; those
    /// crates convert their errors into this one, so `?` works in a function returning
    /// [`Result`].
    Input {
        /// The view crate's own error.
        source: BoxError,
    },
    /// A read waited longer than its timeout for a view to catch up.
    Timeout {
        /// The view waited on.
        view: String,
        /// How long the read waited.
        waited: Duration,
        /// The position the read waited for.
        target: Since,
        /// The position the view had reached.
        reached: Since,
    },
    /// The log or database is closed (or closing).
    Closed,
    /// The log refuses writes after a failed write it could not undo (its file may end in
    /// part of a record, or an fsync failed and the OS may have dropped the data): reopen the
    /// log, whose recovery repairs the file. Reads still work.
    Poisoned {
        /// The log's file, if it has one.
        path: Option<PathBuf>,
        /// The failure that poisoned it.
        reason: String,
    },
    /// The log's file is held by another process, or by another open log in this process:
    /// two writers would interleave their records.
    Locked {
        /// The file.
        path: PathBuf,
    },
    /// The file is not one this log can open as asked: another format, a newer version of
    /// its format, or not a log at all. Nothing was changed. `source` is the log's own error
    /// (for `flumelog-offset` an `OffsetError`, to downcast to).
    Unsupported {
        /// The file, if the log's error names one.
        path: Option<PathBuf>,
        /// The log's own error.
        source: BoxError,
    },
    /// The log's file is damaged where opening must read it (its header, or no valid record
    /// at all), so it cannot be opened without losing data; nothing was changed. `source` is
    /// the log's own error (for `flumelog-offset` an `OffsetError`, to downcast to).
    DamagedFile {
        /// The file.
        path: PathBuf,
        /// The log's own error.
        source: BoxError,
    },
    /// Code panicked and the driver caught the panic: a log while it was read for the views,
    /// or the driver's own feeder thread (a bug of flumedb). The views it was feeding stop
    /// with this error, so reads fail at once instead of waiting for ever.
    Panicked {
        /// What panicked, for example "the feeder thread".
        what: String,
        /// The panic's message.
        message: String,
    },
    /// An I/O error.
    Io(io::Error),
    /// An I/O error on a file, with the file's path.
    File {
        /// The file (or directory) the operation was on.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::NotFound { seq } => write!(f, "no record at seq {seq}: past the end of the log"),
            Error::InvalidSeq { seq, reason } => {
                write!(f, "seq {seq} is not the start of a record: {reason}")
            }
            Error::Deleted { seq } => write!(f, "the record at seq {seq} was deleted"),
            Error::Corrupt {
                seq: Some(seq),
                reason,
            } => {
                write!(f, "corrupt record at seq {seq}: {reason}")
            }
            Error::Corrupt { seq: None, reason } => write!(f, "corrupt data: {reason}"),
            Error::Codec(err) => write!(f, "{err}"),
            Error::Mapper { seq, source } => write!(f, "the mapper failed on seq {seq}: {source}"),
            Error::View { view, source } => write!(f, "view '{view}': {source}"),
            Error::ViewFailed {
                view,
                seq: Some(seq),
                cause,
            } => {
                write!(
                    f,
                    "view '{view}' failed on seq {seq} and is stopped until rebuild(): {cause}"
                )?;
                if matches!(&**cause, Error::Codec(e) if e.is_decode()) {
                    // A rebuild meets the same bytes again: say what does help.
                    f.write_str(
                        " (the stored record does not decode; to let views go on without such \
                         records, open with FlumeOptions::undecodable(Undecodable::Skip))",
                    )?;
                }
                Ok(())
            }
            Error::ViewFailed {
                view,
                seq: None,
                cause,
            } => write!(
                f,
                "view '{view}' failed and is stopped until rebuild(): {cause}"
            ),
            Error::DuplicateView { name } => write!(f, "a view named '{name}' is already in use"),
            Error::InvalidArgument(msg) => write!(f, "invalid argument: {msg}"),
            Error::Input { source } => write!(f, "{source}"),
            Error::Timeout {
                view,
                waited,
                target,
                reached,
            } => write!(
                f,
                "timed out after {waited:?} waiting for view '{view}' to reach {target} (it is at {reached})"
            ),
            Error::Closed => f.write_str("the database is closed"),
            Error::Poisoned { path, reason } => {
                if let Some(path) = path {
                    write!(f, "{}: ", path.display())?;
                }
                write!(
                    f,
                    "the log refuses writes after an earlier failure ({reason}); reopen it to \
                     recover"
                )
            }
            Error::Locked { path } => write!(
                f,
                "{}: the log is open elsewhere (another process, or another open in this one); close \
                 it there, then open it here",
                path.display()
            ),
            Error::Unsupported { source, .. } => write!(f, "unsupported file: {source}"),
            Error::DamagedFile { source, .. } => write!(f, "damaged file: {source}"),
            Error::Panicked { what, message } => write!(f, "{what} panicked: {message}"),
            Error::Io(err) => write!(f, "I/O error: {err}"),
            Error::File { path, source } => write!(f, "I/O error on {}: {source}", path.display()),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Codec(err) => Some(err),
            Error::Mapper { source, .. }
            | Error::View { source, .. }
            | Error::Input { source }
            | Error::Unsupported { source, .. }
            | Error::DamagedFile { source, .. } => Some(source.as_ref()),
            Error::ViewFailed { cause, .. } => Some(cause.as_ref()),
            Error::Io(err) | Error::File { source: err, .. } => Some(err),
            _ => None,
        }
    }
}

impl From<io::Error> for Error {
    fn from(err: io::Error) -> Error {
        Error::Io(err)
    }
}

impl From<CodecError> for Error {
    fn from(err: CodecError) -> Error {
        Error::Codec(err)
    }
}

/// A value could not be encoded, or bytes could not be decoded, by a [`Codec`](crate::Codec).
#[derive(Debug)]
pub struct CodecError {
    codec: &'static str,
    decoding: bool,
    source: BoxError,
}

impl CodecError {
    /// An error while encoding a value with the named codec.
    pub fn encode(codec: &'static str, source: impl Into<BoxError>) -> CodecError {
        CodecError {
            codec,
            decoding: false,
            source: source.into(),
        }
    }

    /// An error while decoding bytes with the named codec.
    pub fn decode(codec: &'static str, source: impl Into<BoxError>) -> CodecError {
        CodecError {
            codec,
            decoding: true,
            source: source.into(),
        }
    }

    /// `true` if this happened while decoding stored bytes.
    pub fn is_decode(&self) -> bool {
        self.decoding
    }
}

impl fmt::Display for CodecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = if self.decoding { "decode" } else { "encode" };
        write!(f, "{} codec could not {what}: {}", self.codec, self.source)
    }
}

impl std::error::Error for CodecError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(self.source.as_ref())
    }
}
