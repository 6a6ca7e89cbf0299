//! [`LocalModel`]: a model file run in process. Which runtime runs it is the business of
//! its engine (`tract`, for ONNX), which stacks instances, runs them and splits the answers;
//! what this side does holds for any engine: instances matched to the model's inputs by name
//! and converted to their types, and large instances sent one at a time.

use std::borrow::Cow;
use std::path::Path;

use ee_tensor_proto::{DataType, Instance, Tensor};

use crate::convert::convert;
use crate::signature::{Layout, Signature, TensorInfo};
use crate::tract::Engine;
use crate::Result;

/// Instances with at least this many elements (in their largest input) run one at a time
/// through a plan for a batch of one rather than stacked into one batch: tract's fast
/// convolutions (direct, or im2col done lazily inside the matrix product) only take a batch
/// of one, a bigger batch falls back to materialising every patch, and a tile this size
/// already makes matrix products wide enough. Smaller instances (pixels, small patches) are
/// still stacked, where batching is what makes them fast. Splitting needs every input's
/// batch axis free, as stacking does.
const SPLIT_MIN_ELEMENTS: usize = 4096;

/// A loaded ONNX model.
pub struct LocalModel {
    /// What the model declares.
    pub(crate) sig: Signature,
    /// The runtime that runs it.
    pub(crate) engine: Engine,
}

impl LocalModel {
    /// Loads `path`.
    pub fn load(path: impl AsRef<Path>, layout: Layout) -> Result<Self> {
        let (engine, sig) = Engine::load(path.as_ref().to_path_buf(), layout)?;
        Ok(LocalModel { sig, engine })
    }

    /// The model's inputs: names and element types.
    pub fn inputs(&self) -> &[(String, DataType)] {
        &self.sig.inputs
    }

    /// The model's output names.
    pub fn outputs(&self) -> &[String] {
        &self.sig.outputs
    }

    /// The inputs with their declared shapes (model layout).
    pub fn input_infos(&self) -> &[TensorInfo] {
        &self.sig.input_infos
    }

    /// The outputs with their declared shapes (model layout), where the graph knows them.
    pub fn output_infos(&self) -> &[TensorInfo] {
        &self.sig.output_infos
    }

    /// The axis order tensors are given to the model in.
    pub fn layout(&self) -> Layout {
        self.sig.layout
    }

    /// The ONNX file this model came from.
    pub fn path(&self) -> &Path {
        &self.sig.path
    }

    /// True when every input's first dimension is free, so instances can be stacked into
    /// one run of any size.
    pub fn batchable(&self) -> bool {
        self.sig
            .input_infos
            .iter()
            .all(|i| matches!(i.shape.first(), Some(None)))
    }

    /// Runs a batch: instances' tensors (NHWC, without the batch axis) are matched to model
    /// inputs by name (a single input takes the single tensor whatever its name), converted to
    /// the model's input types, stacked, run, and split back; outputs are named by the model.
    /// Large instances of a model with a free batch axis run one at a time (see
    /// `SPLIT_MIN_ELEMENTS`); the answers are the same.
    pub fn run(&self, batch: &[Instance]) -> Result<Vec<Instance>> {
        if batch.is_empty() {
            return Err(self.sig.bad_input("empty batch".into()));
        }
        // Per model input, the instances' tensors in the model's type (borrowed when they
        // have it already).
        let mut picked: Vec<Vec<Cow<'_, Tensor>>> = Vec::with_capacity(self.sig.inputs.len());
        for (name, dtype) in &self.sig.inputs {
            let parts = batch
                .iter()
                .map(|inst| self.pick(inst, name, *dtype))
                .collect::<Result<Vec<_>>>()?;
            let first = &parts[0];
            for (i, p) in parts.iter().enumerate() {
                if p.shape() != first.shape() {
                    return Err(self.sig.bad_input(format!(
                        "input {name:?}: instance {i} is {} {:?}, instance 0 is {} {:?}: a batch needs one dtype and shape",
                        p.dtype(),
                        p.shape(),
                        first.dtype(),
                        first.shape()
                    )));
                }
            }
            picked.push(parts);
        }
        let largest = picked.iter().map(|p| p[0].len()).max().unwrap_or(0);
        let chunk = if batch.len() > 1 && largest >= SPLIT_MIN_ELEMENTS && self.batchable() {
            1
        } else {
            batch.len()
        };
        let mut rows = Vec::with_capacity(batch.len());
        for start in (0..batch.len()).step_by(chunk) {
            let end = (start + chunk).min(batch.len());
            rows.extend(self.engine.run_stacked(&self.sig, &picked, start..end)?);
        }
        Ok(rows)
    }

    /// The instance's tensor for the model input `name`, in the input's type (borrowed when
    /// it has it already).
    fn pick<'a>(&self, inst: &'a Instance, name: &str, dtype: DataType) -> Result<Cow<'a, Tensor>> {
        let t = if self.sig.inputs.len() == 1 && inst.len() == 1 {
            inst.iter().next().map(|(_, t)| t)
        } else {
            inst.get(name)
        };
        let t = t.ok_or_else(|| {
            self.sig.bad_input(format!(
                "the model's input {name:?} has no band of that name (bands sent: {})",
                inst.names().collect::<Vec<_>>().join(", ")
            ))
        })?;
        if t.dtype() == dtype {
            return Ok(Cow::Borrowed(t));
        }
        convert(t, dtype)
            .map(Cow::Owned)
            .map_err(|m| self.sig.bad_input(format!("input {name:?}: {m}")))
    }
}
