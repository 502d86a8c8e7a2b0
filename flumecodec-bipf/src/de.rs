//! Decoding: a serde `Deserializer` reading BIPF in place (strings and buffers borrowed).

use serde::de::{self, DeserializeSeed, IntoDeserializer, Visitor};
use serde::forward_to_deserialize_any;

use crate::error::DecodeError;
use crate::tag::{self, BipfType, Tag};

/// Decodes `bytes`, which must hold exactly one value, into `T` (a typed struct, or a
/// `serde_json::Value`, key order kept).
///
/// As in JS: a DOUBLE that holds an integer (one a 64-bit integer can hold) reads as that
/// integer; JS
/// `undefined` reads as `null` (`None`); a BUFFER reads as bytes (which `serde_json::Value`
/// refuses: JSON has none).
///
/// ```
/// let value: serde_json::Value =
///     flumecodec_bipf::from_slice(&[0x35, 0x18, b'f', b'o', b'o', 0x0e, 0x01])?;
/// assert_eq!(value, serde_json::json!({"foo": true}));
/// # Ok::<(), flumecodec_bipf::DecodeError>(())
/// ```
pub fn from_slice<'de, T: de::Deserialize<'de>>(bytes: &'de [u8]) -> Result<T, DecodeError> {
    let mut decoder = Decoder::new(bytes);
    let value = T::deserialize(&mut decoder)?;
    if decoder.pos != bytes.len() {
        return Err(DecodeError::TrailingBytes { at: decoder.pos });
    }
    Ok(value)
}

/// The integer a DOUBLE holds, if it holds one a 64-bit integer can (JS has one number type:
/// `3e9` is the integer 3000000000 there).
pub(crate) enum Integral {
    Signed(i64),
    Unsigned(u64),
}

/// 2^63 and 2^64 as floats: the ranges of i64 and u64 end below them.
const TWO_63: f64 = 9_223_372_036_854_775_808.0;
const TWO_64: f64 = 18_446_744_073_709_551_616.0;

pub(crate) fn integral(x: f64) -> Option<Integral> {
    if x.fract() != 0.0 || !x.is_finite() {
        return None;
    }
    if (-TWO_63..TWO_63).contains(&x) {
        Some(Integral::Signed(x as i64))
    } else if (0.0..TWO_64).contains(&x) {
        Some(Integral::Unsigned(x as u64))
    } else {
        None
    }
}

pub(crate) struct Decoder<'de> {
    bytes: &'de [u8],
    pos: usize,
    /// The end of the innermost container being read: no element may run past it.
    limit: usize,
    depth: usize,
}

impl<'de> Decoder<'de> {
    pub(crate) fn new(bytes: &'de [u8]) -> Decoder<'de> {
        Decoder {
            bytes,
            pos: 0,
            limit: bytes.len(),
            depth: 0,
        }
    }

    fn tag(&self) -> Result<Tag, DecodeError> {
        let within = self.bytes.get(..self.limit).unwrap_or_default();
        tag::read(within, self.pos)
    }

    /// The body of the value at `pos` (with its tag), moving past it.
    fn take(&mut self) -> Result<(Tag, usize, &'de [u8]), DecodeError> {
        let tag = self.tag()?;
        let at = self.pos;
        let start = at + tag.size;
        let body = self
            .bytes
            .get(start..start + tag.len)
            .ok_or(DecodeError::Truncated { at })?;
        self.pos = start + tag.len;
        Ok((tag, at, body))
    }

    fn enter(&mut self, end: usize) -> Result<usize, DecodeError> {
        self.depth += 1;
        if self.depth > crate::MAX_DEPTH {
            return Err(DecodeError::TooDeep);
        }
        Ok(std::mem::replace(&mut self.limit, end))
    }

    fn leave(&mut self, outer_limit: usize) {
        self.depth -= 1;
        self.limit = outer_limit;
    }

    /// The object key (a STRING) at `pos`, moving past it.
    fn object_key(&mut self) -> Result<&'de str, DecodeError> {
        let (tag, at, body) = self.take()?;
        if tag.ty != BipfType::String {
            return Err(DecodeError::Malformed {
                at,
                what: "an object key is not a string",
            });
        }
        utf8(body, at)
    }

    /// Whether the next value is `null` or JS `undefined`.
    fn peek_nothing(&self) -> Result<bool, DecodeError> {
        let tag = self.tag()?;
        Ok(tag.ty == BipfType::BoolNull
            && (tag.len == 0 || self.bytes.get(self.pos + tag.size) == Some(&2)))
    }
}

pub(crate) fn int(body: &[u8], at: usize) -> Result<i32, DecodeError> {
    body.try_into()
        .map(i32::from_le_bytes)
        .map_err(|_| DecodeError::Malformed {
            at,
            what: "an INT is not 4 bytes",
        })
}

pub(crate) fn double(body: &[u8], at: usize) -> Result<f64, DecodeError> {
    body.try_into()
        .map(f64::from_le_bytes)
        .map_err(|_| DecodeError::Malformed {
            at,
            what: "a DOUBLE is not 8 bytes",
        })
}

/// A bool/null body: `None` for null and undefined.
pub(crate) fn boolnull(body: &[u8], at: usize) -> Result<Option<bool>, DecodeError> {
    match body {
        [] | [2] => Ok(None),
        [0] => Ok(Some(false)),
        [1] => Ok(Some(true)),
        [_] => Err(DecodeError::Malformed {
            at,
            what: "a bool/null byte other than 0, 1 or 2",
        }),
        _ => Err(DecodeError::Malformed {
            at,
            what: "a bool/null body longer than one byte",
        }),
    }
}

pub(crate) fn utf8(body: &[u8], at: usize) -> Result<&str, DecodeError> {
    std::str::from_utf8(body).map_err(|_| DecodeError::NotUtf8 { at })
}

impl<'de> de::Deserializer<'de> for &mut Decoder<'de> {
    type Error = DecodeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        let (tag, at, body) = self.take()?;
        match tag.ty {
            BipfType::String => visitor.visit_borrowed_str(utf8(body, at)?),
            BipfType::Buffer => visitor.visit_borrowed_bytes(body),
            BipfType::Int => visitor.visit_i32(int(body, at)?),
            BipfType::Double => {
                let x = double(body, at)?;
                match integral(x) {
                    Some(Integral::Signed(n)) => visitor.visit_i64(n),
                    Some(Integral::Unsigned(n)) => visitor.visit_u64(n),
                    None => visitor.visit_f64(x),
                }
            }
            BipfType::BoolNull => match boolnull(body, at)? {
                Some(b) => visitor.visit_bool(b),
                None => visitor.visit_unit(),
            },
            BipfType::Array => {
                let end = self.pos;
                self.pos = at + tag.size;
                let outer = self.enter(end)?;
                let value = visitor.visit_seq(Elements { decoder: self, end })?;
                if self.pos != end {
                    return Err(DecodeError::Malformed {
                        at,
                        what: "array elements left over",
                    });
                }
                self.leave(outer);
                Ok(value)
            }
            BipfType::Object => {
                let end = self.pos;
                self.pos = at + tag.size;
                let outer = self.enter(end)?;
                let value = visitor.visit_map(Entries { decoder: self, end })?;
                if self.pos != end {
                    return Err(DecodeError::Malformed {
                        at,
                        what: "object entries left over",
                    });
                }
                self.leave(outer);
                Ok(value)
            }
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        if self.peek_nothing()? {
            self.take()?;
            visitor.visit_none()
        } else {
            visitor.visit_some(self)
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DecodeError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DecodeError> {
        let tag = self.tag()?;
        match tag.ty {
            BipfType::String => {
                let (_, at, body) = self.take()?;
                visitor.visit_enum(utf8(body, at)?.into_deserializer())
            }
            BipfType::Object => {
                let (tag, at, _) = self.take()?;
                let end = self.pos;
                self.pos = at + tag.size;
                let outer = self.enter(end)?;
                let value = visitor.visit_enum(Variant { decoder: self })?;
                if self.pos != end {
                    return Err(DecodeError::Malformed {
                        at,
                        what: "an enum object with more than one key",
                    });
                }
                self.leave(outer);
                Ok(value)
            }
            _ => Err(DecodeError::Custom(
                "an enum must be a string or an object of one key".into(),
            )),
        }
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        self.take()?;
        visitor.visit_unit()
    }

    forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        unit unit_struct seq tuple tuple_struct map struct identifier
    }
}

struct Elements<'a, 'de> {
    decoder: &'a mut Decoder<'de>,
    end: usize,
}

impl<'de> de::SeqAccess<'de> for Elements<'_, 'de> {
    type Error = DecodeError;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, DecodeError> {
        if self.decoder.pos >= self.end {
            return Ok(None);
        }
        seed.deserialize(&mut *self.decoder).map(Some)
    }
}

struct Entries<'a, 'de> {
    decoder: &'a mut Decoder<'de>,
    end: usize,
}

impl<'de> de::MapAccess<'de> for Entries<'_, 'de> {
    type Error = DecodeError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, DecodeError> {
        if self.decoder.pos >= self.end {
            return Ok(None);
        }
        let key = self.decoder.object_key()?;
        seed.deserialize(de::value::BorrowedStrDeserializer::new(key))
            .map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(
        &mut self,
        seed: V,
    ) -> Result<V::Value, DecodeError> {
        if self.decoder.pos >= self.end {
            return Err(DecodeError::Malformed {
                at: self.decoder.pos,
                what: "an object key without a value",
            });
        }
        seed.deserialize(&mut *self.decoder)
    }
}

struct Variant<'a, 'de> {
    decoder: &'a mut Decoder<'de>,
}

impl<'a, 'de> de::EnumAccess<'de> for Variant<'a, 'de> {
    type Error = DecodeError;
    type Variant = Self;

    fn variant_seed<V: DeserializeSeed<'de>>(
        self,
        seed: V,
    ) -> Result<(V::Value, Self), DecodeError> {
        let key = self.decoder.object_key()?;
        let value = seed.deserialize(de::value::BorrowedStrDeserializer::new(key))?;
        Ok((value, self))
    }
}

impl<'de> de::VariantAccess<'de> for Variant<'_, 'de> {
    type Error = DecodeError;

    fn unit_variant(self) -> Result<(), DecodeError> {
        de::Deserialize::deserialize(&mut *self.decoder)
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(
        self,
        seed: T,
    ) -> Result<T::Value, DecodeError> {
        seed.deserialize(&mut *self.decoder)
    }

    fn tuple_variant<V: Visitor<'de>>(
        self,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, DecodeError> {
        de::Deserializer::deserialize_any(&mut *self.decoder, visitor)
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DecodeError> {
        de::Deserializer::deserialize_any(&mut *self.decoder, visitor)
    }
}
