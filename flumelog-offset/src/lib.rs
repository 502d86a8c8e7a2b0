#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

mod error;
mod format;
mod log;
mod map;
mod options;
mod seqlock;
mod verify;

pub use error::OffsetError;
pub use format::{Format, JsWidth};
pub use log::{OffsetLog, Recovery};
pub use options::{Durability, OffsetOptions};
pub use verify::{Problem, VerifyReport};
