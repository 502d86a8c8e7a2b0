//! [`QueryRecord`]: the record types a query view indexes and reads, `serde_json::Value` and
//! `Doc` (whose indexed fields are read in place, in one pass over its bytes).

use flumedb_core::{CodecError, Doc, Field, FieldSet, JsonType, Seq};
use flumeview_level::{Key, MAX_DEPTH};
use serde_json::Value;

use crate::filter::Filter;
use crate::index::Index;
#[cfg(test)]
use crate::value::{NOT_A_KEY, rank};
use crate::value::{lookup_fields, object_key, to_key};

/// The indexes of a view, with every path of all of them as one [`FieldSet`], so a `Doc`'s
/// index fields are read in one pass. (Public only to appear in [`QueryRecord`]'s hidden
/// methods; it cannot be named outside this crate.)
pub struct Indexes {
    pub(crate) list: Vec<Index>,
    paths: FieldSet,
}

impl Indexes {
    pub(crate) fn new(list: Vec<Index>) -> Indexes {
        let paths = FieldSet::new(list.iter().flat_map(|index| index.paths().iter()));
        Indexes { list, paths }
    }
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for serde_json::Value {}
    impl Sealed for flumedb_core::Doc {}
    #[cfg(feature = "bipf")]
    impl Sealed for flumecodec_bipf::BipfDoc {}
}

/// A record type a [`Query`](crate::Query) view can keep: `serde_json::Value`, or
/// [`Doc`], whose indexed fields are read where they lie, without decoding the record (and,
/// with the feature `bipf`, `flumecodec_bipf::BipfDoc`, BIPF records read in place the same
/// way).
///
/// Both give every record the same index rows (a property test checks it). Query results are
/// `serde_json::Value`s either way. A `Doc` whose bytes are malformed before an indexed field
/// is indexed as if its fields were objects, and a read that returns it fails with the decode
/// error.
pub trait QueryRecord: sealed::Sealed + Clone + Send + Sync + 'static {
    /// The record's row key in each index, in declaration order.
    #[doc(hidden)]
    fn index_keys(&self, indexes: &Indexes, seq: Seq) -> Vec<Key>;

    /// The record as a value for the pipeline's stages.
    #[doc(hidden)]
    fn into_value(self) -> Result<Value, CodecError>;

    /// Whether the record passes `filter` (a `Doc` reads only the fields the filter names).
    #[doc(hidden)]
    fn passes(&self, filter: &Filter) -> Result<bool, CodecError>;
}

impl QueryRecord for Value {
    fn index_keys(&self, indexes: &Indexes, seq: Seq) -> Vec<Key> {
        indexes
            .list
            .iter()
            .map(|index| {
                let fields = index
                    .paths()
                    .iter()
                    .map(|path| to_key(lookup_fields(self, path)))
                    .collect();
                index.key(fields, seq)
            })
            .collect()
    }

    fn into_value(self) -> Result<Value, CodecError> {
        Ok(self)
    }

    fn passes(&self, filter: &Filter) -> Result<bool, CodecError> {
        Ok(filter.matches(self))
    }
}

impl QueryRecord for Doc {
    fn index_keys(&self, indexes: &Indexes, seq: Seq) -> Vec<Key> {
        // Bytes that break before the fields are found (a foreign log's damaged record)
        // index every field as an object: the record stays in every index, as one with
        // objects there would, and reading it gives the decode error.
        let found = indexes.paths.read(self).ok();
        let mut fields = found.into_iter().flatten();
        indexes
            .list
            .iter()
            .map(|index| {
                let keys = (0..index.paths().len())
                    .map(|_| match fields.next() {
                        Some(field) => field_key(field, 0),
                        None => object_key(),
                    })
                    .collect();
                index.key(keys, seq)
            })
            .collect()
    }

    fn into_value(self) -> Result<Value, CodecError> {
        self.to_value()
    }

    fn passes(&self, filter: &Filter) -> Result<bool, CodecError> {
        filter.matches_field(Some(self.root()))
    }
}

/// A field read in place as a field of an index key: the same key [`to_key`] gives its
/// decoded value. A value that is not valid JSON is indexed as an object is.
fn field_key(field: Option<Field<'_>>, depth: usize) -> Key {
    match field {
        None => Key::Max,
        Some(field) => exact_field_key(field, depth).unwrap_or_else(object_key),
    }
}

/// Mirrors `exact_key` (and the depth rule of `rank`) for a field read in place.
fn exact_field_key(field: Field<'_>, depth: usize) -> Option<Key> {
    Some(match field.json_type() {
        JsonType::Null if field.is_null() => Key::Null,
        JsonType::Boolean => Key::Bool(field.as_bool()?),
        JsonType::Number => {
            let x = field.as_f64()?;
            Key::Number(if x == 0.0 { 0.0 } else { x })
        }
        JsonType::String => Key::String(field.as_str()?.into_owned()),
        JsonType::Array => {
            if depth + 1 >= MAX_DEPTH {
                return None;
            }
            let mut items = Vec::new();
            let mut keys = true;
            field
                .for_each_element(|item| {
                    if keys {
                        match exact_field_key(item, depth + 1) {
                            Some(key) => items.push(key),
                            None => keys = false,
                        }
                    }
                })
                .ok()?;
            if !keys {
                return None;
            }
            Key::Array(items)
        }
        _ => return None,
    })
}

/// Whether `rank` and this module agree on what cannot be a key (used by the tests).
#[cfg(test)]
fn not_a_key(value: &Value) -> bool {
    rank(value, 0) == NOT_A_KEY
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<f64>()
                .prop_filter("finite", |x| x.is_finite())
                .prop_map(Value::from),
            Just(serde_json::json!(-0.0)),
            "[a-c\"\\\\é]{0,4}".prop_map(Value::String),
        ];
        leaf.prop_recursive(6, 40, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::vec(("[abc]", inner), 0..4)
                    .prop_map(|kv| Value::Object(kv.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn a_doc_gets_the_index_rows_its_decoded_value_gets(value in json()) {
            let indexes = Indexes::new(vec![
                Index::new("one", ["a"]),
                Index::new("two", ["b.a", "c"]),
                Index::new("deep", ["a.b.c", "a", "b"]),
            ]);
            let doc = Doc::encode(&value).unwrap();
            let seq = Seq::new(7);
            let from_value = value.index_keys(&indexes, seq);
            let from_doc = doc.index_keys(&indexes, seq);
            prop_assert_eq!(
                from_value.iter().map(|k| k.encode().unwrap()).collect::<Vec<_>>(),
                from_doc.iter().map(|k| k.encode().unwrap()).collect::<Vec<_>>()
            );
            let field = doc.root();
            prop_assert_eq!(field_key(Some(field), 0).encode().unwrap(), to_key(Some(&value)).encode().unwrap());
            prop_assert_eq!(exact_field_key(field, 0).is_none(), not_a_key(&value));
        }
    }

    #[test]
    fn nesting_past_the_key_depth_is_indexed_as_an_object() {
        for depth in 1..MAX_DEPTH + 3 {
            let text = format!("{}1{}", "[".repeat(depth), "]".repeat(depth));
            let value: Value = serde_json::from_str(&text).unwrap();
            let doc = Doc::from_json(text);
            assert_eq!(
                field_key(Some(doc.root()), 0).encode().unwrap(),
                to_key(Some(&value)).encode().unwrap(),
                "depth {depth}"
            );
        }
    }
}
