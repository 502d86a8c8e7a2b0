//! Checking that bytes are one well-formed BIPF value, without building it.

use crate::error::DecodeError;
use crate::field::BipfField;
use crate::tag::BipfType;

/// Checks that `bytes` are exactly one well-formed BIPF value that [`from_slice`] decodes
/// into a `serde_json::Value` or a typed value: every tag within its container, INTs of 4
/// bytes, DOUBLEs of 8, bool/null bodies of 0, 1 or 2, UTF-8 strings and keys, nesting at most
/// [`MAX_DEPTH`](crate::MAX_DEPTH) deep.
///
/// [`from_slice`]: crate::from_slice
///
/// ```
/// assert!(flumecodec_bipf::validate(&[0x0e, 0x01]).is_ok()); // true
/// assert!(flumecodec_bipf::validate(&[0x0e, 0x05]).is_err()); // a bool/null byte of 5
/// assert!(flumecodec_bipf::validate(&[0x28, b'h']).is_err()); // "hello", cut short
/// ```
pub fn validate(bytes: &[u8]) -> Result<(), DecodeError> {
    check(BipfField::from_bytes(bytes)?, 0)
}

fn check(field: BipfField<'_>, depth: usize) -> Result<(), DecodeError> {
    let malformed = |what| {
        Err(DecodeError::Malformed {
            at: field_at(&field),
            what,
        })
    };
    match field.bipf_type() {
        BipfType::String => {
            if field.as_str().is_none() {
                return Err(DecodeError::NotUtf8 {
                    at: field_at(&field),
                });
            }
        }
        BipfType::Buffer => {}
        BipfType::Int => {
            if field.body().len() != 4 {
                return malformed("an INT is not 4 bytes");
            }
        }
        BipfType::Double => {
            if field.body().len() != 8 {
                return malformed("a DOUBLE is not 8 bytes");
            }
        }
        BipfType::BoolNull => {
            crate::de::boolnull(field.body(), field_at(&field))?;
        }
        BipfType::Array => {
            if depth >= crate::MAX_DEPTH {
                return Err(DecodeError::TooDeep);
            }
            for element in field.elements() {
                check(element?, depth + 1)?;
            }
        }
        BipfType::Object => {
            if depth >= crate::MAX_DEPTH {
                return Err(DecodeError::TooDeep);
            }
            for entry in field.entries() {
                let (_, value) = entry?;
                check(value, depth + 1)?;
            }
        }
    }
    Ok(())
}

fn field_at(field: &BipfField<'_>) -> usize {
    field.position()
}
