//! The tract runtime behind [`LocalModel`](crate::LocalModel): the ONNX graph loaded and
//! typed, its own NHWC <-> NCHW transposes folded into the copies in and out where tract
//! then has a direct convolution (see `io::fold_layout_transposes`), an optimised plan cached
//! per set of concrete input shapes, and batches stacked, run and split through it.

use std::borrow::Cow;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use ee_tensor_proto::{DataType, Instance, Tensor};
use tract_onnx::prelude::{
    DatumType, Framework, InferenceModelExt, IntoRunnable, Symbol, TDim, TValue, TypedModel,
    TypedRunnableModel, TypedSimpleState,
};

use crate::io;
use crate::signature::{Layout, Signature, TensorInfo};
use crate::{Error, Result};

/// An optimised plan for one set of concrete input shapes, with the run states (tract's
/// `SimpleState`: per-node state and value slots) of finished runs kept for the next ones.
pub(crate) struct Plan {
    runnable: Arc<TypedRunnableModel>,
    idle: Mutex<Vec<TypedSimpleState>>,
    /// Per input: fed NCHW (planned from the graph with its first transpose folded out).
    pub(crate) feed_nchw: Vec<bool>,
    /// Per output: comes out NCHW (the graph's last transpose folded out).
    pub(crate) take_nchw: Vec<bool>,
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

/// A loaded ONNX graph and the plans made from it.
pub(crate) struct Engine {
    /// The declared graph.
    pub(crate) typed: TypedModel,
    /// The graph with an NHWC -> NCHW transpose of an input (and NCHW -> NHWC of an output)
    /// folded into the copies in and out, where the graph has such transposes, with which
    /// inputs are then fed NCHW and which outputs come out NCHW.
    pub(crate) folded: Option<(TypedModel, Vec<bool>, Vec<bool>)>,
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

impl Engine {
    /// Loads and types the ONNX graph at `path`; what it declares comes back beside it.
    pub(crate) fn load(path: PathBuf, layout: Layout) -> Result<(Engine, Signature)> {
        let fail = |m: String| Error::Model {
            path: path.clone(),
            message: m,
        };
        if !path.exists() {
            return Err(fail("no such file".into()));
        }
        let load = |onnx: tract_onnx::model::Onnx| {
            onnx.model_for_path(&path)
                .map_err(|e| fail(format!("cannot load: {e:#}")))
        };
        // Declared output shapes and value_info are hints, as onnxruntime takes them: some
        // exporters get them wrong (PyTorch named an output's height after the batch axis,
        // `[batch_size, 3, batch_size, W]`), and tract would refuse to unify them with what
        // the graph computes. When they contradict the graph, they are dropped, and the log
        // says so.
        let typed = match load(tract_onnx::onnx())?.into_typed() {
            Ok(typed) => typed,
            Err(strict) => {
                let lenient = tract_onnx::onnx()
                    .with_ignore_output_shapes(true)
                    .with_ignore_value_info(true);
                let typed = load(lenient)?.into_typed().map_err(|e| {
                    fail(format!(
                        "cannot type the graph (give the model named or fixed input dimensions): {e:#} (with its declared output shapes and value_info too: {strict:#})"
                    ))
                })?;
                tracing::warn!(
                    "{}: the declared output shapes or value_info contradict the graph ({strict:#}); loaded without them, as onnxruntime does",
                    path.display()
                );
                typed
            }
        };
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
        let engine = Engine {
            typed,
            folded,
            plans: Mutex::new(HashMap::new()),
        };
        let signature = Signature {
            path,
            layout,
            inputs,
            outputs,
            input_infos,
            output_infos,
        };
        Ok((engine, signature))
    }

    /// The optimised plan for these concrete input shapes (as fed to tract), cached.
    pub(crate) fn plan(&self, sig: &Signature, shapes: &[Vec<usize>]) -> Result<Arc<Plan>> {
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
                .map_err(|e| sig.fail(e.to_string()))?;
            let dims: Vec<TDim> = fact.shape.iter().cloned().collect();
            if dims.len() != shape.len() {
                return Err(sig.bad_input(format!(
                    "input {:?} has rank {} but a tensor of shape {shape:?} was given",
                    sig.inputs[i].0,
                    dims.len()
                )));
            }
            for (d, &n) in dims.iter().zip(shape) {
                match d {
                    TDim::Val(v) if *v as usize != n => {
                        return Err(sig.bad_input(format!(
                        "input {:?} has fixed shape {:?} but a tensor of shape {shape:?} was given",
                        sig.inputs[i].0, dims
                    )));
                    }
                    TDim::Sym(s) => {
                        if let Some(prev) = subs.insert(s.clone(), TDim::Val(n as i64)) {
                            if prev != TDim::Val(n as i64) {
                                return Err(sig.bad_input(format!(
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
                    sig.bad_input(format!("cannot plan for input shapes {shapes:?}: {e:#}"))
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
                &vec![false; sig.inputs.len()],
                &vec![false; sig.outputs.len()],
            ),
        };
        self.plans
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(shapes.to_vec(), plan.clone());
        Ok(plan)
    }

    /// Stacks instances `range` of the picked inputs, runs them in one go, splits the answer.
    pub(crate) fn run_stacked(
        &self,
        sig: &Signature,
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
                if sig.layout == Layout::Nchw && inner.len() == 3 {
                    shape.extend([inner[2], inner[0], inner[1]]);
                } else {
                    shape.extend_from_slice(inner);
                }
                shape
            })
            .collect();
        let plan = self.plan(sig, &shapes)?;
        let mut values: Vec<TValue> = Vec::with_capacity(picked.len());
        for (i, parts) in picked.iter().enumerate() {
            let parts: Vec<&Tensor> = parts[range.clone()].iter().map(|c| c.as_ref()).collect();
            let rank = parts[0].shape().len();
            let nchw = plan.feed_nchw[i] || (sig.layout == Layout::Nchw && rank == 3);
            let value = io::stack(&parts, nchw)
                .map_err(|m| sig.bad_input(format!("input {:?}: {m}", sig.inputs[i].0)))?;
            values.push(value);
        }
        let outputs = plan
            .run(values)
            .map_err(|e| sig.fail(format!("running on shapes {shapes:?}: {e:#}")))?;
        let mut rows = vec![Instance::new(); count];
        for (j, (name, value)) in sig.outputs.iter().zip(outputs).enumerate() {
            let nchw = plan.take_nchw[j] || (sig.layout == Layout::Nchw && value.rank() == 4);
            let parts =
                io::unstack(&value, nchw).map_err(|m| sig.fail(format!("output {name:?}: {m}")))?;
            if parts.len() != count {
                return Err(sig.fail(format!(
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
