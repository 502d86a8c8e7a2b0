//! A scratch directory per thread, in memory (`/dev/shm`) when there is one: the file-based
//! targets write each input there and open it, so they reach the real open paths fast.

use std::cell::OnceCell;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

const PREFIX: &str = "flumedb-fuzz-";

thread_local! {
    static DIR: OnceCell<PathBuf> = const { OnceCell::new() };
}

/// This thread's scratch directory (created on first use).
pub(crate) fn dir() -> PathBuf {
    DIR.with(|cell| cell.get_or_init(create).clone())
}

fn create() -> PathBuf {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let base = Path::new("/dev/shm");
    let base = if base.is_dir() {
        base.to_path_buf()
    } else {
        std::env::temp_dir()
    };
    remove_stale(&base);
    let dir = base.join(format!(
        "{PREFIX}{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    // A leftover from an earlier thread of this id is stale too.
    let _ = std::fs::remove_dir_all(&dir);
    let made = std::fs::create_dir_all(&dir);
    assert!(made.is_ok(), "cannot create {}: {made:?}", dir.display());
    dir
}

/// libFuzzer exits without running destructors: remove the directories of processes that are
/// gone, so runs do not pile up files in memory.
fn remove_stale(base: &Path) {
    let Ok(entries) = std::fs::read_dir(base) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(rest) = name.to_str().and_then(|n| n.strip_prefix(PREFIX)) else {
            continue;
        };
        let Some(pid) = rest.split('-').next() else {
            continue;
        };
        if !Path::new("/proc").join(pid).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// Replaces `path` with `bytes` (or removes it when `bytes` is `None`).
pub(crate) fn put(path: &Path, bytes: Option<&[u8]>) {
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) => assert!(e.kind() == std::io::ErrorKind::NotFound, "remove: {e}"),
    }
    if let Some(bytes) = bytes {
        let written = std::fs::write(path, bytes);
        assert!(written.is_ok(), "write {}: {written:?}", path.display());
    }
}

/// The bytes of `path` (which must exist).
pub(crate) fn read(path: &Path) -> Vec<u8> {
    match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) => panic!("read {}: {e}", path.display()),
    }
}
