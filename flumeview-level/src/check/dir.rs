//! The store directory as this module sees it: the files it keeps there, fjall's lock file,
//! and the file-system steps every check, seal and wipe takes (locking, durable removal,
//! telling damage from the machine refusing).

use std::fs::{File, OpenOptions};
use std::io::ErrorKind;
use std::path::Path;

use crate::error::LevelError;

/// The check file a clean close writes into the store's directory (fjall ignores files in
/// its root that are not `*.jnl`).
pub(super) const CHECK_FILE: &str = "flumeview-level.check";
/// Where the check file is written before it is renamed into place.
pub(super) const CHECK_TMP: &str = "flumeview-level.check.tmp";
/// Written when damage is found while the store is open (or a wipe starts): the next open
/// wipes the store. Holds the reason, as text.
pub(super) const DAMAGED_FILE: &str = "flumeview-level.damaged";
/// fjall's lock file: kept by a wipe (it is empty and may be held open by this process).
pub(super) const LOCK_FILE: &str = "lock";

/// Whether an I/O error means the files are damaged (rather than the machine refusing: no
/// permission, disk full, out of memory, interrupted…). Damage is wiped and rebuilt; other
/// errors are returned to the caller and change nothing on disk.
pub(crate) fn io_is_damage(err: &std::io::Error) -> bool {
    match err.kind() {
        ErrorKind::NotFound
        | ErrorKind::UnexpectedEof
        | ErrorKind::InvalidData
        | ErrorKind::InvalidInput
        | ErrorKind::AlreadyExists
        | ErrorKind::NotADirectory
        | ErrorKind::IsADirectory
        | ErrorKind::DirectoryNotEmpty
        | ErrorKind::InvalidFilename => true,
        // Errors made up by decoders carry no OS error; an OS error of kind Other (EIO, EMFILE…)
        // is the machine's.
        ErrorKind::Other => err.raw_os_error().is_none(),
        _ => false,
    }
}

/// An I/O error on a file of the store at `path`.
pub(super) fn file_error(path: &Path, err: std::io::Error) -> LevelError {
    LevelError::store(path, err)
}

/// An exclusive hold on fjall's lock file, so no other process opens the store while its
/// files are checked, wiped or sealed. Released on drop.
pub(crate) struct DirLock(Option<File>);

impl DirLock {
    /// Takes the lock if the lock file exists. `Ok(None)`: another process holds it.
    pub(crate) fn try_acquire(dir: &Path) -> Result<Option<DirLock>, LevelError> {
        let path = dir.join(LOCK_FILE);
        let file = match OpenOptions::new().read(true).write(true).open(&path) {
            Ok(file) => file,
            // No lock file (a new store), or not a file (damage the wipe removes).
            Err(err) if err.kind() == ErrorKind::NotFound || io_is_damage(&err) => {
                return Ok(Some(DirLock(None)));
            }
            Err(err) => return Err(file_error(&path, err)),
        };
        match file.try_lock() {
            Ok(()) => Ok(Some(DirLock(Some(file)))),
            Err(std::fs::TryLockError::WouldBlock) => Ok(None),
            Err(std::fs::TryLockError::Error(err)) => Err(file_error(&path, err)),
        }
    }
}

impl Drop for DirLock {
    fn drop(&mut self) {
        if let Some(file) = self.0.take() {
            // Closing the file releases the lock anyway; unlocking first is only tidier.
            let _ = file.unlock();
        }
    }
}

/// Removes a file, if it exists.
pub(super) fn remove_if_present(path: &Path) -> Result<(), LevelError> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(err) if err.kind() == ErrorKind::NotFound => Ok(()),
        Err(err) => Err(file_error(path, err)),
    }
}

/// Removes a file, if it exists (as an I/O error).
pub(super) fn remove_if_present_io(path: &Path) -> std::io::Result<()> {
    match std::fs::remove_file(path) {
        Err(err) if err.kind() != ErrorKind::NotFound => Err(err),
        _ => Ok(()),
    }
}
