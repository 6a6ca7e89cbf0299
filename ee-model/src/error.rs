//! The facade's error type: lower crates' errors wrapped with what was being done.

use std::path::PathBuf;

/// Everything that can stop a prediction job.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A model description that cannot work.
    #[error("model spec: {0}")]
    Spec(String),
    /// The job's options (command-line flags, `PredictOptions`) cannot work: a region outside
    /// the input, a shard with blending, a resume with other arguments. The user's call, not
    /// the spec's.
    #[error("options: {0}")]
    Options(String),
    /// The model answered something the spec does not allow: a missing output, a shape or
    /// type that does not fit, planes that change between tiles. The model's (or the
    /// server's) fault, named with the tile.
    #[error("model answer: {0}")]
    Answer(String),
    /// Reading the spec file.
    #[error("{path}: {message}")]
    SpecFile {
        /// The file.
        path: PathBuf,
        /// What was wrong.
        message: String,
    },
    /// The embedded runtime.
    #[error(transparent)]
    Local(#[from] ee_runtime::Error),
    /// The zoom-out guard refused the job.
    #[error("{0}")]
    TooLarge(String),
    /// Resuming is not possible.
    #[error("resume: {0}")]
    Resume(String),
    /// Raster input or output.
    #[error(transparent)]
    Raster(#[from] ee_raster_io::Error),
    /// Tile geometry or assembly.
    #[error(transparent)]
    Tiling(#[from] ee_tiling::Error),
    /// Sending predictions.
    #[error(transparent)]
    Predict(#[from] ee_predict_client::Error),
    /// Tensors and payloads.
    #[error(transparent)]
    Codec(#[from] ee_tensor_proto::Error),
    /// A worker thread or task of the pipeline failed unexpectedly.
    #[error("internal failure of the {0}")]
    Worker(String),
    /// Files beside the output (journal).
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
}

/// Shorthand for results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
