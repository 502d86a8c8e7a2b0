//! How deep a query may nest: parsing, planning and matching recurse over a query's structure,
//! so a deeper one is refused with a typed error before any of them runs. Queries in the JS
//! syntax are checked here as JSON, before parsing; built ones in `pipeline_depth`.

use serde_json::Value;

use crate::error::QueryError;

/// The deepest nesting a query may have (JSON text cannot nest deeper than 127 anyway).
pub const MAX_QUERY_DEPTH: usize = 128;

/// The error for a query nested deeper than the limit, at `at`.
pub(crate) fn too_deep(at: &str) -> QueryError {
    QueryError::malformed(
        at,
        format!("nested deeper than {MAX_QUERY_DEPTH} levels (queries are limited to that)"),
    )
}

/// Checks the nesting of a query in the JS syntax, without recursion.
pub(crate) fn check_json(json: &Value, at: &str) -> Result<(), QueryError> {
    let mut stack = vec![(json, 1usize)];
    while let Some((value, depth)) = stack.pop() {
        if depth > MAX_QUERY_DEPTH {
            return Err(too_deep(at));
        }
        match value {
            Value::Array(items) => stack.extend(items.iter().map(|v| (v, depth + 1))),
            Value::Object(map) => stack.extend(map.values().map(|v| (v, depth + 1))),
            _ => {}
        }
    }
    Ok(())
}
