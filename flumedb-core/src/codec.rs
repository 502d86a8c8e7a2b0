//! Codecs: how typed values become the bytes a log stores, and back.
//!
//! | codec | format | notes |
//! |---|---|---|
//! | [`Json`] | compact JSON (serde_json) | what JS flumedb stores (`flumecodec/json`); object key order is kept |
//! | [`Postcard`] | postcard 1.x | compact binary with a documented, stable wire format |
//! | [`Raw`] | the bytes themselves | for `Vec<u8>` values |
//! | `Bincode` | bincode 2 (feature `bincode`) | off by default: bincode's development stopped in 2025 (RUSTSEC-2025-0141) |

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::doc::Doc;
use crate::error::CodecError;

/// Turns values of type `T` into bytes and back.
///
/// A codec must be deterministic and `decode(encode(v)) == v`.
pub trait Codec<T>: Send + Sync + 'static {
    /// Appends the encoding of `value` to `out`.
    fn encode(&self, value: &T, out: &mut Vec<u8>) -> Result<(), CodecError>;

    /// Decodes one value from all of `bytes`.
    fn decode(&self, bytes: &[u8]) -> Result<T, CodecError>;

    /// Decodes one value from bytes handed over (a record just copied out of the log): a
    /// codec whose values keep their bytes ([`Doc`], raw bytes) takes them without another
    /// copy. The default decodes them as [`decode`](Codec::decode) does.
    fn decode_owned(&self, bytes: Vec<u8>) -> Result<T, CodecError> {
        self.decode(&bytes)
    }

    /// Checks that `value`, just encoded as `bytes`, reads back as itself. Appends call it,
    /// so a log never holds a record its views cannot read, or read as another value: a value
    /// nested deeper than the decoder allows, a float the format cannot carry (JSON writes NaN
    /// and infinity as `null`), a `Serialize` impl its `Deserialize` does not mirror (untagged
    /// enums, fields skipped in a format without field names). The default decodes `bytes`
    /// and checks that the result encodes to the same bytes; a codec may check more, or check
    /// more cheaply when it can prove the same.
    fn check(&self, _value: &T, bytes: &[u8]) -> Result<(), CodecError> {
        let decoded = self.decode(bytes)?;
        let mut again = Vec::with_capacity(bytes.len());
        self.encode(&decoded, &mut again)?;
        if again == bytes {
            Ok(())
        } else {
            Err(reads_back_otherwise(std::any::type_name::<Self>()))
        }
    }
}

/// The error of a value that would read back as another value (or not at all).
fn reads_back_otherwise(codec: &'static str) -> CodecError {
    CodecError::encode(
        codec,
        "refused, nothing written: the value's encoding does not decode again as the same \
         value (its Serialize and Deserialize do not mirror each other), so views could not \
         read it as it was appended",
    )
}

/// The check of a codec without field names (postcard, bincode): the bytes re-encode the
/// same, and the decoded value equals the original in JSON form, since a skipped field makes
/// the next one's bytes read in its place and may give the very same bytes.
fn check_compact<T: Serialize, C: Codec<T>>(
    codec: &C,
    name: &'static str,
    value: &T,
    bytes: &[u8],
) -> Result<(), CodecError> {
    let decoded = codec.decode(bytes)?;
    let mut again = Vec::with_capacity(bytes.len());
    codec.encode(&decoded, &mut again)?;
    if again != bytes {
        return Err(reads_back_otherwise(name));
    }
    same_as_json(name, value, &decoded)
}

/// Checks that the decoded value equals the original one, comparing them as JSON values.
fn same_as_json<T: Serialize>(
    codec: &'static str,
    value: &T,
    decoded: &T,
) -> Result<(), CodecError> {
    match (serde_json::to_value(value), serde_json::to_value(decoded)) {
        (Ok(a), Ok(b)) if a != b => Err(reads_back_otherwise(codec)),
        // Values JSON cannot represent (maps with composite keys) are left to the bytes.
        _ => Ok(()),
    }
}

/// JSON via serde_json, compatible with the data JS flumedb writes (`JSON.stringify`).
///
/// Objects decoded into `serde_json::Value` keep their key order, so a record read from a JS log
/// and written again has the same bytes (Secure Scuttlebutt signatures depend on that).
#[derive(Clone, Copy, Debug, Default)]
pub struct Json;

impl<T: Serialize + DeserializeOwned + 'static> Codec<T> for Json {
    fn encode(&self, value: &T, out: &mut Vec<u8>) -> Result<(), CodecError> {
        serde_json::to_writer(out, value).map_err(|e| CodecError::encode("json", e))
    }

    fn decode(&self, bytes: &[u8]) -> Result<T, CodecError> {
        serde_json::from_slice(bytes).map_err(|e| CodecError::decode("json", e))
    }

    fn check(&self, value: &T, bytes: &[u8]) -> Result<(), CodecError> {
        // A `Value` holds no NaN, accepts any JSON and reads back as written (floats too, with
        // `float_roundtrip`), so only the parser's nesting limit can refuse what it encoded: a
        // scan of the nesting checks that without building the value.
        if std::any::TypeId::of::<T>() == std::any::TypeId::of::<serde_json::Value>() {
            return check_json_depth(bytes);
        }
        // NaN and infinity are written as null, which may even decode (into an `Option`).
        crate::finite::check_finite(value).map_err(|e| CodecError::encode("json", e))?;
        let decoded: T =
            serde_json::from_slice(bytes).map_err(|e| CodecError::decode("json", e))?;
        let again = serde_json::to_vec(&decoded).map_err(|e| CodecError::encode("json", e))?;
        if again == bytes {
            Ok(())
        } else {
            Err(reads_back_otherwise("json"))
        }
    }
}

/// [`Doc`] records: stored as their bytes. An append checks that they are one well-formed
/// JSON value; reading hands views and readers the stored bytes without decoding them.
impl Codec<Doc> for Json {
    fn encode(&self, value: &Doc, out: &mut Vec<u8>) -> Result<(), CodecError> {
        out.extend_from_slice(value.as_bytes());
        Ok(())
    }

    fn decode(&self, bytes: &[u8]) -> Result<Doc, CodecError> {
        Ok(Doc::from_json(bytes.to_vec()))
    }

    fn decode_owned(&self, bytes: Vec<u8>) -> Result<Doc, CodecError> {
        Ok(Doc::from_json(bytes))
    }

    fn check(&self, _value: &Doc, bytes: &[u8]) -> Result<(), CodecError> {
        crate::doc::check_json(bytes)
    }
}

/// Whether serde_json can decode JSON text nested as deep as `bytes` is.
fn check_json_depth(bytes: &[u8]) -> Result<(), CodecError> {
    // Nesting cannot be deeper than the number of `[` and `{` bytes: a count that the compiler
    // vectorises settles almost every record without the exact scan.
    let opening: usize = bytes
        .chunks(255)
        .map(|chunk| {
            let n: u8 = chunk
                .iter()
                .map(|&b| u8::from(b == b'[') + u8::from(b == b'{'))
                .fold(0, u8::wrapping_add);
            usize::from(n)
        })
        .sum();
    if opening <= JSON_MAX_DEPTH {
        return Ok(());
    }
    let depth = json_depth(bytes);
    if depth > JSON_MAX_DEPTH {
        return Err(CodecError::encode(
            "json",
            format!(
                "refused, nothing written: nested {depth} levels deep; the decoder reads at most \
                 {JSON_MAX_DEPTH}, so views could not read it"
            ),
        ));
    }
    Ok(())
}

/// The deepest nesting of arrays and objects serde_json decodes (its recursion limit).
const JSON_MAX_DEPTH: usize = 127;

/// The deepest nesting of arrays and objects in JSON text (strings are skipped).
fn json_depth(bytes: &[u8]) -> usize {
    let (mut depth, mut max, mut in_string, mut escaped) = (0usize, 0usize, false, false);
    for &b in bytes {
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                max = max.max(depth);
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    max
}

/// Compact binary values via [postcard](https://docs.rs/postcard) 1.x, whose wire format is
/// documented and stable across the 1.x series.
#[derive(Clone, Copy, Debug, Default)]
pub struct Postcard;

impl<T: Serialize + DeserializeOwned> Codec<T> for Postcard {
    fn encode(&self, value: &T, out: &mut Vec<u8>) -> Result<(), CodecError> {
        let buf = std::mem::take(out);
        *out = postcard::to_extend(value, buf).map_err(|e| CodecError::encode("postcard", e))?;
        Ok(())
    }

    fn decode(&self, bytes: &[u8]) -> Result<T, CodecError> {
        let (value, rest) =
            postcard::take_from_bytes(bytes).map_err(|e| CodecError::decode("postcard", e))?;
        if rest.is_empty() {
            Ok(value)
        } else {
            Err(CodecError::decode(
                "postcard",
                format!("{} trailing bytes after the value", rest.len()),
            ))
        }
    }

    fn check(&self, value: &T, bytes: &[u8]) -> Result<(), CodecError> {
        check_compact(self, "postcard", value, bytes)
    }
}

/// Stores `Vec<u8>` values as they are.
#[derive(Clone, Copy, Debug, Default)]
pub struct Raw;

impl Codec<Vec<u8>> for Raw {
    fn encode(&self, value: &Vec<u8>, out: &mut Vec<u8>) -> Result<(), CodecError> {
        out.extend_from_slice(value);
        Ok(())
    }

    fn decode(&self, bytes: &[u8]) -> Result<Vec<u8>, CodecError> {
        Ok(bytes.to_vec())
    }

    fn decode_owned(&self, bytes: Vec<u8>) -> Result<Vec<u8>, CodecError> {
        Ok(bytes)
    }

    fn check(&self, _value: &Vec<u8>, _bytes: &[u8]) -> Result<(), CodecError> {
        Ok(())
    }
}

/// bincode 2 with its standard configuration (feature `bincode`).
///
/// bincode's development stopped in 2025 (RUSTSEC-2025-0141). This codec exists for data that is
/// already in that format; new data should use [`Postcard`].
#[cfg(feature = "bincode")]
#[derive(Clone, Copy, Debug, Default)]
pub struct Bincode;

#[cfg(feature = "bincode")]
impl<T: Serialize + DeserializeOwned> Codec<T> for Bincode {
    fn encode(&self, value: &T, out: &mut Vec<u8>) -> Result<(), CodecError> {
        bincode::serde::encode_into_std_write(value, out, bincode::config::standard())
            .map(|_| ())
            .map_err(|e| CodecError::encode("bincode", e))
    }

    fn decode(&self, bytes: &[u8]) -> Result<T, CodecError> {
        let (value, read) = bincode::serde::decode_from_slice(bytes, bincode::config::standard())
            .map_err(|e| CodecError::decode("bincode", e))?;
        if read == bytes.len() {
            Ok(value)
        } else {
            Err(CodecError::decode(
                "bincode",
                format!("{} trailing bytes after the value", bytes.len() - read),
            ))
        }
    }

    fn check(&self, value: &T, bytes: &[u8]) -> Result<(), CodecError> {
        check_compact(self, "bincode", value, bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Serialize, Deserialize, PartialEq, Debug)]
    struct Msg {
        author: String,
        sequence: u64,
        text: Option<String>,
    }

    fn round_trip<C: Codec<Msg>>(codec: C) {
        let msg = Msg {
            author: "@alice".into(),
            sequence: 42,
            text: Some("hëllo 🌊".into()),
        };
        let mut buf = Vec::new();
        codec.encode(&msg, &mut buf).unwrap();
        assert_eq!(codec.decode(&buf).unwrap(), msg);
        assert!(codec.decode(&buf[..buf.len() - 1]).is_err());
    }

    #[test]
    fn json_round_trip_and_js_bytes() {
        round_trip(Json);
        let mut buf = Vec::new();
        let value: serde_json::Value =
            serde_json::from_str(r#"{"z":1,"a":[true,null,"x"]}"#).unwrap();
        Json.encode(&value, &mut buf).unwrap();
        // Key order is kept and the output is compact, as JSON.stringify writes it.
        assert_eq!(buf, br#"{"z":1,"a":[true,null,"x"]}"#);
    }

    #[test]
    fn postcard_round_trip_and_trailing_bytes() {
        round_trip(Postcard);
        let mut buf = Vec::new();
        Postcard.encode(&7u32, &mut buf).unwrap();
        buf.push(0);
        let err = Codec::<u32>::decode(&Postcard, &buf).unwrap_err();
        assert!(err.is_decode());
        assert!(err.to_string().contains("trailing"), "{err}");
    }

    #[test]
    fn the_json_check_refuses_exactly_what_serde_json_cannot_decode() {
        let check = |text: &str| check_json_depth(text.as_bytes());
        for depth in 1..=200 {
            let arrays = format!("{}1{}", "[".repeat(depth), "]".repeat(depth));
            let objects = format!("{}1{}", r#"{"k[{\"":"#.repeat(depth), "}".repeat(depth));
            let mixed = format!("{}\"]}}\"{}", "[{\"a\":".repeat(depth), "}]".repeat(depth));
            for text in [arrays, objects, mixed] {
                let decodes = serde_json::from_str::<serde_json::Value>(&text).is_ok();
                assert_eq!(check(&text).is_ok(), decodes, "depth {depth}: {text}");
            }
        }
        assert!(check(r#"{"a":"[[[[","b":[1,{"c":"\\"}]}"#).is_ok());
    }

    #[test]
    fn raw_is_identity() {
        let mut buf = Vec::new();
        Raw.encode(&vec![0, 1, 2], &mut buf).unwrap();
        assert_eq!(Raw.decode(&buf).unwrap(), vec![0, 1, 2]);
    }

    #[cfg(feature = "bincode")]
    #[test]
    fn bincode_round_trip() {
        round_trip(Bincode);
    }
}
