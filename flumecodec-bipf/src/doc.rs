//! [`BipfDoc`]: a BIPF record read in place, as a database stores it.

use std::fmt;

use flumedb_core::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{DecodeError, EncodeError};
use crate::field::BipfField;

/// A BIPF record as it is stored: its exact bytes, shared and cheap to clone, read field by
/// field without decoding the rest ([`BipfField`]); decoding the whole record is one call
/// away. A database of `BipfDoc`s (`Flume<L, BipfDoc, Bipf>`)
/// hands readers the records as the log stores them.
///
/// ```
/// use flumecodec_bipf::{Bipf, BipfDoc};
/// use flumedb_core::Flume;
/// use flumelog_memory::MemoryLog;
/// use serde_json::json;
///
/// let db: Flume<MemoryLog, BipfDoc, Bipf> = Flume::open(MemoryLog::new(), Bipf)?;
/// let seq = db.append(&BipfDoc::encode(&json!({"type": "post", "text": "hi"}))?)?;
/// let doc = db.get(seq)?;
/// assert_eq!(doc.get(&["type"])?.and_then(|f| f.as_str()), Some("post"));
/// let value: serde_json::Value = doc.decode()?;
/// assert_eq!(value["text"], "hi");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct BipfDoc {
    bytes: Bytes,
}

impl BipfDoc {
    /// A record of these BIPF bytes, taken as they are (no copy of a [`Bytes`] or `Vec<u8>`).
    /// Nothing is checked here: appending checks the bytes, and reads check what they pass.
    pub fn from_bipf(bytes: impl Into<Bytes>) -> BipfDoc {
        BipfDoc {
            bytes: bytes.into(),
        }
    }

    /// The record of a value, encoded as the [`Bipf`](crate::Bipf) codec stores it.
    pub fn encode<T: Serialize + ?Sized>(value: &T) -> Result<BipfDoc, EncodeError> {
        crate::to_vec(value).map(BipfDoc::from_bipf)
    }

    /// The stored bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The stored bytes, shared.
    pub fn to_bytes(&self) -> Bytes {
        self.bytes.clone()
    }

    /// The whole record as a [`BipfField`].
    pub fn root(&self) -> Result<BipfField<'_>, DecodeError> {
        BipfField::from_bytes(&self.bytes)
    }

    /// The value at `path` (object keys from the top): `Ok(None)` when a step is missing or
    /// not an object ([`BipfField::get`]).
    pub fn get<S: AsRef<str>>(&self, path: &[S]) -> Result<Option<BipfField<'_>>, DecodeError> {
        self.root()?.get(path)
    }

    /// Decodes the whole record into `T` (a typed struct, or a `serde_json::Value`).
    pub fn decode<T: DeserializeOwned>(&self) -> Result<T, DecodeError> {
        crate::from_slice(&self.bytes)
    }
}

impl fmt::Debug for BipfDoc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.root() {
            Ok(root) => write!(f, "BipfDoc({root:?})"),
            Err(_) => write!(f, "BipfDoc({:02x?})", self.bytes.as_ref()),
        }
    }
}

impl From<Bytes> for BipfDoc {
    fn from(bytes: Bytes) -> BipfDoc {
        BipfDoc::from_bipf(bytes)
    }
}
