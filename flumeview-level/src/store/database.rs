//! The fjall database of a directory, shared by the level views of that directory (a keyspace
//! each): opening it so that damaged files are thrown away rather than trusted, and restarting
//! it in-process when fjall cannot repair a keyspace.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use parking_lot::{Mutex, RwLock};

use super::budget::Budget;
use super::damage::{Trouble, guarded, trouble_error};
use crate::check::{self, Known, Repaired, Verdict};
use crate::error::LevelError;

/// One open store (view) of a directory's database.
pub(super) struct KeyspaceSlot {
    /// The keyspace's name.
    pub(super) name: String,
    /// `None` while the store is stale, or its keyspace could not be opened.
    pub(super) keyspace: Option<fjall::Keyspace>,
    /// Whether the keyspace holds rows the view's driver counts on (it had META when opened,
    /// or was written since its last clear): such a store cannot move to a repaired database
    /// unnoticed.
    pub(super) dirty: AtomicBool,
    /// Set when the database was repaired (wiped or reopened) while this store was dirty:
    /// every call fails until the view is reset.
    pub(super) stale: Option<String>,
    /// The last repair that threw this store's rows away.
    pub(super) repaired: Option<Repaired>,
}

/// The fjall database of one directory and the stores using it.
pub(super) struct DbState {
    /// `None` once closed, or if reopening it failed (a later reset tries again).
    pub(super) db: Option<fjall::Database>,
    /// Bumped whenever the database closes (or restarts): row iterators of an older one stop
    /// instead of reading files that may since belong to another database.
    pub(super) generation: u64,
    /// Indexed by each `FjallStore`'s slot number.
    pub(super) slots: Vec<Option<KeyspaceSlot>>,
    /// The wipe of this database (at open or since), reported to stores opened later.
    pub(super) wiped: Option<Repaired>,
}

/// A directory's database, shared by the level views of that directory (one keyspace each).
pub(super) struct DirDb {
    /// `<dir>/level`.
    pub(super) path: PathBuf,
    pub(super) state: RwLock<DbState>,
    /// Damage found while open: the close writes no check file and the next open wipes.
    pub(super) damaged: Mutex<Option<String>>,
    /// The CRCs verified at open, for the close to reuse.
    pub(super) known: Mutex<Known>,
    /// The settings it was opened with (kept across restarts).
    pub(super) budget: Budget,
}

impl DirDb {
    /// Notes damage found while the database is open (the first reason is kept).
    pub(super) fn note_damage(&self, reason: &str) {
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
    pub(super) fn restart(
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
        let Opened { db, wiped, known } = open_database(&self.path, self.budget)?;
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
                let keyspace = db.keyspace(&slot.name, || self.budget.keyspace_options())?;
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

pub(super) fn databases() -> &'static Mutex<HashMap<PathBuf, Arc<DirDb>>> {
    static DATABASES: OnceLock<Mutex<HashMap<PathBuf, Arc<DirDb>>>> = OnceLock::new();
    DATABASES.get_or_init(Default::default)
}

/// A database just opened by [`open_database`].
pub(super) struct Opened {
    pub(super) db: fjall::Database,
    /// Why the store was wiped first, if it was.
    pub(super) wiped: Option<String>,
    /// The CRCs verified at open, for the close to reuse.
    pub(super) known: Known,
}

/// Opens the fjall database at `path` so that damaged files are found and thrown away rather
/// than trusted: the files a clean close left are verified before fjall reads them, and if
/// fjall's own open (its crash recovery, when there was no clean close) fails on damage or
/// panics, the store is wiped and created anew.
pub(super) fn open_database(path: &Path, budget: Budget) -> Result<Opened, LevelError> {
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
            .worker_threads(budget.workers)
            .cache_size(budget.cache)
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
