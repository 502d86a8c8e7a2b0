//! The fuzz harnesses: one function per on-disk structure or decoder, each taking arbitrary
//! bytes and asserting the promises that structure makes (no panic, a typed error, no bytes
//! changed that should not be, every record returned passing its own checks).
//!
//! The cargo-fuzz targets in `fuzz/fuzz_targets/` are one-line calls to these functions, and
//! `tests/corpora.rs` runs every committed corpus file through them on stable, so CI exercises
//! the corpora without libFuzzer. A failed promise is an `assert!`: the harness reports a
//! finding by panicking, which is what libFuzzer (and the test) catch.
//!
//! [`TARGETS`] lists every target; adding a decoder is one entry there, one module, and one
//! file in `fuzz/fuzz_targets/` (plus its `[[bin]]` in `fuzz/Cargo.toml`).

mod bipf;
mod blocks;
mod doc;
mod key;
mod memory;
mod offset;
mod query;
mod reduce;
mod scratch;

pub use bipf::bipf;
pub use blocks::{aaol_log, aligned_log};
pub use doc::doc_field;
pub use key::level_key;
pub use memory::memory_log;
pub use offset::offset_log;
pub use query::query;
pub use reduce::reduce_state;

/// A fuzz target: its name (the cargo-fuzz target and its corpus directory) and its harness.
pub struct Target {
    /// The cargo-fuzz target name, also `fuzz/corpus/<name>`.
    pub name: &'static str,
    /// The harness: panics when a promise fails.
    pub run: fn(&[u8]),
}

/// Every fuzz target.
pub const TARGETS: &[Target] = &[
    Target {
        name: "offset_log",
        run: offset_log,
    },
    Target {
        name: "memory_log",
        run: memory_log,
    },
    Target {
        name: "level_key",
        run: level_key,
    },
    Target {
        name: "query",
        run: query,
    },
    Target {
        name: "reduce_state",
        run: reduce_state,
    },
    Target {
        name: "bipf",
        run: bipf,
    },
    Target {
        name: "aaol_log",
        run: aaol_log,
    },
    Target {
        name: "aligned_log",
        run: aligned_log,
    },
    Target {
        name: "doc_field",
        run: doc_field,
    },
];
