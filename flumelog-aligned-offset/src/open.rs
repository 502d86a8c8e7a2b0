//! Opening a log: the last block is walked, and whatever follows its last whole record (a
//! torn record, or the zeros JS pads a block with when it deletes in it) is cut off.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::Path;

use flumedb_core::{Error, Result, Seq, Since};

use crate::block::{self, MAX_BLOCK, MIN_BLOCK, Slot, Stop};

/// What the open found and repaired.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct Recovered {
    /// Bytes cut from the end of the file: a record cut short or whose lengths disagree, or
    /// the zero padding after the last record (the JS package pads a block it deletes from).
    pub cut_bytes: u64,
}

/// The state the writer starts from.
pub(crate) struct Opened {
    pub(crate) file: File,
    /// Where the next record goes (a closed last block: the start of the next one).
    pub(crate) next: u64,
    /// The last record, if any.
    pub(crate) since: Since,
    /// The records of the last block when it is still open (the writer continues it).
    pub(crate) open_slots: Option<Vec<Slot>>,
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
    if !(MIN_BLOCK..=MAX_BLOCK).contains(&b) {
        return Err(Error::InvalidArgument(format!(
            "block size {b} is outside {MIN_BLOCK}..={MAX_BLOCK} (the end mark is a u16)"
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
    let mut buf = vec![0u8; usize::try_from(b).map_err(|_| too_large())?];
    let mut start = size - size % b;
    if size % b == 0 && size > 0 {
        start -= b;
    }
    let mut end = size;
    loop {
        if end == 0 {
            break;
        }
        let valid = usize::try_from(end - start).map_err(|_| too_large())?;
        let read = buf.get_mut(..valid).ok_or_else(too_large)?;
        file.read_exact_at(read, start).map_err(&err)?;
        buf.get_mut(valid..)
            .into_iter()
            .flatten()
            .for_each(|x| *x = 0);
        let mut slots = Vec::new();
        let stop = block::walk(&buf, valid, |slot| {
            slots.push(slot);
            true
        });
        match stop {
            Stop::Closed(_) => {
                let since = slots
                    .last()
                    .map(|s| Since::At(Seq::new(start + s.pos as u64)));
                return finish(file, end, since, None, recovered);
            }
            Stop::Open(pos) | Stop::Bad(pos) => {
                let keep = start + pos as u64;
                if keep < end {
                    file.set_len(keep).map_err(&err)?;
                    file.sync_all().map_err(&err)?;
                    recovered.cut_bytes += end - keep;
                    end = keep;
                }
                if let Some(last) = slots.last() {
                    let since = Since::At(Seq::new(start + last.pos as u64));
                    return finish(file, end, Some(since), Some(slots), recovered);
                }
                // A last block without a record: the one before it is closed (or there is none).
                if start == 0 {
                    break;
                }
                start -= b;
            }
        }
    }
    finish(file, 0, None, Some(Vec::new()), recovered)
}

fn finish(
    file: File,
    next: u64,
    since: Option<Since>,
    open_slots: Option<Vec<Slot>>,
    recovered: Recovered,
) -> Result<Opened> {
    Ok(Opened {
        file,
        next,
        since: since.unwrap_or(Since::Empty),
        open_slots,
        recovered,
    })
}

fn too_large() -> Error {
    Error::InvalidArgument("block size too large for this platform".into())
}
