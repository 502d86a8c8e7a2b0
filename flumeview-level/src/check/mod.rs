//! Checking a level store's files before the engine reads them, and throwing a damaged store
//! away.
//!
//! fjall trusts its files: a flipped bit can make it panic, or abort the process on a length
//! read before its checksum. So a clean close writes a check file,
//! [`CHECK_FILE`], listing every file of the store with its size and CRC32,
//! and the next open verifies all of them before fjall opens the directory. A store that fails
//! is wiped and rebuilt from the log (a view can always be rebuilt). The check file is deleted
//! before fjall writes anything, so it only ever describes a closed store; without one (after
//! a crash) fjall's own recovery runs.

mod dir;
mod files;
mod wipe;

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};

use dir::{CHECK_FILE, CHECK_TMP, DAMAGED_FILE, file_error, remove_if_present};
pub(crate) use dir::{DirLock, io_is_damage};
pub(crate) use files::Known;
use files::{Found, Stamp, crcs, list};
use flumedb_core::persist::sync_dir;
pub(crate) use wipe::{mark_damaged, wipe};

use crate::error::LevelError;

/// The first line of a check file (format version 1).
const HEADER: &str = "flumeview-level check 1";

/// What the files of a level store were found to be, and what was done about it.
///
/// [`LevelHandle::repaired`](crate::LevelHandle::repaired) returns it when the view's index
/// files were thrown away and rebuilt from the log.
#[derive(Clone, PartialEq, Eq, Debug)]
#[non_exhaustive]
pub struct Repaired {
    /// The index directory (`level` in the log's view directory).
    pub path: PathBuf,
    /// What was wrong, such as `keyspaces/1/tables/0: CRC32 0x12ab34cd, expected 0x…`.
    pub reason: String,
    /// Whether the whole directory was wiped (every level view of it rebuilds), or only this
    /// view's rows were cleared.
    pub whole_store: bool,
}

/// What [`inspect`] found.
pub(crate) enum Verdict {
    /// No check file (a new store, or one not closed cleanly): fjall's recovery decides.
    Unchecked,
    /// Every file is as the last clean close left it; the check file is gone again. The
    /// CRCs taken, for the next close to reuse.
    Intact(Known),
    /// Not to be opened, and why.
    Damaged(String),
}

/// Looks at the store at `dir` before fjall opens it: a damage marker or a failed check means
/// it must be wiped. An intact store's check file is deleted (durably) before this returns,
/// since fjall is about to change the files it describes.
pub(crate) fn inspect(dir: &Path) -> Result<Verdict, LevelError> {
    if !dir.exists() {
        return Ok(Verdict::Unchecked);
    }
    let Some(_lock) = DirLock::try_acquire(dir)? else {
        // Open in another process: fjall's open reports it, and nothing here is touched.
        return Ok(Verdict::Unchecked);
    };
    remove_if_present(&dir.join(CHECK_TMP))?;
    match std::fs::read(dir.join(DAMAGED_FILE)) {
        Ok(reason) => {
            return Ok(Verdict::Damaged(
                String::from_utf8_lossy(&reason).into_owned(),
            ));
        }
        Err(err) if err.kind() == ErrorKind::NotFound => {}
        Err(err) if io_is_damage(&err) => {
            return Ok(Verdict::Damaged(format!("{DAMAGED_FILE}: {err}")));
        }
        Err(err) => return Err(file_error(dir, err)),
    }
    let check_path = dir.join(CHECK_FILE);
    let text = match std::fs::read(&check_path) {
        Ok(text) => text,
        Err(err) if err.kind() == ErrorKind::NotFound => return Ok(Verdict::Unchecked),
        Err(err) if io_is_damage(&err) => {
            return Ok(Verdict::Damaged(format!("{CHECK_FILE}: {err}")));
        }
        Err(err) => return Err(file_error(&check_path, err)),
    };
    let expected = match parse(&text) {
        Ok(entries) => entries,
        Err(why) => return Ok(Verdict::Damaged(format!("{CHECK_FILE}: {why}"))),
    };
    let known = match verify(dir, &expected)? {
        Ok(known) => known,
        Err(why) => return Ok(Verdict::Damaged(why)),
    };
    // Gone before fjall writes: a check file must never describe files that have changed
    // since (if this deletion is lost in a power loss, the next check fails: a rebuild).
    std::fs::remove_file(&check_path).map_err(|e| file_error(&check_path, e))?;
    sync_dir(dir).map_err(|e| file_error(dir, e))?;
    Ok(Verdict::Intact(known))
}

/// One entry of a store directory, as a check file records it.
#[derive(Clone, PartialEq, Eq, Debug)]
enum Entry {
    Dir,
    File { size: u64, crc: u32 },
}

/// Compares the store's files with a check file's entries: `Err(why)` at the first
/// difference, else what was verified. Names, kinds and sizes are compared before any file is
/// read.
fn verify(
    dir: &Path,
    expected: &BTreeMap<String, Entry>,
) -> Result<Result<Known, String>, LevelError> {
    let found = match list(dir) {
        Ok(Ok(found)) => found,
        Ok(Err(why)) => return Ok(Err(why)),
        Err(err) if io_is_damage(&err) => return Ok(Err(format!("listing the store: {err}"))),
        Err(err) => return Err(file_error(dir, err)),
    };
    for (name, entry) in expected {
        match (found.get(name), entry) {
            (None, _) => return Ok(Err(format!("{name}: missing"))),
            (Some(Found::Dir), Entry::Dir) => {}
            (Some(Found::File { size, .. }), Entry::File { size: want, .. }) => {
                if size != want {
                    return Ok(Err(format!("{name}: {size} bytes, expected {want}")));
                }
            }
            (Some(_), _) => {
                return Ok(Err(format!(
                    "{name}: a file where a directory was, or the reverse"
                )));
            }
        }
    }
    if let Some(extra) = found.keys().find(|name| !expected.contains_key(*name)) {
        return Ok(Err(format!("{extra}: not there at the last clean close")));
    }
    let files: Vec<(&String, &Path, u64, Stamp, u32)> = found
        .iter()
        .filter_map(|(name, found)| match (found, expected.get(name)) {
            (Found::File { path, size, stamp }, Some(Entry::File { crc, .. })) => {
                Some((name, path.as_path(), *size, *stamp, *crc))
            }
            _ => None,
        })
        .collect();
    let paths: Vec<(&Path, u64)> = files.iter().map(|f| (f.1, f.2)).collect();
    let mut known = Known::default();
    for ((name, path, size, stamp, want), result) in files.iter().zip(crcs(&paths)) {
        let (crc, len) = match result {
            Ok(found) => found,
            Err(err) if io_is_damage(&err) => return Ok(Err(format!("{name}: {err}"))),
            Err(err) => return Err(file_error(path, err)),
        };
        if len != *size {
            return Ok(Err(format!("{name}: {len} bytes read, expected {size}")));
        }
        if crc != *want {
            return Ok(Err(format!(
                "{name}: CRC32 {crc:#010x}, expected {want:#010x}"
            )));
        }
        known.insert((*name).clone(), *size, *stamp, crc);
    }
    Ok(Ok(known))
}

/// Reads a check file: header, one line per entry (`d <path>` or `f <size> <crc> <path>`),
/// and `end <crc>`, the CRC32 of everything before that line.
fn parse(text: &[u8]) -> Result<BTreeMap<String, Entry>, String> {
    let text = std::str::from_utf8(text).map_err(|_| "not UTF-8".to_string())?;
    let body_end = text
        .trim_end_matches('\n')
        .rfind('\n')
        .map(|i| i + 1)
        .ok_or("too short")?;
    let (body, last) = text.split_at(body_end);
    let want = last
        .strip_prefix("end ")
        .and_then(|s| s.strip_suffix('\n'))
        .and_then(|s| u32::from_str_radix(s, 16).ok())
        .ok_or("no end line")?;
    if crc32fast::hash(body.as_bytes()) != want {
        return Err("its own CRC32 does not match".into());
    }
    let mut lines = body.lines();
    if lines.next() != Some(HEADER) {
        return Err("unknown header".into());
    }
    let mut out = BTreeMap::new();
    for line in lines {
        let bad = || format!("bad line {line:?}");
        let (name, entry) = if let Some(name) = line.strip_prefix("d ") {
            (name, Entry::Dir)
        } else if let Some(rest) = line.strip_prefix("f ") {
            let mut parts = rest.splitn(3, ' ');
            let size = parts.next().and_then(|s| s.parse().ok()).ok_or_else(bad)?;
            let crc = parts
                .next()
                .and_then(|s| u32::from_str_radix(s, 16).ok())
                .ok_or_else(bad)?;
            (parts.next().ok_or_else(bad)?, Entry::File { size, crc })
        } else {
            return Err(bad());
        };
        if name.is_empty() || out.insert(name.to_string(), entry).is_some() {
            return Err(bad());
        }
    }
    Ok(out)
}

/// Writes the check file of a closed store: every file's size and CRC32 (reused from `known`
/// for files unchanged since their CRC was taken), written to a temporary file, synced,
/// renamed into place, and the directory synced. Returns `false` (writing nothing) if the
/// store holds something a check file cannot describe. The caller holds the store's lock,
/// so no other process has it open.
pub(crate) fn seal(dir: &Path, _lock: &DirLock, known: &Known) -> Result<bool, LevelError> {
    let found = match list(dir).map_err(|e| file_error(dir, e))? {
        Ok(found) => found,
        Err(_) => return Ok(false),
    };
    let fresh: Vec<(&Path, u64)> = found
        .iter()
        .filter_map(|(name, found)| match found {
            Found::File { path, size, stamp } if known.crc(name, *size, *stamp).is_none() => {
                Some((path.as_path(), *size))
            }
            _ => None,
        })
        .collect();
    let mut fresh_crcs = fresh.iter().map(|(path, _)| *path).zip(crcs(&fresh));
    let mut body = format!("{HEADER}\n");
    for (name, found) in &found {
        match found {
            Found::Dir => body.push_str(&format!("d {name}\n")),
            Found::File { path, size, stamp } => {
                let (crc, size) = match known.crc(name, *size, *stamp) {
                    Some(crc) => (crc, *size),
                    _ => match fresh_crcs.next() {
                        Some((checked, result)) if checked == path.as_path() => {
                            result.map_err(|e| file_error(path, e))?
                        }
                        _ => return Ok(false),
                    },
                };
                body.push_str(&format!("f {size} {crc:08x} {name}\n"));
            }
        }
    }
    let crc = crc32fast::hash(body.as_bytes());
    body.push_str(&format!("end {crc:08x}\n"));
    let tmp = dir.join(CHECK_TMP);
    let write = || -> std::io::Result<()> {
        let mut file = File::create(&tmp)?;
        file.write_all(body.as_bytes())?;
        file.sync_all()?;
        std::fs::rename(&tmp, dir.join(CHECK_FILE))?;
        sync_dir(dir)
    };
    if let Err(err) = write() {
        // No half-written check file may stay (a torn one would only cost a rebuild).
        let _ = std::fs::remove_file(&tmp);
        return Err(file_error(dir, err));
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_store_verifies_and_any_change_is_damage() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("keyspaces/1/tables")).unwrap();
        std::fs::write(root.join("lock"), b"").unwrap();
        std::fs::write(root.join("version"), b"FJL\x03").unwrap();
        std::fs::write(root.join("keyspaces/1/tables/0"), vec![7u8; 100_000]).unwrap();
        type Change = Box<dyn Fn(&Path)>;
        let changes: Vec<(&str, Change)> = vec![
            ("nothing", Box::new(|_| {})),
            (
                "a bit",
                Box::new(|r| {
                    let p = r.join("keyspaces/1/tables/0");
                    let mut b = std::fs::read(&p).unwrap();
                    b[77_777] ^= 4;
                    std::fs::write(&p, b).unwrap();
                }),
            ),
            (
                "a size",
                Box::new(|r| std::fs::write(r.join("version"), b"FJL").unwrap()),
            ),
            (
                "a missing file",
                Box::new(|r| std::fs::remove_file(r.join("version")).unwrap()),
            ),
            (
                "an extra file",
                Box::new(|r| std::fs::write(r.join("7.jnl"), b"").unwrap()),
            ),
            (
                "a missing directory",
                Box::new(|r| std::fs::remove_dir_all(r.join("keyspaces/1")).unwrap()),
            ),
            (
                "the check file",
                Box::new(|r| {
                    let p = r.join(CHECK_FILE);
                    let mut b = std::fs::read(&p).unwrap();
                    b[30] ^= 1;
                    std::fs::write(&p, b).unwrap();
                }),
            ),
        ];
        let pristine = tempfile::tempdir().unwrap();
        copy_dir(root, pristine.path());
        for (what, change) in changes {
            let _ = std::fs::remove_dir_all(root);
            copy_dir(pristine.path(), root);
            let lock = DirLock::try_acquire(root).unwrap().unwrap();
            assert!(seal(root, &lock, &Known::default()).unwrap());
            drop(lock);
            change(root);
            match inspect(root).unwrap() {
                Verdict::Intact(_) => {
                    assert_eq!(what, "nothing");
                    assert!(
                        !root.join(CHECK_FILE).exists(),
                        "deleted before fjall opens"
                    );
                }
                Verdict::Damaged(why) => assert_ne!(what, "nothing", "{why}"),
                Verdict::Unchecked => panic!("{what}: unchecked"),
            }
        }
        // A wipe leaves only the lock file; then there is nothing to check.
        wipe(root, "test").unwrap();
        assert!(matches!(inspect(root).unwrap(), Verdict::Unchecked));
        let left: Vec<_> = std::fs::read_dir(root)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(left, vec![std::ffi::OsString::from("lock")]);
    }

    fn copy_dir(from: &Path, to: &Path) {
        std::fs::create_dir_all(to).unwrap();
        for entry in std::fs::read_dir(from).unwrap() {
            let entry = entry.unwrap();
            let target = to.join(entry.file_name());
            if entry.file_type().unwrap().is_dir() {
                copy_dir(&entry.path(), &target);
            } else {
                std::fs::copy(entry.path(), target).unwrap();
            }
        }
    }
}
