//! Reading `saved_model.pb`: the SavedModel container, the choice of meta graph by tag, and
//! the signatures, graph and saver of that meta graph.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::graph::Graph;
use crate::proto::{decode, frame, tf};

/// Reads `dir/saved_model.pb`; a directory with only `saved_model.pbtxt` is an error that says
/// so.
pub(crate) fn read_saved_model_pb(dir: &Path) -> Result<(PathBuf, Vec<u8>)> {
    let path = dir.join("saved_model.pb");
    match std::fs::read(&path) {
        Ok(bytes) => Ok((path, bytes)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let hint = if dir.join("saved_model.pbtxt").exists() {
                " (only the text form saved_model.pbtxt, which prepare does not read; convert \
                 it to binary first)"
                    .to_string()
            } else if !dir.exists() {
                " (the directory does not exist)".to_string()
            } else {
                String::new()
            };
            Err(Error::NotASavedModel {
                dir: dir.to_path_buf(),
                hint,
            })
        }
        Err(e) => Err(Error::io("read", path, e)),
    }
}

/// A decoded `saved_model.pb`, every byte kept.
pub(crate) struct SavedModel {
    pub path: PathBuf,
    pub frame: frame::SavedModel,
}

/// One meta graph: its container (kept whole), its info and the parts prepare reads.
pub(crate) struct MetaGraph {
    pub frame: frame::MetaGraphDef,
    pub info: frame::MetaInfoDef,
    pub graph: Graph,
    /// `signature_def` in file order: key, decoded signature.
    pub signatures: Vec<(String, tf::SignatureDef)>,
    pub saver: Option<tf::SaverDef>,
}

impl SavedModel {
    pub fn decode(path: &Path, bytes: &[u8]) -> Result<Self> {
        Ok(SavedModel {
            path: path.to_path_buf(),
            frame: decode(path, "SavedModel", bytes)?,
        })
    }

    /// The tag set of each meta graph, in file order.
    pub fn tag_sets(&self) -> Result<Vec<Vec<String>>> {
        self.frame
            .meta_graphs
            .iter()
            .enumerate()
            .map(|(i, bytes)| {
                let mg: frame::MetaGraphDef =
                    decode(&self.path, &format!("meta graph #{i}"), bytes)?;
                let info: frame::MetaInfoDef = decode(
                    &self.path,
                    &format!("meta graph #{i} MetaInfoDef"),
                    mg.meta_info_def.as_deref().unwrap_or_default(),
                )?;
                Ok(info.tags)
            })
            .collect()
    }

    /// The meta graph tagged exactly `{tag}`, else the first whose tags include `tag`.
    pub fn meta_graph(&self, tag: &str) -> Result<MetaGraph> {
        let sets = self.tag_sets()?;
        let index = sets
            .iter()
            .position(|s| s.len() == 1 && s[0] == tag)
            .or_else(|| sets.iter().position(|s| s.iter().any(|t| t == tag)))
            .ok_or_else(|| Error::NoSuchTag {
                path: self.path.clone(),
                tag: tag.to_string(),
                available: sets.clone(),
            })?;
        self.meta_graph_at(index)
    }

    /// The meta graph at `index` (in file order), decoded.
    pub fn meta_graph_at(&self, index: usize) -> Result<MetaGraph> {
        let what = |part: &str| format!("meta graph #{index} {part}");
        let frame: frame::MetaGraphDef =
            decode(&self.path, &what(""), &self.frame.meta_graphs[index])?;
        let info = decode(
            &self.path,
            &what("MetaInfoDef"),
            frame.meta_info_def.as_deref().unwrap_or_default(),
        )?;
        let graph = Graph::decode(&self.path, frame.graph_def.as_deref().unwrap_or_default())?;
        let mut signatures = Vec::with_capacity(frame.signature_def.len());
        for raw in &frame.signature_def {
            let entry: tf::SignatureDefEntry = decode(&self.path, &what("signature_def"), raw)?;
            signatures.push((entry.key, entry.value.unwrap_or_default()));
        }
        let saver = frame
            .saver_def
            .as_deref()
            .map(|b| decode::<tf::SaverDef>(&self.path, &what("SaverDef"), b))
            .transpose()?;
        Ok(MetaGraph {
            frame,
            info,
            graph,
            signatures,
            saver,
        })
    }
}

/// The signature key TensorFlow uses for the main-op pseudo signature of TF2 SavedModels;
/// it is not a signature but the init op, and prepare keeps it.
pub(crate) const INIT_OP_SIGNATURE_KEY: &str = "__saved_model_init_op";

impl MetaGraph {
    /// Real signatures, `serving_default` first, then file order; the init-op entry left out.
    pub fn signatures_default_first(&self) -> Vec<&(String, tf::SignatureDef)> {
        let mut sigs: Vec<&(String, tf::SignatureDef)> = self
            .signatures
            .iter()
            .filter(|(k, _)| k != INIT_OP_SIGNATURE_KEY)
            .collect();
        sigs.sort_by_key(|(k, _)| k != "serving_default");
        sigs
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    fn fixture(name: &str) -> (PathBuf, Vec<u8>) {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(name)
            .join("saved_model.pb");
        let bytes = std::fs::read(&path).unwrap();
        (path, bytes)
    }

    /// Every container prepare re-encodes gives back exactly the bytes TensorFlow wrote, so
    /// nothing it does not touch (unknown fields, map order, nodes, functions) changes.
    #[test]
    fn containers_re_encode_to_the_bytes_tensorflow_wrote() {
        for name in ["keras", "tf1"] {
            let (path, bytes) = fixture(name);
            let model = SavedModel::decode(&path, &bytes).unwrap();
            assert_eq!(model.frame.encode_to_vec(), bytes, "{name}: SavedModel");
            for (i, raw) in model.frame.meta_graphs.iter().enumerate() {
                let mg: frame::MetaGraphDef = decode(&path, "mg", raw).unwrap();
                assert_eq!(&mg.encode_to_vec(), raw, "{name}: meta graph {i}");
                let info = mg.meta_info_def.clone().unwrap();
                let decoded: frame::MetaInfoDef = decode(&path, "info", &info).unwrap();
                assert_eq!(decoded.encode_to_vec(), info, "{name}: MetaInfoDef");
                let graph = mg.graph_def.clone().unwrap();
                let decoded: frame::GraphDef = decode(&path, "graph", &graph).unwrap();
                assert_eq!(decoded.encode_to_vec(), graph, "{name}: GraphDef");
                assert!(decoded.node.len() > 5, "{name}: nodes were read");
            }
        }
    }

    #[test]
    fn meta_graphs_are_chosen_by_tag() {
        let (path, bytes) = fixture("keras");
        let model = SavedModel::decode(&path, &bytes).unwrap();
        assert_eq!(model.tag_sets().unwrap(), [vec!["serve".to_string()]]);
        let mg = model.meta_graph("serve").unwrap();
        assert!(mg.frame.object_graph_def.is_some(), "a TF2 SavedModel");
        assert!(mg.graph.node("serving_default_x").is_some());
        let keys: Vec<&str> = mg
            .signatures_default_first()
            .iter()
            .map(|(k, _)| k.as_str())
            .collect();
        assert_eq!(keys, ["serving_default", "serve"]);
        let e = model.meta_graph("train").err().unwrap().to_string();
        assert!(
            e.contains("\"train\"") && e.contains("[[\"serve\"]]"),
            "{e}"
        );
        assert!(e.contains("saved_model.pb"), "{e}");
    }

    #[test]
    fn garbage_is_a_decode_error_naming_the_file() {
        let e = SavedModel::decode(Path::new("/m/saved_model.pb"), b"\x12\xff\xff")
            .err()
            .unwrap()
            .to_string();
        assert!(
            e.starts_with("/m/saved_model.pb: cannot decode SavedModel"),
            "{e}"
        );
    }

    #[test]
    fn a_directory_without_saved_model_pb_is_named() {
        let dir = std::env::temp_dir().join(format!("ee-savedmodel-pbtxt-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("saved_model.pbtxt"), "meta_graphs {}").unwrap();
        let e = read_saved_model_pb(&dir).err().unwrap().to_string();
        assert!(
            e.contains("no saved_model.pb") && e.contains("pbtxt"),
            "{e}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
        let e = read_saved_model_pb(&dir).err().unwrap().to_string();
        assert!(e.contains("does not exist"), "{e}");
    }
}
