//! Differential test against the npm `bipf` 1.9.0 package: values made in JS are encoded by
//! both sides (byte-equal) and decoded here; values made here are decoded by JS, which writes
//! them again byte for byte. Needs node and npm; the package is installed from
//! `tests/js/package-lock.json` (`npm ci`) when missing.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Once;

use flumecodec_bipf::{BipfField, from_slice, to_vec};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, TestRng, TestRunner};
use serde_json::{Map, Value, json};

fn js_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/js")
}

fn install_js() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        if js_dir().join("node_modules/bipf").is_dir() {
            return;
        }
        let status = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(js_dir())
            .status()
            .expect("npm is needed to install JS bipf for this test");
        assert!(status.success(), "npm ci in {} failed", js_dir().display());
    });
}

fn node(args: &[&str], stdin: &str) -> Value {
    install_js();
    let mut child = Command::new("node")
        .arg(js_dir().join("bipf.js"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("node is needed for this test");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "node bipf.js {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}

/// `value` as JS holds it after `JSON.parse`: integers beyond 2^53 rounded to the nearest
/// double (this crate refuses to round them itself), and numbers compared as doubles.
fn as_js(value: &Value) -> Value {
    match value {
        Value::Number(n) => {
            let x = n.as_f64().unwrap();
            if x.fract() == 0.0 && x.abs() < 9.2e18 {
                json!(x as i64)
            } else {
                json!(x)
            }
        }
        Value::Array(items) => Value::Array(items.iter().map(as_js).collect()),
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
                    .map(|(k, v)| (k.clone(), as_js(v)))
                    .collect(),
            )
        }
        other => other.clone(),
    }
}

/// What JS parses `text` into, as this crate's encoder should see it: integers a double
/// cannot hold exactly are the double JS made of them.
fn parse_as_js(text: &str) -> Value {
    fn round(value: Value) -> Value {
        match value {
            Value::Number(n)
                if n.as_i64().is_some_and(|i| i.unsigned_abs() > 1 << 53)
                    || n.as_u64().is_some_and(|u| u > 1 << 53) =>
            {
                json!(n.as_f64().unwrap())
            }
            Value::Array(items) => Value::Array(items.into_iter().map(round).collect()),
            Value::Object(map) => {
                Value::Object(map.into_iter().map(|(k, v)| (k, round(v))).collect())
            }
            other => other,
        }
    }
    round(serde_json::from_str(text).unwrap())
}

#[test]
fn values_made_in_js_encode_and_decode_byte_for_byte() {
    for seed in [1, 2, 3] {
        let made = node(&["random", "700", &seed.to_string()], "");
        for pair in made.as_array().unwrap() {
            let (text, js_hex) = (pair[0].as_str().unwrap(), pair[1].as_str().unwrap());
            let value = parse_as_js(text);
            assert_eq!(
                hex(&to_vec(&value).unwrap()),
                js_hex,
                "encode {text} (seed {seed})"
            );
            let bytes = unhex(js_hex);
            let decoded: Value = from_slice(&bytes).unwrap();
            assert_eq!(as_js(&decoded), as_js(&value), "decode {text}");
            assert_eq!(to_vec(&decoded).unwrap(), bytes, "re-encode {text}");
            flumecodec_bipf::validate(&bytes).unwrap();
        }
    }
}

fn value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        (-(1i64 << 53)..(1i64 << 53)).prop_map(|n| json!(n)),
        any::<i32>().prop_map(|n| json!(n)),
        any::<f64>()
            .prop_filter("finite", |x| x.is_finite())
            .prop_map(|x| json!(x)),
        "\\PC{0,10}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::vec(("[a-c]{0,2}|[0-9]{1,2}", inner), 0..5).prop_map(|entries| {
                let mut map = Map::new();
                for (k, v) in entries {
                    map.insert(k, v);
                }
                Value::Object(map)
            }),
        ]
    })
}

#[test]
fn values_made_here_are_read_and_written_again_by_js_byte_for_byte() {
    let mut runner = TestRunner::new_with_rng(
        Config::default(),
        TestRng::deterministic_rng(proptest::test_runner::RngAlgorithm::ChaCha),
    );
    let values: Vec<Value> = (0..2_000)
        .map(|_| value().new_tree(&mut runner).unwrap().current())
        .collect();
    let encoded: Vec<Vec<u8>> = values.iter().map(|v| to_vec(v).unwrap()).collect();
    let hexes: Vec<String> = encoded.iter().map(|b| hex(b)).collect();
    let back = node(&["decode"], &serde_json::to_string(&hexes).unwrap());
    for ((value, bytes), pair) in values.iter().zip(&encoded).zip(back.as_array().unwrap()) {
        let (text, js_hex) = (pair[0].as_str().unwrap(), pair[1].as_str().unwrap());
        assert_eq!(js_hex, hex(bytes), "JS wrote {value} again otherwise");
        assert_eq!(
            as_js(&parse_as_js(text)),
            as_js(value),
            "JS read {value} as {text}"
        );
        // And the in-place reader agrees with what JS decoded, member by member.
        if let Value::Object(map) = value {
            let root = BipfField::from_bytes(bytes).unwrap();
            for (k, v) in map {
                assert_eq!(
                    as_js(&root.get(&[k]).unwrap().unwrap().to_value().unwrap()),
                    as_js(v)
                );
            }
        }
    }
    // The encoder JS runs on the same values writes the same bytes.
    let texts: Vec<Value> = values.clone();
    let js = node(&["encode"], &serde_json::to_string(&texts).unwrap());
    for (h, bytes) in js.as_array().unwrap().iter().zip(&encoded) {
        assert_eq!(h.as_str().unwrap(), hex(bytes));
    }
}
