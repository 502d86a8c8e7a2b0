//! [`Doc`]: a JSON record read in place. It holds the stored bytes, shared, and reads the
//! fields asked for where they lie; decoding the whole record is one call away.

mod field;
mod scan;
mod set;

pub use field::{Field, JsonType};
pub use set::FieldSet;

use std::fmt;

use bytes::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::error::CodecError;

/// A JSON record as it is stored: its exact bytes (key order, number spelling and all, which
/// Secure Scuttlebutt signatures are computed over), shared and cheap to clone, read field by
/// field without decoding the rest.
///
/// A database of `Doc`s (`Flume<L, Doc>` with the [`Json`](crate::Json) codec) hands views and
/// readers the records as the log stores them; a view that needs two fields reads two fields.
/// [`decode`](Doc::decode) gives a typed value or a [`serde_json::Value`] when the whole
/// record is wanted.
///
/// ```
/// use flumedb_core::{Doc, Flume, Json};
/// use flumelog_memory::MemoryLog;
///
/// let db: Flume<MemoryLog, Doc> = Flume::open(MemoryLog::new(), Json)?;
/// let seq = db.append(&Doc::from_json(r#"{"type":"post","text":"hi"}"#))?;
/// let doc = db.get(seq)?;
/// assert_eq!(doc.get(&["type"])?.and_then(|f| f.as_str()).as_deref(), Some("post"));
/// assert_eq!(doc.as_bytes(), br#"{"type":"post","text":"hi"}"#);
/// let value: serde_json::Value = doc.decode()?;
/// assert_eq!(value["text"], "hi");
/// # Ok::<(), flumedb_core::Error>(())
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Doc {
    bytes: Bytes,
}

impl Doc {
    /// A record of these JSON bytes, taken as they are (no copy of a [`Bytes`] or `Vec<u8>`).
    /// Nothing is checked here: appending checks that the bytes are JSON, and reading a field
    /// checks the structure it passes.
    pub fn from_json(bytes: impl Into<Bytes>) -> Doc {
        Doc {
            bytes: bytes.into(),
        }
    }

    /// The record of a value, encoded as the [`Json`](crate::Json) codec stores it.
    pub fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Doc, CodecError> {
        serde_json::to_vec(value)
            .map(Doc::from_json)
            .map_err(|e| CodecError::encode("json", e))
    }

    /// The stored bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The stored bytes, shared.
    pub fn to_bytes(&self) -> Bytes {
        self.bytes.clone()
    }

    /// The whole record as a [`Field`].
    pub fn root(&self) -> Field<'_> {
        Field::from_json(&self.bytes)
    }

    /// The value at `path` (object keys from the top): `Ok(None)` when a step is missing or
    /// not an object, an error when the bytes on the way are not well-formed JSON. Only the
    /// objects on the path are read; a key that appears twice counts as its last, as in a
    /// full decode.
    pub fn get<S: AsRef<str>>(&self, path: &[S]) -> Result<Option<Field<'_>>, CodecError> {
        self.root().get(path)
    }

    /// Decodes the whole record into `T` (a typed struct, or a [`serde_json::Value`]).
    pub fn decode<T: DeserializeOwned>(&self) -> Result<T, CodecError> {
        serde_json::from_slice(&self.bytes).map_err(|e| CodecError::decode("json", e))
    }

    /// Decodes the whole record into a [`serde_json::Value`], keeping key order.
    pub fn to_value(&self) -> Result<Value, CodecError> {
        self.decode()
    }
}

impl fmt::Debug for Doc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Doc({})", String::from_utf8_lossy(&self.bytes))
    }
}

impl From<Bytes> for Doc {
    fn from(bytes: Bytes) -> Doc {
        Doc::from_json(bytes)
    }
}

/// Checks that `bytes` are one well-formed JSON value a full decode reads back (the append
/// check of [`Doc`] records).
pub(crate) fn check_json(bytes: &[u8]) -> Result<(), CodecError> {
    serde_json::from_slice::<serde::de::IgnoredAny>(bytes)
        .map(drop)
        .map_err(|e| CodecError::encode("json", format!("refused, nothing written: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn get_agrees_with_a_full_decode() {
        let text = r#" {"key":"%a","value":{"author":"@b","content":{"type":"vote","vote":{"link":"%c","value":1}},"n":null},"timestamp":1.5} "#;
        let doc = Doc::from_json(text);
        let full: Value = serde_json::from_str(text).unwrap();
        for path in [
            &["key"][..],
            &["value", "author"],
            &["value", "content", "type"],
            &["value", "content", "vote", "value"],
            &["value", "n"],
            &["value", "missing"],
            &["value", "author", "deeper"],
            &["timestamp"],
            &[],
        ] {
            let mut want = Some(&full);
            for key in path {
                want = want.and_then(|v| v.as_object()).and_then(|o| o.get(*key));
            }
            let got = doc.get(path).unwrap().map(|f| f.to_value().unwrap());
            assert_eq!(got.as_ref(), want, "{path:?}");
        }
        assert_eq!(doc.root().raw().first(), Some(&b'{'));
        assert_eq!(doc.root().raw().last(), Some(&b'}'));
    }

    #[test]
    fn the_bytes_are_kept_exactly() {
        let text = r#"{"b":1.50,"a":"\u00e9"}"#;
        let doc = Doc::from_json(text.as_bytes().to_vec());
        assert_eq!(doc.as_bytes(), text.as_bytes());
        assert_eq!(doc.get(&["b"]).unwrap().unwrap().raw(), b"1.50");
        let round = Doc::encode(&doc.to_value().unwrap()).unwrap();
        assert_eq!(round.as_bytes(), r#"{"b":1.5,"a":"é"}"#.as_bytes());
    }

    #[test]
    fn malformed_records_give_errors() {
        let doc = Doc::from_json(r#"{"a":{"b":1"#);
        assert!(doc.get(&["a", "b"]).is_err());
        assert!(doc.decode::<Value>().is_err());
        assert!(check_json(b"{\"a\":1} x").is_err());
        assert!(check_json(b"{\"a\":1}").is_ok());
    }
}
