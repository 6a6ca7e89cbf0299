//! The one error type of the crate: every message names the file, tensor, tag or flag at fault.

use std::path::PathBuf;

/// What went wrong reading, checking or rewriting a SavedModel.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file or directory could not be read, written or copied.
    #[error("{action} {}: {source}", path.display())]
    Io {
        /// What was being done (`read`, `write`, `copy`, `create directory`...).
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The source directory holds no `saved_model.pb`.
    #[error("{} is not a SavedModel directory: it has no saved_model.pb{hint}", dir.display())]
    NotASavedModel {
        /// The directory given as the source.
        dir: PathBuf,
        /// Extra advice (a text-format `saved_model.pbtxt` found instead, for example).
        hint: String,
    },
    /// A protobuf message in the SavedModel could not be decoded.
    #[error("{}: cannot decode {what}: {source}", path.display())]
    Decode {
        /// The file being read.
        path: PathBuf,
        /// Which message (`SavedModel`, `MetaGraphDef`, `NodeDef #12`...).
        what: String,
        /// The decoder's error.
        source: prost::DecodeError,
    },
    /// No meta graph of the SavedModel carries the tag asked for.
    #[error("{}: no meta graph has the tag {tag:?}; the tag sets present are {available:?}", path.display())]
    NoSuchTag {
        /// The file read.
        path: PathBuf,
        /// The tag asked for.
        tag: String,
        /// The tag set of every meta graph in the file.
        available: Vec<Vec<String>>,
    },
    /// An `--input` / `--output` specification could not be parsed.
    #[error("{flag} {spec:?}: {message}")]
    Spec {
        /// The flag (`--input` or `--output`).
        flag: &'static str,
        /// The text given.
        spec: String,
        /// What is wrong with it.
        message: String,
    },
    /// An input names a tensor (or signature key) the graph does not have.
    #[error("input {name:?} is not in the graph (nor a signature input key){hint}")]
    MissingInput {
        /// The name given.
        name: String,
        /// The placeholders and signature keys that do exist.
        hint: String,
    },
    /// An input names a tensor that is not a placeholder's output.
    #[error("input {tensor:?} is not a graph input: node {node:?} is a {op}, not a Placeholder")]
    NotAPlaceholder {
        /// The tensor named.
        tensor: String,
        /// Its node.
        node: String,
        /// The node's op.
        op: String,
    },
    /// An output names a tensor the graph does not have.
    #[error("output {name:?} is not in the graph (nor a signature output key){hint}")]
    UnknownOutput {
        /// The name given.
        name: String,
        /// The signature outputs that do exist.
        hint: String,
    },
    /// The element type of an output tensor cannot be told from the graph alone.
    #[error("cannot tell the dtype of output {tensor:?} (a {op} node) from the graph; name a signature output instead")]
    OutputDtypeUnknown {
        /// The tensor named.
        tensor: String,
        /// Its node's op.
        op: String,
    },
    /// A tensor's element type is not one Earth Engine's TensorProtos carry.
    #[error("{role} {tensor:?} has dtype {dtype}, which prepare does not support (supported: {supported})")]
    UnsupportedDtype {
        /// `input` or `output`.
        role: &'static str,
        /// The tensor.
        tensor: String,
        /// Its dtype, by name.
        dtype: String,
        /// The supported dtypes, by name.
        supported: String,
    },
    /// A node or function prepare adds is already in the graph (a model prepared twice?).
    #[error("the graph already has a {kind} named {name:?} (was this model prepared already?)")]
    NameTaken {
        /// `node` or `function`.
        kind: &'static str,
        /// The name.
        name: String,
    },
    /// The destination exists and is not an empty directory.
    #[error("destination {} already exists and is not empty", path.display())]
    DestinationExists {
        /// The destination directory.
        path: PathBuf,
    },
    /// The graph restores variables but the checkpoint is not where `--variables` says.
    #[error("the graph restores variables but {} does not exist (check --variables)", path.display())]
    MissingVariables {
        /// The checkpoint index file expected.
        path: PathBuf,
    },
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
        source: std::io::Error,
    ) -> Self {
        Error::Io {
            action,
            path: path.into(),
            source,
        }
    }
}
