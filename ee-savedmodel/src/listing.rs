//! `prepare --list`: what a SavedModel's signatures take and give, by the names prepare
//! accepts, so nobody has to dig for `serving_default_x:0`.

use std::fmt;
use std::path::Path;

use crate::dtype;
use crate::error::Result;
use crate::graph::{attr_shape, placeholder_dtype};
use crate::model::{read_saved_model_pb, SavedModel, INIT_OP_SIGNATURE_KEY};
use crate::proto::tf;

/// A tensor as a signature or the graph names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TensorEntry {
    /// The signature key (for placeholders: the node name).
    pub key: String,
    /// The graph tensor, `node:k` (sparse and composite tensors: a description).
    pub tensor: String,
    /// Its dtype, by name (`float32`, `resource`...).
    pub dtype: String,
    /// Its shape (`-1` unknown); `None` for unknown rank.
    pub shape: Option<Vec<i64>>,
}

/// One signature of a meta graph.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignatureListing {
    /// Its key (`serving_default`...).
    pub key: String,
    /// Its method (`tensorflow/serving/predict`...).
    pub method: String,
    /// Its inputs, by key.
    pub inputs: Vec<TensorEntry>,
    /// Its outputs, by key.
    pub outputs: Vec<TensorEntry>,
}

/// One meta graph of a SavedModel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MetaGraphListing {
    /// Its tags.
    pub tags: Vec<String>,
    /// Its signatures, in file order (the init-op pseudo signature left out).
    pub signatures: Vec<SignatureListing>,
    /// The graph's placeholders (its possible inputs), the saver's filename input left out.
    pub placeholders: Vec<TensorEntry>,
}

/// Everything `prepare --list` prints about a SavedModel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listing {
    /// The `saved_model.pb` read.
    pub path: std::path::PathBuf,
    /// Its meta graphs, in file order.
    pub meta_graphs: Vec<MetaGraphListing>,
}

fn shape_dims(shape: Option<&tf::TensorShapeProto>) -> Option<Vec<i64>> {
    match shape {
        Some(s) if !s.unknown_rank => Some(s.dim.iter().map(|d| d.size).collect()),
        _ => None,
    }
}

fn entry(key: &str, info: &tf::TensorInfo) -> TensorEntry {
    let tensor = match &info.encoding {
        Some(tf::tensor_info::Encoding::Name(n)) => n.clone(),
        Some(tf::tensor_info::Encoding::CooSparse(_)) => "(sparse tensor)".to_string(),
        Some(tf::tensor_info::Encoding::CompositeTensor(_)) => "(composite tensor)".to_string(),
        None => "(no tensor)".to_string(),
    };
    TensorEntry {
        key: key.to_string(),
        tensor,
        dtype: dtype::name(info.dtype),
        shape: shape_dims(info.tensor_shape.as_ref()),
    }
}

/// Lists the signatures and placeholders of every meta graph of the SavedModel in `dir`.
pub fn list(dir: &Path) -> Result<Listing> {
    let (path, bytes) = read_saved_model_pb(dir)?;
    list_bytes(&path, &bytes)
}

/// [`list`] on the bytes of a `saved_model.pb` (`path` names it in errors).
pub fn list_bytes(path: &Path, bytes: &[u8]) -> Result<Listing> {
    let model = SavedModel::decode(path, bytes)?;
    let mut meta_graphs = Vec::new();
    for index in 0..model.frame.meta_graphs.len() {
        let mg = model.meta_graph_at(index)?;
        let signatures = mg
            .signatures
            .iter()
            .filter(|(k, _)| k != INIT_OP_SIGNATURE_KEY)
            .map(|(key, sig)| SignatureListing {
                key: key.clone(),
                method: sig.method_name.clone(),
                inputs: sig.inputs.iter().map(|(k, v)| entry(k, v)).collect(),
                outputs: sig.outputs.iter().map(|(k, v)| entry(k, v)).collect(),
            })
            .collect();
        let saver_input = mg
            .saver
            .as_ref()
            .map(|s| s.filename_tensor_name.clone())
            .unwrap_or_default();
        let placeholders = mg
            .graph
            .placeholders()
            .filter(|n| format!("{}:0", n.name) != saver_input)
            .map(|n| TensorEntry {
                key: n.name.clone(),
                tensor: format!("{}:0", n.name),
                dtype: placeholder_dtype(n).map_or_else(|| "?".to_string(), dtype::name),
                shape: attr_shape(n, "shape"),
            })
            .collect();
        meta_graphs.push(MetaGraphListing {
            tags: mg.info.tags.clone(),
            signatures,
            placeholders,
        });
    }
    Ok(Listing {
        path: path.to_path_buf(),
        meta_graphs,
    })
}

/// `[-1, 256, 256, 3]`, or `<unknown rank>`.
pub(crate) fn shape_text(shape: &Option<Vec<i64>>) -> String {
    match shape {
        None => "<unknown rank>".to_string(),
        Some(dims) => format!(
            "[{}]",
            dims.iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

impl fmt::Display for Listing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}", self.path.display())?;
        for mg in &self.meta_graphs {
            writeln!(f, "meta graph, tags {:?}", mg.tags)?;
            if mg.signatures.is_empty() {
                writeln!(f, "  no signatures")?;
            }
            for sig in &mg.signatures {
                writeln!(f, "  signature {:?} ({})", sig.key, sig.method)?;
                for (role, entries) in [("input ", &sig.inputs), ("output", &sig.outputs)] {
                    for e in entries {
                        writeln!(
                            f,
                            "    {role} {:<16} {:<32} {:<8} {}",
                            e.key,
                            e.tensor,
                            e.dtype,
                            shape_text(&e.shape)
                        )?;
                    }
                }
            }
            if !mg.placeholders.is_empty() {
                writeln!(f, "  placeholders")?;
                for e in &mg.placeholders {
                    writeln!(
                        f,
                        "    {:<32} {:<8} {}",
                        e.tensor,
                        e.dtype,
                        shape_text(&e.shape)
                    )?;
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tf1_listing_names_signature_tensors_and_placeholders() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tf1");
        let listing = list(&dir).unwrap();
        assert_eq!(listing.meta_graphs.len(), 1);
        let mg = &listing.meta_graphs[0];
        assert_eq!(mg.tags, ["serve"]);
        let sig = &mg.signatures[0];
        assert_eq!(sig.key, "serving_default");
        let label = sig.outputs.iter().find(|e| e.key == "label").unwrap();
        assert_eq!(
            label,
            &TensorEntry {
                key: "label".into(),
                tensor: "label:0".into(),
                dtype: "int64".into(),
                shape: Some(vec![-1, -1, -1]),
            }
        );
        let placeholders: Vec<&str> = mg.placeholders.iter().map(|e| e.tensor.as_str()).collect();
        assert!(placeholders.contains(&"x:0") && placeholders.contains(&"w:0"));
        let text = listing.to_string();
        assert!(
            text.contains("signature \"serving_default\" (tensorflow/serving/predict)"),
            "{text}"
        );
        assert!(text.contains("label:0"), "{text}");
        assert!(text.contains("[-1, -1, -1, 3]"), "{text}");
    }

    #[test]
    fn the_keras_init_op_is_not_listed_and_the_saver_input_is_left_out() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/keras");
        let listing = list(&dir).unwrap();
        let mg = &listing.meta_graphs[0];
        let keys: Vec<&str> = mg.signatures.iter().map(|s| s.key.as_str()).collect();
        assert_eq!(keys, ["serve", "serving_default"]);
        let placeholders: Vec<&str> = mg.placeholders.iter().map(|e| e.tensor.as_str()).collect();
        assert_eq!(placeholders, ["serve_x:0", "serving_default_x:0"]);
        assert_eq!(shape_text(&None), "<unknown rank>");
    }
}
