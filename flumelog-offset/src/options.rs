//! Options for opening an [`OffsetLog`](crate::OffsetLog).

use std::path::Path;

use crate::error::OffsetError;
use crate::format::Format;
use crate::log::OffsetLog;

/// What an acknowledged append promises after a crash.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub enum Durability {
    /// Each append (or batch) is written to the operating system (one `pwrite`) before it
    /// returns, as JS flumelog-offset does. It survives a crash of the process; after a crash
    /// of the machine (power loss) the newest appends may be lost, torn or zero-filled, which
    /// the next open repairs. `flush()` (and `close()`) fsync.
    #[default]
    Os,
    /// Each append (or batch) is fsync'd before it returns: it survives a crash of the machine
    /// too. Concurrent appenders share fsyncs (group commit): while one fsync runs, the
    /// appends that arrive wait for it or share the next one, so throughput grows with
    /// concurrency. Readers see a record only once it is durable.
    Fsync,
}

/// Options for [`OffsetLog::options`](crate::OffsetLog::options).
#[derive(Clone, Debug, Default)]
pub struct OffsetOptions {
    pub(crate) format: Option<Format>,
    pub(crate) durability: Durability,
}

impl OffsetOptions {
    /// The format: used when the file is created; for an existing file it must match what the
    /// file is (the format is detected: native files have a header; for JS files the trailer
    /// width is found from the last frame). Default: native for new files.
    pub fn format(mut self, format: Format) -> Self {
        self.format = Some(format);
        self
    }

    /// What appends promise after a crash. Default: [`Durability::Os`].
    pub fn durability(mut self, durability: Durability) -> Self {
        self.durability = durability;
        self
    }

    /// Opens (or creates) the log file at `path`, repairing a torn tail (see
    /// [`OffsetLog::recovery`](crate::OffsetLog::recovery)).
    pub fn open(&self, path: impl AsRef<Path>) -> Result<OffsetLog, OffsetError> {
        OffsetLog::open_with(self, path.as_ref())
    }
}
