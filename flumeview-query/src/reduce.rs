//! `$reduce`: aggregates and group-by.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use serde_json::{Map as JsonMap, Value};

use crate::error::{QueryError, child_at};
use crate::map::Map;
use crate::value::{compare, to_f64, to_json_number};

/// An aggregate over values: the argument of a `$reduce` stage (JS map-filter-reduce). Named
/// apart from `flumeview_reduce::Reduce`, the reduce view, which users import beside it.
///
/// ```
/// use flumeview_query::{Map, Aggregate, AggregateField};
/// use serde_json::json;
///
/// // Per country: how many people, and the youngest age.
/// let stats = Aggregate::Object(vec![
///     ("country".into(), AggregateField::Group(Map::path("country"))),
///     ("people".into(), AggregateField::Aggregate(Aggregate::Count)),
///     ("youngest".into(), AggregateField::Aggregate(Aggregate::Min(Map::path("age")))),
/// ]);
/// let people = [json!({"country": "us", "age": 30}), json!({"country": "nz", "age": 10})];
/// assert_eq!(
///     stats.run(people.iter()),
///     vec![
///         json!({"country": "nz", "people": 1, "youngest": 10}),
///         json!({"country": "us", "people": 1, "youngest": 30}),
///     ]
/// );
/// ```
#[derive(Clone, PartialEq, Debug)]
pub enum Aggregate {
    /// How many values (`$count`; `0` for none).
    Count,
    /// The sum of the mapped numbers (`$sum`; others are skipped).
    Sum(Map),
    /// The product of the mapped numbers (`$product`).
    Product(Map),
    /// The smallest mapped value in the index order (`$min`; `null` for none).
    Min(Map),
    /// The largest mapped value (`$max`).
    Max(Map),
    /// The mapped values, in order (`$collect`).
    Collect(Map),
    /// An object: reducers per field, and group-by fields. With group fields, the result is
    /// one object per group, in group key order; without, one object.
    Object(Vec<(String, AggregateField)>),
}

/// A field of [`Aggregate::Object`].
#[derive(Clone, PartialEq, Debug)]
pub enum AggregateField {
    /// Group by the value at this path (a string, integer or array in JSON).
    Group(Map),
    /// Aggregate the group's values.
    Aggregate(Aggregate),
}

/// A group key: values in the index order; values that order cannot tell apart (objects) by
/// their JSON text.
struct GroupKey(Vec<Option<Value>>);

impl PartialEq for GroupKey {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for GroupKey {}

impl Ord for GroupKey {
    fn cmp(&self, other: &Self) -> Ordering {
        for (a, b) in self.0.iter().zip(&other.0) {
            let order = compare(a.as_ref(), b.as_ref()).then_with(|| {
                let text = |v: &Option<Value>| v.as_ref().map(canonical);
                text(a).cmp(&text(b))
            });
            if order != Ordering::Equal {
                return order;
            }
        }
        self.0.len().cmp(&other.0.len())
    }
}

/// The index order, with values it cannot tell apart (objects, arrays holding them, `1` and
/// `1.0`) ordered by their canonical and then their exact JSON text: `$min` and `$max` must
/// not depend on the order rows are read in (an index, the log, reverse).
fn total_order(a: &Value, b: &Value) -> Ordering {
    compare(Some(a), Some(b))
        .then_with(|| canonical(a).cmp(&canonical(b)))
        .then_with(|| a.to_string().cmp(&b.to_string()))
}

/// A text form in which equal values are equal: numbers as floats, object keys sorted.
fn canonical(value: &Value) -> String {
    match value {
        Value::Number(n) => format!("{:?}", to_f64(n)),
        Value::Array(items) => {
            let items: Vec<String> = items.iter().map(canonical).collect();
            format!("[{}]", items.join(","))
        }
        Value::Object(map) => {
            let mut fields: Vec<(&String, String)> =
                map.iter().map(|(k, v)| (k, canonical(v))).collect();
            fields.sort();
            let fields: Vec<String> = fields
                .into_iter()
                .map(|(k, v)| format!("{}:{v}", Value::from(k.as_str())))
                .collect();
            format!("{{{}}}", fields.join(","))
        }
        other => other.to_string(),
    }
}

impl PartialOrd for GroupKey {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Aggregate {
    /// Parses the JS syntax: `{$count: true}`, `{$sum: path}`, `{$product: path}`,
    /// `{$min: path}`, `{$max: path}`, `{$collect: map}`, or an object whose fields are
    /// reducers (objects) or group-by paths (strings, integers, arrays).
    pub fn parse(json: &Value) -> Result<Aggregate, QueryError> {
        crate::depth::check_json(json, "$reduce")?;
        Aggregate::parse_at(json, "$reduce")
    }

    pub(crate) fn parse_at(json: &Value, at: &str) -> Result<Aggregate, QueryError> {
        let Value::Object(obj) = json else {
            return Err(QueryError::malformed(
                at,
                format!("expected a reducer object, not {json}"),
            ));
        };
        if obj.keys().any(|k| k.starts_with('$')) {
            if obj.len() != 1 {
                return Err(QueryError::malformed(at, "one reducer per object"));
            }
            let Some((name, arg)) = obj.iter().next() else {
                return Err(QueryError::malformed(at, "one reducer per object"));
            };
            let at = child_at(at, name);
            let map = || Map::parse_at(arg, &at);
            return Ok(match name.as_str() {
                "$count" => {
                    if arg != &Value::Bool(true) {
                        return Err(QueryError::malformed(&at, format!("takes true, not {arg}")));
                    }
                    Aggregate::Count
                }
                "$sum" => Aggregate::Sum(map()?),
                "$product" => Aggregate::Product(map()?),
                "$min" => Aggregate::Min(map()?),
                "$max" => Aggregate::Max(map()?),
                "$collect" => Aggregate::Collect(map()?),
                other => {
                    return Err(QueryError::malformed(
                        &at,
                        format!("unknown reducer {other}"),
                    ));
                }
            });
        }
        if obj.is_empty() {
            return Err(QueryError::malformed(at, "an empty reducer object"));
        }
        obj.iter()
            .map(|(name, field)| {
                let at = child_at(at, name);
                let field = match field {
                    Value::Object(_) => AggregateField::Aggregate(Aggregate::parse_at(field, &at)?),
                    _ => AggregateField::Group(Map::parse_at(field, &at)?),
                };
                Ok((name.clone(), field))
            })
            .collect::<Result<_, QueryError>>()
            .map(Aggregate::Object)
    }

    fn has_groups(&self) -> bool {
        matches!(self, Aggregate::Object(fields) if fields.iter().any(|(_, f)| matches!(f, AggregateField::Group(_))))
    }

    /// Reduces `values` to the stage's output: one item, or one per group.
    pub fn run<'a>(&self, values: impl Iterator<Item = &'a Value>) -> Vec<Value> {
        let values: Vec<&Value> = values.collect();
        match self.aggregate(&values) {
            Value::Array(groups) if self.has_groups() => groups,
            one => vec![one],
        }
    }

    fn aggregate(&self, values: &[&Value]) -> Value {
        fn mapped<'v>(values: &'v [&Value], map: &'v Map) -> impl Iterator<Item = Value> + 'v {
            values.iter().filter_map(move |v| map.apply(v))
        }
        let numbers = |map: &Map| {
            values
                .iter()
                .filter_map(move |v| match map.apply(v) {
                    Some(Value::Number(n)) => Some(to_f64(&n)),
                    _ => None,
                })
                .collect::<Vec<f64>>()
        };
        match self {
            Aggregate::Count => Value::from(values.len()),
            Aggregate::Sum(map) => to_json_number(numbers(map).iter().sum()),
            Aggregate::Product(map) => to_json_number(numbers(map).iter().product()),
            Aggregate::Min(map) => mapped(values, map)
                .min_by(total_order)
                .unwrap_or(Value::Null),
            Aggregate::Max(map) => mapped(values, map)
                .max_by(total_order)
                .unwrap_or(Value::Null),
            Aggregate::Collect(map) => Value::Array(mapped(values, map).collect()),
            Aggregate::Object(fields) => {
                if !self.has_groups() {
                    return Value::Object(group_object(fields, values, &[]));
                }
                let groups_by: Vec<&Map> = fields
                    .iter()
                    .filter_map(|(_, f)| match f {
                        AggregateField::Group(map) => Some(map),
                        AggregateField::Aggregate(_) => None,
                    })
                    .collect();
                let mut groups: BTreeMap<GroupKey, Vec<&Value>> = BTreeMap::new();
                for value in values {
                    let key = GroupKey(groups_by.iter().map(|m| m.apply(value)).collect());
                    groups.entry(key).or_default().push(value);
                }
                Value::Array(
                    groups
                        .into_iter()
                        .map(|(key, members)| Value::Object(group_object(fields, &members, &key.0)))
                        .collect(),
                )
            }
        }
    }
}

/// A reducer object's output for one group (`key`: the group fields' values, in order).
fn group_object(
    fields: &[(String, AggregateField)],
    values: &[&Value],
    key: &[Option<Value>],
) -> JsonMap<String, Value> {
    let mut out = JsonMap::new();
    let mut key = key.iter();
    for (name, field) in fields {
        match field {
            AggregateField::Group(_) => {
                if let Some(Some(v)) = key.next() {
                    out.insert(name.clone(), v.clone());
                }
            }
            AggregateField::Aggregate(reduce) => {
                out.insert(name.clone(), reduce.aggregate(values));
            }
        }
    }
    out
}
