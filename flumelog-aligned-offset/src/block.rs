//! The block format of flumelog-aligned-offset: records `[u16 LE length][payload][u16 LE
//! length]` in blocks of `B` bytes (at most 64 KiB); a block that is full is closed by an
//! end mark `u16 B − 1` where the next record would have gone, zeros, and a `u32` pointer to
//! that mark in its last 4 bytes. The last block is not padded: the file ends after its last
//! record. docs/file-formats.md has the layout.

/// The largest block size: the end mark `B − 1` must fit a u16.
pub(crate) const MAX_BLOCK: u64 = 65536;
/// The smallest block size this crate opens: one record of one byte, the end mark and the
/// pointer.
pub(crate) const MIN_BLOCK: u64 = 16;

/// One record's place in a block.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct Slot {
    /// The offset of its leading length within the block.
    pub(crate) pos: usize,
    /// The payload's length.
    pub(crate) len: usize,
}

impl Slot {
    /// Where the payload starts within the block.
    pub(crate) fn payload(self) -> usize {
        self.pos + 2
    }

    /// Where the next record would start.
    pub(crate) fn end(self) -> usize {
        self.pos + self.len + 4
    }
}

/// What walking a block found after its last good record.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Stop {
    /// The block's end mark at this position, with its pointer: a closed block.
    Closed(usize),
    /// The block's valid bytes end here (the last block), or zeros follow (JS pads a last
    /// block it deleted from that way): records may be appended here.
    Open(usize),
    /// Bytes from here are not a record (a torn record, lengths that disagree, a length
    /// that does not fit, an end mark whose pointer does not point at it).
    Bad(usize),
}

/// Whether a record of `len` bytes fits at `pos`, leaving room for the end mark and pointer.
pub(crate) fn fits(pos: usize, len: usize, block: usize) -> bool {
    pos + len + 4 + 6 <= block
}

fn u16_at(block: &[u8], at: usize) -> Option<usize> {
    match block.get(at..at + 2) {
        Some(&[a, b]) => Some(usize::from(u16::from_le_bytes([a, b]))),
        _ => None,
    }
}

fn u32_at(block: &[u8], at: usize) -> Option<usize> {
    match block.get(at..at + 4) {
        Some(&[a, b, c, d]) => usize::try_from(u32::from_le_bytes([a, b, c, d])).ok(),
        _ => None,
    }
}

/// Walks the records of `block`, whose bytes are valid up to `limit` (the whole block, or
/// less for the last block): calls `each` with every record, and says where the walk stopped.
pub(crate) fn walk(block: &[u8], limit: usize, mut each: impl FnMut(Slot) -> bool) -> Stop {
    let size = block.len();
    let limit = limit.min(size);
    let mut pos = 0;
    loop {
        if pos + 2 > limit {
            return if pos == limit {
                Stop::Open(pos)
            } else {
                Stop::Bad(pos)
            };
        }
        let Some(len) = u16_at(block, pos) else {
            return Stop::Bad(pos);
        };
        if len == size - 1 {
            // The end mark; a closed block's pointer points at it.
            return if limit == size && u32_at(block, size - 4) == Some(pos) {
                Stop::Closed(pos)
            } else {
                Stop::Bad(pos)
            };
        }
        if len == 0 {
            // Zeros: the padding of a block nothing more was written to.
            return if block.get(pos..limit).is_some_and(is_zeroed) {
                Stop::Open(pos)
            } else {
                Stop::Bad(pos)
            };
        }
        if !fits(pos, len, size)
            || pos + len + 4 > limit
            || u16_at(block, pos + 2 + len) != Some(len)
        {
            return Stop::Bad(pos);
        }
        let slot = Slot { pos, len };
        if !each(slot) {
            return Stop::Open(pos);
        }
        pos = slot.end();
    }
}

/// The bytes that close a block at `pos`: the end mark, zeros, and the pointer to the mark.
pub(crate) fn closing(pos: usize, block: usize) -> Vec<u8> {
    let mut bytes = vec![0u8; block - pos];
    let mark = u16::try_from(block - 1).unwrap_or(u16::MAX).to_le_bytes();
    if let Some(at) = bytes.get_mut(..2) {
        at.copy_from_slice(&mark);
    }
    let n = bytes.len();
    if let Some(at) = bytes.get_mut(n - 4..) {
        at.copy_from_slice(&u32::try_from(pos).unwrap_or(u32::MAX).to_le_bytes());
    }
    bytes
}

/// Whether a payload reads as deleted (all zeros).
pub(crate) fn is_zeroed(payload: &[u8]) -> bool {
    payload.iter().all(|&b| b == 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block_of(records: &[&[u8]], size: usize, closed: bool) -> Vec<u8> {
        let mut b = Vec::new();
        for r in records {
            b.extend_from_slice(&(r.len() as u16).to_le_bytes());
            b.extend_from_slice(r);
            b.extend_from_slice(&(r.len() as u16).to_le_bytes());
        }
        if closed {
            let pos = b.len();
            b.extend(closing(pos, size));
        }
        b
    }

    #[test]
    fn walks_records_to_the_end_mark_or_the_end() {
        let b = block_of(&[b"ab", b"cde"], 32, true);
        let mut seen = Vec::new();
        assert_eq!(
            walk(&b, 32, |s| {
                seen.push(s);
                true
            }),
            Stop::Closed(13)
        );
        assert_eq!(seen, [Slot { pos: 0, len: 2 }, Slot { pos: 6, len: 3 }]);
        let mut open = block_of(&[b"ab"], 32, false);
        open.resize(32, 0);
        assert_eq!(walk(&open, 6, |_| true), Stop::Open(6)); // the file ends here
        assert_eq!(walk(&open, 32, |_| true), Stop::Open(6)); // zeros follow
    }

    #[test]
    fn torn_and_inconsistent_records_are_bad() {
        let mut b = block_of(&[b"ab", b"cdef"], 32, false);
        let len = b.len();
        b.resize(32, 0);
        assert_eq!(walk(&b, 9, |_| true), Stop::Bad(6)); // cut inside the second record
        let mut wrong = b.clone();
        wrong[12] = 9; // its trailing length disagrees
        assert_eq!(walk(&wrong, len, |_| true), Stop::Bad(6));
        let mut pointer = block_of(&[b"ab"], 32, true);
        pointer[28] = 7; // the pointer does not point at the end mark
        assert_eq!(walk(&pointer, 32, |_| true), Stop::Bad(6));
        assert!(fits(0, 22, 32));
        assert!(!fits(0, 23, 32));
    }
}
