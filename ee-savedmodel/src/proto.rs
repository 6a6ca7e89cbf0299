//! Messages generated from `proto/`, checked in under `src/gen/` (regenerate with
//! `cargo xtask codegen`; CI fails when they differ), and [`decode`], which every reader of
//! them (the SavedModel, its graph, the rewrite) uses to name the file and part that failed.

use std::path::Path;

use prost::Message;

use crate::error::{Error, Result};

/// Decodes `bytes` as `M`, naming `path` and `what` on failure.
pub(crate) fn decode<M: Message + Default>(path: &Path, what: &str, bytes: &[u8]) -> Result<M> {
    M::decode(bytes).map_err(|source| Error::Decode {
        path: path.to_path_buf(),
        what: what.to_string(),
        source,
    })
}

/// Containers decoded and re-encoded with every field (sub-messages kept as raw bytes).
#[allow(missing_docs, clippy::all)]
pub(crate) mod frame {
    include!("gen/ee_savedmodel.frame.rs");
}

/// Graph messages read from the model or built for the glue.
#[allow(missing_docs, clippy::all)]
pub(crate) mod tf {
    include!("gen/ee_savedmodel.tf.rs");
}
