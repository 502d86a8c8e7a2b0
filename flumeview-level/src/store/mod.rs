//! Where index rows live: a small trait with two engines, so another engine could replace
//! fjall. [`FjallStore`] keeps a keyspace per view in one fjall database per directory (shared
//! by all level views of that directory); [`MemStore`] keeps rows in memory for logs without a
//! directory.
//!
//! A damaged fjall store is never trusted: its files are verified before fjall opens them
//! (see [`check`](crate::check)), fjall's errors and panics are sorted into damage and other failures, and
//! damage is repaired by clearing the view's keyspace or wiping the store, after which the
//! views rebuild from the log.

mod budget;
mod close;
mod damage;
mod database;
mod engine;
mod keyspace;
mod memory;
mod names;

use std::path::Path;
use std::sync::Arc;

use budget::Budget;
pub(crate) use engine::{EncodedRows, Store};
use keyspace::FjallStore;
use memory::MemStore;

use crate::error::LevelError;

/// A store of either kind; a new fjall database is sized by `memory_budget` (see [`Budget`]).
pub(crate) fn open(
    dir: Option<&Path>,
    view: &str,
    memory_budget: u64,
) -> Result<Arc<dyn Store>, LevelError> {
    Ok(match dir {
        Some(dir) => Arc::new(FjallStore::open(dir, view, Budget::new(memory_budget))?),
        None => Arc::new(MemStore::default()),
    })
}
