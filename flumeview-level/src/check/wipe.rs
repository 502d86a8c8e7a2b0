//! Throwing a damaged store away: the damage marker, and the wipe it leads to.

use std::fs::File;
use std::io::{ErrorKind, Write};
use std::path::Path;

use flumedb_core::persist::sync_dir;

use super::dir::{DAMAGED_FILE, DirLock, LOCK_FILE, file_error, remove_if_present_io};
use crate::error::LevelError;

/// Notes damage found while the store is open, so the next open wipes it (best effort: if
/// this cannot be written, the damage is found again).
pub(crate) fn mark_damaged(dir: &Path, reason: &str) {
    let write = || -> std::io::Result<()> {
        let mut file = File::create(dir.join(DAMAGED_FILE))?;
        file.write_all(reason.as_bytes())?;
        file.sync_all()?;
        sync_dir(dir)
    };
    let _ = write();
}

/// Deletes everything in the (closed) store at `dir` but fjall's empty lock file, so fjall
/// creates a new, empty store there. A damage marker is written first and removed last: an
/// interrupted wipe is finished by the next open.
pub(crate) fn wipe(dir: &Path, reason: &str) -> Result<(), LevelError> {
    if !dir.exists() {
        return Ok(());
    }
    let Some(_lock) = DirLock::try_acquire(dir)? else {
        return Err(LevelError::store(
            dir,
            std::io::Error::new(
                ErrorKind::ResourceBusy,
                format!("found damaged ({reason}) but open in another process"),
            ),
        ));
    };
    mark_damaged(dir, reason);
    let wipe = || -> std::io::Result<()> {
        // fjall's "this is a database" marker first: without it nothing else is read (if
        // this fails, say on a directory of that name, the loop below removes it).
        let _ = std::fs::remove_file(dir.join("version"));
        for entry in std::fs::read_dir(dir)? {
            let entry = entry?;
            let name = entry.file_name();
            let kind = entry.file_type()?;
            if name == DAMAGED_FILE || (name == LOCK_FILE && kind.is_file()) {
                continue;
            }
            if kind.is_dir() {
                std::fs::remove_dir_all(entry.path())?;
            } else {
                std::fs::remove_file(entry.path())?;
            }
        }
        sync_dir(dir)?;
        remove_if_present_io(&dir.join(DAMAGED_FILE))?;
        sync_dir(dir)
    };
    wipe().map_err(|e| file_error(dir, e))
}
