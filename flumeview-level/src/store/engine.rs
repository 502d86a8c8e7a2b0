//! What a level view needs of a storage engine: [`Store`], an ordered key-value store per
//! view, and the index rows it yields.

use std::ops::Bound;

use flumedb_core::Seq;

use crate::check::Repaired;
use crate::error::LevelError;

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
