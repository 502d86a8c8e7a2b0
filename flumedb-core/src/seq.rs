//! Log positions: [`Seq`] and [`Since`].

use std::fmt;

use serde::{Deserialize, Serialize};

/// The position of one record in a log.
///
/// What a seq means is up to the log: an index for `flumelog-memory`, the byte offset of the
/// record's frame for `flumelog-offset`. Seqs only grow: a record appended later always has a
/// larger seq, so they can be compared and used as range bounds.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Seq(u64);

impl Seq {
    /// The first seq a log can have.
    pub const ZERO: Seq = Seq(0);

    /// A seq from its raw number.
    pub const fn new(raw: u64) -> Seq {
        Seq(raw)
    }

    /// The raw number of this seq.
    pub const fn get(self) -> u64 {
        self.0
    }
}

impl From<u64> for Seq {
    fn from(raw: u64) -> Seq {
        Seq(raw)
    }
}

impl From<Seq> for u64 {
    fn from(seq: Seq) -> u64 {
        seq.0
    }
}

impl fmt::Debug for Seq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Seq({})", self.0)
    }
}

impl fmt::Display for Seq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

/// How far a log or a view has come: nothing yet, or up to and including a seq.
///
/// This is JS flumedb's `since`, with its `-1` ("empty") made explicit. `Empty` sorts before
/// every `At(_)`, so `since >= Since::At(seq)` asks "has this seq been processed?".
///
/// Serialised as `null` (empty) or the seq's number.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
#[serde(from = "Option<Seq>", into = "Option<Seq>")]
pub enum Since {
    /// Nothing appended (a log) or nothing processed (a view).
    #[default]
    Empty,
    /// Everything up to and including this seq.
    At(Seq),
}

impl Since {
    /// The seq, or `None` when empty.
    pub const fn seq(self) -> Option<Seq> {
        match self {
            Since::Empty => None,
            Since::At(seq) => Some(seq),
        }
    }

    /// `true` when nothing has been appended or processed.
    pub const fn is_empty(self) -> bool {
        matches!(self, Since::Empty)
    }

    /// `true` when `seq` is at or before this position.
    pub const fn includes(self, seq: Seq) -> bool {
        match self {
            Since::Empty => false,
            Since::At(at) => at.0 >= seq.0,
        }
    }
}

impl From<Seq> for Since {
    fn from(seq: Seq) -> Since {
        Since::At(seq)
    }
}

impl From<Option<Seq>> for Since {
    fn from(seq: Option<Seq>) -> Since {
        match seq {
            None => Since::Empty,
            Some(seq) => Since::At(seq),
        }
    }
}

impl From<Since> for Option<Seq> {
    fn from(since: Since) -> Option<Seq> {
        since.seq()
    }
}

impl fmt::Debug for Since {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Since::Empty => f.write_str("Since::Empty"),
            Since::At(seq) => write!(f, "Since::At({})", seq.0),
        }
    }
}

impl fmt::Display for Since {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Since::Empty => f.write_str("empty"),
            Since::At(seq) => fmt::Display::fmt(seq, f),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_sorts_first() {
        assert!(Since::Empty < Since::At(Seq::ZERO));
        assert!(Since::At(Seq::new(3)) < Since::At(Seq::new(4)));
        assert!(Since::At(Seq::new(4)).includes(Seq::new(4)));
        assert!(!Since::At(Seq::new(3)).includes(Seq::new(4)));
        assert!(!Since::Empty.includes(Seq::ZERO));
    }

    #[test]
    fn since_serialises_as_null_or_number() {
        assert_eq!(serde_json::to_string(&Since::Empty).unwrap(), "null");
        assert_eq!(serde_json::to_string(&Since::At(Seq::new(7))).unwrap(), "7");
        let back: Since = serde_json::from_str("7").unwrap();
        assert_eq!(back, Since::At(Seq::new(7)));
        let back: Since = serde_json::from_str("null").unwrap();
        assert_eq!(back, Since::Empty);
    }
}
