//! Encoding: a serde `Serializer` writing BIPF as the npm `bipf` 1.9.0 encoder does.

use serde::ser::{self, Serialize};

use crate::error::EncodeError;
use crate::tag::{self, BipfType};

/// Encodes `value` into a new buffer.
///
/// ```
/// let bytes = flumecodec_bipf::to_vec(&serde_json::json!({"foo": true}))?;
/// assert_eq!(bytes, [0x35, 0x18, b'f', b'o', b'o', 0x0e, 0x01]);
/// # Ok::<(), flumecodec_bipf::EncodeError>(())
/// ```
pub fn to_vec<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, EncodeError> {
    let mut out = Vec::new();
    encode_into(value, &mut out)?;
    Ok(out)
}

/// Appends the encoding of `value` to `out`; on an error `out` is left as it was.
///
/// As in JS: an integer (or an integral float) within ±(2^31 − 1) is an INT, any other number
/// a DOUBLE (−0 is the INT 0); NaN and infinities are refused; `None` and `()` are `null`;
/// object keys are written in JS property order: keys that are array indexes ("0", "1", …)
/// first, ascending, then the others in the order given.
pub fn encode_into<T: Serialize + ?Sized>(value: &T, out: &mut Vec<u8>) -> Result<(), EncodeError> {
    let before = out.len();
    let result = value.serialize(&mut Encoder { out, depth: 0 });
    if result.is_err() {
        out.truncate(before);
    }
    result
}

/// The room a container's tag gets before its body is known: two bytes hold bodies of
/// 16 bytes to 8 KiB, most objects of a record.
const GUESS: usize = 2;

pub(crate) struct Encoder<'o> {
    out: &'o mut Vec<u8>,
    depth: usize,
}

impl Encoder<'_> {
    fn integer(&mut self, n: i128) -> Result<(), EncodeError> {
        if n.unsigned_abs() <= i32::MAX as u128 {
            tag::write(self.out, BipfType::Int, 4)?;
            self.out.extend_from_slice(&(n as i32).to_le_bytes());
            return Ok(());
        }
        let x = n as f64;
        if x as i128 != n || !x.is_finite() {
            return Err(EncodeError::InexactInteger(n));
        }
        self.double(x)
    }

    fn double(&mut self, x: f64) -> Result<(), EncodeError> {
        tag::write(self.out, BipfType::Double, 8)?;
        self.out.extend_from_slice(&x.to_le_bytes());
        Ok(())
    }

    fn number(&mut self, x: f64) -> Result<(), EncodeError> {
        if !x.is_finite() {
            return Err(EncodeError::NotFinite(x));
        }
        if x.fract() == 0.0 && x.abs() <= f64::from(i32::MAX) {
            return self.integer(x as i128);
        }
        self.double(x)
    }

    fn string(&mut self, s: &str) -> Result<(), EncodeError> {
        tag::write(self.out, BipfType::String, s.len())?;
        self.out.extend_from_slice(s.as_bytes());
        Ok(())
    }

    fn null(&mut self) -> Result<(), EncodeError> {
        tag::write(self.out, BipfType::BoolNull, 0)
    }

    fn open(&mut self, ty: BipfType) -> Result<Container, EncodeError> {
        self.depth += 1;
        if self.depth > crate::MAX_DEPTH {
            return Err(EncodeError::TooDeep);
        }
        let start = self.out.len();
        self.out.extend_from_slice(&[0; GUESS]);
        Ok(Container {
            ty,
            start,
            has_index_key: false,
        })
    }

    fn close(&mut self, container: Container) -> Result<(), EncodeError> {
        self.depth -= 1;
        let body_start = container.start + GUESS;
        if container.has_index_key {
            js_key_order(self.out, body_start)?;
        }
        let len = self.out.len() - body_start;
        let size = tag::size(len);
        if size > GUESS {
            self.out
                .splice(body_start..body_start, std::iter::repeat_n(0, size - GUESS));
        } else if size < GUESS {
            self.out.drain(container.start + size..body_start);
        }
        let slot = self
            .out
            .get_mut(container.start..container.start + size)
            .ok_or(EncodeError::Custom("tag slot out of range".into()))?;
        tag::write_into(slot, container.ty, len)
    }

    /// An object of one member `{variant: …}` (serde's externally tagged enums).
    fn variant_object(&mut self, variant: &str) -> Result<Container, EncodeError> {
        let container = self.open(BipfType::Object)?;
        self.string(variant)?;
        Ok(container)
    }
}

/// A container being written: where its tag slot starts, and (for objects) whether a key is
/// an array index, which JS writes first.
pub(crate) struct Container {
    ty: BipfType,
    start: usize,
    has_index_key: bool,
}

/// The index a JS object key stands for, if it is an array index (canonical decimal below
/// 2^32 − 1): JS objects list those keys first, in ascending order.
fn array_index(key: &str) -> Option<u32> {
    let bytes = key.as_bytes();
    if bytes.is_empty() || bytes.len() > 10 || !bytes.iter().all(u8::is_ascii_digit) {
        return None;
    }
    if bytes.len() > 1 && bytes.first() == Some(&b'0') {
        return None;
    }
    key.parse::<u64>()
        .ok()
        .filter(|&n| n < u64::from(u32::MAX))
        .map(|n| n as u32)
}

/// Reorders the object body written from `body_start` so that entries with array-index keys
/// come first, ascending (a stable sort), as a JS object enumerates them. Rare, so the entries
/// are found again in the bytes rather than tracked while writing.
fn js_key_order(out: &mut Vec<u8>, body_start: usize) -> Result<(), EncodeError> {
    let malformed = |_| EncodeError::Custom("an object body written here does not parse".into());
    let end = out.len();
    let mut spans: Vec<(Option<u32>, usize, usize)> = Vec::new();
    let mut at = body_start;
    while at < end {
        let key = tag::read(out, at).map_err(malformed)?;
        let text = out
            .get(at + key.size..at + key.size + key.len)
            .and_then(|k| std::str::from_utf8(k).ok())
            .unwrap_or_default();
        let index = array_index(text);
        let value_at = at + key.size + key.len;
        let value = tag::read(out, value_at).map_err(malformed)?;
        let stop = value_at + value.size + value.len;
        spans.push((index, at, stop));
        at = stop;
    }
    // Index keys first by index; the others keep their order (None sorts after every Some).
    spans.sort_by_key(|&(index, _, _)| (index.is_none(), index));
    let mut body = Vec::with_capacity(end - body_start);
    for (_, start, stop) in spans {
        body.extend_from_slice(out.get(start..stop).unwrap_or_default());
    }
    out.truncate(body_start);
    out.extend_from_slice(&body);
    Ok(())
}

impl<'a, 'o> ser::Serializer for &'a mut Encoder<'o> {
    type Ok = ();
    type Error = EncodeError;
    type SerializeSeq = Compound<'a, 'o>;
    type SerializeTuple = Compound<'a, 'o>;
    type SerializeTupleStruct = Compound<'a, 'o>;
    type SerializeTupleVariant = Compound<'a, 'o>;
    type SerializeMap = Compound<'a, 'o>;
    type SerializeStruct = Compound<'a, 'o>;
    type SerializeStructVariant = Compound<'a, 'o>;

    fn serialize_bool(self, v: bool) -> Result<(), EncodeError> {
        tag::write(self.out, BipfType::BoolNull, 1)?;
        self.out.push(u8::from(v));
        Ok(())
    }
    fn serialize_i8(self, v: i8) -> Result<(), EncodeError> {
        self.integer(v.into())
    }
    fn serialize_i16(self, v: i16) -> Result<(), EncodeError> {
        self.integer(v.into())
    }
    fn serialize_i32(self, v: i32) -> Result<(), EncodeError> {
        self.integer(v.into())
    }
    fn serialize_i64(self, v: i64) -> Result<(), EncodeError> {
        self.integer(v.into())
    }
    fn serialize_i128(self, v: i128) -> Result<(), EncodeError> {
        self.integer(v)
    }
    fn serialize_u8(self, v: u8) -> Result<(), EncodeError> {
        self.integer(v.into())
    }
    fn serialize_u16(self, v: u16) -> Result<(), EncodeError> {
        self.integer(v.into())
    }
    fn serialize_u32(self, v: u32) -> Result<(), EncodeError> {
        self.integer(v.into())
    }
    fn serialize_u64(self, v: u64) -> Result<(), EncodeError> {
        self.integer(v.into())
    }
    fn serialize_u128(self, v: u128) -> Result<(), EncodeError> {
        match i128::try_from(v) {
            Ok(n) => self.integer(n),
            Err(_) => Err(EncodeError::InexactInteger(i128::MAX)),
        }
    }
    fn serialize_f32(self, v: f32) -> Result<(), EncodeError> {
        self.number(v.into())
    }
    fn serialize_f64(self, v: f64) -> Result<(), EncodeError> {
        self.number(v)
    }
    fn serialize_char(self, v: char) -> Result<(), EncodeError> {
        self.string(v.encode_utf8(&mut [0; 4]))
    }
    fn serialize_str(self, v: &str) -> Result<(), EncodeError> {
        self.string(v)
    }
    fn serialize_bytes(self, v: &[u8]) -> Result<(), EncodeError> {
        tag::write(self.out, BipfType::Buffer, v.len())?;
        self.out.extend_from_slice(v);
        Ok(())
    }
    fn serialize_none(self) -> Result<(), EncodeError> {
        self.null()
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<(), EncodeError> {
        value.serialize(self)
    }
    fn serialize_unit(self) -> Result<(), EncodeError> {
        self.null()
    }
    fn serialize_unit_struct(self, _name: &'static str) -> Result<(), EncodeError> {
        self.null()
    }
    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<(), EncodeError> {
        self.string(variant)
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<(), EncodeError> {
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<(), EncodeError> {
        let container = self.variant_object(variant)?;
        value.serialize(&mut *self)?;
        self.close(container)
    }
    fn serialize_seq(self, _len: Option<usize>) -> Result<Compound<'a, 'o>, EncodeError> {
        let container = self.open(BipfType::Array)?;
        Ok(Compound::new(self, container, None))
    }
    fn serialize_tuple(self, len: usize) -> Result<Compound<'a, 'o>, EncodeError> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_struct(
        self,
        _name: &'static str,
        len: usize,
    ) -> Result<Compound<'a, 'o>, EncodeError> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        _len: usize,
    ) -> Result<Compound<'a, 'o>, EncodeError> {
        let outer = self.variant_object(variant)?;
        let container = self.open(BipfType::Array)?;
        Ok(Compound::new(self, container, Some(outer)))
    }
    fn serialize_map(self, _len: Option<usize>) -> Result<Compound<'a, 'o>, EncodeError> {
        let container = self.open(BipfType::Object)?;
        Ok(Compound::new(self, container, None))
    }
    fn serialize_struct(
        self,
        _name: &'static str,
        len: usize,
    ) -> Result<Compound<'a, 'o>, EncodeError> {
        self.serialize_map(Some(len))
    }
    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        _len: usize,
    ) -> Result<Compound<'a, 'o>, EncodeError> {
        let outer = self.variant_object(variant)?;
        let container = self.open(BipfType::Object)?;
        Ok(Compound::new(self, container, Some(outer)))
    }
}

/// An array or object being serialized (inside the `{variant: …}` object of an enum
/// variant when `outer` is set).
pub(crate) struct Compound<'a, 'o> {
    encoder: &'a mut Encoder<'o>,
    container: Container,
    outer: Option<Container>,
}

impl<'a, 'o> Compound<'a, 'o> {
    fn new(encoder: &'a mut Encoder<'o>, container: Container, outer: Option<Container>) -> Self {
        Compound {
            encoder,
            container,
            outer,
        }
    }

    fn key(&mut self, key: &str) -> Result<(), EncodeError> {
        self.container.has_index_key |= array_index(key).is_some();
        self.encoder.string(key)
    }

    fn finish(self) -> Result<(), EncodeError> {
        self.encoder.close(self.container)?;
        match self.outer {
            Some(outer) => self.encoder.close(outer),
            None => Ok(()),
        }
    }
}

/// The sequence traits: each element is the next value of the array.
macro_rules! elements {
    ($($trait:ident :: $method:ident),*) => {$(
        impl ser::$trait for Compound<'_, '_> {
            type Ok = ();
            type Error = EncodeError;
            fn $method<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), EncodeError> {
                value.serialize(&mut *self.encoder)
            }
            fn end(self) -> Result<(), EncodeError> {
                self.finish()
            }
        }
    )*};
}

elements!(
    SerializeSeq::serialize_element,
    SerializeTuple::serialize_element,
    SerializeTupleStruct::serialize_field,
    SerializeTupleVariant::serialize_field
);

impl ser::SerializeMap for Compound<'_, '_> {
    type Ok = ();
    type Error = EncodeError;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), EncodeError> {
        let key = key.serialize(KeyText)?;
        self.key(&key)
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), EncodeError> {
        value.serialize(&mut *self.encoder)
    }
    fn end(self) -> Result<(), EncodeError> {
        self.finish()
    }
}

/// The struct traits: each field is a key and its value.
macro_rules! fields {
    ($($trait:ident),*) => {$(
        impl ser::$trait for Compound<'_, '_> {
            type Ok = ();
            type Error = EncodeError;
            fn serialize_field<T: Serialize + ?Sized>(
                &mut self,
                key: &'static str,
                value: &T,
            ) -> Result<(), EncodeError> {
                self.key(key)?;
                value.serialize(&mut *self.encoder)
            }
            fn end(self) -> Result<(), EncodeError> {
                self.finish()
            }
        }
    )*};
}

fields!(SerializeStruct, SerializeStructVariant);

/// A map key as the text of a JS property name: strings and chars as they are, integers in
/// decimal (as serde_json writes them).
struct KeyText;

macro_rules! key_integer {
    ($($method:ident: $ty:ty),*) => {
        $(fn $method(self, v: $ty) -> Result<String, EncodeError> {
            Ok(v.to_string())
        })*
    };
}

macro_rules! key_refused {
    ($($method:ident($($arg:ty),*) = $what:literal),*) => {
        $(fn $method(self, $(_: $arg),*) -> Result<String, EncodeError> {
            Err(EncodeError::KeyNotString($what))
        })*
    };
}

impl ser::Serializer for KeyText {
    type Ok = String;
    type Error = EncodeError;
    type SerializeSeq = ser::Impossible<String, EncodeError>;
    type SerializeTuple = ser::Impossible<String, EncodeError>;
    type SerializeTupleStruct = ser::Impossible<String, EncodeError>;
    type SerializeTupleVariant = ser::Impossible<String, EncodeError>;
    type SerializeMap = ser::Impossible<String, EncodeError>;
    type SerializeStruct = ser::Impossible<String, EncodeError>;
    type SerializeStructVariant = ser::Impossible<String, EncodeError>;

    key_integer!(
        serialize_i8: i8, serialize_i16: i16, serialize_i32: i32, serialize_i64: i64,
        serialize_i128: i128, serialize_u8: u8, serialize_u16: u16, serialize_u32: u32,
        serialize_u64: u64, serialize_u128: u128
    );
    key_refused!(
        serialize_bool(bool) = "a bool",
        serialize_f32(f32) = "a float",
        serialize_f64(f64) = "a float",
        serialize_bytes(&[u8]) = "bytes",
        serialize_none() = "null",
        serialize_unit() = "null",
        serialize_unit_struct(&'static str) = "null"
    );

    fn serialize_char(self, v: char) -> Result<String, EncodeError> {
        Ok(v.to_string())
    }
    fn serialize_str(self, v: &str) -> Result<String, EncodeError> {
        Ok(v.to_string())
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<String, EncodeError> {
        value.serialize(self)
    }
    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<String, EncodeError> {
        Ok(variant.to_string())
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<String, EncodeError> {
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _value: &T,
    ) -> Result<String, EncodeError> {
        Err(EncodeError::KeyNotString("an enum variant with data"))
    }
    fn serialize_seq(self, _len: Option<usize>) -> Result<Self::SerializeSeq, EncodeError> {
        Err(EncodeError::KeyNotString("an array"))
    }
    fn serialize_tuple(self, _len: usize) -> Result<Self::SerializeTuple, EncodeError> {
        Err(EncodeError::KeyNotString("an array"))
    }
    fn serialize_tuple_struct(
        self,
        _name: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeTupleStruct, EncodeError> {
        Err(EncodeError::KeyNotString("an array"))
    }
    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeTupleVariant, EncodeError> {
        Err(EncodeError::KeyNotString("an enum variant with data"))
    }
    fn serialize_map(self, _len: Option<usize>) -> Result<Self::SerializeMap, EncodeError> {
        Err(EncodeError::KeyNotString("an object"))
    }
    fn serialize_struct(
        self,
        _name: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeStruct, EncodeError> {
        Err(EncodeError::KeyNotString("an object"))
    }
    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeStructVariant, EncodeError> {
        Err(EncodeError::KeyNotString("an enum variant with data"))
    }
}
