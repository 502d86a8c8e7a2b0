//! Conformance suites for [`Log`](crate::Log) and [`View`](crate::View) implementations, and
//! a crash harness (feature `testkit`).
//!
//! The Rust counterpart of JS `test-flumelog`: every log crate runs [`log_suite`], every view
//! crate runs [`view_suite`]. They panic (like `assert!`) on the first violation, naming it.
//! [`crash`] kills a writing child process with SIGKILL at random moments, for crash tests of
//! anything that persists; [`power`] builds the crash states a power loss could leave.

pub mod crash;
mod deletes;
mod log_suite;
pub mod power;
mod view_suite;

pub use deletes::check_deletes_under_load;
pub use log_suite::{
    LogLimits, check_append_get, check_batch, check_closed, check_concurrent_readers, check_empty,
    check_live, check_live_ends_on_close, check_ranges, check_reopen, log_suite, log_suite_with,
};
pub use view_suite::{OpenLog, Snapshot, ViewSuite, view_suite};
