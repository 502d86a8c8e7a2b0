//! [`FieldSet`]: several paths read from a record in one pass over its bytes.

use crate::doc::scan::{key_is, skip_value, walk_object};
use crate::doc::{Doc, Field};
use crate::error::CodecError;

/// A fixed set of paths (object keys from the top), read from a record in one pass over its
/// bytes: what a view that needs several fields of every record uses instead of one
/// [`Doc::get`] per field (each of which reads the objects on its path whole).
///
/// Results agree with [`Doc::get`] of each path: a key that appears twice counts as its
/// last, and a path whose step is missing or not an object gives `None`.
///
/// ```
/// use flumedb_core::{Doc, FieldSet};
///
/// let set = FieldSet::new([vec!["value", "author"], vec!["value", "sequence"], vec!["timestamp"]]);
/// let doc = Doc::from_json(r#"{"value":{"author":"@a","sequence":3},"timestamp":1700}"#);
/// let [author, sequence, timestamp] = set.read(&doc)?[..] else { unreachable!() };
/// assert_eq!(author.and_then(|f| f.as_str()).as_deref(), Some("@a"));
/// assert_eq!(sequence.and_then(|f| f.as_u64()), Some(3));
/// assert_eq!(timestamp.and_then(|f| f.as_u64()), Some(1700));
/// # Ok::<(), flumedb_core::CodecError>(())
/// ```
#[derive(Clone, Debug)]
pub struct FieldSet {
    /// A trie of the paths; node 0 is the record itself.
    nodes: Vec<Node>,
    len: usize,
}

#[derive(Clone, Debug, Default)]
struct Node {
    key: String,
    children: Vec<usize>,
    /// The positions (in the order given) of the paths that end here.
    ends: Vec<usize>,
    /// Every position of a path through or ending at this node, to clear when a later
    /// duplicate key replaces it.
    below: Vec<usize>,
}

impl FieldSet {
    /// A set of these paths, each a list of object keys; results come in the same order.
    /// An empty path is the whole record.
    pub fn new<P, S>(paths: impl IntoIterator<Item = P>) -> FieldSet
    where
        P: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut nodes = vec![Node::default()];
        let mut len = 0;
        for (position, path) in paths.into_iter().enumerate() {
            len = position + 1;
            let mut at = 0;
            for key in path {
                let key = key.as_ref();
                let existing = nodes.get(at).and_then(|n| {
                    n.children
                        .iter()
                        .copied()
                        .find(|&c| nodes.get(c).is_some_and(|n| n.key == key))
                });
                at = match existing {
                    Some(child) => child,
                    None => {
                        nodes.push(Node {
                            key: key.to_string(),
                            ..Node::default()
                        });
                        let child = nodes.len() - 1;
                        if let Some(node) = nodes.get_mut(at) {
                            node.children.push(child);
                        }
                        child
                    }
                };
                if let Some(node) = nodes.get_mut(at) {
                    node.below.push(position);
                }
            }
            if let Some(node) = nodes.get_mut(at) {
                node.ends.push(position);
            }
        }
        FieldSet { nodes, len }
    }

    /// How many paths the set has.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the set has no paths.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The value at each path of the set, in the order the paths were given; an error when
    /// the bytes passed are not well-formed JSON.
    pub fn read<'d>(&self, doc: &'d Doc) -> Result<Vec<Option<Field<'d>>>, CodecError> {
        let mut out = vec![None; self.len];
        self.read_into(doc.root(), &mut out)?;
        Ok(out)
    }

    /// Like [`read`](FieldSet::read), from any value (a [`Field`]), into `out` (at least
    /// [`len`](FieldSet::len) long), without allocating.
    pub fn read_into<'d>(
        &self,
        value: Field<'d>,
        out: &mut [Option<Field<'d>>],
    ) -> Result<(), CodecError> {
        if out.len() < self.len {
            return Err(CodecError::decode(
                "json",
                format!("{} slots for {} paths", out.len(), self.len),
            ));
        }
        for slot in out.iter_mut() {
            *slot = None;
        }
        let Some(root) = self.nodes.first() else {
            return Ok(());
        };
        for &end in &root.ends {
            if let Some(slot) = out.get_mut(end) {
                *slot = Some(value);
            }
        }
        if !root.children.is_empty() && value.raw().first() == Some(&b'{') {
            self.object(value.raw(), 0, root, out)?;
        }
        Ok(())
    }

    /// Reads the object at `i` of `b` for the children of `node`; returns the index just
    /// past it.
    fn object<'d>(
        &self,
        b: &'d [u8],
        i: usize,
        node: &Node,
        out: &mut [Option<Field<'d>>],
    ) -> Result<usize, CodecError> {
        walk_object(b, i, |span, escaped, start| {
            let child = node
                .children
                .iter()
                .filter_map(|&c| self.nodes.get(c))
                .find(|child| key_is(b, span, escaped, child.key.as_bytes()));
            let Some(child) = child else {
                return skip_value(b, start);
            };
            // A later key of the same name replaces all an earlier one gave.
            for &position in &child.below {
                if let Some(slot) = out.get_mut(position) {
                    *slot = None;
                }
            }
            let end = if !child.children.is_empty() && b.get(start) == Some(&b'{') {
                self.object(b, start, child, out)?
            } else {
                skip_value(b, start)?
            };
            if let Some(raw) = b.get(start..end) {
                for &position in &child.ends {
                    if let Some(slot) = out.get_mut(position) {
                        *slot = Some(Field::new(raw));
                    }
                }
            }
            Ok(end)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_set_agrees_with_one_get_per_path() {
        let paths: Vec<Vec<&str>> = vec![
            vec!["a", "b"],
            vec!["a"],
            vec![],
            vec!["a", "c", "d"],
            vec!["x"],
            vec!["a", "b"],
            vec!["e"],
        ];
        let set = FieldSet::new(paths.clone());
        assert_eq!(set.len(), 7);
        for text in [
            r#"{"a":{"b":1,"c":{"d":[2]}},"x":"y"}"#,
            r#"{"a":{"b":1},"a":{"c":{"d":3}}}"#,
            r#"{"a":{"b":1},"a":4,"x":null}"#,
            r#"{"a":4,"a":{"b":{"z":1}}}"#,
            r#"{"\u0061":{"b":5},"e":[{"a":1}]}"#,
            r#"[1,2]"#,
            r#""s""#,
            r#"{}"#,
        ] {
            let doc = Doc::from_json(text);
            let got = set.read(&doc).unwrap();
            let want: Vec<Option<Field<'_>>> = paths.iter().map(|p| doc.get(p).unwrap()).collect();
            assert_eq!(got, want, "{text}");
        }
        let broken = Doc::from_json(r#"{"a":{"b":1,}"#);
        assert!(set.read(&broken).is_err());
        assert!(set.read_into(broken.root(), &mut [None]).is_err());
    }
}
