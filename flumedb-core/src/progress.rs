//! Where each view stands against the log: [`Progress`] and [`ViewStatus`], for progress bars
//! and health checks.

use std::sync::Arc;

use crate::error::Error;
use crate::seq::{Seq, Since};

/// Where a view stands.
#[derive(Clone, Debug)]
pub enum ViewStatus {
    /// Being fed: caught up, or catching up.
    Active,
    /// Stopped on an error until `rebuild()`.
    Failed {
        /// The record it failed on, if the error belongs to one.
        seq: Option<Seq>,
        /// What went wrong.
        cause: Arc<Error>,
    },
    /// The database is closed.
    Closed,
}

/// A view's progress against the log, for progress bars and health checks.
#[derive(Clone, Debug)]
pub struct Progress {
    /// The view's name.
    pub view: String,
    /// The last record the view has processed.
    pub since: Since,
    /// The last record in the log.
    pub log_since: Since,
    /// Whether the view is being fed, failed or closed.
    pub status: ViewStatus,
}

impl Progress {
    /// `true` when the view has processed every record in the log.
    pub fn is_current(&self) -> bool {
        self.since >= self.log_since
    }

    /// How far the view is, from 0.0 to 1.0, measured in seqs (bytes for an offset log).
    pub fn ratio(&self) -> f64 {
        match (self.since, self.log_since) {
            (_, Since::Empty) => 1.0,
            (Since::Empty, Since::At(_)) => 0.0,
            (Since::At(v), Since::At(l)) if l.get() == 0 || v >= l => 1.0,
            (Since::At(v), Since::At(l)) => v.get() as f64 / l.get() as f64,
        }
    }
}
