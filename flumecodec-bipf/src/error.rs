//! The errors of encoding and decoding, each folding into [`Error`].

use std::fmt;

/// Why a value could not be encoded (nothing is written).
#[derive(Clone, PartialEq, Debug)]
#[non_exhaustive]
pub enum EncodeError {
    /// NaN or an infinity: JSON has no such numbers, and the JS encoder refuses them.
    NotFinite(f64),
    /// An integer a JS number (a 64-bit float) cannot hold exactly.
    InexactInteger(i128),
    /// A body longer than [`MAX_LEN`](crate::MAX_LEN) bytes, which the JS encoder's 32-bit tag
    /// arithmetic cannot write.
    TooLong {
        /// The body's length in bytes.
        len: usize,
    },
    /// An object key that is not a string, a char, an integer or a bool (JS keys are strings).
    KeyNotString(&'static str),
    /// Nested deeper than [`MAX_DEPTH`](crate::MAX_DEPTH).
    TooDeep,
    /// A `Serialize` implementation reported an error of its own.
    Custom(String),
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EncodeError::NotFinite(x) => write!(f, "{x} is not a finite number"),
            EncodeError::InexactInteger(n) => {
                write!(f, "{n} cannot be held exactly by a JS number")
            }
            EncodeError::TooLong { len } => write!(
                f,
                "a body of {len} bytes is longer than BIPF's {} (the JS encoder's limit)",
                crate::tag::MAX_LEN
            ),
            EncodeError::KeyNotString(what) => {
                write!(f, "an object key must be a string, not {what}")
            }
            EncodeError::TooDeep => {
                write!(f, "nested deeper than {} levels", crate::MAX_DEPTH)
            }
            EncodeError::Custom(message) => f.write_str(message),
        }
    }
}

impl std::error::Error for EncodeError {}

/// Why bytes could not be read as BIPF (or as the type asked for).
#[derive(Clone, PartialEq, Debug)]
#[non_exhaustive]
pub enum DecodeError {
    /// The bytes end before the value (or the tag) that starts at `at` does.
    Truncated {
        /// Where the value starts.
        at: usize,
    },
    /// Type 7, which BIPF reserves.
    ReservedType {
        /// Where the value starts.
        at: usize,
    },
    /// A tag announcing a body longer than [`MAX_LEN`](crate::MAX_LEN).
    LengthTooLarge {
        /// Where the value starts.
        at: usize,
    },
    /// A value whose body does not fit its type: an INT not 4 bytes, a DOUBLE not 8, a
    /// bool/null byte other than 0, 1 or 2 (or longer than one byte), an object key that is
    /// not a string, a container whose last element runs past its end.
    Malformed {
        /// Where the value starts.
        at: usize,
        /// What is wrong.
        what: &'static str,
    },
    /// A string that is not UTF-8.
    NotUtf8 {
        /// Where the value starts.
        at: usize,
    },
    /// Bytes left over after the value.
    TrailingBytes {
        /// Where they start.
        at: usize,
    },
    /// Nested deeper than [`MAX_DEPTH`](crate::MAX_DEPTH).
    TooDeep,
    /// The value is well-formed but is not what the target type accepts.
    Custom(String),
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::Truncated { at } => write!(f, "truncated value at byte {at}"),
            DecodeError::ReservedType { at } => write!(f, "reserved type 7 at byte {at}"),
            DecodeError::LengthTooLarge { at } => write!(
                f,
                "length at byte {at} is beyond BIPF's {} bytes",
                crate::tag::MAX_LEN
            ),
            DecodeError::Malformed { at, what } => {
                write!(f, "malformed value at byte {at}: {what}")
            }
            DecodeError::NotUtf8 { at } => write!(f, "string at byte {at} is not UTF-8"),
            DecodeError::TrailingBytes { at } => write!(f, "bytes left over from byte {at}"),
            DecodeError::TooDeep => write!(f, "nested deeper than {} levels", crate::MAX_DEPTH),
            DecodeError::Custom(message) => f.write_str(message),
        }
    }
}

impl std::error::Error for DecodeError {}

/// Any error of this crate.
#[derive(Clone, PartialEq, Debug)]
#[non_exhaustive]
pub enum Error {
    /// Encoding failed.
    Encode(EncodeError),
    /// Decoding failed.
    Decode(DecodeError),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Encode(e) => write!(f, "bipf encode: {e}"),
            Error::Decode(e) => write!(f, "bipf decode: {e}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Encode(e) => Some(e),
            Error::Decode(e) => Some(e),
        }
    }
}

impl From<EncodeError> for Error {
    fn from(e: EncodeError) -> Error {
        Error::Encode(e)
    }
}

impl From<DecodeError> for Error {
    fn from(e: DecodeError) -> Error {
        Error::Decode(e)
    }
}

impl From<EncodeError> for flumedb_core::CodecError {
    fn from(e: EncodeError) -> flumedb_core::CodecError {
        flumedb_core::CodecError::encode("bipf", e)
    }
}

impl From<DecodeError> for flumedb_core::CodecError {
    fn from(e: DecodeError) -> flumedb_core::CodecError {
        flumedb_core::CodecError::decode("bipf", e)
    }
}

impl From<Error> for flumedb_core::CodecError {
    fn from(e: Error) -> flumedb_core::CodecError {
        match e {
            Error::Encode(e) => e.into(),
            Error::Decode(e) => e.into(),
        }
    }
}

impl serde::ser::Error for EncodeError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        EncodeError::Custom(msg.to_string())
    }
}

impl serde::de::Error for DecodeError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        DecodeError::Custom(msg.to_string())
    }
}
