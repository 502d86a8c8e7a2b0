//! The state file, `<view dir>/<name>.reduce`: `{version, checkpoint, value}` in the
//! checksummed envelope of [`flumedb_core::persist`] (magic `FLRD`), replaced atomically, so the
//! file always holds one whole state with the seq it belongs to. The bytes are laid out in
//! `docs/file-formats.md`.

use std::path::PathBuf;

use flumedb_core::Stored;
use flumedb_core::persist::{self, Loaded};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::ReduceError;

const MAGIC: [u8; 4] = *b"FLRD";
/// 2 since the body holds a checkpoint; files of format 1 (a bare `since`) are rebuilt.
const FORMAT: u32 = 2;

/// The reduce view's state file; errors name it.
pub(crate) struct ReduceFile(persist::StateFile);

impl ReduceFile {
    pub(crate) fn new(path: PathBuf) -> ReduceFile {
        ReduceFile(persist::StateFile::new(path, MAGIC, FORMAT))
    }

    fn io_err(&self, source: std::io::Error) -> ReduceError {
        ReduceError::Io {
            path: self.0.path().to_path_buf(),
            source,
        }
    }

    /// The file's bytes for `value` at `stored`, for [`write`](Self::write).
    pub(crate) fn encode<S: Serialize>(
        &self,
        stored: Stored,
        value: &S,
    ) -> Result<Vec<u8>, ReduceError> {
        Ok(self.0.encode(stored, value)?)
    }

    pub(crate) fn load<S: DeserializeOwned>(&self) -> Result<Loaded<S>, ReduceError> {
        self.0.load().map_err(|e| self.io_err(e))
    }

    /// Replaces the file with `bytes` (from [`encode`](Self::encode)), atomically and durably.
    pub(crate) fn write(&self, bytes: &[u8]) -> Result<(), ReduceError> {
        self.0.write(bytes).map_err(|e| self.io_err(e))
    }

    /// Deletes the file (durably), if it exists.
    pub(crate) fn remove(&self) -> Result<(), ReduceError> {
        self.0.remove().map_err(|e| self.io_err(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flumedb_core::{Checkpoint, Seq, Since};

    fn encode<S: Serialize>(version: u32, checkpoint: Checkpoint, value: &S) -> Vec<u8> {
        ReduceFile::new(PathBuf::from("x.reduce"))
            .encode(
                Stored {
                    version,
                    checkpoint,
                },
                value,
            )
            .unwrap()
    }

    fn decode<S: DeserializeOwned>(bytes: &[u8]) -> Option<persist::Saved<S>> {
        ReduceFile::new(PathBuf::from("x.reduce")).0.decode(bytes)
    }

    /// The on-disk bytes, byte for byte: files written by earlier releases must keep loading.
    #[test]
    fn file_bytes_are_pinned() {
        let checkpoint = Checkpoint {
            since: Since::At(Seq::new(371)),
            fingerprint: 0x0000_002d_89ab_cdef,
        };
        let bytes = encode(1, checkpoint, &serde_json::json!({"n": 6}));
        let body = br#"{"version":1,"checkpoint":{"since":371,"fingerprint":195583266287},"value":{"n":6}}"#;
        let mut expected = b"FLRD".to_vec();
        expected.extend([2, 0, 0, 0]);
        expected.extend(crc32fast::hash(body).to_le_bytes());
        expected.extend((body.len() as u64).to_le_bytes());
        expected.extend(body);
        assert_eq!(bytes, expected);
        let empty = encode(1, Checkpoint::EMPTY, &0i64);
        assert!(
            empty.ends_with(
                br#"{"version":1,"checkpoint":{"since":null,"fingerprint":0},"value":0}"#
            )
        );
    }

    #[test]
    fn round_trip_and_corruption() {
        let dir = tempfile::tempdir().unwrap();
        let file = ReduceFile::new(dir.path().join("sum.reduce"));
        assert!(matches!(file.load::<i64>().unwrap(), Loaded::Missing));
        let checkpoint = Checkpoint {
            since: Since::At(Seq::new(42)),
            fingerprint: 0x1234_5678_9abc,
        };
        let bytes = encode(3, checkpoint, &1234i64);
        file.write(&bytes).unwrap();
        // The temporary file is `<name>.reduce.tmp`, renamed away.
        assert!(!dir.path().join("sum.reduce.tmp").exists());
        match file.load::<i64>().unwrap() {
            Loaded::State(saved) => assert_eq!(
                (saved.stored.version, saved.stored.checkpoint, saved.value),
                (3, checkpoint, 1234)
            ),
            _ => panic!("expected a state"),
        }
        // Every single-byte flip and every truncation is detected.
        for i in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[i] ^= 0x20;
            assert!(decode::<i64>(&bad).is_none(), "flip at {i} not detected");
            assert!(
                decode::<i64>(&bytes[..i]).is_none(),
                "cut at {i} not detected"
            );
        }
        // A value of another type does not decode: rebuild rather than misread.
        assert!(decode::<String>(&bytes).is_none());
        file.remove().unwrap();
        assert!(matches!(file.load::<i64>().unwrap(), Loaded::Missing));
        file.remove().unwrap();
    }
}
