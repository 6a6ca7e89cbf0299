//! The graph of a meta graph: its container kept as raw bytes (so untouched nodes are written
//! back byte for byte), a read-only decoded view of each node, and the questions prepare asks
//! of it (does this node exist, what op is it, what dtype does this tensor have).

use std::collections::{HashMap, HashSet};
use std::path::Path;

use crate::error::Result;
use crate::proto::{decode, frame, tf};

/// A GraphDef, raw and viewed.
pub(crate) struct Graph {
    pub frame: frame::GraphDef,
    /// `frame.node[i]` decoded, for reading only.
    pub nodes: Vec<tf::NodeDef>,
    by_name: HashMap<String, usize>,
}

/// Splits `node:k` into the node name and output index; `node` alone is output 0. A suffix
/// that is not a number is part of the name.
pub(crate) fn split_tensor_name(name: &str) -> (&str, usize) {
    if let Some((node, index)) = name.rsplit_once(':') {
        if let Ok(i) = index.parse::<usize>() {
            return (node, i);
        }
    }
    (name, 0)
}

/// The canonical `node:k` spelling of a tensor name.
pub(crate) fn canonical_tensor_name(name: &str) -> String {
    let (node, index) = split_tensor_name(name);
    format!("{node}:{index}")
}

impl Graph {
    pub fn decode(path: &Path, bytes: &[u8]) -> Result<Self> {
        let frame: frame::GraphDef = decode(path, "GraphDef", bytes)?;
        let mut nodes = Vec::with_capacity(frame.node.len());
        let mut by_name = HashMap::with_capacity(frame.node.len());
        for (i, raw) in frame.node.iter().enumerate() {
            let node: tf::NodeDef = decode(path, &format!("NodeDef #{i}"), raw)?;
            by_name.insert(node.name.clone(), i);
            nodes.push(node);
        }
        Ok(Graph {
            frame,
            nodes,
            by_name,
        })
    }

    /// The node called `name` and its position.
    pub fn node(&self, name: &str) -> Option<(usize, &tf::NodeDef)> {
        self.by_name.get(name).map(|&i| (i, &self.nodes[i]))
    }

    /// The names of the functions in the graph's library.
    pub fn function_names(&self, path: &Path) -> Result<HashSet<String>> {
        let Some(bytes) = self.frame.library.as_deref() else {
            return Ok(HashSet::new());
        };
        let library: tf::FunctionDefLibrary = decode(path, "FunctionDefLibrary", bytes)?;
        Ok(library
            .function
            .into_iter()
            .filter_map(|f| f.signature.map(|s| s.name))
            .collect())
    }

    /// The placeholders of the graph, in graph order.
    pub fn placeholders(&self) -> impl Iterator<Item = &tf::NodeDef> {
        self.nodes.iter().filter(|n| is_placeholder(&n.op))
    }
}

/// Ops whose output 0 is a graph input.
pub(crate) fn is_placeholder(op: &str) -> bool {
    matches!(
        op,
        "Placeholder" | "PlaceholderV2" | "PlaceholderWithDefault"
    )
}

fn attr_type(node: &tf::NodeDef, key: &str) -> Option<i32> {
    match node.attr.get(key)?.value.as_ref()? {
        tf::attr_value::Value::Type(t) => Some(*t),
        _ => None,
    }
}

fn attr_type_list<'a>(node: &'a tf::NodeDef, key: &str) -> Option<&'a [i32]> {
    match node.attr.get(key)?.value.as_ref()? {
        tf::attr_value::Value::List(l) => Some(&l.r#type),
        _ => None,
    }
}

/// The dims of a node's `shape` attr: `None` for unknown rank or no attr, -1 for unknown dims.
pub(crate) fn attr_shape(node: &tf::NodeDef, key: &str) -> Option<Vec<i64>> {
    match node.attr.get(key)?.value.as_ref()? {
        tf::attr_value::Value::Shape(s) if !s.unknown_rank => {
            Some(s.dim.iter().map(|d| d.size).collect())
        }
        _ => None,
    }
}

/// The dtype of a placeholder (its `dtype` attr).
pub(crate) fn placeholder_dtype(node: &tf::NodeDef) -> Option<i32> {
    attr_type(node, "dtype")
}

/// The dtype of output `index` of `node`, read from the attrs TensorFlow's ops use to declare
/// their output types: a type list (`Tout` of function calls, `output_types`, a list-valued
/// `T`), else the single output type (`output_type`, `out_type`, `DstT`, `dtype`), else `T`
/// (elementwise and pass-through ops). `None` when none applies.
pub(crate) fn output_dtype(node: &tf::NodeDef, index: usize) -> Option<i32> {
    // Resource handles: their `dtype` attr is the value type, not the output's.
    if matches!(node.op.as_str(), "VarHandleOp" | "_VarHandlesOp") {
        return Some(crate::dtype::DT_RESOURCE);
    }
    for key in ["Tout", "output_types", "T", "Toutputs"] {
        if let Some(list) = attr_type_list(node, key) {
            return list.get(index).copied();
        }
    }
    for key in ["output_type", "out_type", "DstT", "dtype", "T"] {
        if let Some(t) = attr_type(node, key) {
            return Some(t);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn node(op: &str, attrs: &[(&str, tf::attr_value::Value)]) -> tf::NodeDef {
        tf::NodeDef {
            name: "n".into(),
            op: op.into(),
            attr: attrs
                .iter()
                .map(|(k, v)| {
                    (
                        k.to_string(),
                        tf::AttrValue {
                            value: Some(v.clone()),
                        },
                    )
                })
                .collect::<BTreeMap<_, _>>(),
            ..Default::default()
        }
    }

    fn list(types: &[i32]) -> tf::attr_value::Value {
        tf::attr_value::Value::List(tf::attr_value::ListValue {
            r#type: types.to_vec(),
            ..Default::default()
        })
    }

    #[test]
    fn tensor_names_split_into_node_and_index() {
        assert_eq!(split_tensor_name("a:1"), ("a", 1));
        assert_eq!(split_tensor_name("scope/a"), ("scope/a", 0));
        assert_eq!(split_tensor_name("a:b"), ("a:b", 0));
        assert_eq!(canonical_tensor_name("x"), "x:0");
    }

    #[test]
    fn output_dtypes_come_from_the_declaring_attrs() {
        use tf::attr_value::Value::Type;
        let call = node(
            "StatefulPartitionedCall",
            &[("Tin", list(&[1, 20])), ("Tout", list(&[1, 9]))],
        );
        assert_eq!(output_dtype(&call, 0), Some(1));
        assert_eq!(output_dtype(&call, 1), Some(9));
        assert_eq!(output_dtype(&call, 2), None);
        let argmax = node("ArgMax", &[("T", Type(1)), ("output_type", Type(9))]);
        assert_eq!(output_dtype(&argmax, 0), Some(9));
        let cast = node("Cast", &[("SrcT", Type(1)), ("DstT", Type(4))]);
        assert_eq!(output_dtype(&cast, 0), Some(4));
        let sigmoid = node("Sigmoid", &[("T", Type(2))]);
        assert_eq!(output_dtype(&sigmoid, 0), Some(2));
        let identity_n = node("IdentityN", &[("T", list(&[1, 3]))]);
        assert_eq!(output_dtype(&identity_n, 1), Some(3));
        assert_eq!(output_dtype(&node("NoOp", &[]), 0), None);
        let var = node("VarHandleOp", &[("dtype", Type(1))]);
        assert_eq!(output_dtype(&var, 0), Some(20));
    }
}
