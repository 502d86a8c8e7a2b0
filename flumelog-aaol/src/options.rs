//! [`AaolOptions`]: how a log is opened.

use std::path::Path;

use flumedb_core::{Durability, Result};

use crate::log::AaolLog;

/// The JS package's default block size (64 KiB), which ssb-db2 uses.
pub const DEFAULT_BLOCK_SIZE: u32 = 65536;

/// How to open an [`AaolLog`]: block size and durability.
///
/// ```
/// use flumelog_aaol::{AaolLog, Durability};
///
/// let dir = tempfile::tempdir()?;
/// let log = AaolLog::options()
///     .block_size(1024)
///     .durability(Durability::Fsync)
///     .open(dir.path().join("log.bipf"))?;
/// # Ok::<(), flumedb_core::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct AaolOptions {
    pub(crate) block_size: u32,
    pub(crate) durability: Durability,
}

impl Default for AaolOptions {
    fn default() -> Self {
        AaolOptions {
            block_size: DEFAULT_BLOCK_SIZE,
            durability: Durability::Os,
        }
    }
}

impl AaolOptions {
    /// The block size the file was written with (the JS option `blockSize`; default 64 KiB).
    /// It is not stored in the file: opening a log with another size than it was written with
    /// finds no records where they are, or an error.
    pub fn block_size(mut self, bytes: u32) -> Self {
        self.block_size = bytes;
        self
    }

    /// What an acknowledged append promises (default [`Durability::Os`]).
    pub fn durability(mut self, durability: Durability) -> Self {
        self.durability = durability;
        self
    }

    /// Opens (or creates) the log at `path`, repairing its last block as the JS package does.
    pub fn open(&self, path: impl AsRef<Path>) -> Result<AaolLog> {
        AaolLog::open_with(path.as_ref(), self.clone())
    }
}
