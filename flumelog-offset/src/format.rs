//! The two on-disk formats, as pure functions over the file's bytes: the native format (a
//! header, then frames checksummed against their position) and the JS format of flumelog-offset
//! 3.x (big-endian frames with a trailer of 4, 6 or 8 bytes). The byte layouts are in
//! `docs/file-formats.md` (section flumelog-offset), their one home.

/// The native file's magic bytes.
pub(crate) const MAGIC: &[u8; 8] = b"FLUMELOG";
/// The native format version this crate writes and reads.
pub(crate) const VERSION: u32 = 1;
/// Bytes of the native header; the first native seq.
pub(crate) const HEADER_LEN: u64 = 16;
const DELETED: u32 = 1 << 31;
/// The largest native payload.
pub(crate) const MAX_NATIVE_LEN: u64 = (DELETED - 1) as u64;

/// The trailer width of a JS-format log (JS `offsetCodec`).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum JsWidth {
    /// 4-byte trailer (`offsetCodec: 32`, the JS default): files up to 4 GiB.
    W32,
    /// 6-byte trailer (`offsetCodec: 48`).
    W48,
    /// 8-byte trailer (`offsetCodec: 53`): files up to 2^53 bytes.
    W53,
}

impl JsWidth {
    /// Trailer bytes.
    pub(crate) const fn bytes(self) -> u64 {
        match self {
            JsWidth::W32 => 4,
            JsWidth::W48 => 6,
            JsWidth::W53 => 8,
        }
    }

    /// The largest file end the trailer can hold.
    pub(crate) const fn max_end(self) -> u64 {
        match self {
            JsWidth::W32 => u32::MAX as u64,
            JsWidth::W48 => (1 << 48) - 1,
            JsWidth::W53 => (1 << 53) - 1,
        }
    }
}

/// A log file format.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Format {
    /// This crate's checksummed format (the default for new logs).
    Native,
    /// JS flumelog-offset 3.x, readable and writable by the JS package.
    Js(JsWidth),
}

impl Format {
    /// A short name for messages.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Format::Native => "native",
            Format::Js(JsWidth::W32) => "JS (32-bit trailer)",
            Format::Js(JsWidth::W48) => "JS (48-bit trailer)",
            Format::Js(JsWidth::W53) => "JS (53-bit trailer)",
        }
    }

    /// The seq of the first frame.
    pub(crate) fn first(self) -> u64 {
        match self {
            Format::Native => HEADER_LEN,
            Format::Js(_) => 0,
        }
    }

    /// Frame bytes besides the payload.
    pub(crate) fn overhead(self) -> u64 {
        match self {
            Format::Native => 12,
            Format::Js(w) => 8 + w.bytes(),
        }
    }

    /// Appends the frame for `data` at position `seq` to `out`.
    pub(crate) fn encode(self, seq: u64, data: &[u8], out: &mut Vec<u8>) {
        let len = data.len() as u32;
        match self {
            Format::Native => {
                out.extend_from_slice(&len.to_le_bytes());
                out.extend_from_slice(&native_crc(seq, len, data).to_le_bytes());
                out.extend_from_slice(data);
                out.extend_from_slice(&len.to_le_bytes());
            }
            Format::Js(w) => {
                out.extend_from_slice(&len.to_be_bytes());
                out.extend_from_slice(data);
                out.extend_from_slice(&len.to_be_bytes());
                let end = seq + 8 + w.bytes() + data.len() as u64;
                let trailer = end.to_be_bytes();
                let skip = trailer.len().saturating_sub(w.bytes() as usize);
                out.extend_from_slice(trailer.get(skip..).unwrap_or_default());
            }
        }
    }

    /// Checks the frame that starts at `seq`, within `bytes[..end]`.
    pub(crate) fn check(self, bytes: &[u8], seq: u64, end: u64) -> Check {
        match self {
            Format::Native => check_native(bytes, seq, end),
            Format::Js(w) => check_js(bytes, seq, end, w),
        }
    }

    /// The start of the frame that ends at `frame_end`, if a valid (or deleted) frame does.
    pub(crate) fn frame_ending_at(self, bytes: &[u8], frame_end: u64) -> Option<u64> {
        let trailer = match self {
            Format::Native => 4,
            Format::Js(w) => 4 + w.bytes(),
        };
        if frame_end < self.first() + self.overhead() {
            return None;
        }
        let len = match self {
            Format::Native => u32_le(bytes, frame_end - trailer)?,
            Format::Js(_) => u32_be(bytes, frame_end - trailer)?,
        } as u64;
        let start = frame_end.checked_sub(len + self.overhead())?;
        if start < self.first() {
            return None;
        }
        match self.check(bytes, start, frame_end) {
            Check::Valid { next, .. } | Check::Deleted { next } if next == frame_end => Some(start),
            _ => None,
        }
    }

    /// A native frame ending at `frame_end` whose delete was interrupted by a crash: lengths
    /// intact, the deleted bit set, the payload not yet all zeros (so the checksum fails).
    /// Returns its start and payload length.
    ///
    /// Only the checksum can prove it: `del` writes the word and the CRC of a zero payload
    /// together, so a set bit whose CRC is anything else is damage (e.g. a flipped bit 31).
    pub(crate) fn interrupted_delete_ending_at(
        self,
        bytes: &[u8],
        frame_end: u64,
    ) -> Option<(u64, u32)> {
        if self != Format::Native || frame_end < HEADER_LEN + 12 {
            return None;
        }
        let len = u32_le(bytes, frame_end - 4)?;
        let start = frame_end.checked_sub(u64::from(len) + 12)?;
        let word = u32_le(bytes, start)?;
        let crc = u32_le(bytes, start + 4)?;
        (start >= HEADER_LEN
            && word & DELETED != 0
            && word & !DELETED == len
            && crc == native_crc_of_zeros(start, word, len))
        .then_some((start, len))
    }

    /// The first position at or after `from` (and before `end`) where a valid (or deleted)
    /// frame starts: where `verify` resumes after damage.
    pub(crate) fn next_valid_frame_from(self, bytes: &[u8], from: u64, end: u64) -> Option<u64> {
        let mut at = from.max(self.first());
        while at + self.overhead() <= end {
            if matches!(
                self.check(bytes, at, end),
                Check::Valid { .. } | Check::Deleted { .. }
            ) {
                return Some(at);
            }
            at += 1;
        }
        None
    }
}

/// What is at a position.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Check {
    /// A record: its payload is `bytes[payload.0..payload.1]`, the next frame starts at `next`.
    Valid { payload: (usize, usize), next: u64 },
    /// A deleted record.
    Deleted { next: u64 },
    /// The frame's structure holds but its checksum does not: damaged data.
    Corrupt { next: u64 },
    /// No frame starts here.
    NotAFrame,
}

fn u32_le(bytes: &[u8], at: u64) -> Option<u32> {
    let at = usize::try_from(at).ok()?;
    let b = bytes.get(at..at.checked_add(4)?)?;
    Some(u32::from_le_bytes(b.try_into().ok()?))
}

fn u32_be(bytes: &[u8], at: u64) -> Option<u32> {
    let at = usize::try_from(at).ok()?;
    let b = bytes.get(at..at.checked_add(4)?)?;
    Some(u32::from_be_bytes(b.try_into().ok()?))
}

fn uint_be(bytes: &[u8], at: u64, width: u64) -> Option<u64> {
    let at = usize::try_from(at).ok()?;
    let b = bytes.get(at..at.checked_add(width as usize)?)?;
    Some(b.iter().fold(0u64, |acc, &x| (acc << 8) | u64::from(x)))
}

/// The native checksum: CRC32 of the payload, with the frame's position and length word
/// folded into the initial value. One pass over the payload; a frame read at another position,
/// or with any bit of its length word changed, gives another CRC (the initial value differs,
/// and a CRC maps distinct initial values to distinct results).
pub(crate) fn native_crc(seq: u64, word: u32, payload: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new_with_initial(native_crc_init(seq, word));
    hasher.update(payload);
    hasher.finalize()
}

/// The initial CRC value of the frame at `seq` with length word `word`.
fn native_crc_init(seq: u64, word: u32) -> u32 {
    (seq as u32) ^ ((seq >> 32) as u32).rotate_left(16) ^ word.rotate_left(8) ^ 0x464c_4f47
}

/// [`native_crc`] of a payload of `len` zero bytes (what `del` leaves), without allocating
/// `len` bytes: a payload may be up to 2 GiB.
pub(crate) fn native_crc_of_zeros(seq: u64, word: u32, len: u32) -> u32 {
    static ZEROS: [u8; 16 << 10] = [0; 16 << 10];
    let mut hasher = crc32fast::Hasher::new_with_initial(native_crc_init(seq, word));
    let mut left = len as usize;
    while left >= ZEROS.len() {
        hasher.update(&ZEROS);
        left -= ZEROS.len();
    }
    hasher.update(ZEROS.get(..left).unwrap_or_default());
    hasher.finalize()
}

/// The granularity at which an interrupted write leaves a file. The kernel copies a `pwrite`
/// into the page cache page by page and stops only between pages when the process is killed;
/// power loss loses whole pages (file-system blocks). 4 KiB divides every page size.
const TEAR_ALIGN: u64 = 4096;

/// Whether `file` (a native file's bytes, with no valid frame after the header) holds a first
/// append cut short rather than damage: the first frame's length word, not deleted (an append
/// never writes one), declares a frame that runs past where the written bytes stop, and they
/// stop at a page boundary (the end of the file, or where only zero pages follow). A file that
/// ends where its trailer says a frame spanning it ends holds a whole (damaged) frame instead.
pub(crate) fn native_torn_first_append(file: &[u8]) -> bool {
    let size = file.len() as u64;
    let Some(word) = u32_le(file, HEADER_LEN) else {
        return false;
    };
    if word & DELETED != 0 {
        return false;
    }
    let data_end = file
        .iter()
        .rposition(|b| *b != 0)
        .map_or(0, |i| i as u64 + 1);
    let written = data_end.next_multiple_of(TEAR_ALIGN);
    let whole_frame_by_trailer = size >= HEADER_LEN + 12
        && u32_le(file, size - 4).map(u64::from) == Some(size - HEADER_LEN - 12);
    written <= size && HEADER_LEN + 12 + u64::from(word) > written && !whole_frame_by_trailer
}

/// The native header bytes.
pub(crate) fn native_header() -> [u8; HEADER_LEN as usize] {
    let mut header = [0u8; HEADER_LEN as usize];
    header[..8].copy_from_slice(MAGIC);
    header[8..12].copy_from_slice(&VERSION.to_le_bytes());
    let crc = crc32fast::hash(&header[..12]);
    header[12..].copy_from_slice(&crc.to_le_bytes());
    header
}

/// Whether a 16-byte file start that is not a valid native header is one that was damaged:
/// only the magic differs (the header's CRC matches it with the real magic), or the magic is
/// within 2 bits of `FLUMELOG`. A JS log starts with a big-endian record length: it could only
/// start so with a first record of over 32 MiB that begins with (nearly) `ELOG`.
pub(crate) fn looks_like_damaged_native_header(head: &[u8; HEADER_LEN as usize]) -> bool {
    let mut mended = *head;
    mended[..8].copy_from_slice(MAGIC);
    let only_magic_damaged = crc32fast::hash(&mended[..12]).to_le_bytes() == head[12..16];
    let flipped_bits: u32 = head[..8]
        .iter()
        .zip(MAGIC)
        .map(|(a, b)| (a ^ b).count_ones())
        .sum();
    only_magic_damaged || flipped_bits <= 2
}

/// The deleted form of a native frame's first 8 bytes, for a payload of `len` zeros.
pub(crate) fn native_deleted_head(seq: u64, len: u32) -> [u8; 8] {
    let word = len | DELETED;
    let mut head = [0u8; 8];
    head[..4].copy_from_slice(&word.to_le_bytes());
    head[4..].copy_from_slice(&native_crc_of_zeros(seq, word, len).to_le_bytes());
    head
}

fn check_native(bytes: &[u8], seq: u64, end: u64) -> Check {
    if seq < HEADER_LEN || seq.saturating_add(12) > end {
        return Check::NotAFrame;
    }
    let (Some(word), Some(crc)) = (u32_le(bytes, seq), u32_le(bytes, seq + 4)) else {
        return Check::NotAFrame;
    };
    let len = u64::from(word & !DELETED);
    let next = seq + 12 + len;
    if next > end || u32_le(bytes, seq + 8 + len) != Some(word & !DELETED) {
        return Check::NotAFrame;
    }
    let (start, stop) = ((seq + 8) as usize, (seq + 8 + len) as usize);
    let Some(payload) = bytes.get(start..stop) else {
        return Check::NotAFrame;
    };
    if native_crc(seq, word, payload) != crc {
        return Check::Corrupt { next };
    }
    if word & DELETED != 0 {
        Check::Deleted { next }
    } else {
        Check::Valid {
            payload: (start, stop),
            next,
        }
    }
}

fn check_js(bytes: &[u8], seq: u64, end: u64, w: JsWidth) -> Check {
    if seq.saturating_add(8 + w.bytes()) > end {
        return Check::NotAFrame;
    }
    let Some(len) = u32_be(bytes, seq) else {
        return Check::NotAFrame;
    };
    let len = u64::from(len);
    let next = seq + 8 + w.bytes() + len;
    if next > end
        || u32_be(bytes, seq + 4 + len) != Some(len as u32)
        || uint_be(bytes, seq + 8 + len, w.bytes()) != Some(next)
    {
        return Check::NotAFrame;
    }
    let (start, stop) = ((seq + 4) as usize, (seq + 4 + len) as usize);
    match bytes.get(start..stop) {
        // JS deletes by zeroing the payload; an empty payload reads as deleted too.
        Some(payload) if payload.iter().all(|b| *b == 0) => Check::Deleted { next },
        Some(_) => Check::Valid {
            payload: (start, stop),
            next,
        },
        None => Check::NotAFrame,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(format: Format, records: &[&[u8]]) -> (Vec<u8>, Vec<u64>) {
        let mut bytes = match format {
            Format::Native => native_header().to_vec(),
            Format::Js(_) => Vec::new(),
        };
        let mut seqs = Vec::new();
        for r in records {
            seqs.push(bytes.len() as u64);
            let seq = bytes.len() as u64;
            format.encode(seq, r, &mut bytes);
        }
        (bytes, seqs)
    }

    #[test]
    fn js_frames_match_the_fixture_bytes() {
        // The first frame of the JS fixture offset.log: L=0x2d, end=0x39.
        let payload = "{\"i\":0,\"type\":\"hello\",\"text\":\"héllo wörld\"}".as_bytes();
        let mut out = Vec::new();
        Format::Js(JsWidth::W32).encode(0, payload, &mut out);
        assert_eq!(&out[..4], &[0, 0, 0, 0x2d]);
        assert_eq!(&out[out.len() - 8..], &[0, 0, 0, 0x2d, 0, 0, 0, 0x39]);
        let mut out = Vec::new();
        Format::Js(JsWidth::W53).encode(0, payload, &mut out);
        assert_eq!(&out[out.len() - 8..], &[0, 0, 0, 0, 0, 0, 0, 0x3d]);
    }

    #[test]
    fn frames_check_and_scan_in_every_format() {
        for format in [
            Format::Native,
            Format::Js(JsWidth::W32),
            Format::Js(JsWidth::W48),
            Format::Js(JsWidth::W53),
        ] {
            let (bytes, seqs) = file(format, &[b"one", b"two!", b"three"]);
            let end = bytes.len() as u64;
            for (i, &seq) in seqs.iter().enumerate() {
                let Check::Valid { payload, next } = format.check(&bytes, seq, end) else {
                    panic!("{format:?} frame {i} does not check");
                };
                assert_eq!(
                    &bytes[payload.0..payload.1],
                    [&b"one"[..], b"two!", b"three"][i]
                );
                assert_eq!(format.frame_ending_at(&bytes, next), Some(seq));
            }
            for probe in 0..end {
                let expect = seqs.iter().copied().find(|&s| s >= probe);
                assert_eq!(
                    format.next_valid_frame_from(&bytes, probe, end),
                    expect,
                    "{format:?} {probe}"
                );
            }
        }
    }

    #[test]
    fn native_checks_catch_every_byte_flip() {
        let (bytes, seqs) = file(Format::Native, &[b"alpha", b"beta"]);
        let end = bytes.len() as u64;
        for i in HEADER_LEN as usize..bytes.len() {
            let mut bad = bytes.clone();
            bad[i] ^= 0x04;
            let first = Format::Native.check(&bad, seqs[0], end);
            let second = Format::Native.check(&bad, seqs[1], end);
            let both_valid =
                matches!(first, Check::Valid { .. }) && matches!(second, Check::Valid { .. });
            assert!(!both_valid, "flip at byte {i} not detected");
        }
    }
}
