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
/// to flush them into tables, so the journal holds nothing the tables don't.
///
/// fjall 3.1 has no public flush: `rotate_memtable` and `sealed_memtable_count` are
/// `#[doc(hidden)]`. They are used because neither blocks (the hidden
/// `rotate_memtable_and_wait` waits for ever when a flush fails, as on a full disk). Nothing
/// depends on them for correctness: if they fail or time out, the journal is kept and the
/// next open replays it.
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

/// Closes a directory's database so that the next open is quick and can be verified.
///
/// fjall replays its whole active journal when it opens (it skips the entries already in
/// tables, but reads them all), and only starts a new journal every 64 MB: reopening an index
/// took ~0.4 s per 50 MB of journal. After every keyspace's memtable is flushed into tables
/// (and synced), the journal holds nothing the tables don't, so once the database is closed,
/// its journal is emptied: the next open reads table metadata only. An empty journal is what
/// fjall itself starts a database with, and recovery then takes the sequence numbers from the
/// tables. Then the check file is written (see [`check`](crate::check)), for the next open to
/// verify.
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
