//! [`MemStore`]: index rows in memory, for logs without a directory.

use std::collections::BTreeMap;
use std::ops::Bound;

use flumedb_core::bounds;
use parking_lot::RwLock;

use super::engine::{EncodedRow, EncodedRows, Store};
use crate::check::Repaired;
use crate::error::LevelError;
use crate::layout;

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
