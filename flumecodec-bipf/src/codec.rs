//! [`Bipf`]: the codec of a flumedb database storing BIPF.

use flumedb_core::{Codec, CodecError};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::doc::BipfDoc;

/// Stores values as BIPF, as ssb-db2 does: typed values and `serde_json::Value`s through
/// serde, byte-identical with the npm `bipf` 1.9.0 encoder, or [`BipfDoc`] records kept as
/// their bytes and read in place.
///
/// ```
/// use flumecodec_bipf::Bipf;
/// use flumedb_core::Flume;
/// use flumelog_memory::MemoryLog;
/// use serde_json::{Value, json};
///
/// let db: Flume<MemoryLog, Value, Bipf> = Flume::open(MemoryLog::new(), Bipf)?;
/// let seq = db.append(&json!({"type": "vote", "value": 1}))?;
/// assert_eq!(db.get(seq)?, json!({"type": "vote", "value": 1}));
/// # Ok::<(), flumedb_core::Error>(())
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct Bipf;

impl<T: Serialize + DeserializeOwned + 'static> Codec<T> for Bipf {
    fn encode(&self, value: &T, out: &mut Vec<u8>) -> Result<(), CodecError> {
        crate::encode_into(value, out).map_err(CodecError::from)
    }

    fn decode(&self, bytes: &[u8]) -> Result<T, CodecError> {
        crate::from_slice(bytes).map_err(CodecError::from)
    }
}

impl Codec<BipfDoc> for Bipf {
    fn encode(&self, value: &BipfDoc, out: &mut Vec<u8>) -> Result<(), CodecError> {
        out.extend_from_slice(value.as_bytes());
        Ok(())
    }

    fn decode(&self, bytes: &[u8]) -> Result<BipfDoc, CodecError> {
        Ok(BipfDoc::from_bipf(bytes.to_vec()))
    }

    fn decode_owned(&self, bytes: Vec<u8>) -> Result<BipfDoc, CodecError> {
        Ok(BipfDoc::from_bipf(bytes))
    }

    fn check(&self, _value: &BipfDoc, bytes: &[u8]) -> Result<(), CodecError> {
        crate::validate(bytes)
            .map_err(|e| CodecError::encode("bipf", format!("refused, nothing written: {e}")))
    }
}
