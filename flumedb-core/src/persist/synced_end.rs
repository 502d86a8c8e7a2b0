//! [`SyncedEnd`]: where a log file was last known durable, kept in a small file beside it.
//!
//! A power loss can lose any unsynced page of a log, earlier ones while later ones survive: a
//! hole with valid records after it, which a scan back from the end cannot tell from damage in
//! the middle of the log. The synced end tells them apart: bytes below it were fsync'd (and can
//! only be damaged, never lost), bytes above it are the unsynced tail, which recovery may cut at
//! its first bad frame. The mark is written after each fsync of the log, never before, so it is
//! never ahead of what is durable, even when its own write is lost or only some of its writes
//! reach the disk.

use std::fs::{File, OpenOptions};
use std::io;

use crate::{Error, Result};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// One slot: magic, CRC32 of the rest, generation, end, check.
const SLOT: usize = 32;
const MAGIC: &[u8; 4] = b"FLSE";

/// A durable prefix of a log file: `end` (a byte offset in the log file) and a value of the
/// log's choosing that the file must show at `end`, so a mark that does not fit the file (left
/// from another file, or the file cut shorter by another program) is recognised and ignored.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Mark {
    /// Every byte of the log file below this was fsync'd.
    pub end: u64,
    /// What the log finds at `end` when the mark is right: flumelog-offset keeps the seq of
    /// the frame ending there, flumelog-memory the number of records before it.
    pub check: u64,
}

/// The mark file of one log file (`<log file>.synced`): two checksummed slots written in turn,
/// so a write torn or lost in one leaves the other. Layout in docs/file-formats.md.
///
/// ```
/// use flumedb_core::persist::{Mark, SyncedEnd};
///
/// let dir = tempfile::tempdir()?;
/// let log = dir.path().join("log");
/// let file = std::fs::File::create(&log)?;
/// let (mut synced, found) = SyncedEnd::open(&log)?;
/// assert_eq!(found, None); // a new mark file
/// file.sync_data()?; // the log's bytes first, then the mark
/// synced.record(Mark { end: 0, check: 0 })?;
/// drop(synced);
/// let (_, found) = SyncedEnd::open(&log)?;
/// assert_eq!(found, Some(Mark { end: 0, check: 0 }));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct SyncedEnd {
    path: PathBuf,
    file: File,
    generation: u64,
    /// The newest mark written, and the newest known to be on disk (fsync'd).
    recorded: Option<Mark>,
    durable: Option<Mark>,
}

impl SyncedEnd {
    /// The mark file's path for the log file at `log_path`.
    pub fn path_for(log_path: &Path) -> PathBuf {
        let mut name = log_path.as_os_str().to_os_string();
        name.push(".synced");
        PathBuf::from(name)
    }

    /// Opens (or creates, durably in its directory) the mark file of the log file at
    /// `log_path`, and returns the newest valid mark: `None` when the mark file is new or both
    /// slots are damaged. The log checks the mark against its file ([`Mark::check`]) before
    /// trusting it.
    ///
    /// Errors are [`Error::File`] with the path of the file that failed.
    pub fn open(log_path: &Path) -> Result<(SyncedEnd, Option<Mark>)> {
        let path = Self::path_for(log_path);
        let existed = path.exists();
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(on(&path))?;
        if !existed {
            super::sync_parent(&path).map_err(on(&path))?;
        }
        let mut bytes = [0u8; 2 * SLOT];
        let len = read_up_to(&file, &mut bytes).map_err(on(&path))?;
        let newest = bytes
            .get(..len)
            .unwrap_or_default()
            .chunks_exact(SLOT)
            .filter_map(decode)
            .max_by_key(|slot| slot.0);
        let (generation, mark) = match newest {
            Some((generation, mark)) => (generation, Some(mark)),
            None => (0, None),
        };
        Ok((
            SyncedEnd {
                path,
                file,
                generation,
                recorded: mark,
                // Read back, but perhaps only from the page cache of a process that crashed.
                durable: None,
            },
            mark,
        ))
    }

    /// The mark file's path.
    pub fn file_path(&self) -> &Path {
        &self.path
    }

    /// Records `mark`. Call it only after the log's bytes below `mark.end` were fsync'd. The
    /// mark itself is not fsync'd: losing it leaves an older mark, which is still true.
    pub fn record(&mut self, mark: Mark) -> Result<()> {
        let generation = self.generation.wrapping_add(1);
        let slot = encode(generation, mark);
        let at = if generation.is_multiple_of(2) {
            0
        } else {
            SLOT as u64
        };
        self.file.write_all_at(&slot, at).map_err(on(&self.path))?;
        self.generation = generation;
        self.recorded = Some(mark);
        Ok(())
    }

    /// [`record`](Self::record), then fsync the mark file: for a new log, whose first mark
    /// must survive a power loss that keeps the log file.
    pub fn record_durably(&mut self, mark: Mark) -> Result<()> {
        self.record(mark)?;
        self.sync().map(|_| ())
    }

    /// Makes the newest recorded mark durable (fsync, unless it already is) and returns it.
    ///
    /// A log calls this before it rewrites bytes in place (a delete): a rewrite torn by a power
    /// loss must lie below the durable mark, where recovery does not cut, or the valid
    /// records after it would be cut with it.
    pub fn sync(&mut self) -> Result<Option<Mark>> {
        if self.durable != self.recorded {
            self.file.sync_data().map_err(on(&self.path))?;
            self.durable = self.recorded;
        }
        Ok(self.durable)
    }

    /// The newest mark known to be on disk.
    pub fn durable(&self) -> Option<Mark> {
        self.durable
    }
}

/// An I/O error on the file at `path`.
fn on(path: &Path) -> impl Fn(io::Error) -> Error + '_ {
    move |source| Error::File {
        path: path.to_path_buf(),
        source,
    }
}

fn read_up_to(file: &File, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while let Some(rest) = buf.get_mut(filled..).filter(|r| !r.is_empty()) {
        match file.read_at(rest, filled as u64) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

fn encode(generation: u64, mark: Mark) -> [u8; SLOT] {
    let mut body = [0u8; SLOT - 8];
    let words = [generation, mark.end, mark.check];
    for (chunk, value) in body.chunks_exact_mut(8).zip(words) {
        chunk.copy_from_slice(&value.to_le_bytes());
    }
    let crc = crc32fast::hash(&body).to_le_bytes();
    let mut slot = [0u8; SLOT];
    for (to, from) in slot.iter_mut().zip(MAGIC.iter().chain(&crc).chain(&body)) {
        *to = *from;
    }
    slot
}

/// A slot's generation and mark, if its magic and checksum hold.
fn decode(slot: &[u8]) -> Option<(u64, Mark)> {
    let word = |i: usize| -> Option<u64> {
        Some(u64::from_le_bytes(slot.get(i..i + 8)?.try_into().ok()?))
    };
    let crc = u32::from_le_bytes(slot.get(4..8)?.try_into().ok()?);
    if slot.get(..4)? != MAGIC || crc32fast::hash(slot.get(8..SLOT)?) != crc {
        return None;
    }
    let mark = Mark {
        end: word(16)?,
        check: word(24)?,
    };
    Some((word(8)?, mark))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log_file(dir: &Path) -> PathBuf {
        let path = dir.join("log");
        File::create(&path).unwrap();
        path
    }

    #[test]
    fn the_newest_slot_wins_and_a_damaged_one_leaves_the_other() {
        let dir = tempfile::tempdir().unwrap();
        let path = log_file(dir.path());
        let (mut synced, found) = SyncedEnd::open(&path).unwrap();
        assert_eq!(found, None);
        for end in 1..=5 {
            synced
                .record(Mark {
                    end,
                    check: end * 10,
                })
                .unwrap();
        }
        drop(synced);
        let (_, found) = SyncedEnd::open(&path).unwrap();
        assert_eq!(found, Some(Mark { end: 5, check: 50 }));
        // Generation 5 is odd: slot 1. Damage it: generation 4 (slot 0) is the newest left.
        let mark_path = SyncedEnd::path_for(&path);
        let mut bytes = std::fs::read(&mark_path).unwrap();
        bytes[SLOT + 20] ^= 1;
        std::fs::write(&mark_path, &bytes).unwrap();
        let (mut synced, found) = SyncedEnd::open(&path).unwrap();
        assert_eq!(found, Some(Mark { end: 4, check: 40 }));
        // The next write goes on after the newest valid generation.
        synced.record(Mark { end: 6, check: 60 }).unwrap();
        assert_eq!(synced.durable(), None);
        assert_eq!(synced.sync().unwrap(), Some(Mark { end: 6, check: 60 }));
        assert_eq!(synced.durable(), Some(Mark { end: 6, check: 60 }));
        drop(synced);
        assert_eq!(
            SyncedEnd::open(&path).unwrap().1,
            Some(Mark { end: 6, check: 60 })
        );
    }

    #[test]
    fn every_byte_flip_is_caught_or_harmless() {
        let dir = tempfile::tempdir().unwrap();
        let path = log_file(dir.path());
        let (mut synced, _) = SyncedEnd::open(&path).unwrap();
        synced.record(Mark { end: 7, check: 3 }).unwrap();
        synced.record(Mark { end: 9, check: 4 }).unwrap();
        drop(synced);
        let mark_path = SyncedEnd::path_for(&path);
        let good = std::fs::read(&mark_path).unwrap();
        for i in 0..good.len() {
            let mut bad = good.clone();
            bad[i] ^= 0x10;
            std::fs::write(&mark_path, &bad).unwrap();
            let found = SyncedEnd::open(&path).unwrap().1;
            assert!(
                matches!(
                    found,
                    Some(Mark { end: 7, check: 3 } | Mark { end: 9, check: 4 })
                ),
                "byte {i}: {found:?}"
            );
        }
    }

    #[test]
    fn a_short_or_garbage_mark_file_holds_no_mark() {
        let dir = tempfile::tempdir().unwrap();
        let path = log_file(dir.path());
        let mark_path = SyncedEnd::path_for(&path);
        for bytes in [&b""[..], b"FLSE", &[0u8; 2 * SLOT], &[0xffu8; 3 * SLOT]] {
            std::fs::write(&mark_path, bytes).unwrap();
            assert_eq!(SyncedEnd::open(&path).unwrap().1, None);
        }
    }
}
