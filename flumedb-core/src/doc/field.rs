//! [`Field`]: one JSON value inside a record's bytes, read where it lies.

use std::borrow::Cow;
use std::fmt;

use serde::Deserialize;
use serde_json::Value;

use crate::doc::scan;
use crate::error::CodecError;

/// The type of a JSON value, or of a missing one.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum JsonType {
    /// A missing value.
    Undefined,
    /// `null`.
    Null,
    /// `true` or `false`.
    Boolean,
    /// A number.
    Number,
    /// A string.
    String,
    /// An array.
    Array,
    /// An object (not `null`, not an array: stricter than JS `typeof`).
    Object,
}

impl JsonType {
    /// The type of a (maybe missing) decoded value.
    pub fn of(value: Option<&Value>) -> JsonType {
        match value {
            None => JsonType::Undefined,
            Some(Value::Null) => JsonType::Null,
            Some(Value::Bool(_)) => JsonType::Boolean,
            Some(Value::Number(_)) => JsonType::Number,
            Some(Value::String(_)) => JsonType::String,
            Some(Value::Array(_)) => JsonType::Array,
            Some(Value::Object(_)) => JsonType::Object,
        }
    }

    /// The type's name (`"undefined"`, `"null"`, `"boolean"`, `"number"`, `"string"`,
    /// `"array"`, `"object"`).
    pub fn name(self) -> &'static str {
        match self {
            JsonType::Undefined => "undefined",
            JsonType::Null => "null",
            JsonType::Boolean => "boolean",
            JsonType::Number => "number",
            JsonType::String => "string",
            JsonType::Array => "array",
            JsonType::Object => "object",
        }
    }

    /// The type of a name, if it is one.
    pub fn from_name(name: &str) -> Option<JsonType> {
        Some(match name {
            "undefined" => JsonType::Undefined,
            "null" => JsonType::Null,
            "boolean" => JsonType::Boolean,
            "number" => JsonType::Number,
            "string" => JsonType::String,
            "array" => JsonType::Array,
            "object" => JsonType::Object,
            _ => return None,
        })
    }
}

/// One JSON value inside a [`Doc`](crate::Doc)'s bytes: its exact bytes, read only as far as
/// asked.
///
/// The structure on the way to a field is checked when it is found; the field's own value is
/// checked when it is read. The `as_*` readers return `None` for a value of another type or
/// one that is not valid JSON; [`decode`](Field::decode) says why.
///
/// ```
/// use flumedb_core::{Doc, JsonType};
///
/// let doc = Doc::from_json(r#"{"value":{"author":"@a","sequence":7,"tags":["x","y"]}}"#);
/// let value = doc.get(&["value"])?.expect("present");
/// assert_eq!(value.get(&["author"])?.and_then(|f| f.as_str()).as_deref(), Some("@a"));
/// assert_eq!(value.get(&["sequence"])?.and_then(|f| f.as_u64()), Some(7));
/// let tags = value.member("tags")?.expect("present");
/// assert_eq!(tags.json_type(), JsonType::Array);
/// assert_eq!(tags.element(1)?.and_then(|f| f.as_str()).as_deref(), Some("y"));
/// assert_eq!(tags.raw(), br#"["x","y"]"#);
/// # Ok::<(), flumedb_core::CodecError>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Field<'a> {
    raw: &'a [u8],
}

impl<'a> Field<'a> {
    /// The value whose bytes are `raw` (no whitespace around it).
    pub(crate) fn new(raw: &'a [u8]) -> Field<'a> {
        Field { raw }
    }

    /// The JSON value whose bytes are `json` (whitespace around it is ignored), read in place
    /// like a [`Doc`](crate::Doc)'s without copying the bytes: for bytes a log lends, such as
    /// the payloads `flumelog_offset::OffsetLog::scan` hands out. As with a `Doc`, malformed
    /// bytes show as errors from the reads that meet them.
    ///
    /// ```
    /// use flumedb_core::Field;
    /// let record = br#" {"value": {"sequence": 7}} "#;
    /// let sequence = Field::from_json(record).get(&["value", "sequence"])?;
    /// assert_eq!(sequence.and_then(|f| f.as_u64()), Some(7));
    /// # Ok::<(), flumedb_core::CodecError>(())
    /// ```
    pub fn from_json(json: &'a [u8]) -> Field<'a> {
        let start = super::scan::skip_ws(json, 0);
        let end = json
            .iter()
            .rposition(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
            .map_or(start, |last| last + 1);
        Field::new(json.get(start..end.max(start)).unwrap_or_default())
    }

    /// The value's exact bytes, as stored.
    pub fn raw(&self) -> &'a [u8] {
        self.raw
    }

    /// The value's type, from its first byte. A value that is not valid JSON may still claim
    /// one (`tru` is a boolean here); reading it then gives `None`.
    pub fn json_type(&self) -> JsonType {
        match self.raw.first() {
            Some(b'n') => JsonType::Null,
            Some(b't' | b'f') => JsonType::Boolean,
            Some(b'"') => JsonType::String,
            Some(b'[') => JsonType::Array,
            Some(b'{') => JsonType::Object,
            Some(b'-' | b'0'..=b'9') => JsonType::Number,
            _ => JsonType::Undefined,
        }
    }

    /// Whether the value is `null`.
    pub fn is_null(&self) -> bool {
        self.raw == b"null"
    }

    /// The value as a boolean.
    pub fn as_bool(&self) -> Option<bool> {
        match self.raw {
            b"true" => Some(true),
            b"false" => Some(false),
            _ => None,
        }
    }

    /// The value as a string: borrowed from the record's bytes unless it holds escapes.
    pub fn as_str(&self) -> Option<Cow<'a, str>> {
        let inner = self
            .raw
            .strip_prefix(b"\"")
            .and_then(|r| r.strip_suffix(b"\""))?;
        if !inner.contains(&b'\\') {
            // JSON strings hold no raw control characters; a full decode refuses them too.
            if inner.iter().any(|&b| b < 0x20) {
                return None;
            }
            return std::str::from_utf8(inner).ok().map(Cow::Borrowed);
        }
        serde_json::from_slice::<String>(self.raw)
            .ok()
            .map(Cow::Owned)
    }

    /// The value as an unsigned integer, if it is one written without fraction or exponent.
    pub fn as_u64(&self) -> Option<u64> {
        self.integer_text()?.parse().ok()
    }

    /// The value as a signed integer, if it is one written without fraction or exponent.
    pub fn as_i64(&self) -> Option<i64> {
        self.integer_text()?.parse().ok()
    }

    /// The value as a float, if it is a number (integers too, as `f64` holds them).
    pub fn as_f64(&self) -> Option<f64> {
        if !scan::is_number(self.raw) {
            return None;
        }
        // Out of range (`1e400`) is an error to a full decode, not infinity.
        let x: f64 = std::str::from_utf8(self.raw).ok()?.parse().ok()?;
        x.is_finite().then_some(x)
    }

    fn integer_text(&self) -> Option<&'a str> {
        let digits = self.raw.strip_prefix(b"-").unwrap_or(self.raw);
        // `-0` is a float to a full decode (it keeps the sign), so not an integer here either.
        let plain = !digits.is_empty()
            && digits.iter().all(u8::is_ascii_digit)
            && (digits.len() == 1 || digits.first() != Some(&b'0'))
            && self.raw != b"-0";
        if plain {
            std::str::from_utf8(self.raw).ok()
        } else {
            None
        }
    }

    /// The member `key` of this object; `None` when it is missing or this is not an object.
    /// When a key appears twice the last one counts, as in a full decode.
    pub fn member(&self, key: &str) -> Result<Option<Field<'a>>, CodecError> {
        if self.raw.first() != Some(&b'{') {
            return Ok(None);
        }
        self.get(&[key])
    }

    /// Element `n` of this array; `None` when it is past the end or this is not an array.
    pub fn element(&self, n: usize) -> Result<Option<Field<'a>>, CodecError> {
        if self.raw.first() != Some(&b'[') {
            return Ok(None);
        }
        Ok(scan::element(self.raw, 0, n)?
            .and_then(|(start, end)| self.raw.get(start..end))
            .map(Field::new))
    }

    /// The value at `path` (object keys) below this one; `None` when a step is missing or
    /// not an object. An empty path is this value.
    pub fn get<S: AsRef<str>>(&self, path: &[S]) -> Result<Option<Field<'a>>, CodecError> {
        if path.is_empty() {
            return Ok(Some(*self));
        }
        if self.raw.first() != Some(&b'{') {
            return Ok(None);
        }
        Ok(scan::lookup(self.raw, 0, path)?
            .0
            .and_then(|(start, end)| self.raw.get(start..end))
            .map(Field::new))
    }

    /// Calls `each` with every member of this object, in stored order (an error if it is not
    /// an object). Keys are given as stored, escapes decoded.
    pub fn for_each_member(
        &self,
        mut each: impl FnMut(Cow<'a, str>, Field<'a>),
    ) -> Result<(), CodecError> {
        if self.raw.first() != Some(&b'{') {
            return Err(scan::malformed(0, "not an object"));
        }
        let raw = self.raw;
        scan::walk_object(raw, 0, |(ks, ke), _, start| {
            let end = scan::skip_value(raw, start)?;
            let key = raw.get(ks..ke).map(Field::new).and_then(|k| k.as_str());
            match (key, raw.get(start..end)) {
                (Some(key), Some(value)) => each(key, Field::new(value)),
                _ => return Err(scan::malformed(ks, "an object key is not a valid string")),
            }
            Ok(end)
        })?;
        Ok(())
    }

    /// Calls `each` with every element of this array, in order (an error if it is not an
    /// array).
    pub fn for_each_element(&self, mut each: impl FnMut(Field<'a>)) -> Result<(), CodecError> {
        if self.raw.first() != Some(&b'[') {
            return Err(scan::malformed(0, "not an array"));
        }
        let raw = self.raw;
        scan::walk_array(raw, 0, |(start, end)| {
            if let Some(value) = raw.get(start..end) {
                each(Field::new(value));
            }
            true
        })?;
        Ok(())
    }

    /// Decodes the value (strictly: any malformed byte is an error) into `T`; strings and
    /// bytes may borrow from the record.
    pub fn decode<T: Deserialize<'a>>(&self) -> Result<T, CodecError> {
        serde_json::from_slice(self.raw).map_err(|e| CodecError::decode("json", e))
    }

    /// Decodes the value into a [`serde_json::Value`], keeping object key order.
    pub fn to_value(&self) -> Result<Value, CodecError> {
        self.decode()
    }
}

impl fmt::Debug for Field<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Field({})", String::from_utf8_lossy(self.raw))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(text: &str) -> Field<'_> {
        Field::new(text.as_bytes())
    }

    #[test]
    fn readers_agree_with_serde_json() {
        for text in [
            "0",
            "-0",
            "17",
            "-17",
            "18446744073709551615",
            "18446744073709551616",
            "-9223372036854775808",
            "1.5",
            "1e3",
            "1e400",
            "-1e400",
            "01",
            "1.",
            "true",
            "false",
            "null",
            r#""plain""#,
            r#""esc\n\u00e9""#,
            "\"ctl\u{1}\"",
            r#""bad\q""#,
            "tru",
            "[1]",
            "{}",
        ] {
            let f = field(text);
            let full: Option<Value> = serde_json::from_str(text).ok();
            assert_eq!(f.as_u64(), full.as_ref().and_then(Value::as_u64), "{text}");
            assert_eq!(f.as_i64(), full.as_ref().and_then(Value::as_i64), "{text}");
            assert_eq!(
                f.as_f64(),
                full.as_ref()
                    .and_then(Value::as_number)
                    .and_then(serde_json::Number::as_f64),
                "{text}"
            );
            assert_eq!(
                f.as_bool(),
                full.as_ref().and_then(Value::as_bool),
                "{text}"
            );
            assert_eq!(
                f.as_str().as_deref(),
                full.as_ref().and_then(Value::as_str),
                "{text}"
            );
            assert_eq!(
                f.is_null(),
                full.as_ref().is_some_and(Value::is_null),
                "{text}"
            );
            if let Some(full) = &full {
                assert_eq!(f.json_type(), JsonType::of(Some(full)), "{text}");
                assert_eq!(&f.to_value().unwrap(), full, "{text}");
            } else {
                assert!(f.to_value().is_err(), "{text}");
            }
        }
    }

    #[test]
    fn members_and_elements_are_walked_in_order() {
        let f = field(r#"{"a":1,"b\u0021":[true,null],"c":{}}"#);
        let mut seen = Vec::new();
        f.for_each_member(|k, v| seen.push((k.into_owned(), v.raw().to_vec())))
            .unwrap();
        assert_eq!(
            seen,
            [
                ("a".to_string(), b"1".to_vec()),
                ("b!".to_string(), b"[true,null]".to_vec()),
                ("c".to_string(), b"{}".to_vec()),
            ]
        );
        let list = f.member("b!").unwrap().unwrap();
        let mut items = Vec::new();
        list.for_each_element(|v| items.push(v.json_type()))
            .unwrap();
        assert_eq!(items, [JsonType::Boolean, JsonType::Null]);
        assert_eq!(list.element(2).unwrap(), None);
        assert!(field("3").for_each_element(|_| {}).is_err());
        assert_eq!(field("3").member("a").unwrap(), None);
    }
}
