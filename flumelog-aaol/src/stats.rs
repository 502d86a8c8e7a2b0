//! `<log>.stats`: the JS package's count of deleted bytes, `{"deletedBytes":N}`, written
//! atomically after each delete.

use std::path::{Path, PathBuf};

use flumedb_core::{Error, Result};

pub(crate) fn path(log: &Path) -> PathBuf {
    let mut name = log.as_os_str().to_os_string();
    name.push(".stats");
    PathBuf::from(name)
}

/// The deleted bytes the stats file records (0 when there is none).
pub(crate) fn load(log: &Path) -> Result<u64> {
    let path = path(log);
    let text = match std::fs::read(&path) {
        Ok(text) => text,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(source) => return Err(Error::File { path, source }),
    };
    let value: serde_json::Value = serde_json::from_slice(&text).map_err(|e| Error::Corrupt {
        seq: None,
        reason: format!("{}: not JSON: {e}", path.display()),
    })?;
    value
        .get("deletedBytes")
        .and_then(serde_json::Value::as_u64)
        .ok_or_else(|| Error::Corrupt {
            seq: None,
            reason: format!("{}: no deletedBytes count", path.display()),
        })
}

/// Records `deleted` bytes, atomically (a temporary file, fsync, rename, directory fsync).
pub(crate) fn store(log: &Path, deleted: u64) -> Result<()> {
    let path = path(log);
    let text = format!("{{\"deletedBytes\":{deleted}}}");
    flumedb_core::persist::write_atomic(&path, text.as_bytes())
        .map_err(|source| Error::File { path, source })
}
