//! The report of [`OffsetLog::verify`](crate::OffsetLog::verify).

use flumedb_core::Seq;

/// What a full walk of the log found.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct VerifyReport {
    /// Records that pass their checks.
    pub records: u64,
    /// Deleted records.
    pub deleted: u64,
    /// Bytes walked (the log's size).
    pub bytes: u64,
    /// Damaged frames, in file order.
    pub problems: Vec<Problem>,
}

impl VerifyReport {
    /// `true` when nothing is damaged.
    pub fn is_ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// One damaged place in the log.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Problem {
    /// Where it starts (a frame's seq, or where a frame was expected).
    pub seq: Seq,
    /// How many bytes up to the next good frame.
    pub bytes: u64,
    /// What is wrong.
    pub reason: String,
}
