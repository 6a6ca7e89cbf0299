//! The in-memory rewrite of `saved_model.pb`: resolve the specifications against the graph,
//! splice the glue in, replace the signatures, and re-encode, keeping every byte of what it
//! does not change.

use std::collections::HashSet;
use std::path::Path;

use prost::Message;

use crate::dtype;
use crate::error::{Error, Result};
use crate::glue;
use crate::graph::{
    attr_shape, canonical_tensor_name, is_placeholder, output_dtype, placeholder_dtype,
    split_tensor_name,
};
use crate::model::{decode, MetaGraph, SavedModel, INIT_OP_SIGNATURE_KEY};
use crate::proto::{frame, tf};
use crate::spec::TensorMap;
use ee_tensor_proto::DataType;

/// One input of a prepared model.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PreparedInput {
    /// The signature key (band name).
    pub name: String,
    /// The new string placeholder, `earthengine_in_i:0`.
    pub placeholder: String,
    /// The original graph input it feeds, `node:0`.
    pub feeds: String,
    /// The element type each instance's TensorProto must carry.
    pub dtype: DataType,
    /// The original placeholder's shape (`-1` unknown), `None` for unknown rank.
    pub shape: Option<Vec<i64>>,
}

/// One output of a prepared model.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PreparedOutput {
    /// The signature key (band name).
    pub name: String,
    /// The new string tensor, `earthengine_out_j:0`.
    pub tensor: String,
    /// The original graph tensor it encodes, `node:k`.
    pub source: String,
    /// The element type of each instance's TensorProto.
    pub dtype: DataType,
}

/// What [`prepare`](crate::prepare) made: the new `serving_default` signature.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Prepared {
    /// The inputs, in the order given.
    pub inputs: Vec<PreparedInput>,
    /// The outputs, in the order given.
    pub outputs: Vec<PreparedOutput>,
    /// Whether the meta graph has a saver (so a variables checkpoint belongs with it).
    pub has_saver: bool,
}

/// Where a specification entry points once resolved.
struct Resolved {
    /// `node:k`.
    tensor: String,
    /// The dtype a signature declares for it, if any does.
    signature_dtype: Option<i32>,
}

fn signature_hint(mg: &MetaGraph, inputs: bool) -> String {
    let mut parts = Vec::new();
    for (key, sig) in mg.signatures_default_first() {
        let map = if inputs { &sig.inputs } else { &sig.outputs };
        for (k, info) in map {
            if let Some(tf::tensor_info::Encoding::Name(n)) = &info.encoding {
                parts.push(format!("{k} ({n}, signature {key})"));
            }
        }
    }
    if inputs {
        for p in mg.graph.placeholders() {
            let name = format!("{}:0", p.name);
            if !parts.iter().any(|s| s.contains(&format!("({name},"))) {
                parts.push(name);
            }
        }
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!("; try one of: {}", parts.join(", "))
    }
}

/// Resolves a name: a tensor `node:k` of the graph, else a signature key (`serving_default`
/// first), else a node name (its output 0).
fn resolve(mg: &MetaGraph, name: &str, inputs: bool) -> Option<Resolved> {
    let (node, _) = split_tensor_name(name);
    let signature_dtype = |tensor: &str| {
        mg.signatures.iter().find_map(|(_, sig)| {
            let map = if inputs { &sig.inputs } else { &sig.outputs };
            map.values().find_map(|info| match &info.encoding {
                Some(tf::tensor_info::Encoding::Name(n)) if canonical_tensor_name(n) == tensor => {
                    Some(info.dtype)
                }
                _ => None,
            })
        })
    };
    if name.contains(':') && mg.graph.node(node).is_some() {
        let tensor = canonical_tensor_name(name);
        let dt = signature_dtype(&tensor);
        return Some(Resolved {
            tensor,
            signature_dtype: dt,
        });
    }
    for (_, sig) in mg.signatures_default_first() {
        let map = if inputs { &sig.inputs } else { &sig.outputs };
        if let Some(info) = map.get(name) {
            if let Some(tf::tensor_info::Encoding::Name(n)) = &info.encoding {
                return Some(Resolved {
                    tensor: canonical_tensor_name(n),
                    signature_dtype: Some(info.dtype),
                });
            }
        }
    }
    if mg.graph.node(name).is_some() {
        let tensor = format!("{name}:0");
        let dt = signature_dtype(&tensor);
        return Some(Resolved {
            tensor,
            signature_dtype: dt,
        });
    }
    None
}

/// The collection TensorFlow's loaders read the main (init) op from.
const MAIN_OP_COLLECTION_KEY: &str = "saved_model_main_op";

fn unsupported(role: &'static str, tensor: &str, code: i32) -> Error {
    Error::UnsupportedDtype {
        role,
        tensor: tensor.to_string(),
        dtype: dtype::name(code),
        supported: dtype::supported_names(),
    }
}

/// The names of everything prepare adds, checked against the graph and its library.
fn check_free(
    mg: &MetaGraph,
    path: &Path,
    nodes: &[tf::NodeDef],
    functions: &[tf::FunctionDef],
) -> Result<()> {
    let mut seen = HashSet::new();
    for n in nodes {
        if mg.graph.node(&n.name).is_some() || !seen.insert(n.name.as_str()) {
            return Err(Error::NameTaken {
                kind: "node",
                name: n.name.clone(),
            });
        }
    }
    let existing = mg.graph.function_names(path)?;
    for f in functions {
        let name = f.signature.as_ref().map(|s| s.name.as_str()).unwrap_or("");
        if existing.contains(name) {
            return Err(Error::NameTaken {
                kind: "function",
                name: name.to_string(),
            });
        }
    }
    Ok(())
}

fn tensor_info(name: &str) -> tf::TensorInfo {
    tf::TensorInfo {
        encoding: Some(tf::tensor_info::Encoding::Name(name.to_string())),
        dtype: dtype::DT_STRING,
        tensor_shape: Some(tf::TensorShapeProto {
            dim: vec![tf::tensor_shape_proto::Dim {
                size: -1,
                name: String::new(),
            }],
            unknown_rank: false,
        }),
    }
}

/// Rewrites the bytes of a `saved_model.pb` (read from `path`, named in errors) so the meta
/// graph tagged `tag` takes and gives base64 TensorProtos, returning the new bytes and what was
/// made. The result holds that one meta graph, tagged `serve`, without its TF2 object graph
/// (TensorFlow then loads it as a TF1 SavedModel, through its signature and saver).
pub fn rewrite(
    path: &Path,
    bytes: &[u8],
    inputs: &TensorMap,
    outputs: &TensorMap,
    tag: &str,
) -> Result<(Vec<u8>, Prepared)> {
    let model = SavedModel::decode(path, bytes)?;
    let mg = model.meta_graph(tag)?;

    // Resolve and check the inputs.
    let mut prepared_inputs = Vec::new();
    for (i, entry) in inputs.entries().iter().enumerate() {
        let resolved = resolve(&mg, &entry.tensor, true).ok_or_else(|| Error::MissingInput {
            name: entry.tensor.clone(),
            hint: signature_hint(&mg, true),
        })?;
        let (node_name, index) = split_tensor_name(&resolved.tensor);
        let (_, node) = mg
            .graph
            .node(node_name)
            .ok_or_else(|| Error::MissingInput {
                name: entry.tensor.clone(),
                hint: signature_hint(&mg, true),
            })?;
        if !is_placeholder(&node.op) || index != 0 {
            return Err(Error::NotAPlaceholder {
                tensor: resolved.tensor.clone(),
                node: node.name.clone(),
                op: if index != 0 {
                    format!("{} (output {index})", node.op)
                } else {
                    node.op.clone()
                },
            });
        }
        let code = placeholder_dtype(node).ok_or_else(|| Error::NotAPlaceholder {
            tensor: resolved.tensor.clone(),
            node: node.name.clone(),
            op: format!("{} without a dtype", node.op),
        })?;
        let dt =
            dtype::supported(code).ok_or_else(|| unsupported("input", &resolved.tensor, code))?;
        if prepared_inputs
            .iter()
            .any(|p: &PreparedInput| p.feeds == resolved.tensor)
        {
            return Err(Error::Spec {
                flag: "--input",
                spec: entry.tensor.clone(),
                message: format!("names {} a second time", resolved.tensor),
            });
        }
        prepared_inputs.push(PreparedInput {
            name: entry.name.clone(),
            placeholder: format!("earthengine_in_{i}:0"),
            feeds: resolved.tensor,
            dtype: dt,
            shape: attr_shape(node, "shape"),
        });
    }

    // Resolve and check the outputs.
    let mut prepared_outputs = Vec::new();
    for (j, entry) in outputs.entries().iter().enumerate() {
        let resolved = resolve(&mg, &entry.tensor, false).ok_or_else(|| Error::UnknownOutput {
            name: entry.tensor.clone(),
            hint: signature_hint(&mg, false),
        })?;
        let (node_name, index) = split_tensor_name(&resolved.tensor);
        let (_, node) = mg
            .graph
            .node(node_name)
            .ok_or_else(|| Error::UnknownOutput {
                name: entry.tensor.clone(),
                hint: signature_hint(&mg, false),
            })?;
        let code = match resolved.signature_dtype {
            Some(c) => c,
            None => output_dtype(node, index).ok_or_else(|| Error::OutputDtypeUnknown {
                tensor: resolved.tensor.clone(),
                op: node.op.clone(),
            })?,
        };
        let dt =
            dtype::supported(code).ok_or_else(|| unsupported("output", &resolved.tensor, code))?;
        prepared_outputs.push(PreparedOutput {
            name: entry.name.clone(),
            tensor: format!("earthengine_out_{j}:0"),
            source: resolved.tensor,
            dtype: dt,
        });
    }

    // Build the glue.
    let mut new_nodes = Vec::new();
    let mut functions = Vec::new();
    let mut replaced = Vec::new();
    for (i, input) in prepared_inputs.iter().enumerate() {
        let placeholder = format!("earthengine_in_{i}");
        new_nodes.push(glue::string_batch_placeholder(&placeholder));
        let instance_shape = input
            .shape
            .as_ref()
            .filter(|s| !s.is_empty())
            .map(|s| s[1..].to_vec());
        let lp = glue::decode_loop(
            &format!("{placeholder}/decode"),
            &format!("earthengine_decode_{i}"),
            &placeholder,
            input.dtype.tf_code(),
            instance_shape.as_deref(),
        );
        new_nodes.extend(lp.nodes);
        functions.extend(lp.functions);
        // The original placeholder becomes an Identity of the decoded batch: every node that
        // read it now reads the decoded instances, and no other node changes.
        let (node_name, _) = split_tensor_name(&input.feeds);
        let (position, node) = mg
            .graph
            .node(node_name)
            .expect("resolved inputs are graph nodes");
        replaced.push((
            position,
            glue::identity(node_name, &lp.result, input.dtype.tf_code(), &node.device),
        ));
    }
    for (j, output) in prepared_outputs.iter().enumerate() {
        let name = format!("earthengine_out_{j}");
        let lp = glue::encode_loop(
            &format!("{name}/encode"),
            &format!("earthengine_encode_{j}"),
            &output.source,
            output.dtype.tf_code(),
        );
        new_nodes.extend(lp.nodes);
        functions.extend(lp.functions);
        new_nodes.push(glue::identity(&name, &lp.result, dtype::DT_STRING, ""));
    }
    check_free(&mg, path, &new_nodes, &functions)?;

    // Splice: replaced placeholders in place, new nodes appended, new functions appended to
    // the library (repeated fields concatenate on the wire, so the old bytes stay as they are).
    let mut graph = mg.graph.frame.clone();
    for (position, node) in replaced {
        graph.node[position] = node.encode_to_vec();
    }
    graph
        .node
        .extend(new_nodes.iter().map(|n| n.encode_to_vec()));
    let mut library = graph.library.take().unwrap_or_default();
    tf::FunctionDefLibrary {
        function: functions,
    }
    .encode(&mut library)
    .expect("a Vec grows as needed");
    graph.library = Some(library);

    // The one signature, keyed by band names; the init-op entry kept.
    let signature = tf::SignatureDefEntry {
        key: "serving_default".to_string(),
        value: Some(tf::SignatureDef {
            inputs: prepared_inputs
                .iter()
                .map(|p| (p.name.clone(), tensor_info(&p.placeholder)))
                .collect(),
            outputs: prepared_outputs
                .iter()
                .map(|p| (p.name.clone(), tensor_info(&p.tensor)))
                .collect(),
            method_name: "tensorflow/serving/predict".to_string(),
        }),
    };
    let mut meta = mg.frame.clone();
    meta.graph_def = Some(graph.encode_to_vec());
    meta.signature_def = vec![signature.encode_to_vec()];
    // TF2 SavedModels name their init op in a pseudo signature; TensorFlow's loaders (TF
    // Serving's included) also take it from the `saved_model_main_op` collection, where Earth
    // Engine's prepared models have it, so it moves there and `serving_default` stays the one
    // signature.
    let init_op = mg
        .signatures
        .iter()
        .find(|(k, _)| k == INIT_OP_SIGNATURE_KEY)
        .and_then(|(_, sig)| sig.outputs.get(INIT_OP_SIGNATURE_KEY))
        .and_then(|info| match &info.encoding {
            Some(tf::tensor_info::Encoding::Name(n)) => Some(n.clone()),
            _ => None,
        });
    if let Some(init_op) = init_op {
        let mut has_main_op = false;
        for raw in &mg.frame.collection_def {
            let entry: frame::RawMapEntry = decode(path, "collection_def entry", raw)?;
            has_main_op |= entry.key == MAIN_OP_COLLECTION_KEY;
        }
        if !has_main_op {
            meta.collection_def.push(
                frame::NodeListCollectionEntry {
                    key: MAIN_OP_COLLECTION_KEY.to_string(),
                    value: Some(frame::NodeListCollection {
                        node_list: Some(frame::node_list_collection::NodeList {
                            value: vec![init_op],
                        }),
                    }),
                }
                .encode_to_vec(),
            );
        }
    }
    meta.object_graph_def = None;
    if mg.info.tags != ["serve"] {
        let mut info = mg.info.clone();
        info.tags = vec!["serve".to_string()];
        meta.meta_info_def = Some(info.encode_to_vec());
    }
    let out = frame::SavedModel {
        saved_model_schema_version: model.frame.saved_model_schema_version,
        meta_graphs: vec![meta.encode_to_vec()],
    };
    Ok((
        out.encode_to_vec(),
        Prepared {
            inputs: prepared_inputs,
            outputs: prepared_outputs,
            has_saver: mg.saver.is_some(),
        },
    ))
}
