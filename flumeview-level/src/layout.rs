//! How a level view's rows are laid out in its store: one row `encoded key -> seq` per key,
//! and the META row, below every key, with the view's version and checkpoint.

use flumedb_core::{Checkpoint, Seq, Stored};

use crate::error::LevelError;

/// The META row's key: below every encoded key (their tags start at 0x10).
pub(crate) const META: &[u8] = &[0x00];

/// The lowest key an index row can have: above META, so ranges from here never meet it.
pub(crate) const FIRST_ROW: &[u8] = &[0x01];

/// An index row's value: the record's seq, 8 bytes big-endian.
pub(crate) fn encode_seq(seq: Seq) -> [u8; 8] {
    seq.get().to_be_bytes()
}

/// The seq an index row's value holds.
pub(crate) fn decode_seq(value: &[u8]) -> Result<Seq, LevelError> {
    let bytes: [u8; 8] = value.try_into().map_err(|_| {
        LevelError::Corrupt(format!(
            "an index row's value has {} bytes, not 8",
            value.len()
        ))
    })?;
    Ok(Seq::new(u64::from_be_bytes(bytes)))
}

/// META's value: the version (u32 LE), then the checkpoint ([`Checkpoint::encode`]).
pub(crate) fn encode_meta(version: u32, checkpoint: Checkpoint) -> Vec<u8> {
    let mut out = version.to_le_bytes().to_vec();
    out.extend_from_slice(&checkpoint.encode());
    out
}

/// Reads META's value; an older layout (a bare since, without the record's fingerprint) does
/// not decode, so that index is rebuilt once.
pub(crate) fn decode_meta(bytes: &[u8]) -> Result<Stored, LevelError> {
    let bad = || LevelError::Corrupt(format!("META row of {} bytes", bytes.len()));
    let (version, checkpoint) = bytes.split_at_checked(4).ok_or_else(bad)?;
    let version = u32::from_le_bytes(version.try_into().map_err(|_| bad())?);
    let checkpoint = Checkpoint::decode(checkpoint).ok_or_else(bad)?;
    Ok(Stored {
        version,
        checkpoint,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seqs_round_trip_and_other_lengths_are_corrupt() {
        for seq in [0, 1, 255, 256, u64::MAX] {
            let value = encode_seq(Seq::new(seq));
            assert_eq!(decode_seq(&value).unwrap(), Seq::new(seq));
        }
        assert!(
            encode_seq(Seq::new(1)) < encode_seq(Seq::new(256)),
            "byte order is seq order"
        );
        for len in [0, 7, 9] {
            assert!(matches!(
                decode_seq(&vec![0; len]),
                Err(LevelError::Corrupt(_))
            ));
        }
        assert!(META < FIRST_ROW && FIRST_ROW < &[0x10][..]);
    }
}
