//! `doc_field`: flumedb-core's in-place JSON reading (`Doc::get`, `Field`'s readers and walks)
//! against a full decode with serde_json.
//!
//! Input: up to four paths (split at `,`) of up to three keys (split at `.`) up to the first
//! newline, then the record's bytes. Promises: no panic on any bytes; on bytes that decode in
//! full, `get` succeeds and finds exactly the value the full decode has at each path (the
//! last of duplicate keys), a `FieldSet` of the paths finds the same in one pass, and every
//! reader of a found field agrees with the decoded value.

use flumedb_core::{Doc, Field, FieldSet, JsonType};
use serde_json::Value;

/// The harness: see the module documentation for the input.
pub fn doc_field(data: &[u8]) {
    let (header, record) = match data.iter().position(|&b| b == b'\n') {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (&b""[..], data),
    };
    let header = String::from_utf8_lossy(header);
    let paths: Vec<Vec<String>> = header
        .split(',')
        .take(4)
        .map(|path| {
            path.split('.')
                .filter(|key| !key.is_empty())
                .take(3)
                .map(str::to_string)
                .collect()
        })
        .collect();
    let doc = Doc::from_json(record.to_vec());
    let got: Vec<_> = paths.iter().map(|path| doc.get(path)).collect();
    let set = FieldSet::new(&paths).read(&doc);
    let Ok(full) = serde_json::from_slice::<Value>(record) else {
        return;
    };
    let set = set.unwrap_or_else(|e| panic!("decodes in full but the set {paths:?} fails: {e}"));
    for ((path, got), from_set) in paths.iter().zip(got).zip(set) {
        let got = got.unwrap_or_else(|e| panic!("decodes in full but get({path:?}) fails: {e}"));
        assert_eq!(got, from_set, "get({path:?}) and the set differ");
        let mut want = Some(&full);
        for key in path {
            want = want.and_then(Value::as_object).and_then(|o| o.get(key));
        }
        match (got, want) {
            (None, None) => {}
            (Some(field), Some(want)) => agrees(field, want),
            (got, want) => panic!("get({path:?}) found {got:?}, a full decode {want:?}"),
        }
    }
    agrees(doc.root(), &full);
}

/// Every reader of `field` gives what the decoded `want` gives, and so do its members and
/// elements, one level down.
fn agrees(field: Field<'_>, want: &Value) {
    assert_eq!(field.to_value().ok().as_ref(), Some(want), "{field:?}");
    assert_eq!(field.json_type(), JsonType::of(Some(want)), "{field:?}");
    assert_eq!(field.as_str().as_deref(), want.as_str(), "{field:?}");
    assert_eq!(field.as_u64(), want.as_u64(), "{field:?}");
    assert_eq!(field.as_i64(), want.as_i64(), "{field:?}");
    assert_eq!(field.as_f64(), want.as_f64(), "{field:?}");
    assert_eq!(field.as_bool(), want.as_bool(), "{field:?}");
    assert_eq!(field.is_null(), want.is_null(), "{field:?}");
    match want {
        Value::Object(map) => {
            let mut members = Vec::new();
            field
                .for_each_member(|key, value| members.push((key.into_owned(), value)))
                .unwrap_or_else(|e| panic!("{field:?}: members: {e}"));
            // Stored order, duplicates included; the decoded map keeps each key's last value.
            for (key, value) in &members {
                assert!(map.contains_key(key), "{field:?}: key {key:?}");
                let last = members.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v);
                if last == Some(value) {
                    assert_eq!(value.to_value().ok().as_ref(), map.get(key), "{field:?}");
                    let one = field.member(key).ok().flatten();
                    assert_eq!(one, Some(*value), "{field:?}: member {key:?}");
                }
            }
            assert!(members.len() >= map.len(), "{field:?}");
        }
        Value::Array(items) => {
            let mut elements = Vec::new();
            field
                .for_each_element(|value| elements.push(value))
                .unwrap_or_else(|e| panic!("{field:?}: elements: {e}"));
            assert_eq!(elements.len(), items.len(), "{field:?}");
            for (n, (element, item)) in elements.iter().zip(items).enumerate() {
                assert_eq!(element.to_value().ok().as_ref(), Some(item), "{field:?}");
                assert_eq!(field.element(n).ok().flatten(), Some(*element), "{field:?}");
            }
            assert_eq!(field.element(items.len()).ok().flatten(), None);
        }
        _ => {}
    }
}
