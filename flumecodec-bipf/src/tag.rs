//! The tag in front of every BIPF value: a varint of `length << 3 | type`.

use crate::error::{DecodeError, EncodeError};

/// The type of a BIPF value (the tag's low three bits).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum BipfType {
    /// UTF-8 text.
    String,
    /// Raw bytes (a JS `Buffer`).
    Buffer,
    /// A little-endian signed 32-bit integer.
    Int,
    /// A little-endian 64-bit float.
    Double,
    /// Values one after another.
    Array,
    /// Keys (strings) and values alternating.
    Object,
    /// `null` (no body), or one byte: `false` 0, `true` 1, JS `undefined` 2.
    BoolNull,
}

impl BipfType {
    /// The type of the low three bits of a tag; 7 is reserved.
    fn from_bits(bits: u64) -> Option<BipfType> {
        Some(match bits {
            0 => BipfType::String,
            1 => BipfType::Buffer,
            2 => BipfType::Int,
            3 => BipfType::Double,
            4 => BipfType::Array,
            5 => BipfType::Object,
            6 => BipfType::BoolNull,
            _ => return None,
        })
    }

    pub(crate) fn bits(self) -> u32 {
        match self {
            BipfType::String => 0,
            BipfType::Buffer => 1,
            BipfType::Int => 2,
            BipfType::Double => 3,
            BipfType::Array => 4,
            BipfType::Object => 5,
            BipfType::BoolNull => 6,
        }
    }
}

/// The longest body the JS encoder writes correctly: it shifts the length left by 3 in 32-bit
/// signed arithmetic, so a tag must stay below 2^31.
pub const MAX_LEN: usize = (1 << 28) - 1;

/// A tag read from the bytes: the value's type, its body's length, and where the body starts.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Tag {
    pub(crate) ty: BipfType,
    pub(crate) len: usize,
    /// The tag's own length in bytes (the body starts this far after the value's start).
    pub(crate) size: usize,
}

/// Reads the tag at `at` and checks that the body it announces lies within `bytes`.
pub(crate) fn read(bytes: &[u8], at: usize) -> Result<Tag, DecodeError> {
    let mut tag: u64 = 0;
    let mut size = 0usize;
    loop {
        let byte = *bytes
            .get(at + size)
            .ok_or(DecodeError::Truncated { at: at + size })?;
        // Five varint bytes hold 35 bits: anything longer is beyond the 2^31 a JS tag can be.
        if size == 5 {
            return Err(DecodeError::LengthTooLarge { at });
        }
        tag |= u64::from(byte & 0x7f) << (7 * size);
        size += 1;
        if byte & 0x80 == 0 {
            break;
        }
    }
    let len = usize::try_from(tag >> 3).map_err(|_| DecodeError::LengthTooLarge { at })?;
    if len > MAX_LEN {
        return Err(DecodeError::LengthTooLarge { at });
    }
    let ty = BipfType::from_bits(tag & 7).ok_or(DecodeError::ReservedType { at })?;
    let end = at
        .checked_add(size)
        .and_then(|s| s.checked_add(len))
        .ok_or(DecodeError::LengthTooLarge { at })?;
    if end > bytes.len() {
        return Err(DecodeError::Truncated { at });
    }
    Ok(Tag { ty, len, size })
}

/// The number of bytes the tag of a body of `len` bytes takes.
pub(crate) fn size(len: usize) -> usize {
    let mut tag = (len as u64) << 3;
    let mut size = 1;
    while tag >= 0x80 {
        tag >>= 7;
        size += 1;
    }
    size
}

/// Appends the tag of a `ty` body of `len` bytes.
pub(crate) fn write(out: &mut Vec<u8>, ty: BipfType, len: usize) -> Result<(), EncodeError> {
    let mut tag = check_len(len)? << 3 | u64::from(ty.bits());
    while tag >= 0x80 {
        out.push((tag as u8 & 0x7f) | 0x80);
        tag >>= 7;
    }
    out.push(tag as u8);
    Ok(())
}

/// Writes the tag of a body of `len` bytes into `slot`, which is exactly [`size`]`(len)` long.
pub(crate) fn write_into(slot: &mut [u8], ty: BipfType, len: usize) -> Result<(), EncodeError> {
    let mut tag = check_len(len)? << 3 | u64::from(ty.bits());
    for byte in slot.iter_mut() {
        *byte = (tag as u8 & 0x7f) | if tag >= 0x80 { 0x80 } else { 0 };
        tag >>= 7;
    }
    Ok(())
}

fn check_len(len: usize) -> Result<u64, EncodeError> {
    if len > MAX_LEN {
        return Err(EncodeError::TooLong { len });
    }
    Ok(len as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_round_trip_at_every_size() {
        for len in [0, 1, 15, 16, 1023, 1024, 8191, 8192, 1 << 20, MAX_LEN] {
            let mut out = Vec::new();
            write(&mut out, BipfType::Object, len).unwrap();
            assert_eq!(out.len(), size(len), "len {len}");
            let mut slot = vec![0; size(len)];
            write_into(&mut slot, BipfType::Object, len).unwrap();
            assert_eq!(slot, out);
            out.resize(out.len() + len, 0);
            let tag = read(&out, 0).unwrap();
            assert_eq!(
                (tag.ty, tag.len, tag.size),
                (BipfType::Object, len, size(len))
            );
        }
        assert!(matches!(
            write(&mut Vec::new(), BipfType::String, MAX_LEN + 1),
            Err(EncodeError::TooLong { .. })
        ));
    }

    #[test]
    fn bad_tags_are_typed_errors() {
        assert!(matches!(read(&[], 0), Err(DecodeError::Truncated { .. })));
        assert!(matches!(
            read(&[0x80], 0),
            Err(DecodeError::Truncated { .. })
        ));
        assert!(matches!(
            read(&[0x07], 0),
            Err(DecodeError::ReservedType { .. })
        ));
        assert!(matches!(
            read(&[0x28, b'h'], 0),
            Err(DecodeError::Truncated { .. })
        ));
        assert!(matches!(
            read(&[0xff, 0xff, 0xff, 0xff, 0x7f], 0),
            Err(DecodeError::LengthTooLarge { .. })
        ));
        assert!(matches!(
            read(&[0xff, 0xff, 0xff, 0xff, 0xff, 0x01], 0),
            Err(DecodeError::LengthTooLarge { .. })
        ));
    }
}
