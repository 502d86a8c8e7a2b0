//! Options for opening an [`OffsetLog`].

use std::path::Path;

use crate::error::OffsetError;
use crate::format::Format;
use crate::log::OffsetLog;
use crate::open;
use flumedb_core::Durability;

/// Options for [`OffsetLog::options`](crate::OffsetLog::options).
#[must_use = "options do nothing until `open` is called"]
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
        open::open(path.as_ref(), self.format, self.durability)
    }
}

impl OffsetLog {
    /// Options for opening a log: its format and its durability.
    pub fn options() -> OffsetOptions {
        OffsetOptions::default()
    }

    /// Opens (or creates) the log at `path` with default options: the native format for a new
    /// file, the format found for an existing one, and [`Durability::Os`].
    pub fn open(path: impl AsRef<Path>) -> Result<OffsetLog, OffsetError> {
        OffsetOptions::default().open(path)
    }
}
