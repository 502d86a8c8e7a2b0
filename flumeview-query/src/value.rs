//! JSON values as queries see them: paths into records, one total order (the index's), and
//! equality, truthiness and types.
//!
//! Order: `null` < booleans < numbers < strings (by code point) < arrays (item by item, a
//! prefix first) < everything that cannot be an index key (objects, arrays holding objects,
//! arrays nested deeper than [`MAX_DEPTH`]), which compare equal to each other < a missing
//! value. This is exactly the order of the index keys, so an index range and a filter always
//! agree.

use std::cmp::Ordering;

use flumeview_level::{Key, MAX_DEPTH};
use serde_json::Value;

/// A path into a value: object field names, or array positions (negative: from the end).
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub enum Step {
    /// An object's field.
    Field(String),
    /// An array's item; negative counts from the end (`-1` is the last).
    Index(i64),
}

/// Looks `path` up in `value`: `None` when any step is missing (never panics on `null` or a
/// scalar in the middle of the path, unlike JS `util.has`).
pub(crate) fn lookup<'a>(value: &'a Value, path: &[Step]) -> Option<&'a Value> {
    let mut at = value;
    for step in path {
        at = match (step, at) {
            (Step::Field(name), Value::Object(map)) => map.get(name)?,
            (Step::Index(i), Value::Array(items)) => {
                let i = if *i < 0 {
                    items
                        .len()
                        .checked_sub(usize::try_from(i.unsigned_abs()).ok()?)?
                } else {
                    usize::try_from(*i).ok()?
                };
                items.get(i)?
            }
            _ => return None,
        };
    }
    Some(at)
}

/// Field names only (index paths).
pub(crate) fn lookup_fields<'a>(value: &'a Value, path: &[String]) -> Option<&'a Value> {
    let mut at = value;
    for name in path {
        at = at.as_object()?.get(name)?;
    }
    Some(at)
}

/// The rank of a value's type in the order; `NOT_A_KEY` for everything that is not a key.
pub(crate) const NOT_A_KEY: u8 = 5;

pub(crate) fn rank(value: &Value, depth: usize) -> u8 {
    match value {
        Value::Null => 0,
        Value::Bool(_) => 1,
        Value::Number(_) => 2,
        Value::String(_) => 3,
        Value::Array(items) => {
            // In a row key a field sits inside the key's array: one level fewer for it.
            if depth + 1 >= MAX_DEPTH || items.iter().any(|item| rank(item, depth + 1) == NOT_A_KEY)
            {
                NOT_A_KEY
            } else {
                4
            }
        }
        Value::Object(_) => NOT_A_KEY,
    }
}

/// The number as a float, with `-0` as `0` (as the index stores it).
pub(crate) fn to_f64(n: &serde_json::Number) -> f64 {
    let x = n.as_f64().unwrap_or(0.0);
    if x == 0.0 { 0.0 } else { x }
}

/// Compares two values (either missing) in the index order.
pub(crate) fn compare(a: Option<&Value>, b: Option<&Value>) -> Ordering {
    match (a, b) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Greater,
        (Some(_), None) => Ordering::Less,
        (Some(a), Some(b)) => compare_at(a, b, 0),
    }
}

fn compare_at(a: &Value, b: &Value, depth: usize) -> Ordering {
    let (ra, rb) = (rank(a, depth), rank(b, depth));
    if ra != rb || ra == NOT_A_KEY {
        return ra.cmp(&rb);
    }
    match (a, b) {
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        (Value::Number(x), Value::Number(y)) => to_f64(x).total_cmp(&to_f64(y)),
        (Value::String(x), Value::String(y)) => x.as_bytes().cmp(y.as_bytes()),
        (Value::Array(x), Value::Array(y)) => {
            for (x, y) in x.iter().zip(y) {
                match compare_at(x, y, depth + 1) {
                    Ordering::Equal => {}
                    other => return other,
                }
            }
            x.len().cmp(&y.len())
        }
        _ => Ordering::Equal,
    }
}

/// Deep equality with numbers compared by value (`1` equals `1.0`).
pub(crate) fn equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => to_f64(x) == to_f64(y),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| equal(x, y))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| equal(v, w)))
        }
        _ => a == b,
    }
}

/// JS truthiness: missing, `null`, `false`, `0` and `""` are false.
pub(crate) fn truthy(value: Option<&Value>) -> bool {
    match value {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(Value::Number(n)) => to_f64(n) != 0.0,
        Some(Value::String(s)) => !s.is_empty(),
        Some(Value::Array(_) | Value::Object(_)) => true,
    }
}

/// The key of values that cannot be keys (objects, arrays holding objects): `[Max]`, above
/// every other array and below `Max`.
pub(crate) fn object_key() -> Key {
    Key::Array(vec![Key::Max])
}

/// A value as an index key: [`object_key`] for one that cannot be a key, `Max` for a missing one
/// (so every record has a row in every index, ordered as [`compare`] orders values).
pub(crate) fn to_key(value: Option<&Value>) -> Key {
    match value {
        None => Key::Max,
        Some(v) => exact_key(v).unwrap_or_else(object_key),
    }
}

/// A value that can be a key, as one (`None` for objects and arrays holding them).
pub(crate) fn exact_key(value: &Value) -> Option<Key> {
    Some(match value {
        Value::Null => Key::Null,
        Value::Bool(b) => Key::Bool(*b),
        Value::Number(n) => Key::Number(to_f64(n)),
        Value::String(s) => Key::String(s.clone()),
        Value::Array(items) => {
            if rank(value, 0) == NOT_A_KEY {
                return None;
            }
            Key::Array(items.iter().map(exact_key).collect::<Option<Vec<_>>>()?)
        }
        Value::Object(_) => return None,
    })
}

/// A number as JSON: an integer when it is one (so sums of integers print as `85`, not `85.0`).
pub(crate) fn to_json_number(x: f64) -> Value {
    if x.fract() == 0.0 && x.abs() < 9_007_199_254_740_992.0 {
        Value::from(x as i64)
    } else {
        serde_json::Number::from_f64(x).map_or(Value::Null, Value::Number)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_order_is_the_index_order() {
        let values = [
            json!(null),
            json!(false),
            json!(true),
            json!(-1.5),
            json!(0),
            json!(2),
            json!(""),
            json!("a"),
            json!("b"),
            json!("é"),
            json!("😀"),
            json!([]),
            json!(["a"]),
            json!(["a", null]),
            json!(["a", "x"]),
            json!(["b"]),
        ];
        for (i, a) in values.iter().enumerate() {
            for (j, b) in values.iter().enumerate() {
                assert_eq!(compare(Some(a), Some(b)), i.cmp(&j), "{a} vs {b}");
                assert_eq!(
                    to_key(Some(a)).cmp(&to_key(Some(b))),
                    i.cmp(&j),
                    "{a} vs {b}"
                );
            }
        }
        assert_eq!(compare(Some(&json!({"a": 1})), None), Ordering::Less);
        assert_eq!(
            to_key(Some(&json!({"a": 1}))).cmp(&to_key(None)),
            Ordering::Less
        );
        assert_eq!(
            to_key(Some(&json!(["z"]))).cmp(&to_key(Some(&json!({})))),
            Ordering::Less
        );
        assert_eq!(
            compare(Some(&json!([{"a": 1}])), Some(&json!({}))),
            Ordering::Equal
        );
        assert_eq!(
            compare(Some(&json!(["z"])), Some(&json!([{}]))),
            Ordering::Less
        );
        assert_eq!(
            compare(Some(&json!(-0.0)), Some(&json!(0))),
            Ordering::Equal
        );
    }

    #[test]
    fn lookups_never_panic() {
        let v = json!({"a": {"b": [1, 2, 3]}, "n": null});
        let path = |s: &[Step]| lookup(&v, s).cloned();
        let f = |s: &str| Step::Field(s.into());
        assert_eq!(path(&[f("a"), f("b"), Step::Index(-1)]), Some(json!(3)));
        assert_eq!(path(&[f("a"), f("b"), Step::Index(-4)]), None);
        assert_eq!(path(&[f("a"), f("b"), Step::Index(3)]), None);
        assert_eq!(path(&[f("n"), f("x")]), None);
        assert_eq!(path(&[f("n")]), Some(json!(null)));
        assert_eq!(path(&[]), Some(v.clone()));
    }
}
