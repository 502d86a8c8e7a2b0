//! Properties over random values: encode/decode round trips, in-place reads agree with a full
//! decode, and flumedb databases store BIPF.

use flumecodec_bipf::{Bipf, BipfDoc, BipfField, from_slice, to_vec, validate};
use flumedb_core::Flume;
use flumelog_memory::MemoryLog;
use proptest::prelude::*;
use serde_json::{Map, Value, json};

/// JSON values as JS would hand them to the encoder: numbers that are integers within ±2^53
/// or non-integral floats (JS has one number type, so `2.0` is `2`).
fn value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        (-(1i64 << 53)..(1i64 << 53)).prop_map(|n| json!(n)),
        any::<i32>().prop_map(|n| json!(n)),
        (-1e9f64..1e9)
            .prop_filter("not integral", |x| x.fract() != 0.0)
            .prop_map(|x| json!(x)),
        "\\PC{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(5, 64, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec(("[a-z]{0,3}|[0-9]{1,3}", inner), 0..6).prop_map(|entries| {
                let mut map = Map::new();
                for (k, v) in entries {
                    map.insert(k, v);
                }
                Value::Object(map)
            }),
        ]
    })
}

/// `value` with its object keys in JS property order (array indexes first, ascending).
fn js_order(value: &Value) -> Value {
    match value {
        Value::Array(items) => Value::Array(items.iter().map(js_order).collect()),
        Value::Object(map) => {
            let index = |k: &str| {
                (!k.is_empty()
                    && k.bytes().all(|b| b.is_ascii_digit())
                    && (k == "0" || !k.starts_with('0')))
                .then(|| k.parse::<u64>().ok())
                .flatten()
                .filter(|&n| n < u64::from(u32::MAX))
            };
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by_key(|(k, _)| (index(k).is_none(), index(k)));
            Value::Object(
                entries
                    .into_iter()
                    .map(|(k, v)| (k.clone(), js_order(v)))
                    .collect(),
            )
        }
        other => other.clone(),
    }
}

fn paths(value: &Value, prefix: Vec<String>, out: &mut Vec<Vec<String>>) {
    out.push(prefix.clone());
    if let Value::Object(map) = value {
        for (k, v) in map {
            let mut p = prefix.clone();
            p.push(k.clone());
            paths(v, p, out);
        }
    }
}

proptest! {
    #[test]
    fn decode_of_encode_is_the_value_in_js_key_order(v in value()) {
        let bytes = to_vec(&v).unwrap();
        validate(&bytes).unwrap();
        let back: Value = from_slice(&bytes).unwrap();
        prop_assert_eq!(&back, &js_order(&v));
        // Encoding what was decoded gives the same bytes.
        prop_assert_eq!(to_vec(&back).unwrap(), bytes);
    }

    #[test]
    fn every_path_reads_in_place_as_the_full_decode(v in value()) {
        let bytes = to_vec(&v).unwrap();
        let root = BipfField::from_bytes(&bytes).unwrap();
        let mut all = Vec::new();
        paths(&v, Vec::new(), &mut all);
        for path in all {
            let expected = path.iter().try_fold(&v, |here, k| here.get(k));
            let found = root.get(&path).unwrap().map(|f| f.to_value().unwrap());
            let expected = expected.map(js_order);
            prop_assert_eq!(found, expected, "path {:?}", path);
        }
        // A missing key is missing.
        prop_assert_eq!(root.get(&["no such key!"]).unwrap(), None);
    }

    #[test]
    fn any_bytes_give_a_value_or_a_typed_error(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
        let checked = validate(&bytes);
        // Whatever decodes also validates (never a panic either way).
        if let Ok(v) = from_slice::<Value>(&bytes) {
            prop_assert!(checked.is_ok(), "decoded {} but did not validate", v);
        }
    }
}

#[test]
fn databases_store_values_and_docs_as_bipf() {
    let db: Flume<MemoryLog, Value, Bipf> = Flume::open(MemoryLog::new(), Bipf).unwrap();
    let message = json!({"key": "%a", "value": {"sequence": 3, "content": {"type": "post"}}});
    let seq = db.append(&message).unwrap();
    assert_eq!(db.get(seq).unwrap(), message);
    db.close().unwrap();

    let db: Flume<MemoryLog, BipfDoc, Bipf> = Flume::open(MemoryLog::new(), Bipf).unwrap();
    let seq = db.append(&BipfDoc::encode(&message).unwrap()).unwrap();
    let doc = db.get(seq).unwrap();
    assert_eq!(doc.as_bytes(), to_vec(&message).unwrap());
    assert_eq!(
        doc.get(&["value", "sequence"])
            .unwrap()
            .and_then(|f| f.as_u64()),
        Some(3)
    );
    // Bytes that are not one well-formed value are refused, and nothing is written.
    let since = db.since();
    for bad in [&[0x0e, 0x05][..], &[0x28, b'h'], &[0x06, 0x06], &[]] {
        let err = db.append(&BipfDoc::from_bipf(bad.to_vec())).unwrap_err();
        assert!(err.to_string().contains("bipf"), "{err}");
    }
    assert_eq!(db.since(), since);
    db.close().unwrap();
}
