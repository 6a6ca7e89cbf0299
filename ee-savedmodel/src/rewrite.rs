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
use crate::model::{MetaGraph, SavedModel, INIT_OP_SIGNATURE_KEY};
use crate::proto::{decode, frame, tf};
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
        let saver_input = mg.saver.as_ref().map(|s| s.filename_tensor_name.as_str());
        for p in mg.graph.placeholders() {
            let name = format!("{}:0", p.name);
            if Some(name.as_str()) != saver_input
                && !parts.iter().any(|s| s.contains(&format!("({name},")))
            {
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
        mg.signatures_default_first()
            .into_iter()
            .find_map(|(_, sig)| {
                let map = if inputs { &sig.inputs } else { &sig.outputs };
                map.values().find_map(|info| match &info.encoding {
                    Some(tf::tensor_info::Encoding::Name(n))
                        if canonical_tensor_name(n) == tensor && info.dtype != 0 =>
                    {
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
                    signature_dtype: (info.dtype != 0).then_some(info.dtype),
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
    // Each input's node position in the graph and device.
    let mut positions = Vec::new();
    for (i, entry) in inputs.entries().iter().enumerate() {
        let resolved = resolve(&mg, &entry.tensor, true).ok_or_else(|| Error::MissingInput {
            name: entry.tensor.clone(),
            hint: signature_hint(&mg, true),
        })?;
        let (node_name, index) = split_tensor_name(&resolved.tensor);
        let (position, node) = mg
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
        positions.push((position, node.device.clone()));
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
        let (position, device) = &positions[i];
        let (node_name, _) = split_tensor_name(&input.feeds);
        replaced.push((
            *position,
            glue::identity(node_name, &lp.result, input.dtype.tf_code(), device),
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn fixture(name: &str) -> (PathBuf, Vec<u8>) {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(name)
            .join("saved_model.pb");
        let bytes = std::fs::read(&path).unwrap();
        (path, bytes)
    }

    fn maps(inputs: &str, outputs: &str) -> (TensorMap, TensorMap) {
        (
            TensorMap::parse("--input", inputs).unwrap(),
            TensorMap::parse("--output", outputs).unwrap(),
        )
    }

    fn run(name: &str, inputs: &str, outputs: &str) -> Result<(Vec<u8>, Prepared)> {
        let (path, bytes) = fixture(name);
        let (i, o) = maps(inputs, outputs);
        rewrite(&path, &bytes, &i, &o, "serve")
    }

    fn err(name: &str, inputs: &str, outputs: &str) -> String {
        run(name, inputs, outputs).err().unwrap().to_string()
    }

    fn first_meta_graph(bytes: &[u8]) -> MetaGraph {
        SavedModel::decode(Path::new("out"), bytes)
            .unwrap()
            .meta_graph_at(0)
            .unwrap()
    }

    #[test]
    fn a_keras_export_gets_one_string_signature_and_keeps_every_other_byte() {
        let (path, bytes) = fixture("keras");
        let before = SavedModel::decode(&path, &bytes)
            .unwrap()
            .meta_graph("serve")
            .unwrap();
        let (out, prepared) = run(
            "keras",
            r#"{"serving_default_x:0": "B"}"#,
            r#"{"StatefulPartitionedCall_1:0": "out"}"#,
        )
        .unwrap();
        assert_eq!(
            prepared.inputs,
            [PreparedInput {
                name: "B".into(),
                placeholder: "earthengine_in_0:0".into(),
                feeds: "serving_default_x:0".into(),
                dtype: DataType::Float32,
                shape: Some(vec![-1, -1, -1, 3]),
            }]
        );
        assert_eq!(prepared.outputs[0].source, "StatefulPartitionedCall_1:0");
        assert_eq!(prepared.outputs[0].dtype, DataType::Float32);
        assert!(prepared.has_saver);

        let model = SavedModel::decode(Path::new("out"), &out).unwrap();
        assert_eq!(model.frame.meta_graphs.len(), 1);
        let after = model.meta_graph("serve").unwrap();
        assert!(
            after.frame.object_graph_def.is_none(),
            "object graph dropped"
        );
        assert_eq!(after.frame.saver_def, before.frame.saver_def);
        assert_eq!(after.frame.meta_info_def, before.frame.meta_info_def);
        assert_eq!(after.frame.asset_file_def, before.frame.asset_file_def);
        assert_eq!(after.frame.collection_def, before.frame.collection_def);

        // One signature, keyed by the band names, strings in and out.
        assert_eq!(after.signatures.len(), 1);
        let (key, sig) = &after.signatures[0];
        assert_eq!(key, "serving_default");
        assert_eq!(sig.method_name, "tensorflow/serving/predict");
        assert_eq!(sig.inputs["B"], tensor_info("earthengine_in_0:0"));
        assert_eq!(sig.outputs["out"], tensor_info("earthengine_out_0:0"));

        // Every node but the replaced placeholder is the same bytes at the same place.
        let (g0, g1) = (&before.graph.frame, &after.graph.frame);
        let (replaced, _) = before.graph.node("serving_default_x").unwrap();
        for (i, raw) in g0.node.iter().enumerate() {
            if i != replaced {
                assert_eq!(&g1.node[i], raw, "node {i}");
            }
        }
        let identity = &after.graph.nodes[replaced];
        assert_eq!(identity.op, "Identity");
        assert_eq!(identity.name, "serving_default_x");
        assert_eq!(identity.input, ["earthengine_in_0/decode/stack"]);
        assert_eq!(g1.versions, g0.versions);
        let old_library = g0.library.as_ref().unwrap();
        assert!(g1.library.as_ref().unwrap().starts_with(old_library));

        // The new nodes and functions are there and wired.
        let placeholder = after.graph.node("earthengine_in_0").unwrap().1;
        assert_eq!(placeholder.op, "Placeholder");
        let out_node = after.graph.node("earthengine_out_0").unwrap().1;
        assert_eq!(out_node.input, ["earthengine_out_0/encode/stack"]);
        let encode_while = after
            .graph
            .node("earthengine_out_0/encode/while")
            .unwrap()
            .1;
        assert_eq!(encode_while.input[2], "StatefulPartitionedCall_1:0");
        let functions = after.graph.function_names(Path::new("out")).unwrap();
        for f in [
            "earthengine_decode_0_cond",
            "earthengine_decode_0_body",
            "earthengine_encode_0_cond",
            "earthengine_encode_0_body",
        ] {
            assert!(functions.contains(f), "{f}");
        }
        assert_eq!(
            functions.len(),
            before.graph.function_names(&path).unwrap().len() + 4
        );
    }

    #[test]
    fn signature_keys_resolve_like_the_tensor_names_they_stand_for() {
        let by_tensor = run(
            "keras",
            r#"{"serving_default_x:0": "B"}"#,
            r#"{"StatefulPartitionedCall_1:0": "out"}"#,
        )
        .unwrap();
        let by_key = run("keras", r#"{"x": "B"}"#, r#"{"output_0": "out"}"#).unwrap();
        assert_eq!(by_tensor, by_key);
        // A node name stands for its output 0.
        let by_node = run(
            "keras",
            r#"{"serving_default_x": "B"}"#,
            r#"{"StatefulPartitionedCall_1": "out"}"#,
        )
        .unwrap();
        assert_eq!(by_tensor, by_node);
    }

    #[test]
    fn a_tf1_graph_with_two_inputs_and_outputs_of_several_dtypes() {
        let (out, prepared) = run("tf1", "x:0,w:0", "score:0,label:0").unwrap();
        let names: Vec<(&str, DataType)> = prepared
            .inputs
            .iter()
            .map(|p| (p.name.as_str(), p.dtype))
            .collect();
        assert_eq!(names, [("x", DataType::Float32), ("w", DataType::Int32)]);
        let names: Vec<(&str, DataType)> = prepared
            .outputs
            .iter()
            .map(|p| (p.name.as_str(), p.dtype))
            .collect();
        assert_eq!(
            names,
            [("score", DataType::Float32), ("label", DataType::Int64)]
        );
        let mg = first_meta_graph(&out);
        let sig = &mg.signatures[0].1;
        assert_eq!(sig.inputs["w"], tensor_info("earthengine_in_1:0"));
        assert_eq!(sig.outputs["label"], tensor_info("earthengine_out_1:0"));
        // No init op to move, so no collection appears.
        let (path, bytes) = fixture("tf1");
        let before = SavedModel::decode(&path, &bytes)
            .unwrap()
            .meta_graph("serve")
            .unwrap();
        assert_eq!(mg.frame.collection_def, before.frame.collection_def);
        // The raw graph dtypes serve when no signature names the tensor: `label` is read from
        // ArgMax's output_type through the Identity's T.
        let (_, node) = before.graph.node("label").unwrap();
        assert_eq!(output_dtype(node, 0), Some(9));
    }

    #[test]
    fn the_rewrite_is_deterministic() {
        let a = run("tf1", "x,w", "score,label").unwrap().0;
        let b = run("tf1", "x,w", "score,label").unwrap().0;
        assert_eq!(a, b);
    }

    #[test]
    fn the_init_op_moves_from_its_pseudo_signature_to_the_main_op_collection() {
        // The Keras fixture has both; drop the collection and the rewrite must add it back.
        let (path, bytes) = fixture("keras");
        let mut model = SavedModel::decode(&path, &bytes).unwrap();
        let mut mg: frame::MetaGraphDef = decode(&path, "mg", &model.frame.meta_graphs[0]).unwrap();
        mg.collection_def.clear();
        model.frame.meta_graphs[0] = mg.encode_to_vec();
        let (i, o) = maps("x", "output_0");
        let (out, _) = rewrite(&path, &model.frame.encode_to_vec(), &i, &o, "serve").unwrap();
        let after = first_meta_graph(&out);
        assert_eq!(after.frame.collection_def.len(), 1);
        let entry: frame::NodeListCollectionEntry =
            decode(&path, "c", &after.frame.collection_def[0]).unwrap();
        assert_eq!(entry.key, "saved_model_main_op");
        assert_eq!(entry.value.unwrap().node_list.unwrap().value, ["NoOp"]);
        assert!(after
            .signatures
            .iter()
            .all(|(k, _)| k != INIT_OP_SIGNATURE_KEY));
    }

    #[test]
    fn wrong_names_are_errors_that_say_what_exists() {
        let e = err("keras", "nope:0", "output_0");
        assert!(e.contains("input \"nope:0\" is not in the graph"), "{e}");
        assert!(
            e.contains("x (serving_default_x:0, signature serving_default)"),
            "{e}"
        );
        let e = err("keras", "x", "nope");
        assert!(e.contains("output \"nope\" is not in the graph"), "{e}");
        assert!(e.contains("output_0 (StatefulPartitionedCall_1:0"), "{e}");
    }

    #[test]
    fn inputs_must_be_placeholders() {
        let e = err("keras", "StatefulPartitionedCall_1:0", "output_0");
        assert!(
            e.contains("node \"StatefulPartitionedCall_1\" is a StatefulPartitionedCall, not a Placeholder"),
            "{e}"
        );
        let e = err("keras", "serving_default_x:1", "output_0");
        assert!(e.contains("Placeholder (output 1)"), "{e}");
    }

    #[test]
    fn outputs_of_unknown_or_unsupported_type_are_errors() {
        let e = err("keras", "x", "NoOp:0");
        assert!(
            e.contains("cannot tell the dtype of output \"NoOp:0\" (a NoOp node)"),
            "{e}"
        );
        let e = err("keras", "x", "c/kernel:0");
        assert!(
            e.contains("output \"c/kernel:0\" has dtype resource, which prepare does not support"),
            "{e}"
        );
    }

    #[test]
    fn inputs_of_unsupported_type_are_errors() {
        // A graph whose only placeholder is complex64.
        let node = tf::NodeDef {
            name: "z".into(),
            op: "Placeholder".into(),
            attr: [(
                "dtype".to_string(),
                tf::AttrValue {
                    value: Some(tf::attr_value::Value::Type(8)),
                },
            )]
            .into(),
            ..Default::default()
        };
        let graph = frame::GraphDef {
            node: vec![node.encode_to_vec()],
            ..Default::default()
        };
        let info = frame::MetaInfoDef {
            tags: vec!["serve".into()],
            ..Default::default()
        };
        let mg = frame::MetaGraphDef {
            meta_info_def: Some(info.encode_to_vec()),
            graph_def: Some(graph.encode_to_vec()),
            ..Default::default()
        };
        let sm = frame::SavedModel {
            saved_model_schema_version: 1,
            meta_graphs: vec![mg.encode_to_vec()],
        };
        let (i, o) = maps("z:0", "z:0");
        let e = rewrite(Path::new("m.pb"), &sm.encode_to_vec(), &i, &o, "serve")
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("input \"z:0\" has dtype complex64"), "{e}");
        assert!(e.contains("supported: float32, float64"), "{e}");
    }

    #[test]
    fn a_prepared_model_cannot_be_prepared_again() {
        let (out, _) = run("keras", "x", "output_0").unwrap();
        let (i, o) = maps("earthengine_in_0:0", "earthengine_out_0:0");
        let e = rewrite(Path::new("p.pb"), &out, &i, &o, "serve")
            .err()
            .unwrap()
            .to_string();
        assert!(
            e.contains("already has a node named \"earthengine_in_0\""),
            "{e}"
        );
    }

    #[test]
    fn a_missing_tag_is_an_error() {
        let (path, bytes) = fixture("tf1");
        let (i, o) = maps("x", "score");
        let e = rewrite(&path, &bytes, &i, &o, "gpu")
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("no meta graph has the tag \"gpu\""), "{e}");
    }
}
