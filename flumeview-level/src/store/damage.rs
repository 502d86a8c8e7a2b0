//! Telling damage from other failures: fjall's errors and panics are sorted into damaged files
//! (thrown away, then rebuilt from the log) and everything else (returned as it is).

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;

use crate::check;
use crate::error::LevelError;

/// Why an engine call did not succeed: the files are damaged (wipe or clear, then rebuild),
/// or something else went wrong (returned as it is; nothing is deleted).
pub(super) enum Trouble {
    Damage(String),
    Error(LevelError),
}

/// Whether a fjall error means damaged files, rather than the machine refusing (no permission,
/// disk full), another process holding the store, or fjall refusing writes after a failed
/// flush (`Poisoned`: reopening helps, deleting does not).
fn is_damage(err: &fjall::Error) -> bool {
    use fjall::Error as F;
    match err {
        F::Io(io) => check::io_is_damage(io),
        // lsm-tree's errors are all about data (checksums, tags, headers, decompression)
        // except I/O, which it exposes as its source.
        F::Storage(inner) => match std::error::Error::source(inner)
            .and_then(|source| source.downcast_ref::<std::io::Error>())
        {
            Some(io) => check::io_is_damage(io),
            None => true,
        },
        F::JournalRecovery(_)
        | F::InvalidVersion(_)
        | F::Decompress(_)
        | F::InvalidTrailer
        | F::InvalidTag(_)
        | F::Unrecoverable => true,
        _ => false,
    }
}

/// Runs an engine call so that neither its errors nor its panics (fjall asserts on some
/// damaged files) escape unsorted.
pub(super) fn guarded<R>(path: &Path, f: impl FnOnce() -> fjall::Result<R>) -> Result<R, Trouble> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(err)) if is_damage(&err) => Err(Trouble::Damage(err.to_string())),
        Ok(Err(err)) => Err(Trouble::Error(LevelError::store(path, err))),
        Err(panic) => Err(Trouble::Damage(format!(
            "the storage engine panicked: {}",
            flumedb_core::panic_message(&panic)
        ))),
    }
}

pub(super) fn trouble_error(path: &Path, trouble: Trouble) -> LevelError {
    match trouble {
        Trouble::Damage(reason) => LevelError::Damaged {
            path: path.to_path_buf(),
            reason,
        },
        Trouble::Error(err) => err,
    }
}
