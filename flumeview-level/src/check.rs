//! Checking a level store's files before the engine reads them, and throwing a damaged store
//! away.
//!
//! fjall trusts its files: a flipped bit can make it panic, or abort the process on a length
//! read before its checksum. So a clean close writes a check file, [`CHECK_FILE`], listing
//! every file of the store with its size and CRC32, and the next open verifies all of them
//! before fjall opens the directory. A store that fails is wiped and rebuilt from the log (a
//! view can always be rebuilt). The check file is deleted before fjall writes anything, so it
//! only ever describes a closed store; without one (after a crash) fjall's own recovery runs.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Read, Write};
use std::path::{Path, PathBuf};

use parking_lot::Mutex;

use crate::error::LevelError;

/// The check file a clean close writes into the store's directory (fjall ignores files in
/// its root that are not `*.jnl`).
pub(crate) const CHECK_FILE: &str = "flumeview-level.check";
/// Where the check file is written before it is renamed into place.
const CHECK_TMP: &str = "flumeview-level.check.tmp";
/// Written when damage is found while the store is open (or a wipe starts): the next open
/// wipes the store. Holds the reason, as text.
pub(crate) const DAMAGED_FILE: &str = "flumeview-level.damaged";
/// fjall's lock file: kept by a wipe (it is empty and may be held open by this process).
const LOCK_FILE: &str = "lock";
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

/// Whether an I/O error means the files are damaged (rather than the machine refusing: no
/// permission, disk full, out of memory, interrupted…). Damage is wiped and rebuilt; other
/// errors are returned to the caller and change nothing on disk.
pub(crate) fn io_is_damage(err: &std::io::Error) -> bool {
    match err.kind() {
        ErrorKind::NotFound
        | ErrorKind::UnexpectedEof
        | ErrorKind::InvalidData
        | ErrorKind::InvalidInput
        | ErrorKind::AlreadyExists
        | ErrorKind::NotADirectory
        | ErrorKind::IsADirectory
        | ErrorKind::DirectoryNotEmpty
        | ErrorKind::InvalidFilename => true,
        // Errors made up by decoders carry no OS error; an OS error of kind Other (EIO, EMFILE…)
        // is the machine's.
        ErrorKind::Other => err.raw_os_error().is_none(),
        _ => false,
    }
}

/// An I/O error on a file of the store at `path`.
fn file_error(path: &Path, err: std::io::Error) -> LevelError {
    LevelError::store(path, err)
}

/// An exclusive hold on fjall's lock file, so no other process opens the store while its
/// files are checked, wiped or sealed. Released on drop.
pub(crate) struct DirLock(Option<File>);

impl DirLock {
    /// Takes the lock if the lock file exists. `Ok(None)`: another process holds it.
    pub(crate) fn try_acquire(dir: &Path) -> Result<Option<DirLock>, LevelError> {
        let path = dir.join(LOCK_FILE);
        let file = match OpenOptions::new().read(true).write(true).open(&path) {
            Ok(file) => file,
            // No lock file (a new store), or not a file (damage the wipe removes).
            Err(err) if err.kind() == ErrorKind::NotFound || io_is_damage(&err) => {
                return Ok(Some(DirLock(None)));
            }
            Err(err) => return Err(file_error(&path, err)),
        };
        match file.try_lock() {
            Ok(()) => Ok(Some(DirLock(Some(file)))),
            Err(std::fs::TryLockError::WouldBlock) => Ok(None),
            Err(std::fs::TryLockError::Error(err)) => Err(file_error(&path, err)),
        }
    }
}

impl Drop for DirLock {
    fn drop(&mut self) {
        if let Some(file) = self.0.take() {
            // Closing the file releases the lock anyway; unlocking first is only tidier.
            let _ = file.unlock();
        }
    }
}

/// Syncs a directory, so renames and deletions in it are durable.
pub(crate) fn sync_dir(dir: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        File::open(dir)?.sync_all()
    }
    #[cfg(not(unix))]
    {
        // Directories cannot be opened for syncing on Windows; renames are durable there.
        let _ = dir;
        Ok(())
    }
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

/// When and where a file was last written, as far as its metadata tells: a file whose stamp
/// and size are unchanged keeps the CRC taken when it was verified.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
struct Stamp {
    modified: Option<std::time::SystemTime>,
    inode: u64,
}

impl Stamp {
    fn of(meta: &std::fs::Metadata) -> Stamp {
        #[cfg(unix)]
        let inode = std::os::unix::fs::MetadataExt::ino(meta);
        #[cfg(not(unix))]
        let inode = 0;
        Stamp {
            modified: meta.modified().ok(),
            inode,
        }
    }
}

/// An entry found in a store directory.
enum Found {
    Dir,
    File {
        path: PathBuf,
        size: u64,
        stamp: Stamp,
    },
}

/// Files whose CRCs were taken (verified at open, or written at close), by relative path:
/// the next close reuses the CRC of a file whose size and stamp have not changed. Reuse can
/// only make a check fail (a file changed in place within one timestamp), never pass: the
/// next open reads every file again.
#[derive(Default)]
pub(crate) struct Known(BTreeMap<String, (u64, Stamp, u32)>);

/// A store directory's entries by relative path (`/`-separated), without this module's files.
/// `Err(why)` for an entry a check file cannot describe (a name that is not UTF-8 or holds a
/// line break, a symlink).
fn list(dir: &Path) -> std::io::Result<Result<BTreeMap<String, Found>, String>> {
    let mut out = BTreeMap::new();
    let mut pending = vec![(dir.to_path_buf(), String::new())];
    while let Some((path, prefix)) = pending.pop() {
        for entry in std::fs::read_dir(&path)? {
            let entry = entry?;
            let Some(name) = entry.file_name().to_str().map(str::to_string) else {
                return Ok(Err(format!("a file name that is not UTF-8 in {prefix:?}")));
            };
            if prefix.is_empty() && [CHECK_FILE, CHECK_TMP, DAMAGED_FILE].contains(&name.as_str()) {
                continue;
            }
            if name.contains(['\n', '\r']) {
                return Ok(Err(format!("a file name with a line break in {prefix:?}")));
            }
            let rel = if prefix.is_empty() {
                name
            } else {
                format!("{prefix}/{name}")
            };
            let kind = entry.file_type()?;
            if kind.is_dir() {
                pending.push((entry.path(), rel.clone()));
                out.insert(rel, Found::Dir);
            } else if kind.is_file() {
                let meta = entry.metadata()?;
                out.insert(
                    rel,
                    Found::File {
                        path: entry.path(),
                        size: meta.len(),
                        stamp: Stamp::of(&meta),
                    },
                );
            } else {
                return Ok(Err(format!("{rel}: neither a file nor a directory")));
            }
        }
    }
    Ok(Ok(out))
}

/// How much of a file is read at a time while checksumming.
const READ_BUF: usize = 256 * 1024;

/// Files are checksummed in pieces of this size, spread over threads, and the pieces' CRCs
/// combined: most of a large store is in a few large tables.
const PIECE: u64 = 4 * 1024 * 1024;

/// A piece of a file: which file, where it starts, and whether it is the last (read to the
/// end of the file, whatever its length now).
struct Piece {
    file: usize,
    offset: u64,
    last: bool,
}

/// The CRC state and length of a piece of a file, or why it could not be read.
type Hashed = std::io::Result<(crc32fast::Hasher, u64)>;

/// The CRC state and length of one piece of a file.
fn hash_piece(
    path: &Path,
    piece: &Piece,
    buf: &mut [u8],
) -> std::io::Result<(crc32fast::Hasher, u64)> {
    use std::io::{Seek, SeekFrom};
    let mut file = File::open(path)?;
    file.seek(SeekFrom::Start(piece.offset))?;
    let mut hasher = crc32fast::Hasher::new();
    let mut len = 0u64;
    loop {
        let want = if piece.last {
            buf.len()
        } else {
            // At most the rest of this piece.
            usize::try_from(PIECE - len).map_or(buf.len(), |rest| rest.min(buf.len()))
        };
        if want == 0 {
            break;
        }
        let Some(space) = buf.get_mut(..want) else {
            break;
        };
        let n = match file.read(space) {
            Ok(0) => break,
            Ok(n) => n,
            Err(err) if err.kind() == ErrorKind::Interrupted => continue,
            Err(err) => return Err(err),
        };
        let Some(chunk) = buf.get(..n) else { break };
        hasher.update(chunk);
        len += n as u64;
    }
    Ok((hasher, len))
}

/// The CRC32 and length of each file (`sizes`: what its metadata said, to cut it into
/// pieces), read on up to 4 threads. Reading and checksumming are most of the cost of
/// opening a large store: ~0.2 ms per MiB on one thread.
fn crcs(files: &[(&Path, u64)]) -> Vec<std::io::Result<(u32, u64)>> {
    let mut pieces = Vec::new();
    for (file, (_, size)) in files.iter().enumerate() {
        let count = size.div_ceil(PIECE).max(1);
        for k in 0..count {
            pieces.push(Piece {
                file,
                offset: k * PIECE,
                last: k + 1 == count,
            });
        }
    }
    let threads = std::thread::available_parallelism()
        .map_or(1, usize::from)
        .clamp(1, 4)
        .min(pieces.len());
    let next = std::sync::atomic::AtomicUsize::new(0);
    let done: Mutex<Vec<Option<Hashed>>> = Mutex::new((0..pieces.len()).map(|_| None).collect());
    let work = || {
        let mut buf = vec![0u8; READ_BUF];
        loop {
            let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let Some(piece) = pieces.get(i) else { break };
            let Some((path, _)) = files.get(piece.file) else {
                break;
            };
            let result = hash_piece(path, piece, &mut buf);
            if let Some(slot) = done.lock().get_mut(i) {
                *slot = Some(result);
            }
        }
    };
    if threads <= 1 {
        work();
    } else {
        std::thread::scope(|scope| {
            for _ in 0..threads {
                scope.spawn(work);
            }
        });
    }
    let mut out: Vec<Hashed> = files
        .iter()
        .map(|_| Ok((crc32fast::Hasher::new(), 0)))
        .collect();
    for (piece, result) in pieces.iter().zip(done.into_inner()) {
        let Some(total) = out.get_mut(piece.file) else {
            continue;
        };
        let result = result.unwrap_or_else(|| Err(std::io::Error::other("not checksummed")));
        match (total.as_mut(), result) {
            (Ok((hasher, len)), Ok((part, part_len))) => {
                hasher.combine(&part);
                *len += part_len;
            }
            (Ok(_), Err(err)) => *total = Err(err),
            (Err(_), _) => {}
        }
    }
    out.into_iter()
        .map(|r| r.map(|(hasher, len)| (hasher.finalize(), len)))
        .collect()
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
        known.0.insert((*name).clone(), (*size, *stamp, crc));
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
            Found::File { path, size, stamp } if !is_known(known, name, *size, *stamp) => {
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
                let (crc, size) = match known.0.get(name) {
                    Some((_, _, crc)) if is_known(known, name, *size, *stamp) => (*crc, *size),
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

/// Whether `known` holds the CRC of this file as it is now.
fn is_known(known: &Known, name: &str, size: u64, stamp: Stamp) -> bool {
    known
        .0
        .get(name)
        .is_some_and(|(s, t, _)| *s == size && *t == stamp)
}

/// Removes a file, if it exists.
fn remove_if_present(path: &Path) -> Result<(), LevelError> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(err) if err.kind() == ErrorKind::NotFound => Ok(()),
        Err(err) => Err(file_error(path, err)),
    }
}

/// Notes damage found while the store is open, so the next open wipes it (best effort: if
/// this cannot be written, the damage is found again).
pub(crate) fn mark_damaged(dir: &Path, reason: &str) {
    let write = || -> std::io::Result<()> {
        let mut file = File::create(dir.join(DAMAGED_FILE))?;
        file.write_all(reason.as_bytes())?;
        file.sync_all()?;
        sync_dir(dir)
    };
    let _ = write();
}

/// Deletes everything in the (closed) store at `dir` but fjall's empty lock file, so fjall
/// creates a new, empty store there. A damage marker is written first and removed last: an
/// interrupted wipe is finished by the next open.
pub(crate) fn wipe(dir: &Path, reason: &str) -> Result<(), LevelError> {
    if !dir.exists() {
        return Ok(());
    }
    let Some(_lock) = DirLock::try_acquire(dir)? else {
        return Err(LevelError::store(
            dir,
            std::io::Error::new(
                ErrorKind::ResourceBusy,
                format!("found damaged ({reason}) but open in another process"),
            ),
        ));
    };
    mark_damaged(dir, reason);
    let wipe = || -> std::io::Result<()> {
        // fjall's "this is a database" marker first: without it nothing else is read (if
        // this fails, say on a directory of that name, the loop below removes it).
        let _ = std::fs::remove_file(dir.join("version"));
        for entry in std::fs::read_dir(dir)? {
            let entry = entry?;
            let name = entry.file_name();
            let kind = entry.file_type()?;
            if name == DAMAGED_FILE || (name == LOCK_FILE && kind.is_file()) {
                continue;
            }
            if kind.is_dir() {
                std::fs::remove_dir_all(entry.path())?;
            } else {
                std::fs::remove_file(entry.path())?;
            }
        }
        sync_dir(dir)?;
        remove_if_present_io(&dir.join(DAMAGED_FILE))?;
        sync_dir(dir)
    };
    wipe().map_err(|e| file_error(dir, e))
}

fn remove_if_present_io(path: &Path) -> std::io::Result<()> {
    match std::fs::remove_file(path) {
        Err(err) if err.kind() != ErrorKind::NotFound => Err(err),
        _ => Ok(()),
    }
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
