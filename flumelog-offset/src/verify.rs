//! [`OffsetLog::verify`](crate::OffsetLog::verify): a read-only walk of the whole file, and its report.

use flumedb_core::{Result, Seq};

use crate::format::Check;
use crate::log::OffsetLog;

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

impl OffsetLog {
    /// Walks the whole file and lists every damaged frame, without changing anything.
    pub fn verify(&self) -> Result<VerifyReport> {
        self.check_open()?;
        let _no_deletes = self.scan_lock.read_recursive();
        let (map, end) = self.snapshot()?;
        let mut report = VerifyReport {
            bytes: end,
            ..VerifyReport::default()
        };
        let mut at = self.format.first();
        while at < end {
            match self.format.check(&map, at, end) {
                Check::Valid { next, .. } => {
                    report.records += 1;
                    at = next;
                }
                Check::Deleted { next } => {
                    report.deleted += 1;
                    at = next;
                }
                Check::Corrupt { next } => {
                    report.problems.push(Problem {
                        seq: Seq::new(at),
                        bytes: next - at,
                        reason: "the record fails its checksum".into(),
                    });
                    at = next;
                }
                Check::NotAFrame => {
                    let resume = self
                        .format
                        .next_valid_frame_from(&map, at + 1, end)
                        .unwrap_or(end);
                    report.problems.push(Problem {
                        seq: Seq::new(at),
                        bytes: resume - at,
                        reason: "no valid frame here: lengths or end offset do not match".into(),
                    });
                    at = resume;
                }
            }
        }
        Ok(report)
    }
}
