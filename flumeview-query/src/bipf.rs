//! BIPF records (`flumecodec_bipf::BipfDoc`, feature `bipf`): their indexed fields are read in
//! place, with the same index rows their decoded values get.

use flumecodec_bipf::{BipfDoc, BipfField, BipfType};
use flumedb_core::{CodecError, Seq};
use flumeview_level::{Key, MAX_DEPTH};
use serde_json::Value;

use crate::filter::Filter;
use crate::record::{Indexes, QueryRecord};
use crate::value::object_key;

impl QueryRecord for BipfDoc {
    fn index_keys(&self, indexes: &Indexes, seq: Seq) -> Vec<Key> {
        // A record whose bytes break before a field indexes that field as an object, as a
        // damaged `Doc` does: it stays in every index, and reading it gives the decode error.
        let root = self.root().ok();
        indexes
            .list
            .iter()
            .map(|index| {
                let keys = index
                    .paths()
                    .iter()
                    .map(|path| match root.map(|root| root.get(path)) {
                        Some(Ok(field)) => field_key(field, 0),
                        Some(Err(_)) | None => object_key(),
                    })
                    .collect();
                index.key(keys, seq)
            })
            .collect()
    }

    fn into_value(self) -> Result<Value, CodecError> {
        self.decode().map_err(CodecError::from)
    }

    fn passes(&self, filter: &Filter) -> Result<bool, CodecError> {
        // Filters run on decoded values here: the index decides what it covers without this.
        let value: Value = self.decode().map_err(CodecError::from)?;
        Ok(filter.matches(&value))
    }
}

/// A field read in place as a field of an index key: the key its decoded value gives
/// (`Max` when missing, an object key for what cannot be a key).
fn field_key(field: Option<BipfField<'_>>, depth: usize) -> Key {
    match field {
        None => Key::Max,
        Some(field) => exact_key(field, depth).unwrap_or_else(object_key),
    }
}

/// Mirrors the decoded value's key: JS `undefined` decodes as `null`, −0 is 0, a BUFFER (no
/// JSON value) is not a key.
fn exact_key(field: BipfField<'_>, depth: usize) -> Option<Key> {
    Some(match field.bipf_type() {
        BipfType::BoolNull => match field.as_bool() {
            Some(b) => Key::Bool(b),
            None if field.is_null() || field.is_undefined() => Key::Null,
            None => return None,
        },
        BipfType::Int | BipfType::Double => {
            let x = field.as_f64()?;
            Key::Number(if x == 0.0 { 0.0 } else { x })
        }
        BipfType::String => Key::String(field.as_str()?.to_owned()),
        BipfType::Array => {
            if depth + 1 >= MAX_DEPTH {
                return None;
            }
            let items = field
                .elements()
                .map(|item| exact_key(item.ok()?, depth + 1))
                .collect::<Option<Vec<_>>>()?;
            Key::Array(items)
        }
        BipfType::Object | BipfType::Buffer => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::Index;
    use proptest::prelude::*;

    fn json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i32>().prop_map(Value::from),
            (-1e9f64..1e9).prop_map(Value::from),
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
        fn a_bipf_doc_gets_the_index_rows_its_decoded_value_gets(value in json()) {
            let indexes = Indexes::new(vec![
                Index::new("one", ["a"]),
                Index::new("two", ["b.a", "c"]),
                Index::new("deep", ["a.b.c", "a", "b"]),
            ]);
            let doc = BipfDoc::encode(&value).unwrap();
            let decoded: Value = doc.decode().unwrap();
            let seq = Seq::new(7);
            let from_value = decoded.index_keys(&indexes, seq);
            let from_doc = doc.index_keys(&indexes, seq);
            prop_assert_eq!(
                from_value.iter().map(|k| k.encode().unwrap()).collect::<Vec<_>>(),
                from_doc.iter().map(|k| k.encode().unwrap()).collect::<Vec<_>>()
            );
        }
    }

    #[test]
    fn undefined_indexes_as_null_and_a_buffer_as_no_key() {
        let indexes = Indexes::new(vec![Index::new("a", ["a"])]);
        // {"a": undefined}
        let undefined = BipfDoc::from_bipf(vec![0x25, 0x08, b'a', 0x0e, 0x02]);
        let null = BipfDoc::encode(&serde_json::json!({"a": null})).unwrap();
        let seq = Seq::new(1);
        assert_eq!(
            undefined.index_keys(&indexes, seq),
            null.index_keys(&indexes, seq)
        );
        // {"a": <buffer ff>}
        let buffer = BipfDoc::from_bipf(vec![0x25, 0x08, b'a', 0x09, 0xff]);
        let object = BipfDoc::encode(&serde_json::json!({"a": {}})).unwrap();
        assert_eq!(
            buffer.index_keys(&indexes, seq),
            object.index_keys(&indexes, seq)
        );
    }
}
