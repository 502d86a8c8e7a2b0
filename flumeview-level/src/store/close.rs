//! Closing a directory's database so that the next open is quick and can be verified: every
//! memtable flushed into tables (within a deadline), fjall's journal emptied, the check file
//! written.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::damage::{guarded, trouble_error};
use super::database::{DbState, DirDb};
use crate::check;
use crate::error::LevelError;

/// How long closing waits for fjall to flush memtables into tables. A flush that cannot
/// finish (a full disk) must not hang close: after this the database closes anyway (its
/// journal keeps the data; the next open replays it) and close returns a timeout.
pub(super) const CLOSE_FLUSH_TIMEOUT: Duration = Duration::from_secs(30);

/// Rotates each keyspace's memtable and waits, until `deadline` at most, for fjall's workers
/// to flush them into tables, so the journal holds nothing the tables don't. Uses two
/// `#[doc(hidden)]` fjall calls (why, and what keeps them honest: the test of fjall's
/// internals below).
pub(super) fn flush_memtables(
    path: &Path,
    db: &fjall::Database,
    keyspaces: &[fjall::Keyspace],
    deadline: Instant,
) -> Result<(), LevelError> {
    let fail = |err| LevelError::store(path, err);
    for keyspace in keyspaces {
        keyspace.rotate_memtable().map_err(fail)?;
    }
    loop {
        if keyspaces.iter().all(|k| k.sealed_memtable_count() == 0) {
            return Ok(());
        }
        // Fails at once after a failed flush: fjall then refuses everything ("poisoned").
        db.persist(fjall::PersistMode::Buffer).map_err(fail)?;
        if Instant::now() >= deadline {
            return Err(LevelError::Timeout {
                path: path.to_path_buf(),
                what: "fjall to flush its memtables".into(),
                after: CLOSE_FLUSH_TIMEOUT,
            });
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Closes a directory's database so that the next open is quick and can be verified: every
/// keyspace's memtable is flushed into tables (and synced), so once the database is closed its
/// journal holds nothing the tables don't and is emptied (fjall would replay it at every
/// open; the fjall behaviour this relies on is tested below). Then the check file is written
/// (see [`check`]), for the next open to verify.
///
/// Every step must succeed, or the journal and the check file are left alone: the flushes
/// (bounded by `deadline`), a single journal (no older ones waiting), no damage seen while
/// open, and fjall's lock file free (no other process has the database open).
pub(super) fn close_database(
    dir: &DirDb,
    state: &mut DbState,
    deadline: Instant,
) -> Result<(), LevelError> {
    state.generation += 1;
    let Some(db) = state.db.take() else {
        return Ok(());
    };
    let path = &dir.path;
    // Every keyspace, including those of views not opened this time (the journal may hold
    // their rows, replayed at open): one that cannot be had means the journal stays.
    let keyspaces: Result<Vec<fjall::Keyspace>, LevelError> = db
        .list_keyspace_names()
        .iter()
        .map(|name| {
            guarded(path, || {
                db.keyspace(name, fjall::KeyspaceCreateOptions::default)
            })
            .map_err(|trouble| trouble_error(path, trouble))
        })
        .collect();
    let flushed = keyspaces.and_then(|keyspaces| {
        flush_memtables(path, &db, &keyspaces, deadline).and_then(|()| {
            db.persist(fjall::PersistMode::SyncAll)
                .map_err(|e| LevelError::store(path, e))
        })
    });
    let single_journal = db.journal_count() == 1;
    // The last handle: fjall stops its workers before this returns.
    drop(db);
    flushed?;
    if let Some(reason) = dir.damaged.lock().clone() {
        // Not sealed: the next open wipes (the marker is there already; written again in
        // case that failed).
        check::mark_damaged(path, &reason);
        return Ok(());
    }
    let Some(lock) = check::DirLock::try_acquire(path)? else {
        // Open elsewhere after all: leave everything as it is.
        return Ok(());
    };
    if single_journal {
        // Best effort: the database is consistent either way, only the next open is slower.
        let _ = empty_journal(path);
    }
    check::seal(path, &lock, &dir.known.lock())?;
    Ok(())
}

/// Empties the single journal of the closed database at `path` (its lock file held).
fn empty_journal(path: &Path) -> std::io::Result<()> {
    let journals: Vec<PathBuf> = std::fs::read_dir(path)?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "jnl"))
        .collect();
    if let [journal] = &journals[..] {
        let file = std::fs::OpenOptions::new().write(true).open(journal)?;
        file.set_len(0)?;
        file.sync_all()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};
    use std::time::{Duration, Instant};

    use super::{empty_journal, flush_memtables};
    use crate::check::DirLock;
    use crate::store::budget::Budget;

    /// The journal files in the database directory, with their lengths.
    fn journals(path: &Path) -> Vec<(PathBuf, u64)> {
        let mut found: Vec<(PathBuf, u64)> = std::fs::read_dir(path)
            .unwrap()
            .map(|entry| entry.unwrap())
            .filter(|entry| entry.path().extension().is_some_and(|e| e == "jnl"))
            .map(|entry| (entry.path(), entry.metadata().unwrap().len()))
            .collect();
        found.sort();
        found
    }

    fn open(path: &Path) -> (fjall::Database, fjall::Keyspace) {
        let db = fjall::Database::builder(path).open().unwrap();
        let keyspace = db
            .keyspace("view-test", || Budget::default().keyspace_options())
            .unwrap();
        (db, keyspace)
    }

    fn value(keyspace: &fjall::Keyspace, key: &str) -> Option<Vec<u8>> {
        keyspace.get(key).unwrap().map(|v| v.to_vec())
    }

    /// Flushes as [`close_database`](super::close_database) does, then drops the database.
    fn flush_and_drop(path: &Path, db: fjall::Database, keyspace: fjall::Keyspace) {
        let deadline = Instant::now() + Duration::from_secs(60);
        flush_memtables(path, &db, std::slice::from_ref(&keyspace), deadline).unwrap();
        assert_eq!(keyspace.sealed_memtable_count(), 0);
        db.persist(fjall::PersistMode::SyncAll).unwrap();
        assert_eq!(db.journal_count(), 1, "one journal, none waiting");
        drop(keyspace);
        drop(db);
    }

    /// Empties the journal as a clean close does, checking it is emptied in place.
    fn empty(path: &Path) {
        let before = journals(path);
        assert_eq!(before.len(), 1, "one `<id>.jnl` file: {before:?}");
        empty_journal(path).unwrap();
        let after = journals(path);
        assert_eq!(after, vec![(before[0].0.clone(), 0)], "emptied in place");
    }

    /// The fjall internals this crate relies on, which fjall does not promise: the reason for
    /// the `fjall = "~3.1.13"` pin in the workspace Cargo.toml. If this fails after a fjall
    /// update, [`flush_memtables`] or [`empty_journal`] must change before the pin does.
    ///
    /// - `Keyspace::rotate_memtable` and `sealed_memtable_count` (`#[doc(hidden)]`) flush a
    ///   keyspace's memtables into tables without blocking: fjall 3.1 has no public flush, and
    ///   the hidden `rotate_memtable_and_wait` waits for ever when a flush fails (a full disk).
    ///   They cannot break correctness: if they fail or time out, the journal is kept.
    /// - The journal is `<id>.jnl` in the database directory: one file while
    ///   `journal_count()` is 1, and it holds the writes.
    /// - fjall holds its lock file (`lock`) while the database is open and frees it when the
    ///   last handle drops; the journal is emptied only under that lock, once fjall is gone.
    /// - With every memtable flushed, emptying that file loses nothing: fjall replays it at
    ///   every open (up to 64 MB: most of a reopen), so emptying it makes reopening read table
    ///   metadata only. An empty journal is what fjall's recovery truncates an unused one to,
    ///   and it then takes the sequence numbers from the tables: later writes of a key still
    ///   win over its older rows, read from the journal or from tables.
    #[test]
    fn fjall_internals_this_crate_relies_on_still_hold() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("level");
        let key = |i: u32| format!("key{i:05}");

        let (db, keyspace) = open(&path);
        assert!(
            DirLock::try_acquire(&path).unwrap().is_none(),
            "fjall holds `lock` while open"
        );
        for i in 0..2000 {
            keyspace.insert(key(i), "old").unwrap();
        }
        keyspace.insert("last", "1").unwrap();
        db.persist(fjall::PersistMode::SyncAll).unwrap();
        let found = journals(&path);
        assert_eq!(db.journal_count(), 1);
        assert_eq!(found.len(), 1, "one `<id>.jnl` file: {found:?}");
        assert!(found[0].1 > 0, "the journal holds the writes");
        flush_and_drop(&path, db, keyspace);
        assert!(
            DirLock::try_acquire(&path).unwrap().is_some(),
            "fjall frees `lock` when its last handle drops"
        );
        empty(&path);

        // Everything is read back from tables alone; new writes get newer sequence numbers.
        let (db, keyspace) = open(&path);
        for i in 0..2000 {
            assert_eq!(value(&keyspace, &key(i)).as_deref(), Some(&b"old"[..]));
        }
        assert_eq!(value(&keyspace, "last").as_deref(), Some(&b"1"[..]));
        keyspace.insert("last", "2").unwrap();
        keyspace.insert(key(7), "new").unwrap();
        // Not flushed: the next open replays these from the journal, over the tables.
        db.persist(fjall::PersistMode::SyncAll).unwrap();
        drop(keyspace);
        drop(db);

        let (db, keyspace) = open(&path);
        assert_eq!(value(&keyspace, "last").as_deref(), Some(&b"2"[..]));
        assert_eq!(value(&keyspace, &key(7)).as_deref(), Some(&b"new"[..]));
        flush_and_drop(&path, db, keyspace);
        empty(&path);

        // Both generations of rows are in tables now: the later one wins.
        let (db, keyspace) = open(&path);
        assert_eq!(value(&keyspace, "last").as_deref(), Some(&b"2"[..]));
        assert_eq!(value(&keyspace, &key(7)).as_deref(), Some(&b"new"[..]));
        assert_eq!(value(&keyspace, &key(8)).as_deref(), Some(&b"old"[..]));
        keyspace.insert("last", "3").unwrap();
        assert_eq!(value(&keyspace, "last").as_deref(), Some(&b"3"[..]));
        drop(keyspace);
        drop(db);
    }
}
