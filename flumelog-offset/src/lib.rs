#![doc = include_str!("../README.md")]
#![warn(missing_docs)]
// Library code never panics on input: bytes from disk are checked, not indexed blindly.
#![cfg_attr(
    not(test),
    warn(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::indexing_slicing,
        clippy::panic
    )
)]
// The memory map (map.rs) is the one place that needs `unsafe`.
#![deny(unsafe_code)]

mod error;
mod format;
mod log;
mod map;
mod open;
mod options;
mod read;
mod seqlock;
mod verify;
mod write;

pub use error::OffsetError;
pub use flumedb_core::Durability;
pub use format::{Format, JsWidth};
pub use log::{OffsetLog, Recovery};
pub use options::OffsetOptions;
pub use verify::{Problem, VerifyReport};
