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

// Positions: a record's `Seq`, and `Since`, how far a log or view has come.
pub mod bounds;
mod seq;
pub use seq::{Seq, Since};

// The error type shared by logs, views and the driver.
mod error;
pub use error::{BoxError, CodecError, Error, Result};

// Codecs: typed values to stored bytes and back.
mod codec;
mod finite;
#[cfg(feature = "bincode")]
pub use codec::Bincode;
pub use codec::{Codec, Json, Postcard, Raw};

// The observable `since` of a log: current value, wait for a seq, subscribe.
#[cfg(all(test, loom))]
mod loom_models;
mod loom_sync;
mod watch;
pub use watch::{SinceWatch, Subscription};

// Records: raw as logs store them, decoded as views see them.
mod record;
pub use record::{Entry, Record};

// JSON records read in place: the stored bytes, shared, and their fields where they lie.
mod doc;
pub use bytes::Bytes;
pub use doc::{Doc, Field, FieldSet, JsonType};

// The source of truth: an append-only log of byte records, and streams over it.
mod live;
mod log;
pub use log::{Durability, Log, LogIter, LogStream, StreamOptions};

// Views: state built by streaming the log in order, and what their handles read it with.
mod reader;
mod view;
pub use reader::{LiveRecords, LogReader, Records};
pub use view::{Checkpoint, CommitPolicy, DEFAULT_MEMORY_BUDGET, Stored, View, ViewContext};

// Read waiting: how reads on a view wait until it has caught up.
mod progress;
mod sync;
mod views_watch;
pub use progress::{Progress, ViewStatus};
pub use sync::{ViewSync, Wait};

// The driver: one log in the middle, views around it, a feeder thread streaming between them.
mod chunk;
mod feeder;
mod flume;
mod options;
mod panic;
mod slot;
mod typed_log;
pub use flume::Flume;
pub use options::FlumeOptions;
pub use panic::panic_message;
pub use typed_log::{Mapper, RecordStream, Skipped, Undecodable};

// Writing a view's state file atomically, for views that keep their state in one file.
pub mod persist;

// Conformance suites for `Log` and `View` implementations.
#[cfg(feature = "testkit")]
#[allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    reason = "a conformance kit for tests: it reports a violation by panicking, like assert!"
)]
pub mod testkit;
