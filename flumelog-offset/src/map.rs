//! A read-only memory map of the log file that grows with it.
//!
//! The map reserves more address space than the file has (at least twice the bytes asked
//! for): as the file grows by appends, the new bytes appear in the existing map, so most reads
//! never remap. Readers take a snapshot (`Arc<Mmap>`) that stays valid while they read, even
//! if another reader replaces the map with a larger one.

use std::fs::File;
use std::io;
use std::sync::Arc;

use memmap2::{Mmap, MmapOptions};
use parking_lot::RwLock;

/// The smallest reservation: small logs remap rarely.
const MIN_RESERVE: u64 = 64 << 20;

pub(crate) struct GrowingMap {
    file: File,
    map: RwLock<Arc<Mmap>>,
}

impl GrowingMap {
    pub(crate) fn new(file: File, needed: u64) -> io::Result<GrowingMap> {
        let map = Self::map(&file, needed)?;
        Ok(GrowingMap {
            file,
            map: RwLock::new(Arc::new(map)),
        })
    }

    #[allow(
        unsafe_code,
        reason = "memory-mapping a file is unsafe by nature; see SAFETY"
    )]
    fn map(file: &File, needed: u64) -> io::Result<Mmap> {
        let reserve = needed.saturating_mul(2).max(MIN_RESERVE);
        let len = usize::try_from(reserve).map_err(|_| {
            io::Error::other("the log is larger than this platform's address space")
        })?;
        // SAFETY: the map is read-only and may extend past the end of the file. Readers only
        // touch bytes below the log's committed end, which is never past the end of the file
        // (the writer extends the file before it moves the committed end), so no page past
        // the end of the file is accessed. Bytes below the committed end change only through
        // `del`, which readers detect (see `seqlock.rs`). Another process truncating the file
        // under us would make reads fault: the log file must only be changed through this
        // crate (as with any memory-mapped database).
        unsafe { MmapOptions::new().len(len).map(file) }
    }

    /// Runs `f` on a map that covers at least `needed` bytes, without taking a snapshot (for
    /// short reads such as `get`: no reference count to touch).
    pub(crate) fn with<R>(&self, needed: u64, f: impl FnOnce(&[u8]) -> R) -> io::Result<R> {
        {
            let map = self.map.read();
            if map.len() as u64 >= needed {
                return Ok(f(&map));
            }
        }
        let map = self.covering(needed)?;
        Ok(f(&map))
    }

    /// A map that covers at least `needed` bytes.
    pub(crate) fn covering(&self, needed: u64) -> io::Result<Arc<Mmap>> {
        {
            let map = self.map.read();
            if map.len() as u64 >= needed {
                return Ok(map.clone());
            }
        }
        let mut map = self.map.write();
        if (map.len() as u64) < needed {
            *map = Arc::new(Self::map(&self.file, needed)?);
        }
        Ok(map.clone())
    }
}
