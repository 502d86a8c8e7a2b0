//! The JS encoder's rules, malformed input, and serde types.

use flumecodec_bipf::{
    BipfDoc, BipfField, BipfType, DecodeError, EncodeError, MAX_DEPTH, from_slice, to_vec, validate,
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

fn ty(bytes: &[u8]) -> BipfType {
    BipfField::from_bytes(bytes).unwrap().bipf_type()
}

#[test]
fn numbers_are_ints_only_within_31_bits_as_in_js() {
    assert_eq!(
        to_vec(&2147483647i64).unwrap(),
        [0x22, 0xff, 0xff, 0xff, 0x7f]
    );
    assert_eq!(ty(&to_vec(&-2147483647i64).unwrap()), BipfType::Int);
    // Math.abs(-2^31) > 2^31 - 1: a DOUBLE in JS, though an i32 could hold it.
    assert_eq!(ty(&to_vec(&-2147483648i64).unwrap()), BipfType::Double);
    assert_eq!(ty(&to_vec(&2147483648u64).unwrap()), BipfType::Double);
    assert_eq!(to_vec(&1.0f64).unwrap(), to_vec(&1).unwrap());
    assert_eq!(to_vec(&-0.0f64).unwrap(), to_vec(&0).unwrap());
    assert_eq!(ty(&to_vec(&1.5f64).unwrap()), BipfType::Double);
    assert_eq!(ty(&to_vec(&(1u64 << 60)).unwrap()), BipfType::Double);
    assert_eq!(
        from_slice::<u64>(&to_vec(&(1u64 << 60)).unwrap()).unwrap(),
        1 << 60
    );
    assert!(matches!(
        to_vec(&u64::MAX),
        Err(EncodeError::InexactInteger(_))
    ));
    assert!(matches!(
        to_vec(&((1i64 << 53) + 1)),
        Err(EncodeError::InexactInteger(_))
    ));
    assert!(matches!(to_vec(&f64::NAN), Err(EncodeError::NotFinite(_))));
    assert!(matches!(
        to_vec(&f64::INFINITY),
        Err(EncodeError::NotFinite(_))
    ));
    assert!(matches!(
        to_vec(&vec![1.0, f64::NEG_INFINITY]),
        Err(EncodeError::NotFinite(_))
    ));
    // A DOUBLE that holds an integer decodes as one, so it encodes to the same bytes again.
    let big = to_vec(&json!(3e9)).unwrap();
    let back: Value = from_slice(&big).unwrap();
    assert_eq!(back, json!(3000000000u64));
    assert_eq!(to_vec(&back).unwrap(), big);
}

#[test]
fn object_keys_follow_js_property_order() {
    let value: Value =
        serde_json::from_str(r#"{"b":1,"2":2,"a":3,"10":4,"01":5,"4294967295":6,"0":7}"#).unwrap();
    let bytes = to_vec(&value).unwrap();
    let keys: Vec<&str> = BipfField::from_bytes(&bytes)
        .unwrap()
        .entries()
        .map(|e| e.unwrap().0)
        .collect();
    // Array indexes (below 2^32 - 1, no leading zero) first, ascending; then insertion order.
    assert_eq!(keys, ["0", "2", "10", "b", "a", "01", "4294967295"]);
    // Nested objects too, and structs.
    let nested = to_vec(&json!({"x": {"z": 1, "3": 2}})).unwrap();
    let inner = BipfField::from_bytes(&nested)
        .unwrap()
        .get(&["x"])
        .unwrap()
        .unwrap();
    let keys: Vec<&str> = inner.entries().map(|e| e.unwrap().0).collect();
    assert_eq!(keys, ["3", "z"]);
}

#[test]
fn undefined_reads_as_null_but_is_told_apart_in_place() {
    let bytes = [0x0e, 0x02];
    assert_eq!(from_slice::<Value>(&bytes).unwrap(), Value::Null);
    assert_eq!(from_slice::<Option<u32>>(&bytes).unwrap(), None);
    let field = BipfField::from_bytes(&bytes).unwrap();
    assert!(field.is_undefined() && !field.is_null());
    let null = BipfField::from_bytes(&[0x06]).unwrap();
    assert!(null.is_null() && !null.is_undefined());
    // npm bipf's compare: null lowest, undefined highest.
    let one = to_vec(&1).unwrap();
    let one = BipfField::from_bytes(&one).unwrap();
    assert!(null.compare(&one).is_lt());
    assert!(field.compare(&one).is_gt());
}

#[test]
fn compare_orders_numbers_across_int_and_double() {
    let enc = |v: Value| to_vec(&v).unwrap();
    let (a, b, c) = (enc(json!(2)), enc(json!(2.5)), enc(json!(-3e10)));
    let (a, b, c) = (
        BipfField::from_bytes(&a).unwrap(),
        BipfField::from_bytes(&b).unwrap(),
        BipfField::from_bytes(&c).unwrap(),
    );
    assert!(a.compare(&b).is_lt());
    assert!(b.compare(&a).is_gt());
    assert!(c.compare(&a).is_lt());
    let (s, t) = (enc(json!("vote")), enc(json!("vote")));
    assert!(
        BipfField::from_bytes(&s)
            .unwrap()
            .compare(&BipfField::from_bytes(&t).unwrap())
            .is_eq()
    );
    // Types differ: by type number (STRING 0 before INT 2).
    assert!(BipfField::from_bytes(&s).unwrap().compare(&a).is_lt());
}

#[test]
fn malformed_input_is_a_typed_error_with_its_position() {
    let cases: &[(&[u8], &str)] = &[
        (&[], "truncated"),
        (&[0x07], "reserved"),
        (&[0x0f, 0x00], "reserved"),
        (&[0x1a, 1, 2, 3], "int of 3 bytes"),
        (&[0x2a, 1, 2, 3, 4, 5], "int of 5 bytes"),
        (&[0x0e, 3], "boolnull 3"),
        (&[0x16, 1, 1], "boolnull of 2 bytes"),
        (&[0x08, 0xff], "not utf-8"),
        (&[0x2d, 0x22, 0, 0, 0, 0], "object key not a string"),
        (&[0x14, 0x28, b'h', b'i'], "element past its array"),
        (&[0x0e, 0x01, 0x00], "trailing bytes"),
        (&[0xff, 0xff, 0xff, 0xff, 0x7f], "length too large"),
        (&[0x0d, 0x08, b'a'], "key without a value"),
    ];
    for &(bytes, what) in cases {
        assert!(validate(bytes).is_err(), "validate: {what}");
        assert!(from_slice::<Value>(bytes).is_err(), "decode: {what}");
    }
    assert_eq!(
        validate(&[0x14, 0x0e, 0x07]),
        Err(DecodeError::Malformed {
            at: 1,
            what: "a bool/null byte other than 0, 1 or 2"
        })
    );
    // Found while reading in place too, not only by a full decode.
    let bad = [0x1d, 0x08, b'a', 0x28, b'h'];
    assert!(BipfField::from_bytes(&bad).is_err());
    let inner_bad = [0x2d, 0x22, 0, 0, 0, 0];
    let root = BipfField::from_bytes(&inner_bad).unwrap();
    assert!(matches!(
        root.get(&["x"]),
        Err(DecodeError::Malformed { .. })
    ));
}

#[test]
fn nesting_beyond_max_depth_is_refused_not_a_stack_overflow() {
    // MAX_DEPTH + 1 arrays, each holding the next; the innermost empty.
    let mut bytes = vec![0x04];
    for _ in 0..MAX_DEPTH {
        let mut outer = Vec::new();
        let tag = (bytes.len() as u64) << 3 | 4;
        let mut t = tag;
        while t >= 0x80 {
            outer.push((t as u8 & 0x7f) | 0x80);
            t >>= 7;
        }
        outer.push(t as u8);
        outer.extend_from_slice(&bytes);
        bytes = outer;
    }
    assert_eq!(validate(&bytes), Err(DecodeError::TooDeep));
    assert_eq!(from_slice::<Value>(&bytes), Err(DecodeError::TooDeep));
    let mut deep = json!([]);
    for _ in 0..MAX_DEPTH {
        deep = json!([deep]);
    }
    assert_eq!(to_vec(&deep), Err(EncodeError::TooDeep));
    // One level less is fine both ways.
    let Value::Array(mut inner) = deep else {
        unreachable!()
    };
    let ok = inner.pop().unwrap();
    let bytes = to_vec(&ok).unwrap();
    assert_eq!(from_slice::<Value>(&bytes).unwrap(), ok);
}

#[derive(Serialize, Deserialize, PartialEq, Debug)]
enum Content {
    Post { text: String },
    Vote(i64),
    About,
}

#[derive(Serialize, Deserialize, PartialEq, Debug)]
struct Message {
    author: String,
    sequence: u32,
    content: Content,
    tags: Vec<String>,
    reply: Option<String>,
    #[serde(with = "serde_bytes_shim")]
    blob: Vec<u8>,
}

mod serde_bytes_shim {
    use serde::{Deserializer, Serializer};
    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(bytes)
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Vec<u8>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("bytes")
            }
            fn visit_bytes<E>(self, v: &[u8]) -> Result<Vec<u8>, E> {
                Ok(v.to_vec())
            }
        }
        d.deserialize_bytes(V)
    }
}

#[test]
fn typed_values_round_trip_with_buffers_and_enums() {
    for content in [
        Content::Post { text: "hé".into() },
        Content::Vote(-1),
        Content::About,
    ] {
        let m = Message {
            author: "@a".into(),
            sequence: 7,
            content,
            tags: vec!["x".into()],
            reply: None,
            blob: vec![0xde, 0xad],
        };
        let bytes = to_vec(&m).unwrap();
        assert_eq!(from_slice::<Message>(&bytes).unwrap(), m);
        let root = BipfField::from_bytes(&bytes).unwrap();
        assert_eq!(
            root.get(&["blob"]).unwrap().unwrap().as_buffer(),
            Some(&[0xde, 0xad][..])
        );
        assert!(root.get(&["reply"]).unwrap().unwrap().is_null());
    }
    // A buffer has no JSON form.
    let bytes = to_vec(&json!({"a": 1})).unwrap();
    let mut with_buffer = bytes.clone();
    with_buffer.splice(1..1, [0x08, b'b', 0x09, 0xff]);
    with_buffer[0] = 0x5d; // 11 bytes of body
    assert!(validate(&with_buffer).is_ok());
    assert!(from_slice::<Value>(&with_buffer).is_err());
}

#[test]
fn strings_borrow_from_the_bytes() {
    let bytes = to_vec(&json!(["borrowed", "text"])).unwrap();
    let words: Vec<&str> = from_slice(&bytes).unwrap();
    assert_eq!(words, ["borrowed", "text"]);
    let doc = BipfDoc::from_bipf(bytes.clone());
    assert_eq!(
        doc.root().unwrap().element(1).unwrap().unwrap().as_str(),
        Some("text")
    );
    assert_eq!(doc.root().unwrap().element(2).unwrap(), None);
}
