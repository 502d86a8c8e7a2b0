//! The block format: records `[u16 LE length][payload]` packed into blocks of a fixed size; a
//! length of 0 ends a block (the rest of it is zeros). Deleted records keep their length and
//! have a zeroed payload. docs/file-formats.md has the layout.

/// The smallest block size this crate opens: room for one record of one byte and the end mark.
pub(crate) const MIN_BLOCK: u64 = 8;

/// One record's place in a block.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct Slot {
    /// The offset of its length field within the block.
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
        self.pos + 2 + self.len
    }
}

/// What walking a block found after its last good record.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Stop {
    /// A length of 0 (or the block's end): the block ends here, as written.
    End(usize),
    /// A length whose record would not fit in the block (or past `limit`): the bytes from here
    /// on are not records.
    Bad(usize),
}

/// Whether a record of `len` bytes fits at `pos` in a block of `block` bytes, with room for
/// the end mark after it (as the JS writer requires).
pub(crate) fn fits(pos: usize, len: usize, block: usize) -> bool {
    pos + 2 + len + 2 <= block
}

/// Walks the records of `block`, whose bytes are valid up to `limit` (the whole block, or less
/// for a block cut short): calls `each` with every record, and says where the walk stopped.
pub(crate) fn walk(block: &[u8], limit: usize, mut each: impl FnMut(Slot) -> bool) -> Stop {
    let size = block.len();
    let limit = limit.min(size);
    let mut pos = 0;
    loop {
        if pos + 2 > limit {
            return if pos + 2 > size {
                Stop::End(pos)
            } else {
                Stop::Bad(pos)
            };
        }
        let len = match block.get(pos..pos + 2) {
            Some(&[a, b]) => usize::from(u16::from_le_bytes([a, b])),
            _ => return Stop::Bad(pos),
        };
        if len == 0 {
            return Stop::End(pos);
        }
        if !fits(pos, len, size) || pos + 2 + len > limit {
            return Stop::Bad(pos);
        }
        let slot = Slot { pos, len };
        if !each(slot) {
            return Stop::End(pos);
        }
        pos = slot.end();
    }
}

/// Whether a payload reads as deleted (all zeros).
pub(crate) fn is_zeroed(payload: &[u8]) -> bool {
    payload.iter().all(|&b| b == 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block_of(records: &[&[u8]], size: usize) -> Vec<u8> {
        let mut b = Vec::new();
        for r in records {
            b.extend_from_slice(&(r.len() as u16).to_le_bytes());
            b.extend_from_slice(r);
        }
        b.resize(size, 0);
        b
    }

    #[test]
    fn walks_records_until_the_end_mark() {
        let b = block_of(&[b"ab", b"cde"], 32);
        let mut seen = Vec::new();
        assert_eq!(
            walk(&b, 32, |s| {
                seen.push(s);
                true
            }),
            Stop::End(9)
        );
        assert_eq!(seen, [Slot { pos: 0, len: 2 }, Slot { pos: 4, len: 3 }]);
    }

    #[test]
    fn a_length_past_the_block_or_the_limit_is_bad() {
        let mut b = block_of(&[b"ab"], 16);
        b[4] = 200; // a length that runs past the block
        assert_eq!(walk(&b, 16, |_| true), Stop::Bad(4));
        let b = block_of(&[b"ab", b"cdef"], 16);
        assert_eq!(walk(&b, 7, |_| true), Stop::Bad(4)); // the second record is cut at 7
        // A record that leaves no room for the end mark is not one the JS writer makes.
        let b = block_of(&[b"0123456789abc"], 16);
        assert_eq!(walk(&b, 16, |_| true), Stop::Bad(0));
        assert!(fits(0, 12, 16));
        assert!(!fits(0, 13, 16));
    }
}
