#![doc = include_str!("../README.md")]
#![warn(missing_docs)]
// Library code never panics on input; tests may.
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::indexing_slicing,
        clippy::panic
    )
)]
#![forbid(unsafe_code)]

mod block;
mod log;
mod open;
mod options;
mod read;
mod write;

pub use flumedb_core::Durability;
pub use log::AlignedLog;
pub use open::Recovered;
pub use options::{AlignedOptions, DEFAULT_BLOCK_SIZE};
