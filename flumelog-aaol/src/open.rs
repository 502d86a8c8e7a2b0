//! Opening a log: the last block is checked and repaired as the JS package does it, and a
//! block cut short by a crash keeps the records that were written whole.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::Path;

use flumedb_core::{Error, Result, Seq, Since};

use crate::block::{self, MIN_BLOCK, Stop};

/// What the open found and repaired.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct Recovered {
    /// Bytes of the last block that were not records and were zeroed (a length running past
    /// the block, or a record cut by the end of the file).
    pub zeroed_bytes: u64,
    /// Bytes added to round a file cut inside a block up to whole blocks.
    pub padded_bytes: u64,
    /// Whether the file ended in a block holding no record, which was cut off.
    pub dropped_empty_block: bool,
}

/// The state the writer starts from.
pub(crate) struct Opened {
    pub(crate) file: File,
    /// Where the next record goes.
    pub(crate) next: u64,
    /// The last record, if any.
    pub(crate) since: Since,
    pub(crate) recovered: Recovered,
}

pub(crate) fn io(path: &Path) -> impl Fn(std::io::Error) -> Error + '_ {
    move |source| Error::File {
        path: path.to_path_buf(),
        source,
    }
}

pub(crate) fn open(path: &Path, block_size: u32) -> Result<Opened> {
    let b = u64::from(block_size);
    if b < MIN_BLOCK {
        return Err(Error::InvalidArgument(format!(
            "block size {b} is below the smallest this log opens ({MIN_BLOCK})"
        )));
    }
    let err = io(path);
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(&err)?;
    if let Err(locked) = file.try_lock() {
        return Err(match locked {
            std::fs::TryLockError::WouldBlock => Error::Locked {
                path: path.to_path_buf(),
            },
            std::fs::TryLockError::Error(source) => err(source),
        });
    }
    let size = file.metadata().map_err(&err)?.len();
    let mut recovered = Recovered::default();
    if size == 0 {
        return Ok(Opened {
            file,
            next: 0,
            since: Since::Empty,
            recovered,
        });
    }
    // A file cut inside a block (a crash while it grew): its bytes up to the cut are checked
    // like a last block, and it is padded to a whole block, as the JS package expects.
    let valid_in_last = match size % b {
        0 => b,
        partial => partial,
    };
    let mut start = size - valid_in_last;
    let mut buf = vec![0u8; usize::try_from(b).map_err(|_| invalid_block())?];
    let valid = usize::try_from(valid_in_last).map_err(|_| invalid_block())?;
    file.read_exact_at(buf.get_mut(..valid).ok_or_else(invalid_block)?, start)
        .map_err(&err)?;
    let mut last = None;
    let stop = block::walk(&buf, valid, |slot| {
        last = Some(slot);
        true
    });
    let end = match stop {
        Stop::End(pos) => pos,
        Stop::Bad(pos) if block::is_zeroed(buf.get(pos..valid).unwrap_or_default()) => pos,
        Stop::Bad(pos) => {
            // Not a record from here: zero the rest of the block, as the JS package does.
            let zeros = vec![0u8; valid - pos];
            file.write_all_at(&zeros, start + pos as u64)
                .map_err(&err)?;
            recovered.zeroed_bytes = (valid - pos) as u64;
            pos
        }
    };
    if valid_in_last != b {
        file.set_len(start + b).map_err(&err)?;
        recovered.padded_bytes = b - valid_in_last;
    }
    if recovered != Recovered::default() {
        file.sync_all().map_err(&err)?;
    }
    let mut next = start + end as u64;
    if last.is_none() {
        // A last block with no record (a crash after the file grew by a block, before the
        // record reached it): JS would read a phantom record there, so it goes.
        file.set_len(start).map_err(&err)?;
        file.sync_all().map_err(&err)?;
        recovered.dropped_empty_block = true;
    }
    // The last record: in this block, or (an empty last block) in the last block before it
    // that holds one.
    let mut since = last.map(|slot| Since::At(Seq::new(start + slot.pos as u64)));
    while since.is_none() && start > 0 {
        start -= b;
        file.read_exact_at(&mut buf, start).map_err(&err)?;
        let mut found = None;
        if let Stop::Bad(pos) = block::walk(&buf, buf.len(), |slot| {
            found = Some(slot);
            true
        }) {
            return Err(Error::Corrupt {
                seq: Some(Seq::new(start + pos as u64)),
                reason: format!(
                    "a record length at {} runs past its block of {b} bytes (a block before \
                     the last is not repaired; is the block size right?)",
                    start + pos as u64
                ),
            });
        }
        since = found.map(|slot| Since::At(Seq::new(start + slot.pos as u64)));
        next = start + found.map_or(0, |slot| slot.end()) as u64;
        if found.is_none() {
            file.set_len(start).map_err(&err)?;
            file.sync_all().map_err(&err)?;
        }
    }
    Ok(Opened {
        file,
        next,
        since: since.unwrap_or(Since::Empty),
        recovered,
    })
}

fn invalid_block() -> Error {
    Error::InvalidArgument("block size too large for this platform".into())
}
