//! What can go wrong loading or running a model, and whose fault it was.

use std::path::PathBuf;

/// What went wrong loading or running a model.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The model file, its graph, or a run of it.
    #[error("local model {path}: {message}")]
    Model {
        /// The ONNX file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// Inputs the model cannot take: a missing name, a wrong rank, shape or type, shapes the
    /// graph cannot be planned for. The caller's fault, not the model's.
    #[error("local model {path}: {message}")]
    Input {
        /// The ONNX file.
        path: PathBuf,
        /// What was wrong with the inputs.
        message: String,
    },
    /// A layout name other than NHWC or NCHW.
    #[error("layout must be NHWC or NCHW, not {0:?}")]
    Layout(String),
    /// Stacking or splitting tensors.
    #[error(transparent)]
    Codec(#[from] ee_tensor_proto::Error),
}

/// Shorthand for results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
