#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

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
pub use format::{Format, JsWidth};
pub use log::{Durability, OffsetLog, Recovery};
pub use options::OffsetOptions;
pub use verify::{Problem, VerifyReport};
