//! The query view's error type.

use std::fmt;

use flumeview_level::LevelError;

/// A query or an index declaration that cannot be used, or a failure of the index store.
#[derive(Debug)]
#[non_exhaustive]
pub enum QueryError {
    /// A malformed query: an unknown stage or operator, or an argument of the wrong type.
    Malformed {
        /// Where in the query, e.g. `[0].$filter.age.$gte`.
        at: String,
        /// What is wrong there.
        reason: String,
    },
    /// A bad index declaration (empty or repeated name, empty path).
    Index(String),
    /// The query cannot run live (a `$reduce` never ends; a `$sort` no index serves cannot
    /// order records that have not arrived yet).
    NotLive(String),
    /// The index store (a flumeview-level view) failed; the level error is the source.
    Level(LevelError),
}

impl QueryError {
    pub(crate) fn malformed(at: &str, reason: impl Into<String>) -> QueryError {
        QueryError::Malformed {
            at: if at.is_empty() {
                "the query".into()
            } else {
                at.into()
            },
            reason: reason.into(),
        }
    }
}

/// Where field `name` of the part at `at` is, in the form [`QueryError::Malformed`] reports.
pub(crate) fn child_at(at: &str, name: &str) -> String {
    if at.is_empty() {
        name.to_string()
    } else {
        format!("{at}.{name}")
    }
}

impl fmt::Display for QueryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            QueryError::Malformed { at, reason } => write!(f, "malformed query at {at}: {reason}"),
            QueryError::Index(why) => write!(f, "bad index declaration: {why}"),
            QueryError::NotLive(why) => write!(f, "this query cannot run live: {why}"),
            // The level error names the index and what failed; it is also the source.
            QueryError::Level(err) => write!(f, "{err}"),
        }
    }
}

impl std::error::Error for QueryError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            QueryError::Level(err) => Some(err),
            QueryError::Malformed { .. } | QueryError::Index(_) | QueryError::NotLive(_) => None,
        }
    }
}

impl From<LevelError> for QueryError {
    fn from(err: LevelError) -> Self {
        QueryError::Level(err)
    }
}

/// A query error as the database's error ([`Error::Input`](flumedb_core::Error::Input)), so
/// `?` on [`Pipeline::parse`](crate::Pipeline::parse) or [`Query::new`](crate::Query::new)
/// works in a function returning `flumedb_core::Result`. The `QueryError` is the source, to
/// downcast to.
///
/// ```
/// use flumeview_query::{Pipeline, QueryError};
/// use serde_json::json;
///
/// fn parse(query: serde_json::Value) -> flumedb_core::Result<Pipeline> {
///     Ok(Pipeline::parse(&query)?)
/// }
/// let err = parse(json!([{"$nope": 1}])).unwrap_err();
/// assert!(matches!(err, flumedb_core::Error::Input { ref source } if source.is::<QueryError>()));
/// ```
impl From<QueryError> for flumedb_core::Error {
    fn from(err: QueryError) -> flumedb_core::Error {
        flumedb_core::Error::Input {
            source: Box::new(err),
        }
    }
}
