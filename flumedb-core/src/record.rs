//! What a record is: raw ([`Entry`], as a log stores it) and decoded ([`Record`], as views and
//! readers see it).

use crate::seq::Seq;

/// One raw record of a log: its seq and its stored bytes.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Entry {
    /// The record's position.
    pub seq: Seq,
    /// The record's bytes, as the codec wrote them.
    pub data: Vec<u8>,
}

/// A decoded record as views and readers see it.
#[derive(Clone, PartialEq, Debug)]
pub struct Record<T> {
    /// The record's position in the log.
    pub seq: Seq,
    /// The decoded (and, if the database has a mapper, mapped) value.
    pub value: T,
}
