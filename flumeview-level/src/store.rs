//! Where index rows live: a small trait with two engines, so another engine could replace
//! fjall. [`FjallStore`] keeps a keyspace per view in one fjall database per directory (shared
//! by all level views of that directory); [`MemStore`] keeps rows in memory for logs without a
//! directory.
//!
//! A damaged fjall store is never trusted: its files are verified before fjall opens them
//! (see [`check`]), fjall's errors and panics are sorted into damage and other failures, and
//! damage is repaired by clearing the view's keyspace or wiping the store, after which the
//! views rebuild from the log.

use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use flumedb_core::{Seq, bounds};
use parking_lot::{Mutex, RwLock};
use sha2::{Digest, Sha256};

use crate::check::{self, Known, Repaired, Verdict};
use crate::error::LevelError;
use crate::layout;

/// One index row as stored: the encoded key and the record's seq.
pub(crate) type EncodedRow = (Vec<u8>, Seq);

/// Index rows in key order, from a consistent snapshot.
pub(crate) type EncodedRows = Box<dyn Iterator<Item = Result<EncodedRow, LevelError>> + Send>;

/// An ordered key-value store for one view.
pub(crate) trait Store: Send + Sync {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, LevelError>;
    /// A snapshot iterator over a key range.
    fn range(&self, lower: Bound<Vec<u8>>, upper: Bound<Vec<u8>>, reverse: bool) -> EncodedRows;
    /// Writes all rows atomically: after a crash, all or none of them are there, and batches
    /// are recovered in order.
    fn write(&self, rows: &[(&[u8], &[u8])]) -> Result<(), LevelError>;
    /// Removes every row (atomically, ordered with writes).
    fn clear(&self) -> Result<(), LevelError>;
    /// Whether there is any row.
    fn is_empty(&self) -> Result<bool, LevelError>;
    /// Makes everything written so far durable.
    fn persist(&self) -> Result<(), LevelError>;
    /// Closes the store: moves what only the journal holds into tables (so the next open does
    /// not replay it), within a deadline, and releases it. Later calls fail.
    fn close(&self) -> Result<(), LevelError>;
    /// The last repair that threw this store's rows away (damaged files), if any.
    fn repaired(&self) -> Option<Repaired>;
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

    fn range(&self, lower: Bound<Vec<u8>>, upper: Bound<Vec<u8>>, reverse: bool) -> EncodedRows {
        if bounds::is_empty(&lower, &upper) {
            return Box::new(std::iter::empty());
        }
        // A snapshot: copy the range (in-memory logs are small).
        let rows = self.rows.read();
        let mut out: Vec<Result<EncodedRow, LevelError>> = rows
            .range((lower, upper))
            .map(|(k, v)| Ok((k.clone(), layout::decode_seq(v)?)))
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

    fn close(&self) -> Result<(), LevelError> {
        Ok(())
    }

    fn repaired(&self) -> Option<Repaired> {
        None
    }
}

/// Why an engine call did not succeed: the files are damaged (wipe or clear, then rebuild),
/// or something else went wrong (returned as it is; nothing is deleted).
enum Trouble {
    Damage(String),
    Error(LevelError),
}

/// Whether a fjall error means damaged files, rather than the machine refusing (no permission,
/// disk full), another process holding the store, or fjall refusing writes after a failed
/// flush (`Poisoned`: reopening helps, deleting does not).
fn is_damage(err: &fjall::Error) -> bool {
    use fjall::Error as F;
    match err {
        F::Io(io) => check::io_is_damage(io),
        // lsm-tree's errors are all about data (checksums, tags, headers, decompression)
        // except I/O, which it exposes as its source.
        F::Storage(inner) => match std::error::Error::source(inner)
            .and_then(|source| source.downcast_ref::<std::io::Error>())
        {
            Some(io) => check::io_is_damage(io),
            None => true,
        },
        F::JournalRecovery(_)
        | F::InvalidVersion(_)
        | F::Decompress(_)
        | F::InvalidTrailer
        | F::InvalidTag(_)
        | F::Unrecoverable => true,
        _ => false,
    }
}

/// Runs an engine call so that neither its errors nor its panics (fjall asserts on some
/// damaged files) escape unsorted.
fn guarded<R>(path: &Path, f: impl FnOnce() -> fjall::Result<R>) -> Result<R, Trouble> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(err)) if is_damage(&err) => Err(Trouble::Damage(err.to_string())),
        Ok(Err(err)) => Err(Trouble::Error(LevelError::store(path, err))),
        Err(panic) => Err(Trouble::Damage(format!(
            "the storage engine panicked: {}",
            panic_text(&panic)
        ))),
    }
}

fn panic_text(panic: &Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "(no message)".to_string()
    }
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

/// How long closing waits for fjall to flush memtables into tables. A flush that cannot
/// finish (a full disk) must not hang close: after this the database closes anyway (its
/// journal keeps the data; the next open replays it) and close returns a timeout.
const CLOSE_FLUSH_TIMEOUT: Duration = Duration::from_secs(30);

fn keyspace_options() -> fjall::KeyspaceCreateOptions {
    fjall::KeyspaceCreateOptions::default().max_memtable_size(MEMTABLE_BYTES)
}

/// The longest keyspace name fjall accepts.
const MAX_KEYSPACE_NAME: usize = 255;

/// fjall's rule for keyspace names (`Database::keyspace` panics on others): 1 to 255 bytes of
/// `[A-Za-z0-9_.#$-]`, as fjall documents it (fjall 3.1 itself checks only the length).
fn is_valid_keyspace_name(name: &str) -> bool {
    (1..=MAX_KEYSPACE_NAME).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.#$-".contains(&b))
}

/// The keyspace of a view: `view-<name>` for names of `[A-Za-z0-9_-]`, other names
/// hex-encoded (`viewx-<hex>`), and names whose encoding would not fit fjall's 255 bytes as
/// the SHA-256 of the name (`viewh-<hex>`). The first two forms are those of earlier
/// versions, so existing indexes keep their keyspaces.
fn keyspace_name(view: &str) -> Result<String, LevelError> {
    let plain = view
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    let name = if plain && "view-".len() + view.len() <= MAX_KEYSPACE_NAME {
        format!("view-{view}")
    } else if "viewx-".len() + 2 * view.len() <= MAX_KEYSPACE_NAME {
        format!("viewx-{}", hex(view.as_bytes()))
    } else {
        format!("viewh-{}", hex(Sha256::digest(view.as_bytes()).as_slice()))
    };
    if !is_valid_keyspace_name(&name) {
        return Err(LevelError::InvalidName {
            view: view.to_string(),
            reason: format!("its keyspace name {name:?} is not one fjall accepts"),
        });
    }
    Ok(name)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// One open store (view) of a directory's database.
struct Slot {
    /// The keyspace's name.
    name: String,
    /// `None` while the store is stale, or its keyspace could not be opened.
    keyspace: Option<fjall::Keyspace>,
    /// Whether the keyspace holds rows the view's driver counts on (it had META when opened,
    /// or was written since its last clear): such a store cannot move to a repaired database
    /// unnoticed.
    dirty: AtomicBool,
    /// Set when the database was repaired (wiped or reopened) while this store was dirty:
    /// every call fails until the view is reset.
    stale: Option<String>,
    /// The last repair that threw this store's rows away.
    repaired: Option<Repaired>,
}

/// The fjall database of one directory and the stores using it.
struct DbState {
    /// `None` once closed, or if reopening it failed (a later reset tries again).
    db: Option<fjall::Database>,
    /// Bumped whenever the database closes (or restarts): row iterators of an older one stop
    /// instead of reading files that may since belong to another database.
    generation: u64,
    /// Indexed by [`FjallStore::slot`].
    slots: Vec<Option<Slot>>,
    /// The wipe of this database (at open or since), reported to stores opened later.
    wiped: Option<Repaired>,
}

/// A directory's database, shared by the level views of that directory (one keyspace each).
struct DirDb {
    /// `<dir>/level`.
    path: PathBuf,
    state: RwLock<DbState>,
    /// Damage found while open: the close writes no check file and the next open wipes.
    damaged: Mutex<Option<String>>,
    /// The CRCs verified at open, for the close to reuse.
    known: Mutex<Known>,
}

impl DirDb {
    /// Notes damage found while the database is open (the first reason is kept).
    fn note_damage(&self, reason: &str) {
        let mut damaged = self.damaged.lock();
        if damaged.is_none() {
            *damaged = Some(reason.to_string());
            check::mark_damaged(&self.path, reason);
        }
    }

    /// Closes the database (without flushing: it is damaged, or fjall refuses writes after a
    /// failed flush), wipes it if `wipe` names damage, and opens it again. `keep` is the slot
    /// of the caller, which clears its keyspace next; other dirty stores become stale, and
    /// clean ones are cleared (a reopened journal may hold rows they had cleared).
    fn restart(
        &self,
        state: &mut DbState,
        keep: usize,
        wipe: Option<&str>,
        cause: &str,
    ) -> Result<(), LevelError> {
        for slot in state.slots.iter_mut().flatten() {
            slot.keyspace = None;
        }
        // The last handle: fjall stops its workers before this returns.
        state.db = None;
        state.generation += 1;
        if let Some(reason) = wipe {
            check::wipe(&self.path, reason)?;
        }
        let Opened { db, wiped, known } = open_database(&self.path)?;
        *self.known.lock() = known;
        let wiped = wipe.map(str::to_string).or(wiped);
        if let Some(reason) = &wiped {
            state.wiped = Some(Repaired {
                path: self.path.clone(),
                reason: reason.clone(),
                whole_store: true,
            });
            // A wipe removed whatever damage was noted.
            *self.damaged.lock() = None;
        }
        for (index, slot) in state.slots.iter_mut().enumerate() {
            let Some(slot) = slot else { continue };
            if wiped.is_some() {
                slot.repaired = state.wiped.clone();
            }
            if index != keep && slot.dirty.load(Ordering::Acquire) {
                slot.stale = Some(cause.to_string());
                continue;
            }
            let keyspace = guarded(&self.path, || {
                let keyspace = db.keyspace(&slot.name, keyspace_options)?;
                keyspace.clear()?;
                Ok(keyspace)
            })
            .map_err(|trouble| trouble_error(&self.path, trouble))?;
            slot.keyspace = Some(keyspace);
        }
        state.db = Some(db);
        Ok(())
    }
}

fn trouble_error(path: &Path, trouble: Trouble) -> LevelError {
    match trouble {
        Trouble::Damage(reason) => LevelError::Damaged {
            path: path.to_path_buf(),
            reason,
        },
        Trouble::Error(err) => err,
    }
}

fn databases() -> &'static Mutex<HashMap<PathBuf, Arc<DirDb>>> {
    static DATABASES: OnceLock<Mutex<HashMap<PathBuf, Arc<DirDb>>>> = OnceLock::new();
    DATABASES.get_or_init(Default::default)
}

/// A database just opened by [`open_database`].
struct Opened {
    db: fjall::Database,
    /// Why the store was wiped first, if it was.
    wiped: Option<String>,
    /// The CRCs verified at open, for the close to reuse.
    known: Known,
}

/// Opens the fjall database at `path` so that damaged files are found and thrown away rather
/// than trusted: the files a clean close left are verified before fjall reads them, and if
/// fjall's own open (its crash recovery, when there was no clean close) fails on damage or
/// panics, the store is wiped and created anew.
fn open_database(path: &Path) -> Result<Opened, LevelError> {
    let mut wiped = None;
    let mut known = Known::default();
    match check::inspect(path)? {
        Verdict::Damaged(reason) => {
            check::wipe(path, &reason)?;
            wiped = Some(reason);
        }
        Verdict::Intact(verified) => known = verified,
        Verdict::Unchecked => {}
    }
    let open = || {
        fjall::Database::builder(path)
            .worker_threads(WORKER_THREADS)
            .open()
    };
    match guarded(path, open) {
        Ok(db) => Ok(Opened { db, wiped, known }),
        Err(Trouble::Damage(reason)) if wiped.is_none() => {
            check::wipe(path, &reason)?;
            let db = guarded(path, open).map_err(|trouble| trouble_error(path, trouble))?;
            Ok(Opened {
                db,
                wiped: Some(reason),
                known: Known::default(),
            })
        }
        Err(trouble) => Err(trouble_error(path, trouble)),
    }
}

/// A view's keyspace in its directory's shared fjall database.
pub(crate) struct FjallStore {
    dir: Arc<DirDb>,
    /// This store's place in the database's slots.
    slot: usize,
    closed: AtomicBool,
}

impl FjallStore {
    /// Opens the keyspace for `view` in the database at `dir/level`.
    pub(crate) fn open(dir: &Path, view: &str) -> Result<FjallStore, LevelError> {
        let name = keyspace_name(view)?;
        let dir = std::fs::canonicalize(dir).map_err(|e| LevelError::store(dir, e))?;
        let path = dir.join("level");
        let store = {
            let mut dbs = databases().lock();
            let shared = match dbs.get(&path) {
                Some(shared) => shared.clone(),
                None => {
                    let Opened { db, wiped, known } = open_database(&path)?;
                    let shared = Arc::new(DirDb {
                        path: path.clone(),
                        state: RwLock::new(DbState {
                            db: Some(db),
                            generation: 0,
                            slots: Vec::new(),
                            wiped: wiped.map(|reason| Repaired {
                                path: path.clone(),
                                reason,
                                whole_store: true,
                            }),
                        }),
                        damaged: Mutex::new(None),
                        known: Mutex::new(known),
                    });
                    dbs.insert(path.clone(), shared.clone());
                    shared
                }
            };
            let mut state = shared.state.write();
            if state.slots.iter().flatten().any(|slot| slot.name == name) {
                return Err(LevelError::InUse {
                    path,
                    view: view.to_string(),
                });
            }
            let slot = Slot {
                name,
                keyspace: None,
                dirty: AtomicBool::new(false),
                stale: None,
                repaired: state.wiped.clone(),
            };
            let index = match state.slots.iter().position(Option::is_none) {
                Some(index) => {
                    state.slots[index] = Some(slot);
                    index
                }
                None => {
                    state.slots.push(Some(slot));
                    state.slots.len() - 1
                }
            };
            drop(state);
            // From here on, dropping the store (on any error below) releases the slot.
            FjallStore {
                dir: shared,
                slot: index,
                closed: AtomicBool::new(false),
            }
        };
        store.attach()?;
        Ok(store)
    }

    /// Opens this store's keyspace and reads its first rows (META, where a damaged store
    /// shows first): damage clears the keyspace, or if that fails too, wipes the database.
    fn attach(&self) -> Result<(), LevelError> {
        let mut state = self.dir.state.write();
        let path = &self.dir.path;
        let Some(db) = state.db.clone() else {
            return Err(self.closed_error());
        };
        let name = self.slot_ref(&state)?.name.clone();
        let probe = guarded(path, || {
            let keyspace = db.keyspace(&name, keyspace_options)?;
            let meta = keyspace.get(layout::META)?.is_some();
            if let Some(first) = keyspace.first_key_value() {
                first.key()?;
            }
            Ok((keyspace, meta))
        });
        match probe {
            Ok((keyspace, meta)) => {
                let slot = self.slot_mut(&mut state)?;
                slot.keyspace = Some(keyspace);
                slot.dirty.store(meta, Ordering::Release);
                Ok(())
            }
            Err(Trouble::Error(err)) => Err(err),
            Err(Trouble::Damage(reason)) => {
                drop(db);
                let generation = state.generation;
                self.repair(&mut state, &reason)?;
                // A restart (the clear failed too) has recorded its wipe already.
                if state.generation == generation {
                    self.slot_mut(&mut state)?.repaired = Some(Repaired {
                        path: path.clone(),
                        reason,
                        whole_store: false,
                    });
                }
                Ok(())
            }
        }
    }

    /// Empties this store's keyspace, durably; if fjall cannot (damaged files, or it refuses
    /// writes after a failed flush), the database is closed, wiped (damage) or just reopened,
    /// and the keyspace cleared in the new one.
    fn repair(&self, state: &mut DbState, reason: &str) -> Result<(), LevelError> {
        let path = &self.dir.path;
        let cleared = match state.db.clone() {
            Some(db) => {
                let name = self.slot_ref(state)?.name.clone();
                guarded(path, || {
                    let keyspace = db.keyspace(&name, keyspace_options)?;
                    keyspace.clear()?;
                    db.persist(fjall::PersistMode::SyncAll)?;
                    Ok(keyspace)
                })
            }
            None => Err(Trouble::Error(self.closed_error())),
        };
        let keyspace = match cleared {
            Ok(keyspace) => Some(keyspace),
            Err(Trouble::Damage(damage)) => {
                let why = format!("{reason}; clearing failed: {damage}");
                self.dir.restart(state, self.slot, Some(&why), &why)?;
                None
            }
            Err(Trouble::Error(err)) => {
                let why = format!("{reason}; clearing failed: {err}");
                self.dir.restart(state, self.slot, None, &why)?;
                None
            }
        };
        let slot = self.slot_mut(state)?;
        if let Some(keyspace) = keyspace {
            slot.keyspace = Some(keyspace);
        }
        slot.stale = None;
        slot.dirty.store(false, Ordering::Release);
        Ok(())
    }

    fn slot_ref<'a>(&self, state: &'a DbState) -> Result<&'a Slot, LevelError> {
        state
            .slots
            .get(self.slot)
            .and_then(Option::as_ref)
            .ok_or_else(|| self.closed_error())
    }

    fn slot_mut<'a>(&self, state: &'a mut DbState) -> Result<&'a mut Slot, LevelError> {
        let err = self.closed_error();
        state
            .slots
            .get_mut(self.slot)
            .and_then(Option::as_mut)
            .ok_or(err)
    }

    fn closed_error(&self) -> LevelError {
        LevelError::Closed {
            path: self.dir.path.clone(),
        }
    }

    /// The database and this store's keyspace, for a call under `state`'s lock.
    fn handles<'a>(
        &self,
        state: &'a DbState,
    ) -> Result<(&'a fjall::Database, &'a fjall::Keyspace, &'a Slot), LevelError> {
        let slot = self.slot_ref(state)?;
        if let Some(reason) = &slot.stale {
            return Err(LevelError::Stale {
                path: self.dir.path.clone(),
                reason: reason.clone(),
            });
        }
        match (&state.db, &slot.keyspace) {
            (Some(db), Some(keyspace)) => Ok((db, keyspace, slot)),
            _ => Err(self.closed_error()),
        }
    }

    /// Runs an engine call on this store; damage it reports is noted (the next open wipes).
    fn with<R>(
        &self,
        f: impl FnOnce(&fjall::Database, &fjall::Keyspace, &Slot) -> fjall::Result<R>,
    ) -> Result<R, LevelError> {
        let state = self.dir.state.read();
        let (db, keyspace, slot) = self.handles(&state)?;
        guarded(&self.dir.path, || f(db, keyspace, slot)).map_err(|t| self.trouble(t))
    }

    fn trouble(&self, trouble: Trouble) -> LevelError {
        if let Trouble::Damage(reason) = &trouble {
            self.dir.note_damage(reason);
        }
        trouble_error(&self.dir.path, trouble)
    }
}

/// Rotates each keyspace's memtable and waits, until `deadline` at most, for fjall's workers
/// to flush them into tables, so the journal holds nothing the tables don't.
///
/// fjall 3.1 has no public flush: `rotate_memtable` and `sealed_memtable_count` are
/// `#[doc(hidden)]`. They are used because neither blocks (the hidden
/// `rotate_memtable_and_wait` waits for ever when a flush fails, as on a full disk). Nothing
/// depends on them for correctness: if they fail or time out, the journal is kept and the
/// next open replays it.
fn flush_memtables(
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

impl FjallStore {
    /// Closes this store: flushes its memtable (bounded), releases its keyspace and, if it
    /// was the last store of its directory, closes the database (see [`close_database`]).
    fn close_store(&self) -> Result<(), LevelError> {
        if self.closed.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        let deadline = Instant::now() + CLOSE_FLUSH_TIMEOUT;
        // Without this, the next open replays every row since the last memtable flush from
        // the journal (seconds for tens of MB); with it, reopening reads only table metadata.
        let own = {
            let state = self.dir.state.read();
            match self.handles(&state) {
                Ok((db, keyspace, _)) => {
                    flush_memtables(&self.dir.path, db, std::slice::from_ref(keyspace), deadline)
                        .and_then(|()| {
                            db.persist(fjall::PersistMode::SyncData)
                                .map_err(|e| LevelError::store(&self.dir.path, e))
                        })
                }
                // Stale or never attached: nothing of its own to flush.
                Err(_) => Ok(()),
            }
        };
        let mut dbs = databases().lock();
        let mut state = self.dir.state.write();
        if let Some(slot) = state.slots.get_mut(self.slot) {
            *slot = None;
        }
        if state.slots.iter().any(Option::is_some) {
            return own;
        }
        // The last store: the database closes here, under the registry's lock, so it is
        // closed (and its lock file free) before another open of the directory looks for it.
        if dbs
            .get(&self.dir.path)
            .is_some_and(|shared| Arc::ptr_eq(shared, &self.dir))
        {
            dbs.remove(&self.dir.path);
        }
        let closed = close_database(&self.dir, &mut state, deadline);
        own.and(closed)
    }
}

impl Drop for FjallStore {
    fn drop(&mut self) {
        // Errors were reported by `close`, if the view was closed; a store dropped without
        // (a failed open, a failed view) still closes its database.
        let _ = self.close_store();
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
/// tables. Then the check file is written (see [`check`]), for the next open to verify.
///
/// Every step must succeed, or the journal and the check file are left alone: the flushes
/// (bounded by `deadline`), a single journal (no older ones waiting), no damage seen while
/// open, and fjall's lock file free (no other process has the database open).
fn close_database(dir: &DirDb, state: &mut DbState, deadline: Instant) -> Result<(), LevelError> {
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

/// Rows from a fjall snapshot. Each step runs under the database's lock and checks its
/// generation: an iterator that outlives its database (closed, or repaired) ends with an error
/// rather than read files that may belong to a new database by now.
struct FjallRows {
    dir: Arc<DirDb>,
    generation: u64,
    iter: Option<Box<dyn Iterator<Item = fjall::Guard> + Send>>,
}

impl Iterator for FjallRows {
    type Item = Result<EncodedRow, LevelError>;

    fn next(&mut self) -> Option<Result<EncodedRow, LevelError>> {
        let iter = self.iter.as_mut()?;
        let state = self.dir.state.read();
        let path = &self.dir.path;
        if state.generation != self.generation {
            self.iter = None;
            return Some(Err(LevelError::Closed { path: path.clone() }));
        }
        let step = guarded(path, || match iter.next() {
            Some(guard) => guard.into_inner().map(Some),
            None => Ok(None),
        });
        drop(state);
        match step {
            Ok(Some((key, value))) => {
                Some(layout::decode_seq(&value).map(|seq| (key.to_vec(), seq)))
            }
            Ok(None) => {
                self.iter = None;
                None
            }
            Err(trouble) => {
                self.iter = None;
                if let Trouble::Damage(reason) = &trouble {
                    self.dir.note_damage(reason);
                }
                Some(Err(trouble_error(path, trouble)))
            }
        }
    }
}

impl Store for FjallStore {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, LevelError> {
        self.with(|_, keyspace, _| keyspace.get(key))
            .map(|value| value.map(|v| v.to_vec()))
    }

    fn range(&self, lower: Bound<Vec<u8>>, upper: Bound<Vec<u8>>, reverse: bool) -> EncodedRows {
        if bounds::is_empty(&lower, &upper) {
            return Box::new(std::iter::empty());
        }
        let state = self.dir.state.read();
        let (db, keyspace, _) = match self.handles(&state) {
            Ok(handles) => handles,
            Err(err) => return Box::new(std::iter::once(Err(err))),
        };
        // A snapshot: rows written after this point are not seen (live reads rely on it).
        let iter = match guarded(&self.dir.path, || {
            Ok(fjall::Readable::range(
                &db.snapshot(),
                keyspace,
                (lower, upper),
            ))
        }) {
            Ok(iter) => iter,
            Err(trouble) => return Box::new(std::iter::once(Err(self.trouble(trouble)))),
        };
        let iter: Box<dyn Iterator<Item = fjall::Guard> + Send> = if reverse {
            Box::new(iter.rev())
        } else {
            Box::new(iter)
        };
        Box::new(FjallRows {
            dir: self.dir.clone(),
            generation: state.generation,
            iter: Some(iter),
        })
    }

    fn write(&self, rows: &[(&[u8], &[u8])]) -> Result<(), LevelError> {
        // No fsync per batch: views rebuild from the log. A crash loses a suffix of batches,
        // each whole (rows with the META row that claims them), never a `since` ahead of them.
        self.with(|db, keyspace, slot| {
            slot.dirty.store(true, Ordering::Release);
            let mut batch = db.batch().durability(Some(fjall::PersistMode::Buffer));
            for (key, value) in rows {
                batch.insert(keyspace, *key, *value);
            }
            batch.commit()
        })
    }

    fn clear(&self) -> Result<(), LevelError> {
        let mut state = self.dir.state.write();
        self.slot_ref(&state)?;
        self.repair(&mut state, "the view was reset")
    }

    fn is_empty(&self) -> Result<bool, LevelError> {
        self.with(|_, keyspace, _| keyspace.is_empty())
    }

    fn persist(&self) -> Result<(), LevelError> {
        self.with(|db, _, _| db.persist(fjall::PersistMode::SyncData))
    }

    fn close(&self) -> Result<(), LevelError> {
        self.close_store()
    }

    fn repaired(&self) -> Option<Repaired> {
        let state = self.dir.state.read();
        self.slot_ref(&state).ok()?.repaired.clone()
    }
}

/// A store of either kind.
pub(crate) fn open(dir: Option<&Path>, view: &str) -> Result<Arc<dyn Store>, LevelError> {
    Ok(match dir {
        Some(dir) => Arc::new(FjallStore::open(dir, view)?),
        None => Arc::new(MemStore::default()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_view_name_core_allows_gets_a_valid_keyspace_name_and_old_names_keep_theirs() {
        assert_eq!(keyspace_name("by_author-2").unwrap(), "view-by_author-2");
        assert_eq!(keyspace_name("a.b").unwrap(), "viewx-612e62");
        let long = "é. ".repeat(50);
        let name = keyspace_name(&long).unwrap();
        assert!(name.starts_with("viewh-") && name.len() == 6 + 64, "{name}");
        for len in 1..=200 {
            for fill in ["a", ".", " ", "é", "_"] {
                let mut view = String::new();
                while view.len() + fill.len() <= len {
                    view.push_str(fill);
                }
                while view.len() < len {
                    view.push('x');
                }
                let name = keyspace_name(&view).unwrap();
                assert!(is_valid_keyspace_name(&name), "{view:?} -> {name:?}");
            }
        }
        // Names from other drivers may be longer still.
        assert!(
            keyspace_name(&"a".repeat(1000))
                .unwrap()
                .starts_with("viewh-")
        );
    }
}
