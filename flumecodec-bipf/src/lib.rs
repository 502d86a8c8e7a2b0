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

mod check;
mod codec;
mod de;
mod doc;
mod error;
mod field;
mod ser;
mod tag;

pub use check::validate;
pub use codec::Bipf;
pub use de::from_slice;
pub use doc::BipfDoc;
pub use error::{DecodeError, EncodeError, Error};
pub use field::{BipfField, Elements, Members};
pub use ser::{encode_into, to_vec};
pub use tag::{BipfType, MAX_LEN};

/// How deeply arrays and objects may nest, encoding or decoding: deeper input is refused with
/// a typed error rather than exhausting the stack.
pub const MAX_DEPTH: usize = 256;
