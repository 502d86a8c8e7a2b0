//! `$filter`: which values a query keeps.

use serde_json::Value;

use crate::error::{QueryError, child_at};
use crate::value::{compare, equal, to_f64, truthy};
use flumedb_core::{CodecError, Field, JsonType};

/// A filter on a value (JS map-filter-reduce's `$filter` argument).
///
/// Build it from JSON with [`Filter::parse`], or in Rust:
///
/// ```
/// use flumeview_query::Filter;
/// use serde_json::json;
///
/// let adults_in_nz = Filter::new()
///     .field("age", Filter::gte(18))
///     .field("address.country", "nz");
/// assert!(adults_in_nz.matches(&json!({"age": 30, "address": {"country": "nz"}})));
/// assert!(!adults_in_nz.matches(&json!({"age": 30})));
/// ```
#[derive(Clone, PartialEq, Debug)]
pub enum Filter {
    /// A literal leaf (`null`, a boolean, number or string): the value must equal it.
    Literal(Value),
    /// An object: each named field must match (other fields may exist). A missing field
    /// fails literals, objects and arrays; operators see it as missing (`$ne`, `$not` and
    /// `$is: "undefined"` match it).
    Fields(Vec<(String, Filter)>),
    /// An array: the value must be an array of the same length, matching item by item.
    Items(Vec<Filter>),
    /// Operators, all of which must hold.
    Ops(Vec<Op>),
    /// Filters that must all hold (the builder makes these when a value has both its own
    /// conditions and conditions on its fields; the JSON syntax has no such form).
    All(Vec<Filter>),
}

/// A filter operator. Comparisons use the index order (the crate docs' "Order"; the order of
/// [`Key`](crate::Key)s).
#[derive(Clone, PartialEq, Debug)]
pub enum Op {
    /// Equal (deeply; numbers by value).
    Eq(Value),
    /// Not equal (a missing value is not equal).
    Ne(Value),
    /// Greater than.
    Gt(Value),
    /// Greater than or equal.
    Gte(Value),
    /// Less than.
    Lt(Value),
    /// Less than or equal.
    Lte(Value),
    /// A string starting with the string, or an array starting with the array's items (an
    /// equal array included).
    Prefix(Value),
    /// Equal to one of these.
    In(Vec<Value>),
    /// Of this type.
    Is(JsonType),
    /// Falsy: missing, `null`, `false`, `0` or `""`.
    Not,
    /// Truthy: not falsy.
    Truthy,
    /// An integer number.
    Int,
}

impl Default for Filter {
    fn default() -> Self {
        Filter::new()
    }
}

impl Filter {
    /// Matches every object (add fields with [`field`](Filter::field)).
    pub fn new() -> Filter {
        Filter::Fields(Vec::new())
    }

    /// Adds a condition on the field at a dotted `path` (`"value.content.type"`). Conditions
    /// on the same path are all kept.
    #[must_use]
    pub fn field(self, path: &str, filter: impl Into<Filter>) -> Filter {
        let names: Vec<&str> = path.split('.').collect();
        self.field_path(&names, filter.into())
    }

    /// Adds a condition on the field at `path`, given as field names.
    #[must_use]
    pub fn field_path(self, path: &[&str], filter: Filter) -> Filter {
        let mut fields = match self {
            Filter::Fields(fields) => fields,
            Filter::All(mut parts) => {
                let last_fields = parts
                    .iter_mut()
                    .rev()
                    .find(|p| matches!(p, Filter::Fields(_)));
                match last_fields {
                    Some(part) => {
                        let taken = std::mem::take(part);
                        *part = taken.field_path(path, filter);
                    }
                    None => parts.push(Filter::new().field_path(path, filter)),
                }
                return Filter::All(parts);
            }
            other => return Filter::All(vec![other, Filter::new().field_path(path, filter)]),
        };
        match path {
            [] => return Filter::Fields(fields),
            [name] => fields.push(((*name).to_string(), filter)),
            [name, rest @ ..] => {
                match fields
                    .iter_mut()
                    .find(|(n, f)| n == name && matches!(f, Filter::Fields(_)))
                {
                    Some((_, inner)) => {
                        let taken = std::mem::take(inner);
                        *inner = taken.field_path(rest, filter);
                    }
                    None => {
                        fields.push(((*name).to_string(), Filter::new().field_path(rest, filter)))
                    }
                }
            }
        }
        Filter::Fields(fields)
    }

    /// This filter and `op` on the same value.
    fn and_op(self, op: Op) -> Filter {
        match self {
            Filter::Ops(mut ops) => {
                ops.push(op);
                Filter::Ops(ops)
            }
            other => Filter::All(vec![other, Filter::Ops(vec![op])]),
        }
    }

    /// `$eq`.
    pub fn eq(value: impl Into<Value>) -> Filter {
        Filter::Ops(vec![Op::Eq(value.into())])
    }
    /// `$ne`.
    pub fn ne(value: impl Into<Value>) -> Filter {
        Filter::Ops(vec![Op::Ne(value.into())])
    }
    /// `$gt`.
    pub fn gt(value: impl Into<Value>) -> Filter {
        Filter::Ops(vec![Op::Gt(value.into())])
    }
    /// `$gte`.
    pub fn gte(value: impl Into<Value>) -> Filter {
        Filter::Ops(vec![Op::Gte(value.into())])
    }
    /// `$lt`.
    pub fn lt(value: impl Into<Value>) -> Filter {
        Filter::Ops(vec![Op::Lt(value.into())])
    }
    /// `$lte`.
    pub fn lte(value: impl Into<Value>) -> Filter {
        Filter::Ops(vec![Op::Lte(value.into())])
    }
    /// `$prefix` (a string or an array).
    pub fn prefix(value: impl Into<Value>) -> Filter {
        Filter::Ops(vec![Op::Prefix(value.into())])
    }
    /// `$in`.
    pub fn one_of(values: impl IntoIterator<Item = impl Into<Value>>) -> Filter {
        Filter::Ops(vec![Op::In(values.into_iter().map(Into::into).collect())])
    }
    /// `$is`.
    pub fn is(ty: JsonType) -> Filter {
        Filter::Ops(vec![Op::Is(ty)])
    }
    /// `$not`.
    pub fn falsy() -> Filter {
        Filter::Ops(vec![Op::Not])
    }
    /// `$truthy`.
    pub fn truthy() -> Filter {
        Filter::Ops(vec![Op::Truthy])
    }
    /// `$int`.
    pub fn int() -> Filter {
        Filter::Ops(vec![Op::Int])
    }
    /// And `$gt` (for ranges: `Filter::gte(20).and_lt(30)`).
    #[must_use]
    pub fn and_gt(self, value: impl Into<Value>) -> Filter {
        self.and_op(Op::Gt(value.into()))
    }
    /// And `$gte`.
    #[must_use]
    pub fn and_gte(self, value: impl Into<Value>) -> Filter {
        self.and_op(Op::Gte(value.into()))
    }
    /// And `$lt`.
    #[must_use]
    pub fn and_lt(self, value: impl Into<Value>) -> Filter {
        self.and_op(Op::Lt(value.into()))
    }
    /// And `$lte`.
    #[must_use]
    pub fn and_lte(self, value: impl Into<Value>) -> Filter {
        self.and_op(Op::Lte(value.into()))
    }

    /// Whether `value` passes.
    pub fn matches(&self, value: &Value) -> bool {
        self.matches_opt(Some(value))
    }

    pub(crate) fn matches_opt(&self, value: Option<&Value>) -> bool {
        match self {
            Filter::Literal(lit) => value.is_some_and(|v| equal(v, lit)),
            Filter::Fields(fields) => match value {
                Some(Value::Object(map)) => {
                    fields.iter().all(|(name, f)| f.matches_opt(map.get(name)))
                }
                _ => false,
            },
            Filter::Items(items) => match value {
                Some(Value::Array(values)) => {
                    values.len() == items.len()
                        && items
                            .iter()
                            .zip(values)
                            .all(|(f, v)| f.matches_opt(Some(v)))
                }
                _ => false,
            },
            Filter::Ops(ops) => ops.iter().all(|op| op.matches(value)),
            Filter::All(parts) => parts.iter().all(|f| f.matches_opt(value)),
        }
    }

    /// Whether a (maybe missing) field of a record read in place passes: the same answer as
    /// [`matches`](Filter::matches) on the decoded record, reading only the fields the filter
    /// names (each decoded on its own). An error when the bytes on the way are malformed.
    pub(crate) fn matches_field(&self, field: Option<Field<'_>>) -> Result<bool, CodecError> {
        Ok(match self {
            Filter::Literal(lit) => match field {
                Some(field) => equal(&field.to_value()?, lit),
                None => false,
            },
            Filter::Fields(fields) => match field {
                Some(field) if field.json_type() == JsonType::Object => {
                    for (name, f) in fields {
                        if !f.matches_field(field.member(name)?)? {
                            return Ok(false);
                        }
                    }
                    true
                }
                _ => false,
            },
            Filter::Items(items) => match field {
                Some(field) if field.json_type() == JsonType::Array => {
                    let mut values = Vec::new();
                    field.for_each_element(|v| values.push(v))?;
                    if values.len() != items.len() {
                        return Ok(false);
                    }
                    for (f, v) in items.iter().zip(values) {
                        if !f.matches_field(Some(v))? {
                            return Ok(false);
                        }
                    }
                    true
                }
                _ => false,
            },
            Filter::Ops(ops) => {
                let value = field.map(|f| f.to_value()).transpose()?;
                ops.iter().all(|op| op.matches(value.as_ref()))
            }
            Filter::All(parts) => {
                for f in parts {
                    if !f.matches_field(field)? {
                        return Ok(false);
                    }
                }
                true
            }
        })
    }

    /// Parses the JS syntax. `at` names where the filter is, for errors.
    pub(crate) fn parse_at(json: &Value, at: &str) -> Result<Filter, QueryError> {
        match json {
            Value::Null | Value::Bool(_) | Value::Number(_) | Value::String(_) => {
                Ok(Filter::Literal(json.clone()))
            }
            Value::Array(items) => Ok(Filter::Items(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, item)| Filter::parse_at(item, &format!("{at}[{i}]")))
                    .collect::<Result<_, _>>()?,
            )),
            Value::Object(map) => {
                let dollar = map.keys().filter(|k| k.starts_with('$')).count();
                if dollar == 0 {
                    return Ok(Filter::Fields(
                        map.iter()
                            .map(|(name, f)| {
                                Ok((name.clone(), Filter::parse_at(f, &child_at(at, name))?))
                            })
                            .collect::<Result<_, QueryError>>()?,
                    ));
                }
                if dollar != map.len() {
                    return Err(QueryError::malformed(
                        at,
                        "an object mixes $-operators and fields",
                    ));
                }
                map.iter()
                    .map(|(name, arg)| Op::parse(name, arg, &child_at(at, name)))
                    .collect::<Result<_, _>>()
                    .map(Filter::Ops)
            }
        }
    }

    /// Parses a filter in the JS syntax: objects match field by field, literals by equality,
    /// arrays item by item, and `$`-operators (`$eq`, `$ne`, `$gt`, `$gte`, `$lt`, `$lte`,
    /// `$prefix`, `$in`, `$is`, `$not`, `$truthy`, `$int`) test the value.
    pub fn parse(json: &Value) -> Result<Filter, QueryError> {
        crate::depth::check_json(json, "$filter")?;
        Filter::parse_at(json, "$filter")
    }
}

/// An operand that can be compared in the index order: anything but an object.
fn comparable(arg: &Value, at: &str) -> Result<Value, QueryError> {
    if crate::value::exact_key(arg).is_none() {
        return Err(QueryError::malformed(
            at,
            format!("cannot compare with {arg}: objects have no order"),
        ));
    }
    Ok(arg.clone())
}

/// Checks a flag operator's argument, which must be `true`.
fn expect_true(arg: &Value, at: &str) -> Result<(), QueryError> {
    if arg == &Value::Bool(true) {
        Ok(())
    } else {
        Err(QueryError::malformed(at, format!("takes true, not {arg}")))
    }
}

impl Op {
    fn parse(name: &str, arg: &Value, at: &str) -> Result<Op, QueryError> {
        Ok(match name {
            "$eq" => Op::Eq(arg.clone()),
            "$ne" => Op::Ne(arg.clone()),
            "$gt" => Op::Gt(comparable(arg, at)?),
            "$gte" => Op::Gte(comparable(arg, at)?),
            "$lt" => Op::Lt(comparable(arg, at)?),
            "$lte" => Op::Lte(comparable(arg, at)?),
            "$prefix" => match arg {
                Value::String(_) => Op::Prefix(arg.clone()),
                Value::Array(_) => Op::Prefix(comparable(arg, at)?),
                other => {
                    return Err(QueryError::malformed(
                        at,
                        format!("takes a string or an array, not {other}"),
                    ));
                }
            },
            "$in" => match arg {
                Value::Array(items) => Op::In(items.clone()),
                other => {
                    return Err(QueryError::malformed(
                        at,
                        format!("takes an array, not {other}"),
                    ));
                }
            },
            "$is" => match arg.as_str().and_then(JsonType::from_name) {
                Some(ty) => Op::Is(ty),
                None => {
                    return Err(QueryError::malformed(
                        at,
                        format!(
                            "takes a type name (undefined, null, boolean, number, string, \
                             array, object), not {arg}"
                        ),
                    ));
                }
            },
            "$not" => {
                expect_true(arg, at)?;
                Op::Not
            }
            "$truthy" => {
                expect_true(arg, at)?;
                Op::Truthy
            }
            "$int" => {
                expect_true(arg, at)?;
                Op::Int
            }
            other => {
                return Err(QueryError::malformed(
                    at,
                    format!("unknown filter operator {other}"),
                ));
            }
        })
    }

    /// Whether a (maybe missing) value passes.
    pub fn matches(&self, value: Option<&Value>) -> bool {
        use std::cmp::Ordering::*;
        let cmp = |arg: &Value| value.map(|v| compare(Some(v), Some(arg)));
        match self {
            Op::Eq(arg) => value.is_some_and(|v| equal(v, arg)),
            Op::Ne(arg) => !value.is_some_and(|v| equal(v, arg)),
            Op::Gt(arg) => cmp(arg) == Some(Greater),
            Op::Gte(arg) => matches!(cmp(arg), Some(Greater | Equal)),
            Op::Lt(arg) => cmp(arg) == Some(Less),
            Op::Lte(arg) => matches!(cmp(arg), Some(Less | Equal)),
            Op::Prefix(Value::String(p)) => value
                .and_then(Value::as_str)
                .is_some_and(|s| s.starts_with(p.as_str())),
            Op::Prefix(Value::Array(p)) => value.and_then(Value::as_array).is_some_and(|items| {
                items.len() >= p.len() && p.iter().zip(items).all(|(a, b)| equal(a, b))
            }),
            Op::Prefix(_) => false,
            Op::In(options) => value.is_some_and(|v| options.iter().any(|o| equal(v, o))),
            Op::Is(ty) => JsonType::of(value) == *ty,
            Op::Not => !truthy(value),
            Op::Truthy => truthy(value),
            Op::Int => matches!(value, Some(Value::Number(n)) if {
                let x = to_f64(n);
                x.is_finite() && x.fract() == 0.0
            }),
        }
    }
}

impl From<Value> for Filter {
    /// A JSON literal: scalars by equality, arrays item by item, objects field by field (no
    /// operators: use [`Filter::parse`] for JSON with operators).
    ///
    /// A value nested deeper than [`MAX_QUERY_DEPTH`](crate::MAX_QUERY_DEPTH) becomes one
    /// literal, which reads refuse as too deep (converting it would recurse as deep).
    fn from(value: Value) -> Filter {
        if crate::depth::check_json(&value, "").is_err() {
            return Filter::Literal(value);
        }
        match value {
            Value::Array(items) => Filter::Items(items.into_iter().map(Filter::from).collect()),
            Value::Object(map) => {
                Filter::Fields(map.into_iter().map(|(k, v)| (k, Filter::from(v))).collect())
            }
            scalar => Filter::Literal(scalar),
        }
    }
}

macro_rules! literal_from {
    ($($t:ty),*) => {$(
        impl From<$t> for Filter {
            /// Equal to this literal.
            fn from(value: $t) -> Filter {
                Filter::from(Value::from(value))
            }
        }
    )*};
}
literal_from!(&str, String, bool, i32, i64, u32, u64, f64);
