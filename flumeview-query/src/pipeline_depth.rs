//! The nesting check of a pipeline built in Rust (the builders do not limit it): walks the
//! built stages, as `depth` walks a query's JSON before parsing.

use serde_json::Value;

use crate::depth::{MAX_QUERY_DEPTH, too_deep};
use crate::error::QueryError;
use crate::filter::{Filter, Op};
use crate::map::Map;
use crate::pipeline::{Pipeline, Stage};
use crate::reduce::{Aggregate, AggregateField};

/// One node of a built query.
enum Node<'a> {
    Filter(&'a Filter),
    Map(&'a Map),
    Reduce(&'a Aggregate),
    Value(&'a Value),
}

/// Checks the nesting of a query built in Rust (the builders do not limit it), without
/// recursion.
pub(crate) fn check_pipeline(pipeline: &Pipeline) -> Result<(), QueryError> {
    let mut stack: Vec<(Node<'_>, usize)> = Vec::new();
    for stage in pipeline.stages() {
        match stage {
            Stage::Filter(f) => stack.push((Node::Filter(f), 1)),
            Stage::Map(m) => stack.push((Node::Map(m), 1)),
            Stage::Reduce(r) => stack.push((Node::Reduce(r), 1)),
            Stage::Sort(_) => {}
        }
    }
    while let Some((node, depth)) = stack.pop() {
        if depth > MAX_QUERY_DEPTH {
            return Err(too_deep(""));
        }
        let next = depth + 1;
        match node {
            Node::Filter(Filter::Fields(fields)) => {
                stack.extend(fields.iter().map(|(_, f)| (Node::Filter(f), next)));
            }
            Node::Filter(Filter::Items(items) | Filter::All(items)) => {
                stack.extend(items.iter().map(|f| (Node::Filter(f), next)));
            }
            Node::Filter(Filter::Literal(value)) => stack.push((Node::Value(value), next)),
            Node::Filter(Filter::Ops(ops)) => {
                for op in ops {
                    match op {
                        Op::Eq(v)
                        | Op::Ne(v)
                        | Op::Gt(v)
                        | Op::Gte(v)
                        | Op::Lt(v)
                        | Op::Lte(v)
                        | Op::Prefix(v) => stack.push((Node::Value(v), next)),
                        Op::In(values) => {
                            stack.extend(values.iter().map(|v| (Node::Value(v), next)));
                        }
                        Op::Is(_) | Op::Not | Op::Truthy | Op::Int => {}
                    }
                }
            }
            // Operands are compared and cloned recursively: they count too.
            Node::Value(Value::Array(items)) => {
                stack.extend(items.iter().map(|v| (Node::Value(v), next)));
            }
            Node::Value(Value::Object(map)) => {
                stack.extend(map.values().map(|v| (Node::Value(v), next)));
            }
            Node::Value(_) => {}
            Node::Map(Map::Object(fields)) => {
                stack.extend(fields.iter().map(|(_, m)| (Node::Map(m), next)));
            }
            Node::Map(Map::Type(m) | Map::Mod(m, _)) => stack.push((Node::Map(m), next)),
            Node::Map(Map::Whole | Map::Path(_)) => {}
            Node::Reduce(
                Aggregate::Sum(m)
                | Aggregate::Product(m)
                | Aggregate::Min(m)
                | Aggregate::Max(m)
                | Aggregate::Collect(m),
            ) => stack.push((Node::Map(m), next)),
            Node::Reduce(Aggregate::Count) => {}
            Node::Reduce(Aggregate::Object(fields)) => {
                stack.extend(fields.iter().map(|(_, field)| match field {
                    AggregateField::Group(m) => (Node::Map(m), next),
                    AggregateField::Aggregate(r) => (Node::Reduce(r), next),
                }));
            }
        }
    }
    Ok(())
}
