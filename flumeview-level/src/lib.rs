#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

mod check;
mod error;
mod key;
mod read;
mod store;
mod view;

pub use check::Repaired;
pub use error::LevelError;
pub use key::{Key, KeyError, MAX_DEPTH, MAX_ENCODED_LEN};
pub use read::{LevelHandle, LevelIter, LiveItem, LiveIter, ReadOptions, Row};
pub use view::{Level, Rejected};
