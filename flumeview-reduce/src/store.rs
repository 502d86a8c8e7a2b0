//! The state file: `{version, since, value}` in a checksummed envelope, written atomically.
//!
//! Layout (all integers little-endian):
//!
//! | bytes | field |
//! |---|---|
//! | 0..4 | magic `FLRD` |
//! | 4..8 | envelope format, `1` |
//! | 8..12 | CRC32 of the body |
//! | 12..20 | body length |
//! | 20.. | body: JSON `{"version":1,"checkpoint":{"since":371,"fingerprint":…},"value":…}` |
//!
//! A write goes to `<file>.tmp`, is fsync'd, renamed over the file, and the directory is
//! fsync'd, so the file always holds one whole state with the seq it belongs to.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use flumedb_core::Checkpoint;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::error::ReduceError;

const MAGIC: &[u8; 4] = b"FLRD";
/// 2 since the body holds a checkpoint; files of format 1 (a bare `since`) are rebuilt.
const FORMAT: u32 = 2;
const HEADER: usize = 20;

#[derive(Serialize)]
struct BodyRef<'a, S> {
    version: u32,
    checkpoint: Checkpoint,
    value: &'a S,
}

#[derive(Deserialize)]
struct Body<S> {
    version: u32,
    checkpoint: Checkpoint,
    value: S,
}

/// What a state file held.
pub(crate) enum Loaded<S> {
    /// No file.
    Missing,
    /// A file that does not pass its checks, or whose value does not decode.
    Corrupt,
    /// A valid file.
    State {
        version: u32,
        checkpoint: Checkpoint,
        value: S,
    },
}

pub(crate) struct StateFile {
    path: PathBuf,
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> ReduceError + '_ {
    move |source| ReduceError::Io {
        path: path.to_path_buf(),
        source,
    }
}

impl StateFile {
    pub(crate) fn new(path: PathBuf) -> StateFile {
        StateFile { path }
    }

    pub(crate) fn encode<S: Serialize>(
        version: u32,
        checkpoint: Checkpoint,
        value: &S,
    ) -> Result<Vec<u8>, ReduceError> {
        let body = serde_json::to_vec(&BodyRef {
            version,
            checkpoint,
            value,
        })?;
        let mut out = Vec::with_capacity(HEADER + body.len());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&FORMAT.to_le_bytes());
        out.extend_from_slice(&crc32fast::hash(&body).to_le_bytes());
        out.extend_from_slice(&(body.len() as u64).to_le_bytes());
        out.extend_from_slice(&body);
        Ok(out)
    }

    pub(crate) fn load<S: DeserializeOwned>(&self) -> Result<Loaded<S>, ReduceError> {
        let bytes = match fs::read(&self.path) {
            Ok(bytes) => bytes,
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(Loaded::Missing),
            Err(err) => return Err(io_err(&self.path)(err)),
        };
        Ok(decode(&bytes).unwrap_or(Loaded::Corrupt))
    }

    /// Replaces the file with `bytes` (from [`encode`](Self::encode)), atomically and durably.
    pub(crate) fn write(&self, bytes: &[u8]) -> Result<(), ReduceError> {
        let tmp = self.path.with_extension("reduce.tmp");
        let err = io_err(&self.path);
        (|| {
            let mut file = File::create(&tmp)?;
            file.write_all(bytes)?;
            file.sync_all()?;
            drop(file);
            fs::rename(&tmp, &self.path)?;
            sync_dir(&self.path)
        })()
        .map_err(err)
    }

    /// Deletes the file (durably), if it exists.
    pub(crate) fn remove(&self) -> Result<(), ReduceError> {
        match fs::remove_file(&self.path) {
            Ok(()) => sync_dir(&self.path).map_err(io_err(&self.path)),
            Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(err) => Err(io_err(&self.path)(err)),
        }
    }
}

fn decode<S: DeserializeOwned>(bytes: &[u8]) -> Option<Loaded<S>> {
    let header = bytes.get(..HEADER)?;
    if &header[..4] != MAGIC || header[4..8] != FORMAT.to_le_bytes() {
        return None;
    }
    let crc = u32::from_le_bytes(header[8..12].try_into().ok()?);
    let len = u64::from_le_bytes(header[12..20].try_into().ok()?);
    let body = bytes.get(HEADER..)?;
    if body.len() as u64 != len || crc32fast::hash(body) != crc {
        return None;
    }
    let body: Body<S> = serde_json::from_slice(body).ok()?;
    Some(Loaded::State {
        version: body.version,
        checkpoint: body.checkpoint,
        value: body.value,
    })
}

#[cfg(unix)]
fn sync_dir(file: &Path) -> io::Result<()> {
    match file.parent() {
        Some(dir) => File::open(dir)?.sync_all(),
        None => Ok(()),
    }
}

#[cfg(not(unix))]
fn sync_dir(_file: &Path) -> io::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use flumedb_core::{Seq, Since};

    /// The on-disk bytes, byte for byte: files written by earlier releases must keep loading.
    #[test]
    fn file_bytes_are_pinned() {
        let checkpoint = Checkpoint {
            since: Since::At(Seq::new(371)),
            fingerprint: 0x0000_002d_89ab_cdef,
        };
        let bytes = StateFile::encode(1, checkpoint, &serde_json::json!({"n": 6})).unwrap();
        let body = br#"{"version":1,"checkpoint":{"since":371,"fingerprint":195583266287},"value":{"n":6}}"#;
        let mut expected = b"FLRD".to_vec();
        expected.extend([2, 0, 0, 0]);
        expected.extend(crc32fast::hash(body).to_le_bytes());
        expected.extend((body.len() as u64).to_le_bytes());
        expected.extend(body);
        assert_eq!(bytes, expected);
        let empty = StateFile::encode(1, Checkpoint::EMPTY, &0i64).unwrap();
        assert!(
            empty.ends_with(br#"{"version":1,"checkpoint":{"since":null,"fingerprint":0},"value":0}"#)
        );
    }

    #[test]
    fn round_trip_and_corruption() {
        let dir = tempfile::tempdir().unwrap();
        let file = StateFile::new(dir.path().join("sum.reduce"));
        assert!(matches!(file.load::<i64>().unwrap(), Loaded::Missing));
        let checkpoint = Checkpoint {
            since: Since::At(Seq::new(42)),
            fingerprint: 0x1234_5678_9abc,
        };
        let bytes = StateFile::encode(3, checkpoint, &1234i64).unwrap();
        file.write(&bytes).unwrap();
        match file.load::<i64>().unwrap() {
            Loaded::State {
                version,
                checkpoint: found,
                value,
            } => assert_eq!((version, found, value), (3, checkpoint, 1234)),
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
