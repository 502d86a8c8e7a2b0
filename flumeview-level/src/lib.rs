#![doc = include_str!("../README.md")]
#![warn(missing_docs)]
// Library code never panics on input; tests may.
#![cfg_attr(
    not(test),
    warn(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::indexing_slicing,
        clippy::panic
    )
)]
#![forbid(unsafe_code)]

mod check;
mod error;
mod handle;
mod key;
mod layout;
mod options;
mod rows;
mod state;
mod store;
mod view;

pub use check::Repaired;
pub use error::LevelError;
pub use handle::LevelHandle;
pub use key::{Key, KeyError, MAX_DEPTH, MAX_ENCODED_LEN};
pub use options::ReadOptions;
pub use rows::{LiveItem, LiveRows, Row, Rows};
pub use state::Rejected;
pub use view::Level;
