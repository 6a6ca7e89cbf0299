//! Reading `saved_model.pb`: the SavedModel container, the choice of meta graph by tag, and
//! the signatures, graph and saver of that meta graph.

use std::path::{Path, PathBuf};

use prost::Message;

use crate::error::{Error, Result};
use crate::graph::Graph;
use crate::proto::{frame, tf};

/// Decodes `bytes` as `M`, naming `path` and `what` on failure.
pub(crate) fn decode<M: Message + Default>(path: &Path, what: &str, bytes: &[u8]) -> Result<M> {
    M::decode(bytes).map_err(|source| Error::Decode {
        path: path.to_path_buf(),
        what: what.to_string(),
        source,
    })
}

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
