//! [`FjallStore`]: a view's rows in its own keyspace of the directory's shared fjall database.

use std::ops::Bound;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use flumedb_core::bounds;
use parking_lot::{Mutex, RwLock};

use super::budget::Budget;
use super::close::{CLOSE_FLUSH_TIMEOUT, close_database, flush_memtables};
use super::damage::{Trouble, guarded, trouble_error};
use super::database::{DbState, DirDb, KeyspaceSlot, Opened, databases, open_database};
use super::engine::{EncodedRow, EncodedRows, Store};
use super::names::keyspace_name;
use crate::check::Repaired;
use crate::error::LevelError;
use crate::layout;

/// A view's keyspace in its directory's shared fjall database.
pub(crate) struct FjallStore {
    dir: Arc<DirDb>,
    /// This store's place in the database's slots.
    slot: usize,
    closed: AtomicBool,
}

impl FjallStore {
    /// Opens the keyspace for `view` in the database at `dir/level`.
    pub(crate) fn open(dir: &Path, view: &str, budget: Budget) -> Result<FjallStore, LevelError> {
        let name = keyspace_name(view)?;
        let dir = std::fs::canonicalize(dir).map_err(|e| LevelError::store(dir, e))?;
        let path = dir.join("level");
        let store = {
            let mut dbs = databases().lock();
            let shared = match dbs.get(&path) {
                Some(shared) => shared.clone(),
                None => {
                    let Opened { db, wiped, known } = open_database(&path, budget)?;
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
                        budget,
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
            let slot = KeyspaceSlot {
                name,
                keyspace: None,
                dirty: AtomicBool::new(false),
                stale: None,
                repaired: state.wiped.clone(),
            };
            let free = state
                .slots
                .iter_mut()
                .enumerate()
                .find(|(_, free)| free.is_none());
            let index = match free {
                Some((index, free)) => {
                    *free = Some(slot);
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
            let keyspace = db.keyspace(&name, || self.dir.budget.keyspace_options())?;
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
                    let keyspace = db.keyspace(&name, || self.dir.budget.keyspace_options())?;
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

    fn slot_ref<'a>(&self, state: &'a DbState) -> Result<&'a KeyspaceSlot, LevelError> {
        state
            .slots
            .get(self.slot)
            .and_then(Option::as_ref)
            .ok_or_else(|| self.closed_error())
    }

    fn slot_mut<'a>(&self, state: &'a mut DbState) -> Result<&'a mut KeyspaceSlot, LevelError> {
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
    ) -> Result<(&'a fjall::Database, &'a fjall::Keyspace, &'a KeyspaceSlot), LevelError> {
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
        f: impl FnOnce(&fjall::Database, &fjall::Keyspace, &KeyspaceSlot) -> fjall::Result<R>,
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

impl FjallStore {
    /// Closes this store: flushes its memtable (bounded), releases its keyspace and, if it
    /// was the last store of its directory, closes the database (see [`close_database`]).
    fn close_store(&self) -> Result<(), LevelError> {
        if self.closed.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        let deadline = Instant::now() + CLOSE_FLUSH_TIMEOUT;
        // Without this, the next open replays every row since the last memtable flush from
        // the journal; with it, reopening reads only table metadata.
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
