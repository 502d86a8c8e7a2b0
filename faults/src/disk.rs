//! A full disk and files the process may not write, on a real (tmpfs) file system: no
//! injection, the kernel's own ENOSPC, EROFS and EPERM.
//!
//! - [`disk_full`]: appends until the file system is full; the failing append is a typed
//!   error naming the file (ENOSPC), the log still reads everything acknowledged and refuses
//!   (with ENOSPC) while the disk is full; once space is freed appends resume, and after
//!   reopen every acknowledged record is there, in order, with nothing else and nothing torn.
//! - [`read_only`]: a log on a file system remounted read-only: opening it, and creating a
//!   new log there, fail with a typed error naming the file (EROFS).
//! - [`immutable`]: a log file with the immutable attribute (`chattr +i`, which stops root
//!   too, where mode bits do not): opening it fails with a typed error naming it (EPERM).

use std::ops::Bound;
use std::path::Path;

use flumedb_core::{Error, Log, Seq};

use crate::fs::{Tmpfs, set_immutable};
use crate::log::OpenFn;

/// ENOSPC.
const ENOSPC: i32 = 28;
/// EROFS.
const EROFS: i32 = 30;
/// EPERM.
const EPERM: i32 = 1;

fn record(i: usize) -> Vec<u8> {
    let mut data = format!("record {i} ").into_bytes();
    data.extend((0..(1000 + i * 131 % 3000)).map(|k| (k % 200) as u8 + 1));
    data
}

/// A typed error with `errno` on `file` (or its directory, for a log that is a directory),
/// whose message names that path.
fn names(err: &Error, file: &Path, errno: i32) -> bool {
    match err {
        Error::File { path, source } => {
            (path == file || Some(path.as_path()) == file.parent())
                && source.raw_os_error() == Some(errno)
                && err.to_string().contains(&path.display().to_string())
        }
        _ => false,
    }
}

fn entries<L: Log>(log: &L) -> Vec<(Seq, Vec<u8>)> {
    log.range(Bound::Unbounded, Bound::Unbounded, false)
        .unwrap_or_else(|e| panic!("range: {e}"))
        .map(|e| {
            let e = e.unwrap_or_else(|e| panic!("a record: {e}"));
            (e.seq, e.data)
        })
        .collect()
}

/// Fills a 1 MiB tmpfs with the log at `<fs>/<name>`, frees space, checks appends resume and
/// nothing is lost. Returns how many records were acknowledged before the disk was full and
/// in all; `None` when no tmpfs can be mounted (skipped with a message).
pub fn disk_full<L: Log>(
    test: &str,
    name: &str,
    open: &OpenFn<L>,
    file: &dyn Fn(&Path) -> std::path::PathBuf,
) -> Option<(usize, usize)> {
    let fs = Tmpfs::mount(test, 1 << 20)?;
    let filler = fs.path().join("filler");
    std::fs::write(&filler, vec![7u8; 256 << 10]).unwrap_or_else(|e| panic!("filler: {e}"));
    let path = fs.path().join(name);
    let file = file(&path);
    let log = open(&path).unwrap_or_else(|e| panic!("{test}: open: {e}"));
    let mut acked: Vec<(Seq, Vec<u8>)> = Vec::new();
    // Appends of records `i` (and `i + 1` in a batch when `i % 3 == 0`).
    let append = |i: usize| -> flumedb_core::Result<Vec<(Seq, Vec<u8>)>> {
        if i.is_multiple_of(3) {
            let batch = [record(i), record(i + 1)];
            let slices: Vec<&[u8]> = batch.iter().map(Vec::as_slice).collect();
            Ok(log.append_batch(&slices)?.into_iter().zip(batch).collect())
        } else {
            Ok(vec![(log.append(&record(i))?, record(i))])
        }
    };
    let mut i = 0;
    let full = loop {
        assert!(i < 100_000, "{test}: the disk never filled");
        match append(i) {
            Ok(done) => acked.extend(done),
            Err(err) => break err,
        }
        i += 2;
    };
    assert!(
        names(&full, &file, ENOSPC),
        "{test}: the disk-full error: {full:?}"
    );
    let before = acked.len();
    // Still full: the same append is refused the same way (the failed one left no bytes
    // behind), and everything acknowledged reads back.
    let again = append(i)
        .err()
        .unwrap_or_else(|| panic!("{test}: the retry on a full disk"));
    assert!(
        names(&again, &file, ENOSPC),
        "{test}: the retry on a full disk: {again:?}"
    );
    assert_eq!(entries(&log), acked, "{test}: the records on a full disk");
    // Space freed: appends resume.
    std::fs::remove_file(&filler).unwrap_or_else(|e| panic!("removing the filler: {e}"));
    for k in 0..20 {
        let data = record(i + 10 + k);
        let seq = log
            .append(&data)
            .unwrap_or_else(|e| panic!("{test}: append {k} after space was freed: {e}"));
        acked.push((seq, data));
    }
    log.flush().unwrap_or_else(|e| panic!("{test}: flush: {e}"));
    assert_eq!(
        entries(&log),
        acked,
        "{test}: the records after space was freed"
    );
    log.close().unwrap_or_else(|e| panic!("{test}: close: {e}"));
    drop(log);
    let log = open(&path).unwrap_or_else(|e| panic!("{test}: reopen: {e}"));
    assert_eq!(entries(&log), acked, "{test}: the records after reopen");
    log.close().unwrap_or_else(|e| panic!("{test}: close: {e}"));
    Some((before, acked.len()))
}

/// A log on a read-only file system (a tmpfs remounted `ro`): opening the existing log and
/// creating a new one fail with typed errors naming the file. `false` when skipped.
pub fn read_only<L: Log>(
    test: &str,
    name: &str,
    open: &OpenFn<L>,
    file: &dyn Fn(&Path) -> std::path::PathBuf,
) -> bool {
    let Some(fs) = Tmpfs::mount(test, 1 << 20) else {
        return false;
    };
    let path = fs.path().join(name);
    let log = open(&path).unwrap_or_else(|e| panic!("{test}: open: {e}"));
    let seq = log
        .append(b"kept")
        .unwrap_or_else(|e| panic!("{test}: append: {e}"));
    log.close().unwrap_or_else(|e| panic!("{test}: close: {e}"));
    drop(log);
    fs.set_read_only(true)
        .unwrap_or_else(|e| panic!("{test}: remount ro: {e}"));
    let existing = open(&path)
        .err()
        .unwrap_or_else(|| panic!("{test}: opened on a ro fs"));
    assert!(
        names(&existing, &file(&path), EROFS),
        "{test}: existing log: {existing:?}"
    );
    let new = fs.path().join(format!("new-{name}"));
    let created = open(&new)
        .err()
        .unwrap_or_else(|| panic!("{test}: created on a ro fs"));
    assert!(
        names(&created, &file(&new), EROFS),
        "{test}: new log: {created:?}"
    );
    // Nothing was changed: writable again, the log opens with its record.
    fs.set_read_only(false)
        .unwrap_or_else(|e| panic!("{test}: remount rw: {e}"));
    let log = open(&path).unwrap_or_else(|e| panic!("{test}: reopen: {e}"));
    assert_eq!(log.get(seq).ok().as_deref(), Some(&b"kept"[..]), "{test}");
    log.close().unwrap_or_else(|e| panic!("{test}: close: {e}"));
    true
}

/// A log file with the immutable attribute: opening it fails with a typed error naming it.
/// `false` when `chattr` is not possible here (skipped with a message).
pub fn immutable<L: Log>(
    test: &str,
    open: &OpenFn<L>,
    file: &dyn Fn(&Path) -> std::path::PathBuf,
) -> bool {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let path = dir.path().join("log");
    let log = open(&path).unwrap_or_else(|e| panic!("{test}: open: {e}"));
    let seq = log
        .append(b"kept")
        .unwrap_or_else(|e| panic!("{test}: append: {e}"));
    log.close().unwrap_or_else(|e| panic!("{test}: close: {e}"));
    drop(log);
    let file = file(&path);
    if let Err(err) = set_immutable(&file, true) {
        println!("SKIPPED {test}: chattr +i is not possible here: {err}");
        return false;
    }
    let refused = open(&path).err();
    set_immutable(&file, false).unwrap_or_else(|e| panic!("{test}: chattr -i: {e}"));
    let refused = refused.unwrap_or_else(|| panic!("{test}: an immutable log opened"));
    assert!(names(&refused, &file, EPERM), "{test}: {refused:?}");
    let log = open(&path).unwrap_or_else(|e| panic!("{test}: reopen: {e}"));
    assert_eq!(log.get(seq).ok().as_deref(), Some(&b"kept"[..]), "{test}");
    log.close().unwrap_or_else(|e| panic!("{test}: close: {e}"));
    true
}
