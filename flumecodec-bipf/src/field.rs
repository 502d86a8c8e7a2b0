//! [`BipfField`]: one BIPF value inside a record's bytes, read where it lies.

use std::cmp::Ordering;
use std::fmt;

use serde::Deserialize;

use crate::de::{self, Decoder};
use crate::error::DecodeError;
use crate::tag::{self, BipfType};

/// One BIPF value inside a buffer: its exact bytes (tag and body), read only as far as asked.
///
/// Finding a key walks the object's entries by their tags, never looking inside the values it
/// skips: what jitdb's `seekKey` does. Every tag on the way is checked against the bytes
/// around it, so a damaged record gives a [`DecodeError`], never a read out of bounds.
///
/// ```
/// use flumecodec_bipf::{BipfField, to_vec};
/// use serde_json::json;
///
/// let bytes = to_vec(&json!({"value": {"author": "@a", "sequence": 7, "content": {"type": "vote"}}}))?;
/// let record = BipfField::from_bytes(&bytes)?;
/// let ty = record.get(&["value", "content", "type"])?.and_then(|f| f.as_str());
/// assert_eq!(ty, Some("vote"));
/// assert_eq!(record.get(&["value", "sequence"])?.and_then(|f| f.as_i64()), Some(7));
/// assert_eq!(record.get(&["value", "nope"])?, None);
/// # Ok::<(), flumecodec_bipf::Error>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct BipfField<'a> {
    raw: &'a [u8],
    ty: BipfType,
    /// Where the body starts in `raw` (the tag's length).
    body_at: usize,
    /// Where `raw` starts in the buffer it was read from (for error positions).
    at: usize,
}

impl<'a> BipfField<'a> {
    /// The value that `bytes` hold, exactly (bytes left over are an error).
    pub fn from_bytes(bytes: &'a [u8]) -> Result<BipfField<'a>, DecodeError> {
        let field = BipfField::at(bytes, 0)?;
        if field.raw.len() != bytes.len() {
            return Err(DecodeError::TrailingBytes {
                at: field.raw.len(),
            });
        }
        Ok(field)
    }

    /// The value starting at byte `start` of `bytes` (a position jitdb-style code keeps).
    pub fn at(bytes: &'a [u8], start: usize) -> Result<BipfField<'a>, DecodeError> {
        let tag = tag::read(bytes, start)?;
        let raw = bytes
            .get(start..start + tag.size + tag.len)
            .ok_or(DecodeError::Truncated { at: start })?;
        Ok(BipfField {
            raw,
            ty: tag.ty,
            body_at: tag.size,
            at: start,
        })
    }

    /// The value's bytes, tag and body.
    pub fn raw(&self) -> &'a [u8] {
        self.raw
    }

    /// The value's body (its bytes after the tag).
    pub fn body(&self) -> &'a [u8] {
        self.raw.get(self.body_at..).unwrap_or_default()
    }

    /// Where the value starts in the buffer it was read from.
    pub fn position(&self) -> usize {
        self.at
    }

    /// The value's type.
    pub fn bipf_type(&self) -> BipfType {
        self.ty
    }

    /// The value at `path` (object keys from here): `Ok(None)` when a step is missing or not
    /// an object. A key that appears twice counts as its last, as in a full decode (JS writes
    /// each key once; jitdb's `seekKey` would take the first).
    pub fn get<S: AsRef<str>>(&self, path: &[S]) -> Result<Option<BipfField<'a>>, DecodeError> {
        let mut here = *self;
        for key in path {
            match here.member(key.as_ref())? {
                Some(next) => here = next,
                None => return Ok(None),
            }
        }
        Ok(Some(here))
    }

    /// The value of `key` if this is an object that has it.
    pub fn member(&self, key: &str) -> Result<Option<BipfField<'a>>, DecodeError> {
        if self.ty != BipfType::Object {
            return Ok(None);
        }
        // The hot loop of in-place reads: tags are read with a fast path for one and two
        // bytes, and a value is only made into a field when its key matches.
        let raw = self.raw;
        let end = raw.len();
        let mut found = None;
        let mut at = self.body_at;
        while at < end {
            let (key_tag, key_size) =
                varint(raw, at).ok_or(DecodeError::Truncated { at: self.at + at })?;
            if key_tag & 7 != 0 {
                return Err(DecodeError::Malformed {
                    at: self.at + at,
                    what: "an object key is not a string",
                });
            }
            let key_start = at + key_size;
            let value_at = key_start.saturating_add((key_tag >> 3) as usize);
            let (value_tag, value_size) =
                varint(raw, value_at).ok_or(DecodeError::Truncated { at: self.at + at })?;
            let value_end = value_at
                .saturating_add(value_size)
                .saturating_add((value_tag >> 3) as usize);
            if value_end > end {
                return Err(DecodeError::Truncated {
                    at: self.at + value_at,
                });
            }
            if raw.get(key_start..value_at) == Some(key.as_bytes()) {
                found = Some(value_at);
            }
            at = value_end;
        }
        match found {
            Some(value_at) => {
                let value = BipfField::at(raw, value_at).map_err(|e| self.shift(e))?;
                Ok(Some(BipfField {
                    at: self.at + value_at,
                    ..value
                }))
            }
            None => Ok(None),
        }
    }

    /// The `index`th element if this is an array that long.
    pub fn element(&self, index: usize) -> Result<Option<BipfField<'a>>, DecodeError> {
        let mut elements = self.elements();
        for _ in 0..index {
            match elements.next() {
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(e),
                None => return Ok(None),
            }
        }
        elements.next().transpose()
    }

    /// The elements of an array (nothing for any other type).
    pub fn elements(&self) -> Elements<'a> {
        Elements {
            field: *self,
            at: if self.ty == BipfType::Array {
                self.body_at
            } else {
                self.raw.len()
            },
        }
    }

    /// The keys and values of an object, in stored order (nothing for any other type).
    pub fn entries(&self) -> Members<'a> {
        Members {
            field: *self,
            at: if self.ty == BipfType::Object {
                self.body_at
            } else {
                self.raw.len()
            },
        }
    }

    /// The text of a string (`None` for other types, or text that is not UTF-8).
    pub fn as_str(&self) -> Option<&'a str> {
        (self.ty == BipfType::String)
            .then(|| std::str::from_utf8(self.body()).ok())
            .flatten()
    }

    /// The bytes of a BUFFER.
    pub fn as_buffer(&self) -> Option<&'a [u8]> {
        (self.ty == BipfType::Buffer).then(|| self.body())
    }

    /// A number as a float (INT or DOUBLE).
    pub fn as_f64(&self) -> Option<f64> {
        match self.ty {
            BipfType::Int => de::int(self.body(), self.at).ok().map(f64::from),
            BipfType::Double => de::double(self.body(), self.at).ok(),
            _ => None,
        }
    }

    /// A number that is an integer an `i64` holds (an INT, or a DOUBLE holding one).
    pub fn as_i64(&self) -> Option<i64> {
        match self.ty {
            BipfType::Int => de::int(self.body(), self.at).ok().map(i64::from),
            BipfType::Double => match de::integral(de::double(self.body(), self.at).ok()?)? {
                de::Integral::Signed(n) => Some(n),
                de::Integral::Unsigned(_) => None,
            },
            _ => None,
        }
    }

    /// A number that is a non-negative integer a `u64` holds.
    pub fn as_u64(&self) -> Option<u64> {
        match self.ty {
            BipfType::Double => match de::integral(de::double(self.body(), self.at).ok()?)? {
                de::Integral::Signed(n) => u64::try_from(n).ok(),
                de::Integral::Unsigned(n) => Some(n),
            },
            _ => self.as_i64().and_then(|n| u64::try_from(n).ok()),
        }
    }

    /// `true` or `false`.
    pub fn as_bool(&self) -> Option<bool> {
        match self.ty {
            BipfType::BoolNull => de::boolnull(self.body(), self.at).ok().flatten(),
            _ => None,
        }
    }

    /// Whether this is `null`.
    pub fn is_null(&self) -> bool {
        self.ty == BipfType::BoolNull && self.body().is_empty()
    }

    /// Whether this is JS `undefined` (a bool/null of byte 2).
    pub fn is_undefined(&self) -> bool {
        self.ty == BipfType::BoolNull && self.body() == [2]
    }

    /// Decodes this value into `T` (strings and buffers may borrow from the bytes).
    pub fn decode<T: Deserialize<'a>>(&self) -> Result<T, DecodeError> {
        let mut decoder = Decoder::new(self.raw);
        T::deserialize(&mut decoder).map_err(|e| self.shift(e))
    }

    /// Decodes this value into a `serde_json::Value` (key order kept).
    pub fn to_value(&self) -> Result<serde_json::Value, DecodeError> {
        self.decode()
    }

    /// Orders two values as npm `bipf`'s `compare` does: `null` first, JS `undefined` last,
    /// numbers by value (an INT against a DOUBLE too), other types by their type number, and
    /// values of one type by their bodies' bytes.
    pub fn compare(&self, other: &BipfField<'_>) -> Ordering {
        let nothing = |f: &BipfField<'_>| {
            if f.is_null() {
                Some(Ordering::Less)
            } else if f.is_undefined() {
                Some(Ordering::Greater)
            } else {
                None
            }
        };
        match (nothing(self), nothing(other)) {
            (Some(a), Some(b)) => return a.cmp(&b),
            (Some(a), None) => return a,
            (None, Some(b)) => return b.reverse(),
            (None, None) => {}
        }
        let number = |f: &BipfField<'_>| matches!(f.ty, BipfType::Int | BipfType::Double);
        if number(self) && number(other) {
            return match (self.as_f64(), other.as_f64()) {
                (Some(a), Some(b)) => a.partial_cmp(&b).unwrap_or(Ordering::Equal),
                _ => self.body().cmp(other.body()),
            };
        }
        if self.ty != other.ty {
            return self.ty.bits().cmp(&other.ty.bits());
        }
        self.body().cmp(other.body())
    }

    /// An error of a read inside `raw`, with its position made absolute.
    fn shift(&self, err: DecodeError) -> DecodeError {
        let at = |a: usize| a + self.at;
        match err {
            DecodeError::Truncated { at: a } => DecodeError::Truncated { at: at(a) },
            DecodeError::ReservedType { at: a } => DecodeError::ReservedType { at: at(a) },
            DecodeError::LengthTooLarge { at: a } => DecodeError::LengthTooLarge { at: at(a) },
            DecodeError::Malformed { at: a, what } => DecodeError::Malformed { at: at(a), what },
            DecodeError::NotUtf8 { at: a } => DecodeError::NotUtf8 { at: at(a) },
            DecodeError::TrailingBytes { at: a } => DecodeError::TrailingBytes { at: at(a) },
            other => other,
        }
    }
}

impl fmt::Debug for BipfField<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.to_value() {
            Ok(value) => write!(f, "BipfField({value})"),
            Err(_) => write!(f, "BipfField({:?} bytes {:02x?})", self.ty, self.raw),
        }
    }
}

/// The elements of an array ([`BipfField::elements`]).
pub struct Elements<'a> {
    field: BipfField<'a>,
    at: usize,
}

impl<'a> Iterator for Elements<'a> {
    type Item = Result<BipfField<'a>, DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        let raw = self.field.raw;
        if self.at >= raw.len() {
            return None;
        }
        match BipfField::at(raw, self.at) {
            Ok(value) => {
                let value_at = self.at;
                self.at += value.raw.len();
                Some(Ok(BipfField {
                    at: self.field.at + value_at,
                    ..value
                }))
            }
            Err(e) => {
                self.at = raw.len();
                Some(Err(self.field.shift(e)))
            }
        }
    }
}

/// The keys and values of an object ([`BipfField::entries`]).
pub struct Members<'a> {
    field: BipfField<'a>,
    at: usize,
}

impl<'a> Iterator for Members<'a> {
    type Item = Result<(&'a str, BipfField<'a>), DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        let raw = self.field.raw;
        if self.at >= raw.len() {
            return None;
        }
        let entry = (|| {
            let key = BipfField::at(raw, self.at)?;
            let text = key.as_str().ok_or(DecodeError::Malformed {
                at: self.at,
                what: "an object key is not a UTF-8 string",
            })?;
            let value_at = self.at + key.raw.len();
            let value = BipfField::at(raw, value_at)?;
            self.at = value_at + value.raw.len();
            Ok((
                text,
                BipfField {
                    at: self.field.at + value_at,
                    ..value
                },
            ))
        })();
        if entry.is_err() {
            self.at = raw.len();
        }
        Some(entry.map_err(|e| self.field.shift(e)))
    }
}

/// The varint at `at` and its length, with fast paths for the one- and two-byte tags of most
/// values; `None` when the bytes end first or it is longer than a tag can be (5 bytes).
#[inline]
fn varint(raw: &[u8], at: usize) -> Option<(u64, usize)> {
    let b0 = *raw.get(at)?;
    if b0 < 0x80 {
        return Some((u64::from(b0), 1));
    }
    let b1 = *raw.get(at + 1)?;
    if b1 < 0x80 {
        return Some((u64::from(b0 & 0x7f) | u64::from(b1) << 7, 2));
    }
    let mut value = u64::from(b0 & 0x7f) | u64::from(b1 & 0x7f) << 7;
    for i in 2..5 {
        let b = *raw.get(at + i)?;
        value |= u64::from(b & 0x7f) << (7 * i);
        if b < 0x80 {
            return Some((value, i + 1));
        }
    }
    None
}
