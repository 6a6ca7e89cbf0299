//! The embedded runtime: ONNX models run in process with tract (pure Rust, nothing
//! downloaded). Symbolic batch, height and width are bound per concrete input shape and the
//! optimised plan is cached per shape (a fully symbolic plan runs many times slower). Tensors
//! arrive NHWC (Earth Engine's layout); an NCHW model gets them transposed.
//!
//! ```
//! use ee_runtime::{Layout, LocalModel};
//! use ee_tensor_proto::{Instance, Tensor};
//!
//! // The demo model (NHWC float32 reflectance of 4 bands in, "water" probability out).
//! let model = LocalModel::load("../ee-model/demo/water.onnx", Layout::Nhwc)?;
//! let tile = Tensor::F32(ndarray::ArrayD::zeros(vec![64, 64, 4]));
//! let mut instance = Instance::new();
//! instance.push("input", tile);
//! let answers = model.run(&[instance])?;
//! assert_eq!(answers[0].names().collect::<Vec<_>>(), ["water"]);
//! assert_eq!(answers[0].get("water").unwrap().shape(), [64, 64, 1]);
//! # Ok::<(), ee_runtime::Error>(())
//! ```
//!
//! Not here: serving models over HTTP or gRPC (`ee-serve`), tiling rasters (`ee-tiling`),
//! formats other than ONNX.

#![deny(missing_docs)]

use std::borrow::Cow;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use ee_tensor_proto::{DataType, Instance, Tensor};
use ndarray::ArrayD;
use tract_onnx::prelude::{
    DatumType, Framework, InferenceModelExt, IntoRunnable, Symbol, TDim, TValue, TypedModel,
    TypedRunnableModel, TypedSimpleState,
};

mod alloc;
mod io;
#[cfg(test)]
mod tests;

pub use alloc::tune_allocator;

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

/// An optimised plan for one set of concrete input shapes, with the run states (tract's
/// `SimpleState`: per-node state and value slots) of finished runs kept for the next ones.
struct Plan {
    runnable: Arc<TypedRunnableModel>,
    idle: Mutex<Vec<TypedSimpleState>>,
    /// Per input: fed NCHW (planned from the graph with its first transpose folded out).
    feed_nchw: Vec<bool>,
    /// Per output: comes out NCHW (the graph's last transpose folded out).
    take_nchw: Vec<bool>,
}

impl Plan {
    fn run(&self, inputs: Vec<TValue>) -> tract_onnx::prelude::TractResult<Vec<TValue>> {
        let idle = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let mut state = match idle {
            Some(s) => s,
            None => self.runnable.spawn()?,
        };
        let outputs = state.run(inputs.into_iter().collect())?;
        // Only a state whose run finished goes back: a failed one may hold half a turn.
        self.idle
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(state);
        Ok(outputs.into_iter().collect())
    }
}

/// Instances with at least this many elements (in their largest input) run one at a time
/// through a plan for a batch of one rather than stacked into one batch: tract's fast
/// convolutions (direct, or im2col done lazily inside the matrix product) only take a batch
/// of one, a bigger batch falls back to materialising every patch, and a tile this size
/// already makes matrix products wide enough. Smaller instances (pixels, small patches) are
/// still stacked, where batching is what makes them fast. Splitting needs every input's
/// batch axis free, as stacking does.
const SPLIT_MIN_ELEMENTS: usize = 4096;

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

/// A loaded ONNX model.
pub struct LocalModel {
    path: PathBuf,
    /// The declared graph.
    typed: TypedModel,
    /// The graph with an NHWC -> NCHW transpose of an input (and NCHW -> NHWC of an output)
    /// folded into the copies in and out, where the graph has such transposes, with which
    /// inputs are then fed NCHW and which outputs come out NCHW.
    folded: Option<(TypedModel, Vec<bool>, Vec<bool>)>,
    layout: Layout,
    inputs: Vec<(String, DataType)>,
    outputs: Vec<String>,
    input_infos: Vec<TensorInfo>,
    output_infos: Vec<TensorInfo>,
    plans: Mutex<HashMap<Vec<Vec<usize>>, Arc<Plan>>>,
}

fn dtype_of(d: DatumType) -> Option<DataType> {
    Some(match d {
        DatumType::F32 => DataType::Float32,
        DatumType::F64 => DataType::Float64,
        DatumType::F16 => DataType::Float16,
        DatumType::I8 => DataType::Int8,
        DatumType::I16 => DataType::Int16,
        DatumType::I32 => DataType::Int32,
        DatumType::I64 => DataType::Int64,
        DatumType::U8 => DataType::Uint8,
        DatumType::U16 => DataType::Uint16,
        DatumType::U32 => DataType::Uint32,
        DatumType::U64 => DataType::Uint64,
        DatumType::Bool => DataType::Bool,
        _ => return None,
    })
}

impl LocalModel {
    /// Loads `path`.
    pub fn load(path: impl AsRef<Path>, layout: Layout) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let fail = |m: String| Error::Model {
            path: path.clone(),
            message: m,
        };
        if !path.exists() {
            return Err(fail("no such file".into()));
        }
        let model = tract_onnx::onnx()
            .model_for_path(&path)
            .map_err(|e| fail(format!("cannot load: {e:#}")))?;
        let typed = model.into_typed().map_err(|e| {
            fail(format!(
                "cannot type the graph (give the model named or fixed input dimensions): {e:#}"
            ))
        })?;
        let mut inputs = Vec::new();
        for (i, outlet) in typed
            .input_outlets()
            .map_err(|e| fail(e.to_string()))?
            .iter()
            .enumerate()
        {
            let fact = typed.input_fact(i).map_err(|e| fail(e.to_string()))?;
            let dt = dtype_of(fact.datum_type).ok_or_else(|| {
                fail(format!(
                    "input {i} has unsupported type {:?}",
                    fact.datum_type
                ))
            })?;
            inputs.push((typed.node(outlet.node).name.clone(), dt));
        }
        let input_infos = inputs
            .iter()
            .enumerate()
            .map(|(i, (name, dtype))| {
                let fact = typed.input_fact(i).map_err(|e| fail(e.to_string()))?;
                Ok(TensorInfo {
                    name: name.clone(),
                    dtype: *dtype,
                    shape: fact.shape.iter().map(dim_value).collect(),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let outputs: Vec<String> = typed
            .output_outlets()
            .map_err(|e| fail(e.to_string()))?
            .iter()
            .map(|o| {
                typed
                    .outlet_label(*o)
                    .map(str::to_string)
                    .unwrap_or_else(|| typed.node(o.node).name.clone())
            })
            .collect();
        let output_infos = outputs
            .iter()
            .enumerate()
            .map(|(i, name)| {
                let fact = typed.output_fact(i).map_err(|e| fail(e.to_string()))?;
                let dtype = dtype_of(fact.datum_type).ok_or_else(|| {
                    fail(format!(
                        "output {name:?} has unsupported type {:?}",
                        fact.datum_type
                    ))
                })?;
                Ok(TensorInfo {
                    name: name.clone(),
                    dtype,
                    shape: fact.shape.iter().map(dim_value).collect(),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        // The caller's NCHW model gets NCHW tensors already; nothing to fold there.
        let folded = match layout {
            Layout::Nhwc => {
                let mut folded = typed.clone();
                let (feed, take) = io::fold_layout_transposes(&mut folded)
                    .map_err(|e| fail(format!("cannot fold the graph's transposes: {e:#}")))?;
                feed.contains(&true).then_some((folded, feed, take))
            }
            Layout::Nchw => None,
        };
        Ok(LocalModel {
            path,
            typed,
            folded,
            layout,
            inputs,
            outputs,
            input_infos,
            output_infos,
            plans: Mutex::new(HashMap::new()),
        })
    }

    /// The model's inputs: names and element types.
    pub fn inputs(&self) -> &[(String, DataType)] {
        &self.inputs
    }

    /// The model's output names.
    pub fn outputs(&self) -> &[String] {
        &self.outputs
    }

    /// The inputs with their declared shapes (model layout).
    pub fn input_infos(&self) -> &[TensorInfo] {
        &self.input_infos
    }

    /// The outputs with their declared shapes (model layout), where the graph knows them.
    pub fn output_infos(&self) -> &[TensorInfo] {
        &self.output_infos
    }

    /// The axis order tensors are given to the model in.
    pub fn layout(&self) -> Layout {
        self.layout
    }

    /// The ONNX file this model came from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// True when every input's first dimension is free, so instances can be stacked into
    /// one run of any size.
    pub fn batchable(&self) -> bool {
        self.input_infos
            .iter()
            .all(|i| matches!(i.shape.first(), Some(None)))
    }

    fn fail(&self, m: String) -> Error {
        Error::Model {
            path: self.path.clone(),
            message: m,
        }
    }

    fn bad_input(&self, m: String) -> Error {
        Error::Input {
            path: self.path.clone(),
            message: m,
        }
    }

    /// The optimised plan for these concrete input shapes (as fed to tract), cached.
    fn plan(&self, shapes: &[Vec<usize>]) -> Result<Arc<Plan>> {
        if let Some(p) = self
            .plans
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(shapes)
        {
            return Ok(p.clone());
        }
        let mut subs: HashMap<Symbol, TDim> = HashMap::new();
        for (i, shape) in shapes.iter().enumerate() {
            let fact = self
                .typed
                .input_fact(i)
                .map_err(|e| self.fail(e.to_string()))?;
            let dims: Vec<TDim> = fact.shape.iter().cloned().collect();
            if dims.len() != shape.len() {
                return Err(self.bad_input(format!(
                    "input {:?} has rank {} but a tensor of shape {shape:?} was given",
                    self.inputs[i].0,
                    dims.len()
                )));
            }
            for (d, &n) in dims.iter().zip(shape) {
                match d {
                    TDim::Val(v) if *v as usize != n => {
                        return Err(self.bad_input(format!(
                        "input {:?} has fixed shape {:?} but a tensor of shape {shape:?} was given",
                        self.inputs[i].0, dims
                    )));
                    }
                    TDim::Sym(s) => {
                        if let Some(prev) = subs.insert(s.clone(), TDim::Val(n as i64)) {
                            if prev != TDim::Val(n as i64) {
                                return Err(self.bad_input(format!(
                                    "dimension {s} would be both {prev} and {n}"
                                )));
                            }
                        }
                    }
                    _ => {}
                }
            }
        }
        let optimize = |typed: &TypedModel| {
            typed
                .set_symbols(&subs)
                .and_then(|m| m.into_optimized())
                .and_then(|m| m.into_runnable())
                .map_err(|e| {
                    self.bad_input(format!("cannot plan for input shapes {shapes:?}: {e:#}"))
                })
        };
        let plan = |runnable, feed_nchw: &[bool], take_nchw: &[bool]| {
            Arc::new(Plan {
                runnable,
                idle: Mutex::new(Vec::new()),
                feed_nchw: feed_nchw.to_vec(),
                take_nchw: take_nchw.to_vec(),
            })
        };
        // The folded graph keeps its convolutions NCHW, where tract has a direct
        // convolution for them (a wide enough output row, few enough inputs per output
        // point); short of one, the declared graph plans faster (tract turns its convs NHWC
        // and gathers patches along contiguous channels) and needs no transposes here.
        // A folded graph tract cannot plan is no reason to fail: the declared one decides.
        let mut chosen = None;
        if let Some((folded, feed, take)) = &self.folded {
            if let Ok(runnable) = optimize(folded) {
                let direct = runnable
                    .model()
                    .nodes()
                    .iter()
                    .any(|n| n.op.name() == "DirectSpatialConv");
                if direct {
                    chosen = Some(plan(runnable, feed, take));
                }
            }
        }
        let plan = match chosen {
            Some(p) => p,
            None => plan(
                optimize(&self.typed)?,
                &vec![false; self.inputs.len()],
                &vec![false; self.outputs.len()],
            ),
        };
        self.plans
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(shapes.to_vec(), plan.clone());
        Ok(plan)
    }

    /// Runs a batch: instances' tensors (NHWC, without the batch axis) are matched to model
    /// inputs by name (a single input takes the single tensor whatever its name), converted to
    /// the model's input types, stacked, run, and split back; outputs are named by the model.
    /// Large instances of a model with a free batch axis run one at a time (see
    /// `SPLIT_MIN_ELEMENTS`); the answers are the same.
    pub fn run(&self, batch: &[Instance]) -> Result<Vec<Instance>> {
        if batch.is_empty() {
            return Err(self.bad_input("empty batch".into()));
        }
        // Per model input, the instances' tensors in the model's type (borrowed when they
        // have it already).
        let mut picked: Vec<Vec<Cow<'_, Tensor>>> = Vec::with_capacity(self.inputs.len());
        for (name, dtype) in &self.inputs {
            let parts = batch
                .iter()
                .map(|inst| self.pick(inst, name, *dtype))
                .collect::<Result<Vec<_>>>()?;
            let first = &parts[0];
            for (i, p) in parts.iter().enumerate() {
                if p.shape() != first.shape() {
                    return Err(self.bad_input(format!(
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
            rows.extend(self.run_stacked(&picked, start..end)?);
        }
        Ok(rows)
    }

    /// The instance's tensor for the model input `name`, in the input's type (borrowed when
    /// it has it already).
    fn pick<'a>(&self, inst: &'a Instance, name: &str, dtype: DataType) -> Result<Cow<'a, Tensor>> {
        let t = if self.inputs.len() == 1 && inst.len() == 1 {
            inst.iter().next().map(|(_, t)| t)
        } else {
            inst.get(name)
        };
        let t = t.ok_or_else(|| {
            self.bad_input(format!(
                "the model's input {name:?} has no band of that name (bands sent: {})",
                inst.names().collect::<Vec<_>>().join(", ")
            ))
        })?;
        if t.dtype() == dtype {
            return Ok(Cow::Borrowed(t));
        }
        convert(t, dtype)
            .map(Cow::Owned)
            .map_err(|m| self.bad_input(format!("input {name:?}: {m}")))
    }

    /// Stacks instances `range` of the picked inputs, runs them in one go, splits the answer.
    fn run_stacked(
        &self,
        picked: &[Vec<Cow<'_, Tensor>>],
        range: std::ops::Range<usize>,
    ) -> Result<Vec<Instance>> {
        let count = range.len();
        // Shapes as the declared graph takes them (NCHW for the caller's NCHW model).
        let shapes: Vec<Vec<usize>> = picked
            .iter()
            .map(|parts| {
                let inner = parts[0].shape();
                let mut shape = vec![count];
                if self.layout == Layout::Nchw && inner.len() == 3 {
                    shape.extend([inner[2], inner[0], inner[1]]);
                } else {
                    shape.extend_from_slice(inner);
                }
                shape
            })
            .collect();
        let plan = self.plan(&shapes)?;
        let mut values: Vec<TValue> = Vec::with_capacity(picked.len());
        for (i, parts) in picked.iter().enumerate() {
            let parts: Vec<&Tensor> = parts[range.clone()].iter().map(|c| c.as_ref()).collect();
            let rank = parts[0].shape().len();
            let nchw = plan.feed_nchw[i] || (self.layout == Layout::Nchw && rank == 3);
            let value = io::stack(&parts, nchw)
                .map_err(|m| self.bad_input(format!("input {:?}: {m}", self.inputs[i].0)))?;
            values.push(value);
        }
        let outputs = plan
            .run(values)
            .map_err(|e| self.fail(format!("running on shapes {shapes:?}: {e:#}")))?;
        let mut rows = vec![Instance::new(); count];
        for (j, (name, value)) in self.outputs.iter().zip(outputs).enumerate() {
            let nchw = plan.take_nchw[j] || (self.layout == Layout::Nchw && value.rank() == 4);
            let parts = io::unstack(&value, nchw)
                .map_err(|m| self.fail(format!("output {name:?}: {m}")))?;
            if parts.len() != count {
                return Err(self.fail(format!(
                    "output {name:?} has batch size {} for {} instances",
                    parts.len(),
                    count
                )));
            }
            for (row, p) in rows.iter_mut().zip(parts) {
                row.push(name.clone(), p);
            }
        }
        Ok(rows)
    }
}

fn dim_value(d: &TDim) -> Option<usize> {
    match d {
        TDim::Val(v) => usize::try_from(*v).ok(),
        _ => None,
    }
}

/// Converts a numeric tensor to `dtype` through `f64` ([`Tensor::to_f64`], then
/// [`Tensor::from_f64`]'s `as` casts); the error says which side has no numbers.
pub fn convert(t: &Tensor, dtype: DataType) -> std::result::Result<Tensor, String> {
    if t.dtype() == dtype {
        return Ok(t.clone());
    }
    let f = t
        .to_f64()
        .ok_or_else(|| format!("a {} tensor cannot be converted to {dtype}", t.dtype()))?;
    Tensor::from_f64(&f, dtype).ok_or_else(|| format!("cannot convert to {dtype}"))
}

/// f64 values as a tensor of `dtype`: the same as [`Tensor::from_f64`] (where the
/// conversion lives), kept here for the callers that import it from this crate.
pub fn from_f64(a: &ArrayD<f64>, dtype: DataType) -> Option<Tensor> {
    Tensor::from_f64(a, dtype)
}

/// The README's examples, compiled and run by `cargo test --doc`.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
