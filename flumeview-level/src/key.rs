//! [`Key`]: structured index keys with the charwise/bytewise order JS users know, and their
//! order-preserving byte encoding.
//!
//! Order: `Null` < `false` < `true` < numbers (numeric) < strings (by code point) < arrays
//! (element by element; a prefix sorts first) < `Max`.
//!
//! Encoding: a tag byte per type, then the value; the bytes are laid out in
//! `docs/file-formats.md` (section flumeview-level rows), their one home.
//!
//! Byte order of encodings equals key order: tags follow the type order, the number transform
//! is monotonic, the string escape keeps byte order and its `00` terminator sorts before any
//! longer string, and an array's `00` terminator sorts before any element's tag.

use std::cmp::Ordering;
use std::fmt;

use flumedb_core::Seq;

const NULL: u8 = 0x10;
const FALSE: u8 = 0x20;
const TRUE: u8 = 0x21;
const NUMBER: u8 = 0x30;
const STRING: u8 = 0x40;
const ARRAY: u8 = 0x50;
const MAX: u8 = 0xff;
const END: u8 = 0x00;
const ESCAPE: u8 = 0x01;

/// The largest encoded key (the storage engine's limit is 64 KiB).
pub const MAX_ENCODED_LEN: usize = 60 * 1024;

/// An index key.
#[derive(Clone, Debug)]
pub enum Key {
    /// `null`: the smallest key, also the "min" bound.
    Null,
    /// `false` or `true`.
    Bool(bool),
    /// A number (never NaN: encoding refuses it).
    Number(f64),
    /// A string, ordered by code point.
    String(String),
    /// An array, ordered element by element; a prefix sorts first.
    Array(Vec<Key>),
    /// Greater than every other key: JS `undefined` as an upper bound. `[a, Max]` is above
    /// every array starting with `a`.
    Max,
}

/// A key that cannot be encoded or decoded.
#[derive(Clone, PartialEq, Debug)]
#[non_exhaustive]
pub enum KeyError {
    /// NaN has no place in the order.
    NotANumber,
    /// Objects have no defined order (as in charwise, which threw).
    Object,
    /// The encoding is longer than [`MAX_ENCODED_LEN`].
    TooLong(usize),
    /// Arrays nested deeper than [`MAX_DEPTH`].
    TooDeep,
    /// Stored bytes are not a key encoding.
    Malformed(String),
    /// A record's field, read in place, is not valid JSON.
    NotJson(String),
}

/// How deeply arrays may nest in a key.
pub const MAX_DEPTH: usize = 64;

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyError::NotANumber => f.write_str("NaN cannot be an index key"),
            KeyError::Object => {
                f.write_str("objects cannot be index keys (they have no order); use an array")
            }
            KeyError::TooLong(n) => {
                write!(
                    f,
                    "the key encodes to {n} bytes, more than {MAX_ENCODED_LEN}"
                )
            }
            KeyError::TooDeep => write!(f, "arrays nested deeper than {MAX_DEPTH} levels"),
            KeyError::Malformed(why) => write!(f, "not a key encoding: {why}"),
            KeyError::NotJson(why) => write!(f, "the field is not valid JSON: {why}"),
        }
    }
}

impl std::error::Error for KeyError {}

/// A key error as the database's error ([`Error::Input`](flumedb_core::Error::Input)), so `?`
/// on building or encoding a key works in a function returning `flumedb_core::Result`.
impl From<KeyError> for flumedb_core::Error {
    fn from(err: KeyError) -> flumedb_core::Error {
        flumedb_core::Error::Input {
            source: Box::new(err),
        }
    }
}

impl Key {
    /// An array key.
    pub fn array(items: impl IntoIterator<Item = impl Into<Key>>) -> Key {
        Key::Array(items.into_iter().map(Into::into).collect())
    }

    /// This key with `seq` appended, to make keys unique: `[..items, seq]` for an array,
    /// `[self, seq]` otherwise. Records with equal fields then each keep a row (without it,
    /// the last record with a key wins, as in JS flumeview-level).
    #[must_use]
    pub fn with_seq(self, seq: Seq) -> Key {
        let seq = Key::Number(seq.get() as f64);
        match self {
            Key::Array(mut items) => {
                items.push(seq);
                Key::Array(items)
            }
            other => Key::Array(vec![other, seq]),
        }
    }

    /// The order-preserving encoding.
    pub fn encode(&self) -> Result<Vec<u8>, KeyError> {
        let mut out = Vec::with_capacity(16);
        self.encode_into(&mut out)?;
        Ok(out)
    }

    /// Appends the encoding to `out` (on error, `out` may hold part of it).
    pub fn encode_into(&self, out: &mut Vec<u8>) -> Result<(), KeyError> {
        let start = out.len();
        self.write(out, 0)?;
        let len = out.len() - start;
        if len > MAX_ENCODED_LEN {
            return Err(KeyError::TooLong(len));
        }
        Ok(())
    }

    fn write(&self, out: &mut Vec<u8>, depth: usize) -> Result<(), KeyError> {
        match self {
            Key::Null => out.push(NULL),
            Key::Bool(false) => out.push(FALSE),
            Key::Bool(true) => out.push(TRUE),
            Key::Number(n) => {
                out.push(NUMBER);
                out.extend_from_slice(&number_bits(*n)?.to_be_bytes());
            }
            Key::String(s) => {
                out.push(STRING);
                // Runs without END or ESCAPE bytes are copied whole (most strings are one).
                let mut rest = s.as_bytes();
                while let Some(run) = rest.iter().position(|&b| b == END || b == ESCAPE) {
                    out.extend_from_slice(rest.get(..run).unwrap_or_default());
                    let code = if rest.get(run) == Some(&END) {
                        0x01
                    } else {
                        0x02
                    };
                    out.extend_from_slice(&[ESCAPE, code]);
                    rest = rest.get(run + 1..).unwrap_or_default();
                }
                out.extend_from_slice(rest);
                out.push(END);
            }
            Key::Array(items) => {
                if depth >= MAX_DEPTH {
                    return Err(KeyError::TooDeep);
                }
                out.push(ARRAY);
                for item in items {
                    item.write(out, depth + 1)?;
                }
                out.push(END);
            }
            Key::Max => out.push(MAX),
        }
        Ok(())
    }

    /// An upper bound on the length of [`encode`](Key::encode)'s output, computed without
    /// encoding (cheap enough to decide most length checks before encoding at all).
    ///
    /// Strings count two bytes per byte (the escape's worst case); keys nested deeper than
    /// [`MAX_DEPTH`], which never encode, give `usize::MAX`.
    ///
    /// ```
    /// use flumeview_level::Key;
    /// let key = Key::Array(vec![Key::from("a\0b"), Key::Number(1.0), Key::Max]);
    /// assert!(key.encoded_len_bound() >= key.encode()?.len());
    /// # Ok::<(), flumeview_level::KeyError>(())
    /// ```
    pub fn encoded_len_bound(&self) -> usize {
        self.len_bound(0)
    }

    /// [`encoded_len_bound`](Key::encoded_len_bound) at `depth`: recursion stops where
    /// encoding would refuse the nesting.
    fn len_bound(&self, depth: usize) -> usize {
        match self {
            Key::Null | Key::Bool(_) | Key::Max => 1,
            Key::Number(_) => 9,
            // Tag and terminator, and each byte escaped at worst.
            Key::String(s) => s.len().saturating_mul(2).saturating_add(2),
            Key::Array(items) => {
                if depth >= MAX_DEPTH {
                    return usize::MAX;
                }
                items.iter().fold(2, |sum: usize, item| {
                    sum.saturating_add(item.len_bound(depth + 1))
                })
            }
        }
    }

    /// Decodes a whole encoding.
    pub fn decode(bytes: &[u8]) -> Result<Key, KeyError> {
        let mut at = 0;
        let key = read(bytes, &mut at, 0)?;
        if at != bytes.len() {
            return Err(KeyError::Malformed(format!(
                "{} bytes after the key",
                bytes.len() - at
            )));
        }
        Ok(key)
    }

    fn rank(&self) -> u8 {
        match self {
            Key::Null => 0,
            Key::Bool(_) => 1,
            Key::Number(_) => 2,
            Key::String(_) => 3,
            Key::Array(_) => 4,
            Key::Max => 5,
        }
    }
}

/// An order-preserving u64 for a number: flip the sign bit of positives, all bits of
/// negatives. `-0` is `0`.
fn number_bits(n: f64) -> Result<u64, KeyError> {
    if n.is_nan() {
        return Err(KeyError::NotANumber);
    }
    let n = if n == 0.0 { 0.0 } else { n };
    let bits = n.to_bits();
    Ok(if bits >> 63 == 1 {
        !bits
    } else {
        bits | 1 << 63
    })
}

fn number_from_bits(bits: u64) -> f64 {
    f64::from_bits(if bits >> 63 == 1 {
        bits & !(1 << 63)
    } else {
        !bits
    })
}

fn read(bytes: &[u8], at: &mut usize, depth: usize) -> Result<Key, KeyError> {
    let malformed = |why: &str| KeyError::Malformed(why.to_string());
    let tag = *bytes.get(*at).ok_or_else(|| malformed("missing tag"))?;
    *at += 1;
    Ok(match tag {
        NULL => Key::Null,
        FALSE => Key::Bool(false),
        TRUE => Key::Bool(true),
        NUMBER => {
            let raw = bytes
                .get(*at..*at + 8)
                .ok_or_else(|| malformed("a number needs 8 bytes"))?;
            *at += 8;
            let bits = u64::from_be_bytes(raw.try_into().map_err(|_| malformed("number"))?);
            let n = number_from_bits(bits);
            if n.is_nan() {
                return Err(malformed("a NaN number"));
            }
            Key::Number(n)
        }
        STRING => {
            let mut s = Vec::new();
            loop {
                // Copy the run up to the next END or ESCAPE at once (most strings have no
                // escape: one copy, one allocation).
                let rest = bytes.get(*at..).unwrap_or_default();
                let run = rest
                    .iter()
                    .position(|&b| b == END || b == ESCAPE)
                    .ok_or_else(|| malformed("unterminated string"))?;
                s.extend_from_slice(rest.get(..run).unwrap_or_default());
                *at += run + 1;
                if rest.get(run) == Some(&END) {
                    break;
                }
                let e = *bytes.get(*at).ok_or_else(|| malformed("cut escape"))?;
                *at += 1;
                s.push(match e {
                    0x01 => 0x00,
                    0x02 => 0x01,
                    _ => return Err(malformed("unknown escape")),
                });
            }
            Key::String(String::from_utf8(s).map_err(|_| malformed("string is not UTF-8"))?)
        }
        ARRAY => {
            if depth >= MAX_DEPTH {
                return Err(KeyError::TooDeep);
            }
            let mut items = Vec::new();
            loop {
                match bytes.get(*at) {
                    Some(&END) => {
                        *at += 1;
                        break;
                    }
                    Some(_) => items.push(read(bytes, at, depth + 1)?),
                    None => return Err(malformed("unterminated array")),
                }
            }
            Key::Array(items)
        }
        MAX => Key::Max,
        other => return Err(KeyError::Malformed(format!("unknown tag {other:#04x}"))),
    })
}

impl PartialEq for Key {
    fn eq(&self, other: &Key) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Key {}

impl PartialOrd for Key {
    fn partial_cmp(&self, other: &Key) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Key {
    /// The index order. (NaN cannot be encoded; here it sorts by its bits, so a positive NaN
    /// comes after every number and a negative one before.)
    fn cmp(&self, other: &Key) -> Ordering {
        match (self, other) {
            (Key::Bool(a), Key::Bool(b)) => a.cmp(b),
            (Key::Number(a), Key::Number(b)) => {
                let norm = |x: f64| if x == 0.0 { 0.0 } else { x };
                norm(*a).total_cmp(&norm(*b))
            }
            (Key::String(a), Key::String(b)) => a.as_bytes().cmp(b.as_bytes()),
            (Key::Array(a), Key::Array(b)) => a.cmp(b),
            _ => self.rank().cmp(&other.rank()),
        }
    }
}

impl From<&str> for Key {
    fn from(s: &str) -> Key {
        Key::String(s.to_string())
    }
}

impl From<String> for Key {
    fn from(s: String) -> Key {
        Key::String(s)
    }
}

impl From<bool> for Key {
    fn from(b: bool) -> Key {
        Key::Bool(b)
    }
}

impl From<f64> for Key {
    fn from(n: f64) -> Key {
        Key::Number(n)
    }
}

macro_rules! from_int {
    ($($t:ty),*) => {$(
        impl From<$t> for Key {
            /// As a number (integers beyond 2^53 lose precision, as in JS).
            fn from(n: $t) -> Key {
                Key::Number(n as f64)
            }
        }
    )*};
}
from_int!(i32, i64, u32, u64, usize);

impl From<Seq> for Key {
    fn from(seq: Seq) -> Key {
        Key::Number(seq.get() as f64)
    }
}

impl From<Vec<Key>> for Key {
    fn from(items: Vec<Key>) -> Key {
        Key::Array(items)
    }
}

impl TryFrom<&serde_json::Value> for Key {
    type Error = KeyError;

    /// JSON to a key: objects are refused ([`KeyError::Object`]).
    fn try_from(value: &serde_json::Value) -> Result<Key, KeyError> {
        use serde_json::Value;
        Ok(match value {
            Value::Null => Key::Null,
            Value::Bool(b) => Key::Bool(*b),
            Value::Number(n) => Key::Number(n.as_f64().ok_or(KeyError::NotANumber)?),
            Value::String(s) => Key::String(s.clone()),
            Value::Array(items) => {
                Key::Array(items.iter().map(Key::try_from).collect::<Result<_, _>>()?)
            }
            Value::Object(_) => return Err(KeyError::Object),
        })
    }
}

/// A field that could not be read from a record's bytes (see [`Doc::get`]), so a level map
/// on [`Doc`] records can use `?` on it.
///
/// [`Doc`]: flumedb_core::Doc
/// [`Doc::get`]: flumedb_core::Doc::get
impl From<flumedb_core::CodecError> for KeyError {
    fn from(err: flumedb_core::CodecError) -> KeyError {
        KeyError::NotJson(err.to_string())
    }
}

impl TryFrom<flumedb_core::Field<'_>> for Key {
    type Error = KeyError;

    /// A field of a [`Doc`](flumedb_core::Doc), read in place, to a key: the key its decoded
    /// value gives (objects are refused with [`KeyError::Object`]), or
    /// [`KeyError::NotJson`] when its bytes are not valid JSON.
    ///
    /// ```
    /// use flumedb_core::Doc;
    /// use flumeview_level::Key;
    ///
    /// let doc = Doc::from_json(r#"{"author":"@a","sequence":3}"#);
    /// let author = Key::try_from(doc.get(&["author"])?.expect("present"))?;
    /// assert_eq!(author, Key::from("@a"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    fn try_from(field: flumedb_core::Field<'_>) -> Result<Key, KeyError> {
        use flumedb_core::JsonType;
        let not_json = || KeyError::NotJson(String::from_utf8_lossy(field.raw()).into_owned());
        Ok(match field.json_type() {
            JsonType::Null if field.is_null() => Key::Null,
            JsonType::Boolean => Key::Bool(field.as_bool().ok_or_else(not_json)?),
            JsonType::Number => Key::Number(field.as_f64().ok_or_else(not_json)?),
            JsonType::String => Key::String(field.as_str().ok_or_else(not_json)?.into_owned()),
            JsonType::Array => {
                let mut items = Vec::new();
                let mut failed = None;
                field
                    .for_each_element(|item| {
                        if failed.is_none() {
                            match Key::try_from(item) {
                                Ok(key) => items.push(key),
                                Err(err) => failed = Some(err),
                            }
                        }
                    })
                    .map_err(|e| KeyError::NotJson(e.to_string()))?;
                if let Some(err) = failed {
                    return Err(err);
                }
                Key::Array(items)
            }
            JsonType::Object => return Err(KeyError::Object),
            JsonType::Null | JsonType::Undefined => return Err(not_json()),
        })
    }
}

/// A field of a BIPF record (`flumecodec_bipf::BipfDoc`), read in place, to a key: the key its
/// decoded value gives (objects are refused with [`KeyError::Object`]; JS `undefined` is
/// `null`, as it decodes), or [`KeyError::NotJson`] for a BUFFER (JSON has none) or bytes that
/// are not well-formed. Feature `bipf`.
///
/// ```
/// use flumecodec_bipf::BipfDoc;
/// use flumeview_level::Key;
///
/// let doc = BipfDoc::encode(&serde_json::json!({"author": "@a", "sequence": 3}))?;
/// let author = Key::try_from(doc.get(&["author"])?.expect("present"))?;
/// assert_eq!(author, Key::from("@a"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[cfg(feature = "bipf")]
impl TryFrom<flumecodec_bipf::BipfField<'_>> for Key {
    type Error = KeyError;

    fn try_from(field: flumecodec_bipf::BipfField<'_>) -> Result<Key, KeyError> {
        use flumecodec_bipf::BipfType;
        let not_json = || {
            KeyError::NotJson(format!(
                "BIPF {:?} at byte {}",
                field.bipf_type(),
                field.position()
            ))
        };
        Ok(match field.bipf_type() {
            BipfType::BoolNull => match field.as_bool() {
                Some(b) => Key::Bool(b),
                None if field.is_null() || field.is_undefined() => Key::Null,
                None => return Err(not_json()),
            },
            BipfType::Int | BipfType::Double => Key::Number(field.as_f64().ok_or_else(not_json)?),
            BipfType::String => Key::String(field.as_str().ok_or_else(not_json)?.to_owned()),
            BipfType::Array => Key::Array(
                field
                    .elements()
                    .map(|item| Key::try_from(item.map_err(|e| KeyError::NotJson(e.to_string()))?))
                    .collect::<Result<_, _>>()?,
            ),
            BipfType::Object => return Err(KeyError::Object),
            BipfType::Buffer => return Err(not_json()),
        })
    }
}

/// A BIPF field that could not be read (see `flumecodec_bipf::BipfDoc::get`), so a level map
/// on BIPF records can use `?` on it. Feature `bipf`.
#[cfg(feature = "bipf")]
impl From<flumecodec_bipf::DecodeError> for KeyError {
    fn from(err: flumecodec_bipf::DecodeError) -> KeyError {
        KeyError::NotJson(err.to_string())
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn key_errors_fold_into_the_database_error() {
        fn encode(key: &Key) -> flumedb_core::Result<Vec<u8>> {
            Ok(key.encode()?)
        }
        let err = encode(&Key::Number(f64::NAN)).unwrap_err();
        match err {
            flumedb_core::Error::Input { source } => {
                assert_eq!(
                    source.downcast_ref::<KeyError>(),
                    Some(&KeyError::NotANumber)
                );
            }
            other => panic!("expected Error::Input, got {other:?}"),
        }
    }

    #[test]
    fn a_field_read_in_place_gives_the_key_of_its_decoded_value() {
        for text in [
            "null",
            "true",
            "-1.5",
            "0",
            "\"a\\u00e9\"",
            "[1,[\"x\",null]]",
            "[]",
            "{\"a\":1}",
            "[1,{}]",
        ] {
            let doc = flumedb_core::Doc::from_json(text);
            let value: serde_json::Value = serde_json::from_str(text).unwrap();
            assert_eq!(Key::try_from(doc.root()), Key::try_from(&value), "{text}");
        }
        for bad in ["nul", "\"\\q\"", "01", "[1,", "tru"] {
            let doc = flumedb_core::Doc::from_json(bad);
            assert!(
                matches!(Key::try_from(doc.root()), Err(KeyError::NotJson(_))),
                "{bad}"
            );
        }
    }
    use super::*;

    #[test]
    fn the_documented_order_holds() {
        let ordered = [
            Key::Null,
            Key::Bool(false),
            Key::Bool(true),
            Key::Number(f64::NEG_INFINITY),
            Key::Number(-1e300),
            Key::Number(-1.0),
            Key::Number(-0.5),
            Key::Number(0.0),
            Key::Number(1e-300),
            Key::Number(1.0),
            Key::Number(46.0),
            Key::Number(f64::INFINITY),
            Key::from(""),
            Key::from("\0"),
            Key::from("\u{1}"),
            Key::from("!"),
            Key::from("a"),
            Key::from("a\0"),
            Key::from("a!"),
            Key::from("ab"),
            Key::from("é"),
            Key::from("🌊"),
            Key::array(Vec::<Key>::new()),
            Key::array(["a"]),
            Key::Array(vec![Key::from("a"), Key::Null]),
            Key::array(["a", "x"]),
            Key::Array(vec![Key::from("a"), Key::Max]),
            Key::array(["ab"]),
            Key::Max,
        ];
        for (i, a) in ordered.iter().enumerate() {
            for (j, b) in ordered.iter().enumerate() {
                assert_eq!(a.cmp(b), i.cmp(&j), "{a:?} vs {b:?}");
                assert_eq!(
                    a.encode().unwrap().cmp(&b.encode().unwrap()),
                    i.cmp(&j),
                    "{a:?} vs {b:?} encoded"
                );
            }
            assert_eq!(Key::decode(&a.encode().unwrap()).unwrap(), *a);
        }
    }

    #[test]
    fn bad_keys_are_typed_errors() {
        assert_eq!(Key::Number(f64::NAN).encode(), Err(KeyError::NotANumber));
        assert_eq!(
            Key::try_from(&serde_json::json!([1, {"a": 1}])),
            Err(KeyError::Object)
        );
        assert!(matches!(
            Key::from("x".repeat(70_000)).encode(),
            Err(KeyError::TooLong(_))
        ));
        for bad in [
            &[][..],
            &[0x40, b'a'],
            &[0x30, 1],
            &[0x50],
            &[0x07],
            &[0x10, 0x10],
            &[0x40, 1, 9, 0],
        ] {
            assert!(
                matches!(Key::decode(bad), Err(KeyError::Malformed(_))),
                "{bad:?}"
            );
        }
        assert_eq!(Key::Number(-0.0).encode(), Key::Number(0.0).encode());
    }

    #[test]
    fn the_encoded_length_bound_is_never_below_the_encoding() {
        let nested = |depth: usize| {
            let mut key = Key::from("\u{1}");
            for _ in 0..depth {
                key = Key::Array(vec![key, Key::Null]);
            }
            key
        };
        let keys = [
            Key::Null,
            Key::Bool(false),
            Key::Bool(true),
            Key::Max,
            Key::Number(-0.0),
            Key::Number(f64::INFINITY),
            Key::from(""),
            Key::from("plain"),
            Key::from("\0"),
            Key::from("\u{1}"),
            Key::from("a\0b\u{1}c\0\0"),
            Key::from("\0".repeat(1000)),
            Key::from("é🌊"),
            Key::array(Vec::<Key>::new()),
            Key::array(["a", "\0"]),
            Key::Array(vec![
                Key::from("name"),
                Key::Array(vec![Key::Array(vec![]), Key::from("\u{1}\0")]),
                Key::Max,
                Key::Number(7.0),
            ]),
            nested(10),
            nested(MAX_DEPTH),
        ];
        for key in &keys {
            let len = key.encode().unwrap().len();
            assert!(key.encoded_len_bound() >= len, "{key:?}: bound below {len}");
        }
        // A string of escapes is the worst case: the bound is exact there.
        assert_eq!(
            Key::from("\0".repeat(1000)).encoded_len_bound(),
            Key::from("\0".repeat(1000)).encode().unwrap().len()
        );
        // Too deep to encode: no finite bound is claimed.
        assert!(nested(MAX_DEPTH + 1).encode().is_err());
        assert_eq!(nested(MAX_DEPTH + 1).encoded_len_bound(), usize::MAX);
    }

    proptest::proptest! {
        #[test]
        fn the_encoded_length_bound_holds_for_random_keys(key in random_key()) {
            let len = key.encode().unwrap().len();
            proptest::prop_assert!(key.encoded_len_bound() >= len, "{:?}", key);
        }
    }

    /// Nested keys whose strings are dense in the bytes the encoding escapes.
    fn random_key() -> impl proptest::strategy::Strategy<Value = Key> {
        use proptest::prelude::*;
        let chars = prop_oneof![
            Just('\0'),
            Just('\u{1}'),
            Just('a'),
            Just('é'),
            any::<char>()
        ];
        let string = prop::collection::vec(chars, 0..40).prop_map(|cs| cs.into_iter().collect());
        let leaf = prop_oneof![
            Just(Key::Null),
            any::<bool>().prop_map(Key::Bool),
            any::<f64>()
                .prop_filter("not NaN", |n| !n.is_nan())
                .prop_map(Key::Number),
            string.prop_map(Key::String),
            Just(Key::Max),
        ];
        leaf.prop_recursive(6, 64, 5, |inner| {
            prop::collection::vec(inner, 0..5).prop_map(Key::Array)
        })
    }

    #[test]
    fn with_seq_makes_keys_unique_and_keeps_order() {
        let a = Key::from("x").with_seq(Seq::new(5));
        let b = Key::from("x").with_seq(Seq::new(9));
        assert!(a < b);
        assert!(
            Key::from("x").with_seq(Seq::new(u64::MAX >> 12)) < Key::from("y").with_seq(Seq::ZERO)
        );
        assert_eq!(
            Key::array(["a"]).with_seq(Seq::new(1)),
            Key::Array(vec![Key::from("a"), Key::Number(1.0)])
        );
    }
}
