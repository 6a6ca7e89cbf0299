//! What a loaded model declares, whichever runtime runs it: the layout it takes tensors in
//! and its inputs' and outputs' names, element types and shapes.

use std::path::PathBuf;

use ee_tensor_proto::DataType;

use crate::{Error, Result};

/// Axis order the model expects for rank-4 tensors.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Layout {
    /// Batch, height, width, channels (Earth Engine's).
    #[default]
    Nhwc,
    /// Batch, channels, height, width (PyTorch's).
    Nchw,
}

impl std::str::FromStr for Layout {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_uppercase().as_str() {
            "NHWC" => Ok(Layout::Nhwc),
            "NCHW" => Ok(Layout::Nchw),
            other => Err(Error::Layout(other.to_string())),
        }
    }
}

/// One input or output of a model as its graph declares it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TensorInfo {
    /// The tensor's name in the graph.
    pub name: String,
    /// Element type.
    pub dtype: DataType,
    /// Dimensions in the model's own layout; `None` where symbolic (batch, height, width).
    pub shape: Vec<Option<usize>>,
}

impl TensorInfo {
    /// The shape as TensorFlow and KServe metadata write it: `-1` for a free dimension.
    pub fn signed_shape(&self) -> Vec<i64> {
        self.shape
            .iter()
            .map(|d| d.map_or(-1, |v| v as i64))
            .collect()
    }
}

/// A model's declared inputs and outputs, with its file (which errors name) and layout.
pub(crate) struct Signature {
    /// The model file.
    pub path: PathBuf,
    /// The axis order tensors are given to the model in.
    pub layout: Layout,
    /// Input names and element types, in the graph's order.
    pub inputs: Vec<(String, DataType)>,
    /// Output names, in the graph's order.
    pub outputs: Vec<String>,
    /// The inputs with their declared shapes (model layout).
    pub input_infos: Vec<TensorInfo>,
    /// The outputs with their declared shapes (model layout), where the graph knows them.
    pub output_infos: Vec<TensorInfo>,
}

impl Signature {
    /// An error that is the model's (or its file's) fault.
    pub fn fail(&self, m: String) -> Error {
        Error::Model {
            path: self.path.clone(),
            message: m,
        }
    }

    /// An error that is the caller's fault: inputs the model cannot take.
    pub fn bad_input(&self, m: String) -> Error {
        Error::Input {
            path: self.path.clone(),
            message: m,
        }
    }
}
