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

#[cfg(feature = "bipf")]
mod bipf;
mod constraint;
mod count;
mod depth;
mod error;
mod explain;
mod filter;
mod index;
mod map;
mod pipeline;
mod pipeline_depth;
mod plan;
mod read;
mod record;
mod reduce;
mod value;
mod view;

pub use depth::MAX_QUERY_DEPTH;
pub use error::QueryError;
pub use explain::Explain;
pub use filter::{Filter, Op};
/// The JSON types `$is` takes and `$type` returns: flumedb-core's, which `Field::json_type`
/// also gives.
pub use flumedb_core::JsonType;
pub use index::Index;
pub use map::Map;
pub use pipeline::{Pipeline, SortKey, Stage};
pub use read::{LiveResult, LiveResults, QueryHandle, QueryOptions, RecordResults, Results};
pub use record::QueryRecord;
pub use reduce::{Aggregate, AggregateField};
pub use value::Step;
pub use view::Query;

/// flumeview-level's index key: [`Explain::ranges`] are ranges of these row keys.
/// Re-exported so a user reads plans without depending on flumeview-level themselves.
pub use flumeview_level::Key;
/// flumeview-level's error: the source of [`QueryError::Level`].
pub use flumeview_level::LevelError;
