//! The specification's test vectors (ssbc/bipf-spec `fixtures.json`, see tests/fixtures).

use flumecodec_bipf::{BipfField, from_slice, to_vec, validate};
use serde_json::Value;

fn hex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}

#[derive(serde::Deserialize)]
struct Vector {
    name: String,
    json: String,
    binary: String,
}

fn vectors() -> Vec<Vector> {
    serde_json::from_str(include_str!("fixtures/bipf-spec-fixtures.json")).unwrap()
}

#[test]
fn every_spec_vector_encodes_and_decodes_byte_for_byte() {
    let vectors = vectors();
    assert_eq!(vectors.len(), 18);
    for v in vectors {
        let value: Value = serde_json::from_slice(&hex(&v.json)).unwrap();
        let binary = hex(&v.binary);
        assert_eq!(to_vec(&value).unwrap(), binary, "encode {}", v.name);
        let decoded: Value = from_slice(&binary).unwrap();
        assert_eq!(decoded, value, "decode {}", v.name);
        validate(&binary).unwrap_or_else(|e| panic!("validate {}: {e}", v.name));
        // Every member of the top level reads in place as its full decode.
        if let Value::Object(map) = &value {
            let root = BipfField::from_bytes(&binary).unwrap();
            for (key, expected) in map {
                let field = root.get(&[key]).unwrap().unwrap();
                assert_eq!(&field.to_value().unwrap(), expected, "{}: {key}", v.name);
            }
        }
    }
}

#[test]
fn every_cut_of_a_spec_vector_is_a_typed_error() {
    for v in vectors() {
        let binary = hex(&v.binary);
        for cut in 0..binary.len() {
            let short = &binary[..cut];
            assert!(validate(short).is_err(), "{} cut at {cut}", v.name);
            assert!(
                from_slice::<Value>(short).is_err(),
                "{} cut at {cut}",
                v.name
            );
        }
    }
}
