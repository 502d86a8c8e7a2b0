//! Persisting a view's state file atomically, for views that keep their state in one file.
//!
//! A view persists its [`Stored`] (`{version, checkpoint}`, the checkpoint holding `since`)
//! together with the state that includes exactly the records up to `since`, in one write, so a
//! crash leaves the old file or the new one, whole. [`StateFile`] does this for a state any
//! `serde` type can hold: a checksummed envelope (magic and format chosen by the view) around
//! the JSON body `{version, checkpoint, value}`; the byte layout is in docs/file-formats.md
//! ("flumeview-reduce state").
//!
//! [`write_atomic`] is the write underneath, for views with a file format of their own: write
//! `<file>.tmp`, fsync it, rename it over the file, fsync the directory.
//!
//! [`SyncedEnd`] is for logs: a small file beside the log file that says up to where the log
//! was last fsync'd, so recovery after a power loss can tell a lost unsynced page from damage.
//!
//! ```
//! use flumedb_core::persist::{Loaded, StateFile};
//! use flumedb_core::{Checkpoint, Seq, Stored};
//!
//! let dir = tempfile::tempdir()?;
//! let file = StateFile::new(dir.path().join("count.state"), *b"CNT1", 1);
//! assert!(matches!(file.load::<u64>()?, Loaded::Missing));
//!
//! let stored = Stored { version: 1, checkpoint: Checkpoint::of(Seq::new(7), b"{}") };
//! file.write(&file.encode(stored, &42u64)?)?;
//! match file.load::<u64>()? {
//!     Loaded::State(saved) => assert_eq!((saved.stored, saved.value), (stored, 42)),
//!     _ => unreachable!("just written"),
//! }
//! file.remove()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::ffi::OsString;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::{Checkpoint, Stored};

mod synced_end;
pub use synced_end::{Mark, SyncedEnd};

/// Bytes before the body: magic, format, CRC32, length.
const HEADER: usize = 20;

/// A view's state file: `{version, checkpoint, value}` in a checksummed envelope, replaced
/// atomically (see the [module documentation](self) for the layout).
#[derive(Clone, Debug)]
pub struct StateFile {
    path: PathBuf,
    magic: [u8; 4],
    format: u32,
}

/// What [`StateFile::load`] found.
#[derive(Debug)]
pub enum Loaded<S> {
    /// No file: nothing persisted yet (or removed by a reset).
    Missing,
    /// A file that fails its checks (magic, format, CRC32, length), or whose body does not
    /// decode into the state type: the view rebuilds rather than misreads it.
    Corrupt,
    /// A whole, valid state.
    State(Saved<S>),
}

/// A persisted state and what it includes.
#[derive(Clone, Debug, PartialEq)]
pub struct Saved<S> {
    /// The view's version and checkpoint when the state was written: what
    /// [`View::open`](crate::View::open) returns.
    pub stored: Stored,
    /// The state.
    pub value: S,
}

#[derive(Serialize)]
struct BodyRef<'a, S: ?Sized> {
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

impl StateFile {
    /// The state file at `path`, with the view's own `magic` and envelope `format` (bump the
    /// format when the body changes shape: files of another format load as
    /// [`Loaded::Corrupt`], so the view rebuilds).
    pub fn new(path: impl Into<PathBuf>, magic: [u8; 4], format: u32) -> StateFile {
        StateFile {
            path: path.into(),
            magic,
            format,
        }
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The file's bytes for `value` at `stored`. Serialise under the lock that guards the state,
    /// so the value and its checkpoint belong together, and [`write`](Self::write) after
    /// releasing it.
    ///
    /// # Errors
    ///
    /// `value` cannot be serialised to JSON (a map with non-string keys, a failing
    /// `Serialize`).
    pub fn encode<S: Serialize + ?Sized>(
        &self,
        stored: Stored,
        value: &S,
    ) -> serde_json::Result<Vec<u8>> {
        let body = serde_json::to_vec(&BodyRef {
            version: stored.version,
            checkpoint: stored.checkpoint,
            value,
        })?;
        let mut out = Vec::with_capacity(HEADER + body.len());
        out.extend_from_slice(&self.magic);
        out.extend_from_slice(&self.format.to_le_bytes());
        out.extend_from_slice(&crc32fast::hash(&body).to_le_bytes());
        out.extend_from_slice(&(body.len() as u64).to_le_bytes());
        out.extend_from_slice(&body);
        Ok(out)
    }

    /// The state in `bytes`, or `None` if they fail any check or do not decode into `S`.
    pub fn decode<S: DeserializeOwned>(&self, bytes: &[u8]) -> Option<Saved<S>> {
        let (magic, rest) = bytes.split_first_chunk::<4>()?;
        let (format, rest) = rest.split_first_chunk::<4>()?;
        let (crc, rest) = rest.split_first_chunk::<4>()?;
        let (len, body) = rest.split_first_chunk::<8>()?;
        if *magic != self.magic || u32::from_le_bytes(*format) != self.format {
            return None;
        }
        if body.len() as u64 != u64::from_le_bytes(*len)
            || crc32fast::hash(body) != u32::from_le_bytes(*crc)
        {
            return None;
        }
        let body: Body<S> = serde_json::from_slice(body).ok()?;
        Some(Saved {
            stored: Stored {
                version: body.version,
                checkpoint: body.checkpoint,
            },
            value: body.value,
        })
    }

    /// Reads the file.
    ///
    /// # Errors
    ///
    /// Reading failed for another reason than the file not existing.
    pub fn load<S: DeserializeOwned>(&self) -> io::Result<Loaded<S>> {
        let bytes = match fs::read(&self.path) {
            Ok(bytes) => bytes,
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(Loaded::Missing),
            Err(err) => return Err(err),
        };
        Ok(self.decode(&bytes).map_or(Loaded::Corrupt, Loaded::State))
    }

    /// Replaces the file with `bytes` (from [`encode`](Self::encode)), atomically and durably:
    /// [`write_atomic`].
    ///
    /// # Errors
    ///
    /// As [`write_atomic`].
    pub fn write(&self, bytes: &[u8]) -> io::Result<()> {
        write_atomic(&self.path, bytes)
    }

    /// Deletes the file durably, if it exists: [`remove_durable`].
    ///
    /// # Errors
    ///
    /// As [`remove_durable`].
    pub fn remove(&self) -> io::Result<()> {
        remove_durable(&self.path)
    }
}

/// Replaces the file at `path` with `bytes`, atomically and durably: writes `<path>.tmp`,
/// fsyncs it, renames it over `path` and fsyncs the directory. After a crash `path` holds the
/// old bytes or the new ones, whole (a `.tmp` left behind is overwritten by the next write).
///
/// # Errors
///
/// `path` has no file name, or creating, writing, syncing or renaming failed.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let tmp = tmp_path(path)?;
    let mut file = File::create(&tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    drop(file);
    fs::rename(&tmp, path)?;
    sync_parent(path)
}

/// Deletes the file at `path`, if it exists, and fsyncs the directory so the deletion
/// survives a crash.
///
/// # Errors
///
/// Deleting (other than a missing file) or syncing the directory failed.
pub fn remove_durable(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Ok(()) => sync_parent(path),
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(err) => Err(err),
    }
}

/// `<path>.tmp`, next to the file so the rename stays within one file system.
fn tmp_path(path: &Path) -> io::Result<PathBuf> {
    let name = path.file_name().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} names no file", path.display()),
        )
    })?;
    let mut tmp = OsString::from(name);
    tmp.push(".tmp");
    Ok(path.with_file_name(tmp))
}

/// Creates `dir` and any missing ancestors, each new entry made durable in its parent (an
/// fsync of the parent), so files in it cannot vanish with a directory in a power loss.
///
/// # Errors
/// [`Error::File`](crate::Error::File) naming the directory that could not be created or
/// synced.
pub fn create_dir_durably(dir: &Path) -> crate::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    // The missing ancestors, outermost first.
    let mut missing: Vec<&Path> = dir
        .ancestors()
        .take_while(|a| !a.as_os_str().is_empty() && !a.is_dir())
        .collect();
    missing.reverse();
    for new in missing {
        match std::fs::create_dir(new) {
            Ok(()) => {}
            // Another opener created it meanwhile: its creator makes it durable.
            Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists && new.is_dir() => {
                continue;
            }
            Err(source) => {
                return Err(crate::Error::File {
                    path: new.to_path_buf(),
                    source,
                });
            }
        }
        sync_parent(new).map_err(|source| crate::Error::File {
            path: new.parent().unwrap_or(Path::new(".")).to_path_buf(),
            source,
        })?;
    }
    Ok(())
}

/// Makes the entries of `dir` durable (a created file or directory, a rename, a deletion):
/// an fsync of the directory. A no-op where directories cannot be opened for syncing (there,
/// as on Windows, such changes are durable without it).
///
/// # Errors
/// The directory could not be opened or synced.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        let dir = if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        };
        File::open(dir)?.sync_all()
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        Ok(())
    }
}

/// Makes `path`'s entry in its directory durable (see [`sync_dir`]).
///
/// # Errors
/// The directory could not be opened or synced.
pub fn sync_parent(path: &Path) -> io::Result<()> {
    sync_dir(path.parent().unwrap_or(Path::new(".")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Seq, Since};

    fn stored() -> Stored {
        Stored {
            version: 3,
            checkpoint: Checkpoint {
                since: Since::At(Seq::new(42)),
                fingerprint: 0x1234_5678_9abc,
            },
        }
    }

    #[test]
    fn layout_is_pinned() {
        let file = StateFile::new("x.state", *b"TEST", 7);
        let bytes = file.encode(stored(), &[1u8, 2]).unwrap();
        let body = br#"{"version":3,"checkpoint":{"since":42,"fingerprint":20015998343868},"value":[1,2]}"#;
        let mut expected = b"TEST".to_vec();
        expected.extend(7u32.to_le_bytes());
        expected.extend(crc32fast::hash(body).to_le_bytes());
        expected.extend((body.len() as u64).to_le_bytes());
        expected.extend(body);
        assert_eq!(bytes, expected);
    }

    #[test]
    fn round_trip_and_every_damage_detected() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v.state");
        let file = StateFile::new(&path, *b"TEST", 1);
        assert!(matches!(file.load::<i64>().unwrap(), Loaded::Missing));
        let bytes = file.encode(stored(), &1234i64).unwrap();
        file.write(&bytes).unwrap();
        assert!(!dir.path().join("v.state.tmp").exists());
        assert_eq!(fs::read(&path).unwrap(), bytes);
        match file.load::<i64>().unwrap() {
            Loaded::State(saved) => assert_eq!((saved.stored, saved.value), (stored(), 1234)),
            other => panic!("expected a state, got {other:?}"),
        }
        for i in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[i] ^= 0x20;
            assert!(file.decode::<i64>(&bad).is_none(), "flip at {i}");
            assert!(file.decode::<i64>(&bytes[..i]).is_none(), "cut at {i}");
        }
        // Another type, magic or format: rebuild rather than misread.
        assert!(file.decode::<String>(&bytes).is_none());
        assert!(
            StateFile::new(&path, *b"TESU", 1)
                .decode::<i64>(&bytes)
                .is_none()
        );
        assert!(
            StateFile::new(&path, *b"TEST", 2)
                .decode::<i64>(&bytes)
                .is_none()
        );
        fs::write(&path, &bytes[..bytes.len() - 1]).unwrap();
        assert!(matches!(file.load::<i64>().unwrap(), Loaded::Corrupt));
        file.remove().unwrap();
        assert!(matches!(file.load::<i64>().unwrap(), Loaded::Missing));
        file.remove().unwrap();
    }

    #[test]
    fn a_unit_state_persists_version_and_since_alone() {
        let dir = tempfile::tempdir().unwrap();
        let file = StateFile::new(dir.path().join("meta"), *b"META", 1);
        file.write(&file.encode(stored(), &()).unwrap()).unwrap();
        match file.load::<()>().unwrap() {
            Loaded::State(saved) => assert_eq!(saved.stored, stored()),
            other => panic!("expected a state, got {other:?}"),
        }
    }

    #[test]
    fn a_path_without_a_file_name_is_an_error() {
        let err = write_atomic(Path::new("/"), b"x").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    }
}
