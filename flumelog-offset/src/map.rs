//! A read-only memory map of the log file that grows with it.
//!
//! The map reserves more address space than the file has (at least twice the bytes asked
//! for): as the file grows by appends, the new bytes appear in the existing map, so most reads
//! never remap. Readers take a snapshot (`Arc<Mmap>`) that stays valid while they read, even
//! if another reader replaces the map with a larger one.
//!
//! Pages of a map that a read touched stay in the process's resident set until unmapped, so a
//! scan (or views indexing every record) would make the whole file resident. Sequential reads
//! report the bytes they pass; every [`RESIDENT_LIMIT`] bytes the map lets all its pages go.
//! They stay in the page cache: reading them again is a minor fault, not I/O.

use std::fs::File;
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

#[cfg(unix)]
use memmap2::UncheckedAdvice;
use memmap2::{Mmap, MmapOptions};
use parking_lot::RwLock;

/// The bytes sequential reads pass before the map lets its pages go: a few MiB resident at
/// most, and one `madvise` call per 8 MiB read.
pub(crate) const RESIDENT_LIMIT: u64 = 8 << 20;

/// The smallest reservation: small logs remap rarely.
const MIN_RESERVE: u64 = 64 << 20;

pub(crate) struct GrowingMap {
    file: File,
    map: RwLock<Arc<Mmap>>,
    /// Bytes sequential reads reported passing since the pages were last let go.
    passed: AtomicU64,
}

impl GrowingMap {
    pub(crate) fn new(file: File, needed: u64) -> io::Result<GrowingMap> {
        let map = Self::map(&file, needed)?;
        Ok(GrowingMap {
            file,
            map: RwLock::new(Arc::new(map)),
            passed: AtomicU64::new(0),
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

    /// Notes that a sequential read of `map` passed `bytes`; the read that reaches
    /// [`RESIDENT_LIMIT`] lets the map's pages go (random reads are not counted: they touch
    /// little, and releasing for them would fault their hot set back in again and again).
    pub(crate) fn passed(&self, map: &Mmap, bytes: u64) {
        let before = self.passed.fetch_add(bytes, Ordering::Relaxed);
        if before < RESIDENT_LIMIT && before.saturating_add(bytes) >= RESIDENT_LIMIT {
            release(map);
            self.passed.store(0, Ordering::Relaxed);
        }
    }

    /// Runs `f` on a map that covers at least `needed` bytes, without taking a snapshot (for
    /// short reads such as `get`: no reference count to touch).
    pub(crate) fn with<R>(&self, needed: u64, f: impl FnOnce(&Mmap) -> R) -> io::Result<R> {
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

/// Drops `map`'s pages from the process's resident set (best effort: a failure only leaves
/// them resident).
#[cfg(unix)]
#[allow(
    unsafe_code,
    reason = "MADV_DONTNEED is an unchecked advice in memmap2; see SAFETY"
)]
fn release(map: &Mmap) {
    // SAFETY: `map` is a shared (MAP_SHARED), read-only map of a file. MADV_DONTNEED on such a
    // map only removes page-table entries: the next access faults the same bytes back in from
    // the page cache (or the file), so every reference into the map, of this thread or
    // another, keeps reading the same bytes. (memmap2 marks the advice unsafe for private and
    // anonymous maps, whose pages it resets.)
    let _ = unsafe { map.unchecked_advise(UncheckedAdvice::DontNeed) };
}

/// Elsewhere the pages stay mapped until the map is dropped (memmap2 offers no such advice).
#[cfg(not(unix))]
fn release(_map: &Mmap) {}
