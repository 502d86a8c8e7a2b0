//! Where index rows live: a small trait with two engines, so another engine could replace
//! fjall. [`FjallStore`] keeps a keyspace per view in one fjall database per directory (shared
//! by all level views of that directory); [`MemStore`] keeps rows in memory for logs without a
//! directory.

use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use parking_lot::{Mutex, RwLock};

use crate::error::LevelError;

/// One stored row: the encoded key and the raw 8-byte value (a seq, or META's bytes).
pub(crate) type Row = (Vec<u8>, [u8; 8]);

/// A row value as 8 bytes (every index row's value is a seq, big-endian).
fn eight(value: &[u8]) -> Result<[u8; 8], LevelError> {
    value.try_into().map_err(|_| {
        LevelError::Corrupt(format!(
            "an index row's value has {} bytes, not 8",
            value.len()
        ))
    })
}

/// Rows in key order, from a consistent snapshot.
pub(crate) type Rows = Box<dyn Iterator<Item = Result<Row, LevelError>> + Send>;

/// An ordered key-value store for one view.
pub(crate) trait Store: Send + Sync {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, LevelError>;
    /// A snapshot iterator over a key range.
    fn range(&self, lower: Bound<Vec<u8>>, upper: Bound<Vec<u8>>, reverse: bool) -> Rows;
    /// Writes all rows atomically: after a crash, all or none of them are there, and batches
    /// are recovered in order.
    fn write(&self, rows: &[(&[u8], &[u8])]) -> Result<(), LevelError>;
    /// Removes every row (atomically, ordered with writes).
    fn clear(&self) -> Result<(), LevelError>;
    /// Whether there is any row.
    fn is_empty(&self) -> Result<bool, LevelError>;
    /// Makes everything written so far durable.
    fn persist(&self) -> Result<(), LevelError>;
    /// Moves what only the journal holds into the store's tables, so the next open does not
    /// replay it (for close).
    fn checkpoint(&self) -> Result<(), LevelError>;
}

/// Whether no key can lie within the bounds (`BTreeMap::range` panics on such bounds).
pub(crate) fn is_empty_range(lower: &Bound<Vec<u8>>, upper: &Bound<Vec<u8>>) -> bool {
    match (lower, upper) {
        (Bound::Included(l), Bound::Included(u)) => l > u,
        (Bound::Included(l) | Bound::Excluded(l), Bound::Excluded(u))
        | (Bound::Excluded(l), Bound::Included(u)) => l >= u,
        _ => false,
    }
}

/// Rows in memory (a log without a directory).
#[derive(Default)]
pub(crate) struct MemStore {
    rows: RwLock<BTreeMap<Vec<u8>, Vec<u8>>>,
}

impl Store for MemStore {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, LevelError> {
        Ok(self.rows.read().get(key).cloned())
    }

    fn range(&self, lower: Bound<Vec<u8>>, upper: Bound<Vec<u8>>, reverse: bool) -> Rows {
        if is_empty_range(&lower, &upper) {
            return Box::new(std::iter::empty());
        }
        // A snapshot: copy the range (in-memory logs are small).
        let rows = self.rows.read();
        let mut out: Vec<Result<Row, LevelError>> = rows
            .range((lower, upper))
            .map(|(k, v)| Ok((k.clone(), eight(v)?)))
            .collect();
        if reverse {
            out.reverse();
        }
        Box::new(out.into_iter())
    }

    fn write(&self, rows: &[(&[u8], &[u8])]) -> Result<(), LevelError> {
        self.rows
            .write()
            .extend(rows.iter().map(|(k, v)| (k.to_vec(), v.to_vec())));
        Ok(())
    }

    fn clear(&self) -> Result<(), LevelError> {
        self.rows.write().clear();
        Ok(())
    }

    fn is_empty(&self) -> Result<bool, LevelError> {
        Ok(self.rows.read().is_empty())
    }

    fn persist(&self) -> Result<(), LevelError> {
        Ok(())
    }

    fn checkpoint(&self) -> Result<(), LevelError> {
        Ok(())
    }
}

/// A fjall database shared by the level views of one directory, closed when the last of
/// them is; it also remembers which keyspaces are open, so two views (say of two logs in one
/// directory) never write one keyspace.
struct Shared {
    db: fjall::Database,
    keyspaces: Vec<String>,
}

fn databases() -> &'static Mutex<HashMap<PathBuf, Shared>> {
    static DATABASES: OnceLock<Mutex<HashMap<PathBuf, Shared>>> = OnceLock::new();
    DATABASES.get_or_init(Default::default)
}

/// Worker threads for fjall's flushes and compactions, per database (so per directory, shared
/// by its level views): 2, fjall's own default on 2 cores; builds were faster than with 1
/// (see the README).
const WORKER_THREADS: usize = 2;

/// The memtable size of each view's keyspace (fjall's default is 64 MiB). Measured with
/// `cargo xtask bench --n 1000000` (three views, 3 index rows of 40–90 bytes per message):
/// appending and indexing took 16.5 s with 64 MiB, 12.3 s with 16 MiB, 10.2 s with 8 MiB and
/// 13.7 s with 4 MiB, and peak anonymous memory fell from 383 MB to 217 MB (16 MiB). The
/// level benchmark (1M records, small keys) stayed within its run-to-run noise at 16 MiB
/// (build 362k records/s, get 6.8 µs) but got slower at 8 MiB (get 9.6 µs right after the
/// build, with more tables still to compact).
const MEMTABLE_BYTES: u64 = 16 * 1024 * 1024;

pub(crate) struct FjallStore {
    path: PathBuf,
    name: String,
    /// `Some` until dropped: released under the registry lock, so the database (and its lock
    /// file) is closed before another open of the directory can look for it.
    db: Option<fjall::Database>,
    keyspace: Option<fjall::Keyspace>,
}

/// fjall keyspace names allow `[A-Za-z0-9_.#$-]`: other view names are hex-encoded.
fn keyspace_name(view: &str) -> String {
    if view
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        format!("view-{view}")
    } else {
        let hex: String = view.bytes().map(|b| format!("{b:02x}")).collect();
        format!("viewx-{hex}")
    }
}

impl FjallStore {
    /// Opens the keyspace for `view` in the database at `dir/level`.
    pub(crate) fn open(dir: &Path, view: &str) -> Result<FjallStore, LevelError> {
        let dir = std::fs::canonicalize(dir).map_err(|e| LevelError::store(dir, e))?;
        let path = dir.join("level");
        let name = keyspace_name(view);
        let mut dbs = databases().lock();
        let db = match dbs.get_mut(&path) {
            Some(shared) => {
                if shared.keyspaces.contains(&name) {
                    return Err(LevelError::InUse {
                        path,
                        view: view.to_string(),
                    });
                }
                shared.keyspaces.push(name.clone());
                shared.db.clone()
            }
            None => {
                let db = fjall::Database::builder(&path)
                    .worker_threads(WORKER_THREADS)
                    .open()
                    .map_err(|e| LevelError::store(&path, e))?;
                dbs.insert(
                    path.clone(),
                    Shared {
                        db: db.clone(),
                        keyspaces: vec![name.clone()],
                    },
                );
                db
            }
        };
        let mut store = FjallStore {
            path,
            name,
            db: Some(db),
            keyspace: None,
        };
        drop(dbs);
        let db = store.db();
        store.keyspace = Some(
            db.keyspace(&store.name, || {
                fjall::KeyspaceCreateOptions::default().max_memtable_size(MEMTABLE_BYTES)
            })
            .map_err(|e| store.err(e))?,
        );
        Ok(store)
    }

    fn db(&self) -> fjall::Database {
        self.db.clone().expect("present until drop")
    }

    fn keyspace(&self) -> &fjall::Keyspace {
        self.keyspace.as_ref().expect("present until drop")
    }

    fn err(&self, e: fjall::Error) -> LevelError {
        LevelError::store(&self.path, e)
    }
}

impl Drop for FjallStore {
    fn drop(&mut self) {
        let mut dbs = databases().lock();
        drop(self.keyspace.take());
        drop(self.db.take());
        if let Some(shared) = dbs.get_mut(&self.path) {
            shared.keyspaces.retain(|k| *k != self.name);
            if shared.keyspaces.is_empty() {
                // The last user: the database closes here, under the lock.
                if let Some(shared) = dbs.remove(&self.path) {
                    close_database(&self.path, shared.db);
                }
            }
        }
    }
}

/// Closes a database so that the next open is quick.
///
/// fjall replays its whole active journal when it opens (it skips the entries already in
/// tables, but reads them all), and only starts a new journal every 64 MB: reopening an index
/// took ~0.4 s per 50 MB of journal. After every keyspace's memtable is flushed into tables
/// (and synced), the journal holds nothing the tables don't, so once the database is closed,
/// its journal is emptied: the next open reads table metadata only. An empty journal is what
/// fjall itself starts a database with, and recovery then takes the sequence numbers from the
/// tables.
///
/// Every step must succeed, or the journal is left alone: the flushes, a single journal (no
/// older ones waiting), and fjall's lock file free (no other handle to the database still
/// open, such as an unfinished read's snapshot).
fn close_database(path: &Path, db: fjall::Database) {
    let flushed = (|| -> Result<bool, fjall::Error> {
        for name in db.list_keyspace_names() {
            let keyspace = db.keyspace(&name, fjall::KeyspaceCreateOptions::default)?;
            keyspace.rotate_memtable_and_wait()?;
        }
        db.persist(fjall::PersistMode::SyncAll)?;
        Ok(db.journal_count() == 1)
    })();
    drop(db);
    if matches!(flushed, Ok(true)) {
        // Best effort: the database is consistent either way, only the next open is slower.
        let _ = empty_journal(path);
    }
}

/// Empties the single journal of the closed database at `path`, holding its lock file.
fn empty_journal(path: &Path) -> std::io::Result<()> {
    let lock = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path.join("lock"))?;
    if lock.try_lock().is_err() {
        // Still open somewhere: leave it.
        return Ok(());
    }
    let journals: Vec<PathBuf> = std::fs::read_dir(path)?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "jnl"))
        .collect();
    if let [journal] = &journals[..] {
        let file = std::fs::OpenOptions::new().write(true).open(journal)?;
        file.set_len(0)?;
        file.sync_all()?;
    }
    lock.unlock()
}

impl Store for FjallStore {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, LevelError> {
        Ok(self
            .keyspace()
            .get(key)
            .map_err(|e| self.err(e))?
            .map(|v| v.to_vec()))
    }

    fn range(&self, lower: Bound<Vec<u8>>, upper: Bound<Vec<u8>>, reverse: bool) -> Rows {
        if is_empty_range(&lower, &upper) {
            return Box::new(std::iter::empty());
        }
        let path = self.path.clone();
        // A snapshot: rows written after this point are not seen (live reads rely on it).
        let iter = fjall::Readable::range(&self.db().snapshot(), self.keyspace(), (lower, upper));
        let convert = move |guard: fjall::Guard| {
            let (k, v) = guard
                .into_inner()
                .map_err(|e| LevelError::store(&path, e))?;
            Ok((k.to_vec(), eight(&v)?))
        };
        if reverse {
            Box::new(iter.rev().map(convert))
        } else {
            Box::new(iter.map(convert))
        }
    }

    fn write(&self, rows: &[(&[u8], &[u8])]) -> Result<(), LevelError> {
        // No fsync per batch: views rebuild from the log. A crash loses a suffix of batches,
        // each whole (rows with the META row that claims them), never a `since` ahead of them.
        let mut batch = self
            .db()
            .batch()
            .durability(Some(fjall::PersistMode::Buffer));
        for (key, value) in rows {
            batch.insert(self.keyspace(), *key, *value);
        }
        batch.commit().map_err(|e| self.err(e))
    }

    fn clear(&self) -> Result<(), LevelError> {
        self.keyspace().clear().map_err(|e| self.err(e))
    }

    fn is_empty(&self) -> Result<bool, LevelError> {
        self.keyspace().is_empty().map_err(|e| self.err(e))
    }

    fn persist(&self) -> Result<(), LevelError> {
        self.db()
            .persist(fjall::PersistMode::SyncData)
            .map_err(|e| self.err(e))
    }

    fn checkpoint(&self) -> Result<(), LevelError> {
        self.keyspace()
            .rotate_memtable_and_wait()
            .map_err(|e| self.err(e))?;
        self.persist()
    }
}

/// A store of either kind.
pub(crate) fn open(dir: Option<&Path>, view: &str) -> Result<Arc<dyn Store>, LevelError> {
    Ok(match dir {
        Some(dir) => Arc::new(FjallStore::open(dir, view)?),
        None => Arc::new(MemStore::default()),
    })
}
