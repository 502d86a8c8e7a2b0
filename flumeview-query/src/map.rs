//! `$map`: what a query returns for each value.

use serde_json::{Map as JsonMap, Value};

use crate::error::{QueryError, child_at};
use crate::value::{Step, lookup, to_f64, to_json_number};
use flumedb_core::JsonType;

/// A map from a value to a new value (JS map-filter-reduce's `$map` argument).
///
/// A missing result drops the item (falsy results such as `0`, `""`, `false` and `null` are
/// kept, unlike JS, which dropped them).
///
/// ```
/// use flumeview_query::Map;
/// use serde_json::json;
///
/// let who = Map::object([("who", Map::path("name")), ("first", Map::path("tags.0"))]);
/// let out = who.apply(&json!({"name": "bob", "tags": ["a", "b"]}));
/// assert_eq!(out, Some(json!({"who": "bob", "first": "a"})));
/// ```
#[derive(Clone, PartialEq, Debug)]
pub enum Map {
    /// The value itself (`true`).
    Whole,
    /// The value at a path (a string, an integer or an array of them; `$get`).
    Path(Vec<Step>),
    /// An object of maps (`true` as a field's map copies the same field).
    Object(Vec<(String, Map)>),
    /// The JSON type name of the mapped value (`$type`).
    Type(Box<Map>),
    /// The mapped number modulo `n` (`$mod`; JS `%`, the sign follows the dividend).
    Mod(Box<Map>, f64),
}

impl Map {
    /// The value at a dotted path; segments of digits index arrays (`"tags.0"`, `"tags.-1"`).
    /// For an object field named like a number, build [`Map::Path`] with [`Step::Field`].
    pub fn path(path: &str) -> Map {
        Map::Path(parse_dotted(path))
    }

    /// An object with a field per map.
    pub fn object<'a>(fields: impl IntoIterator<Item = (&'a str, Map)>) -> Map {
        Map::Object(
            fields
                .into_iter()
                .map(|(k, m)| (k.to_string(), m))
                .collect(),
        )
    }

    /// Maps `value`; `None` drops it.
    pub fn apply(&self, value: &Value) -> Option<Value> {
        match self {
            Map::Whole => Some(value.clone()),
            Map::Path(path) => lookup(value, path).cloned(),
            Map::Object(fields) => {
                let mut out = JsonMap::new();
                for (name, map) in fields {
                    if let Some(v) = map.apply(value) {
                        out.insert(name.clone(), v);
                    }
                }
                Some(Value::Object(out))
            }
            Map::Type(inner) => Some(Value::from(
                JsonType::of(inner.apply(value).as_ref()).name(),
            )),
            Map::Mod(inner, n) => match inner.apply(value)? {
                Value::Number(x) => Some(to_json_number(to_f64(&x) % n)),
                _ => None,
            },
        }
    }

    /// Parses the JS syntax: `true`, a path (string, integer or array), `{$get: path}`,
    /// `{$type: true}`, `{$mod: n}` (on the value, or as the last item of a path array), or
    /// an object of maps.
    pub fn parse(json: &Value) -> Result<Map, QueryError> {
        crate::depth::check_json(json, "$map")?;
        Map::parse_at(json, "$map")
    }

    pub(crate) fn parse_at(json: &Value, at: &str) -> Result<Map, QueryError> {
        match json {
            Value::Bool(true) => Ok(Map::Whole),
            Value::String(_) | Value::Number(_) => Ok(Map::Path(vec![parse_step(json, at)?])),
            Value::Array(items) => {
                let mut path = Vec::new();
                let mut map: Option<Map> = None;
                for (i, item) in items.iter().enumerate() {
                    let item_at = format!("{at}[{i}]");
                    if let Value::Object(_) = item {
                        let base = map.take().unwrap_or(Map::Path(std::mem::take(&mut path)));
                        map = Some(parse_op(item, base, &item_at)?);
                    } else if map.is_some() {
                        return Err(QueryError::malformed(
                            &item_at,
                            "a path step after an operator",
                        ));
                    } else {
                        path.push(parse_step(item, &item_at)?);
                    }
                }
                Ok(map.unwrap_or(Map::Path(path)))
            }
            Value::Object(obj) => {
                if obj.keys().any(|k| k.starts_with('$')) {
                    return parse_op(json, Map::Whole, at);
                }
                obj.iter()
                    .map(|(name, m)| {
                        let map = if m == &Value::Bool(true) {
                            Map::Path(vec![Step::Field(name.clone())])
                        } else {
                            Map::parse_at(m, &child_at(at, name))?
                        };
                        Ok((name.clone(), map))
                    })
                    .collect::<Result<_, QueryError>>()
                    .map(Map::Object)
            }
            other => Err(QueryError::malformed(
                at,
                format!("expected true, a path or an object, not {other}"),
            )),
        }
    }
}

/// A dotted path's steps: segments of digits (with an optional leading `-`) are array
/// positions.
pub(crate) fn parse_dotted(path: &str) -> Vec<Step> {
    path.split('.')
        .map(|s| {
            let digits = s.strip_prefix('-').unwrap_or(s);
            let numeric = !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit());
            match s.parse::<i64>() {
                Ok(i) if numeric => Step::Index(i),
                _ => Step::Field(s.to_string()),
            }
        })
        .collect()
}

/// One step of a path in the JS syntax: a field name or an array position.
fn parse_step(json: &Value, at: &str) -> Result<Step, QueryError> {
    match json {
        Value::String(s) => Ok(Step::Field(s.clone())),
        Value::Number(n) => n
            .as_i64()
            .map(Step::Index)
            .ok_or_else(|| QueryError::malformed(at, format!("{n} is not an array position"))),
        other => Err(QueryError::malformed(
            at,
            format!("a path step is a field name or an array position, not {other}"),
        )),
    }
}

/// `{$get}`, `{$type}` or `{$mod}` applied to `base`.
fn parse_op(json: &Value, base: Map, at: &str) -> Result<Map, QueryError> {
    let Value::Object(obj) = json else {
        return Err(QueryError::malformed(at, "expected an operator object"));
    };
    if obj.len() != 1 {
        return Err(QueryError::malformed(at, "one operator per object"));
    }
    let Some((name, arg)) = obj.iter().next() else {
        return Err(QueryError::malformed(at, "one operator per object"));
    };
    let at = child_at(at, name);
    match name.as_str() {
        "$get" => match (base, Map::parse_at(arg, &at)?) {
            (Map::Whole, inner) => Ok(inner),
            (Map::Path(mut path), Map::Path(more)) => {
                path.extend(more);
                Ok(Map::Path(path))
            }
            _ => Err(QueryError::malformed(&at, "$get takes a path")),
        },
        "$type" => {
            if arg != &Value::Bool(true) {
                return Err(QueryError::malformed(&at, format!("takes true, not {arg}")));
            }
            Ok(Map::Type(Box::new(base)))
        }
        "$mod" => match arg.as_f64() {
            Some(n) if n != 0.0 => Ok(Map::Mod(Box::new(base), n)),
            _ => Err(QueryError::malformed(
                &at,
                format!("takes a non-zero number, not {arg}"),
            )),
        },
        other => Err(QueryError::malformed(
            &at,
            format!("unknown map operator {other}"),
        )),
    }
}
