//! [`Index`]: a declared index, and the keys it gives a record.

use flumedb_core::Seq;
use flumeview_level::{Key, MAX_ENCODED_LEN};

use crate::error::QueryError;
use crate::value::object_key;

/// An index: a short name and an ordered list of paths into the record, like JS
/// `{key: 'typ', value: [['value', 'content', 'type'], ['timestamp']]}`.
///
/// Each record gets one row per index, keyed `[name, field values…, seq]`: the seq keeps
/// every record (JS's default `exact: true` kept one record per field values). A missing
/// field is indexed above every value, and one that cannot be a key (an object) just below,
/// so every record is in every index and an index read finds exactly what a full scan finds.
///
/// One exception: a row key is at most 60 KiB. When a record's fields are longer than that,
/// its fields over 1 KiB are indexed as objects are; index reads then find that record only
/// through ranges that reach objects (`$gt`, `$gte`, `$is: "array"`/`"object"`), and a full
/// scan always finds it.
///
/// ```
/// use flumeview_query::Index;
/// let typ = Index::new("typ", ["value.content.type", "timestamp"]);
/// assert_eq!(typ.paths()[0], ["value", "content", "type"]);
/// ```
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Index {
    name: String,
    paths: Vec<Vec<String>>,
}

/// Field values whose key encodes to more than this are indexed as objects are when the
/// whole key would exceed the store's limit.
const LONG_FIELD: usize = 1024;

/// Index names and paths are bounded so that every row key can be encoded.
const MAX_NAME: usize = 256;
const MAX_PATHS: usize = 32;

impl Index {
    /// An index named `name` over dotted paths (`"value.content.type"`).
    pub fn new(name: &str, paths: impl IntoIterator<Item = impl AsRef<str>>) -> Index {
        Index {
            name: name.to_string(),
            paths: paths
                .into_iter()
                .map(|p| p.as_ref().split('.').map(str::to_string).collect())
                .collect(),
        }
    }

    /// An index over paths given as field names (for names that contain dots).
    pub fn with_paths(name: &str, paths: Vec<Vec<String>>) -> Index {
        Index {
            name: name.to_string(),
            paths,
        }
    }

    /// The index's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its paths, as field names.
    pub fn paths(&self) -> &[Vec<String>] {
        &self.paths
    }

    pub(crate) fn check(indexes: &[Index]) -> Result<(), QueryError> {
        for (i, index) in indexes.iter().enumerate() {
            if index.name.is_empty() {
                return Err(QueryError::Index("an index needs a name".into()));
            }
            if index.name.len() > MAX_NAME {
                return Err(QueryError::Index(format!(
                    "index names are at most {MAX_NAME} bytes"
                )));
            }
            if index.paths.len() > MAX_PATHS {
                return Err(QueryError::Index(format!(
                    "index '{}' has {} paths; at most {MAX_PATHS}",
                    index.name,
                    index.paths.len()
                )));
            }
            if indexes.iter().take(i).any(|other| other.name == index.name) {
                return Err(QueryError::Index(format!(
                    "two indexes named '{}'",
                    index.name
                )));
            }
            if index.paths.is_empty() {
                return Err(QueryError::Index(format!(
                    "index '{}' has no paths",
                    index.name
                )));
            }
            if index
                .paths
                .iter()
                .any(|p| p.is_empty() || p.iter().any(String::is_empty))
            {
                return Err(QueryError::Index(format!(
                    "index '{}' has an empty path or path segment",
                    index.name
                )));
            }
        }
        Ok(())
    }

    /// A record's row key in this index from the keys of its fields, one per path (never
    /// fails: see the type's docs).
    pub(crate) fn key(&self, fields: Vec<Key>, seq: Seq) -> Key {
        let mut items = Vec::with_capacity(self.paths.len() + 2);
        items.push(Key::String(self.name.clone()));
        items.extend(fields);
        items.push(Key::from(seq));
        let key = Key::Array(items);
        // Depth is bounded by `to_key` and NaN cannot come from JSON, so only the length can
        // fail; the bound below is cheap and almost always decides without encoding.
        if key.encoded_len_bound() <= MAX_ENCODED_LEN || key.encode().is_ok() {
            return key;
        }
        // Too long for the store (over 60 KiB): long fields are indexed as objects are.
        // Queries on them by an exact value, `$lt`/`$lte` or a string `$prefix` through
        // this index miss them; a full scan finds them.
        let Key::Array(mut items) = key else {
            return object_key();
        };
        // The fields: every item but the name (first) and the seq (last).
        let fields = items.len().saturating_sub(2);
        for item in items.iter_mut().skip(1).take(fields) {
            if item.encode().map_or(true, |e| e.len() > LONG_FIELD) {
                *item = object_key();
            }
        }
        let key = Key::Array(items);
        if key.encode().is_ok() {
            return key;
        }
        // Not reached with the limits above; never return a key the store refuses.
        let Key::Array(mut items) = key else {
            return object_key();
        };
        for item in items.iter_mut().skip(1).take(fields) {
            *item = object_key();
        }
        Key::Array(items)
    }

    /// A stable, unambiguous form (every part length-prefixed), for the view's version.
    pub(crate) fn describe(&self) -> Vec<u8> {
        let mut out = Vec::new();
        let mut part = |bytes: &[u8]| {
            out.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
            out.extend_from_slice(bytes);
        };
        part(self.name.as_bytes());
        for path in &self.paths {
            part(&(path.len() as u64).to_le_bytes());
            for segment in path {
                part(segment.as_bytes());
            }
        }
        out
    }
}
