//! A store's files as a check file describes them: listing the directory, and the CRC32 of
//! every file, taken on several threads (or reused from the last check while unchanged).

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{ErrorKind, Read};
use std::path::{Path, PathBuf};

use parking_lot::Mutex;

use super::dir::{CHECK_FILE, CHECK_TMP, DAMAGED_FILE};

/// When and where a file was last written, as far as its metadata tells: a file whose stamp
/// and size are unchanged keeps the CRC taken when it was verified.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) struct Stamp {
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
pub(super) enum Found {
    Dir,
    File {
        /// Where it is.
        path: PathBuf,
        /// Its length, from its metadata.
        size: u64,
        /// When and where it was last written.
        stamp: Stamp,
    },
}

/// Files whose CRCs were taken (verified at open, or written at close), by relative path:
/// the next close reuses the CRC of a file whose size and stamp have not changed. Reuse can
/// only make a check fail (a file changed in place within one timestamp), never pass: the
/// next open reads every file again.
#[derive(Default)]
pub(crate) struct Known(BTreeMap<String, (u64, Stamp, u32)>);

impl Known {
    /// Notes the CRC of the file `name` as it is now.
    pub(super) fn insert(&mut self, name: String, size: u64, stamp: Stamp, crc: u32) {
        self.0.insert(name, (size, stamp, crc));
    }

    /// The CRC of the file `name`, if it was taken while the file had this size and stamp.
    pub(super) fn crc(&self, name: &str, size: u64, stamp: Stamp) -> Option<u32> {
        self.0
            .get(name)
            .and_then(|(s, t, crc)| (*s == size && *t == stamp).then_some(*crc))
    }
}

/// A store directory's entries by relative path (`/`-separated), without this module's files.
/// `Err(why)` for an entry a check file cannot describe (a name that is not UTF-8 or holds a
/// line break, a symlink).
pub(super) fn list(dir: &Path) -> std::io::Result<Result<BTreeMap<String, Found>, String>> {
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
/// pieces), read on up to 4 threads: reading and checksumming are most of the cost of
/// opening a large store (docs/performance.md).
pub(super) fn crcs(files: &[(&Path, u64)]) -> Vec<std::io::Result<(u32, u64)>> {
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
