//! [`AlignedOptions`]: how a log is opened.

use std::path::Path;

use flumedb_core::{Durability, Result};

use crate::log::AlignedLog;

/// The JS package's default block size (64 KiB), also the largest.
pub const DEFAULT_BLOCK_SIZE: u32 = 65536;

/// How to open an [`AlignedLog`]: block size and durability.
///
/// ```
/// use flumelog_aligned_offset::{AlignedLog, Durability};
///
/// let dir = tempfile::tempdir()?;
/// let log = AlignedLog::options()
///     .block_size(1024)
///     .durability(Durability::Fsync)
///     .open(dir.path().join("log.aligned"))?;
/// # Ok::<(), flumedb_core::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct AlignedOptions {
    pub(crate) block_size: u32,
    pub(crate) durability: Durability,
}

impl Default for AlignedOptions {
    fn default() -> Self {
        AlignedOptions {
            block_size: DEFAULT_BLOCK_SIZE,
            durability: Durability::Os,
        }
    }
}

impl AlignedOptions {
    /// The block size the file was written with (the JS option `block`; default and at most
    /// 64 KiB).
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

    /// Opens (or creates) the log at `path`, cutting a torn last record (or JS's zero padding)
    /// off its last block ([`Recovered`](crate::Recovered) says what was cut).
    pub fn open(&self, path: impl AsRef<Path>) -> Result<AlignedLog> {
        AlignedLog::open_with(path.as_ref(), self.clone())
    }
}
