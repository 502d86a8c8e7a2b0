//! Property tests of the key encoding: encoded byte order equals key order, and
//! `decode(encode(k)) == k`, over random nested keys with awkward strings.

use flumeview_level::Key;
use proptest::prelude::*;

fn string() -> impl Strategy<Value = String> {
    // Characters that break naive encodings: NUL, \x01, the charwise escapes, quotes,
    // multi-byte and astral characters.
    let chars = prop_oneof![
        Just('\0'),
        Just('\u{1}'),
        Just('\u{2}'),
        Just('!'),
        Just('"'),
        Just('?'),
        Just('@'),
        Just('a'),
        Just('b'),
        Just('é'),
        Just('日'),
        Just('🌊'),
        Just('\u{ffff}'),
        any::<char>(),
    ];
    prop::collection::vec(chars, 0..6).prop_map(|cs| cs.into_iter().collect())
}

fn number() -> impl Strategy<Value = f64> {
    prop_oneof![
        Just(0.0),
        Just(-0.0),
        Just(1.0),
        Just(-1.0),
        Just(f64::INFINITY),
        Just(f64::NEG_INFINITY),
        Just(f64::MIN_POSITIVE),
        Just(-f64::MIN_POSITIVE),
        (-1000i64..1000).prop_map(|n| n as f64),
        any::<f64>().prop_filter("not NaN", |n| !n.is_nan()),
    ]
}

fn key() -> impl Strategy<Value = Key> {
    let leaf = prop_oneof![
        Just(Key::Null),
        any::<bool>().prop_map(Key::Bool),
        number().prop_map(Key::Number),
        string().prop_map(Key::String),
        Just(Key::Max),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop::collection::vec(inner, 0..4).prop_map(Key::Array)
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(
        if std::env::var_os("FLUMEDB_SOAK").is_some() { 100_000 } else { 4_000 }
    ))]

    #[test]
    fn byte_order_is_key_order(a in key(), b in key()) {
        let (ea, eb) = (a.encode().unwrap(), b.encode().unwrap());
        prop_assert_eq!(ea.cmp(&eb), a.cmp(&b), "{:?} vs {:?}", a, b);
    }

    #[test]
    fn decode_inverts_encode(k in key()) {
        let encoded = k.encode().unwrap();
        let back = Key::decode(&encoded).unwrap();
        prop_assert_eq!(&back, &k);
        prop_assert_eq!(back.encode().unwrap(), encoded);
    }

    #[test]
    fn a_prefix_sorts_first(items in prop::collection::vec(key(), 0..4), extra in key()) {
        let mut longer = items.clone();
        longer.push(extra);
        prop_assert!(Key::Array(items.clone()) < Key::Array(longer.clone()));
        prop_assert!(Key::Array(items).encode().unwrap() < Key::Array(longer).encode().unwrap());
    }
}

#[test]
fn json_values_convert_and_objects_are_refused() {
    use serde_json::json;
    let k = Key::try_from(&json!(["@a", 3, null, true, ["x"]])).unwrap();
    assert_eq!(
        k,
        Key::Array(vec![
            Key::from("@a"),
            Key::Number(3.0),
            Key::Null,
            Key::Bool(true),
            Key::array(["x"]),
        ])
    );
    assert!(Key::try_from(&json!({"a": 1})).is_err());
}
