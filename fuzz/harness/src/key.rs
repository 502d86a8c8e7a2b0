//! `level_key`: flumeview-level's order-preserving key codec: `Key::decode` of arbitrary bytes,
//! the round trip, and the order of keys against the order of their encodings.
//!
//! Input: one byte that says where to split, then bytes cut into two candidate keys `a` and
//! `b` (each also decoded alone).

use std::cmp::Ordering;

use flumeview_level::{Key, KeyError, MAX_ENCODED_LEN};

/// The harness: see the module documentation for the input.
pub fn level_key(data: &[u8]) {
    let Some((&split, rest)) = data.split_first() else {
        return;
    };
    let at = if rest.is_empty() {
        0
    } else {
        usize::from(split) % (rest.len() + 1)
    };
    let (a, b) = rest.split_at(at);
    let _whole = round_trip(rest);
    if let (Some((ka, ea)), Some((kb, eb))) = (round_trip(a), round_trip(b)) {
        // The index order is the byte order of the (canonical) encodings.
        assert_eq!(
            ka.cmp(&kb),
            ea.cmp(&eb),
            "key order and byte order differ: {ka:?} vs {kb:?}"
        );
        assert_eq!(ka == kb, ea == eb);
    }
}

/// Decodes `bytes`; for a key, checks that its encoding decodes to the same key, and returns
/// the key and its canonical encoding.
fn round_trip(bytes: &[u8]) -> Option<(Key, Vec<u8>)> {
    let key = match Key::decode(bytes) {
        Ok(key) => key,
        Err(err) => {
            assert!(
                matches!(err, KeyError::Malformed(_) | KeyError::TooDeep),
                "decode failed with {err:?}"
            );
            return None;
        }
    };
    let encoded = match key.encode() {
        Ok(encoded) => encoded,
        Err(KeyError::TooLong(n)) if bytes.len() > MAX_ENCODED_LEN => {
            assert!(n > MAX_ENCODED_LEN);
            return None;
        }
        Err(err) => panic!("a decoded key does not encode ({err:?}): {key:?}"),
    };
    // Only -0 has a second encoding (decoded as 0); otherwise decoding is exact.
    assert!(
        encoded.len() == bytes.len(),
        "re-encoding changed the length: {} to {}",
        bytes.len(),
        encoded.len()
    );
    assert!(
        encoded.len() <= key.encoded_len_bound(),
        "encoded_len_bound is too small for {key:?}"
    );
    match Key::decode(&encoded) {
        Ok(again) => {
            assert_eq!(again.cmp(&key), Ordering::Equal, "{again:?} != {key:?}");
            assert_eq!(
                again.encode().ok(),
                Some(encoded.clone()),
                "encoding is not stable"
            );
        }
        Err(err) => panic!("an encoding does not decode ({err:?}): {key:?}"),
    }
    Some((key, encoded))
}
