//! The served model's signature as clients see it: inputs and outputs per instance (no batch
//! axis, NHWC for images whatever the model's own layout), the checks every request's
//! instances go through, and the metadata documents of TF Serving and KServe.

use ee_runtime::{Layout, LocalModel, TensorInfo};
use ee_tensor_proto::{DataType, Instance, OutputSpec, Tensor};
use serde_json::{json, Value};

/// One tensor of one instance: name, element type, and its dimensions without the batch
/// axis (`None` where free).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Port {
    /// Name in requests and answers.
    pub name: String,
    /// Element type.
    pub dtype: DataType,
    /// Per-instance dimensions, NHWC order for rank-3 images.
    pub dims: Vec<Option<usize>>,
}

impl Port {
    fn from_info(info: &TensorInfo, layout: Layout, batchable: bool) -> Port {
        let mut dims = info.shape.clone();
        if layout == Layout::Nchw && dims.len() == 4 {
            dims = vec![dims[0], dims[2], dims[3], dims[1]];
        }
        if batchable && !dims.is_empty() {
            dims.remove(0);
        }
        Port {
            name: info.name.clone(),
            dtype: info.dtype,
            dims,
        }
    }

    /// Dimensions with the batch axis, `-1` where free.
    pub fn batched_shape(&self) -> Vec<i64> {
        std::iter::once(-1)
            .chain(self.dims.iter().map(|d| d.map_or(-1, |v| v as i64)))
            .collect()
    }
}

/// Inputs and outputs of the served model.
#[derive(Clone, Debug)]
pub struct Signature {
    /// The model's name in routes.
    pub model_name: String,
    /// Inputs, in the model's order.
    pub inputs: Vec<Port>,
    /// Outputs, in the model's order.
    pub outputs: Vec<Port>,
    /// Whether instances can be stacked along a free first axis.
    pub batchable: bool,
}

impl Signature {
    /// The signature of `model`, served as `name`.
    pub fn of(model: &LocalModel, name: &str) -> Signature {
        let batchable = model.batchable();
        let port = |i: &TensorInfo| Port::from_info(i, model.layout(), batchable);
        Signature {
            model_name: name.to_string(),
            inputs: model.input_infos().iter().map(port).collect(),
            outputs: model.output_infos().iter().map(port).collect(),
            batchable,
        }
    }

    /// Checks that a request names this model (and version 1, when it names a version).
    pub fn check_model(&self, name: &str, version: Option<&str>) -> Result<(), crate::Error> {
        let model = &self.model_name;
        if name != model {
            return Err(crate::Error::NotFound(format!(
                "model {name:?} not found; this node serves {model:?}"
            )));
        }
        match version {
            None | Some("" | "1") => Ok(()),
            Some(v) => Err(crate::Error::NotFound(format!(
                "version {v:?} of model {model:?} not found; this node serves version 1"
            ))),
        }
    }

    /// The inputs as decoders want them.
    pub fn input_specs(&self) -> Vec<OutputSpec> {
        self.inputs
            .iter()
            .map(|p| OutputSpec::new(p.name.clone(), p.dtype))
            .collect()
    }

    /// The outputs as decoders want them.
    pub fn output_specs(&self) -> Vec<OutputSpec> {
        self.outputs
            .iter()
            .map(|p| OutputSpec::new(p.name.clone(), p.dtype))
            .collect()
    }

    /// Checks a request's instances against the inputs: every input present under its name
    /// (a single-input model takes a single tensor under any name), no unknown names, the
    /// declared element type, rank and fixed dimensions. Returns them keyed by the model's
    /// names.
    pub fn check(&self, instances: Vec<Instance>) -> Result<Vec<Instance>, String> {
        if instances.is_empty() {
            return Err("the request has no instances".into());
        }
        let names = || {
            self.inputs
                .iter()
                .map(|p| format!("{:?} ({} {})", p.name, p.dtype, dims_text(&p.dims)))
                .collect::<Vec<_>>()
                .join(", ")
        };
        instances
            .into_iter()
            .enumerate()
            .map(|(i, inst)| {
                let mut inst = if self.inputs.len() == 1 && inst.len() == 1 {
                    let (_, t) = inst.into_entries().into_iter().next().expect("one entry");
                    Instance::new().with(self.inputs[0].name.clone(), t)
                } else {
                    inst
                };
                for name in inst.names() {
                    if !self.inputs.iter().any(|p| p.name == name) {
                        return Err(format!(
                            "instance {i}: unknown input {name:?}; the model's inputs are {}",
                            names()
                        ));
                    }
                }
                let mut out = Instance::new();
                for port in &self.inputs {
                    let t = inst.take(&port.name).ok_or_else(|| {
                        format!(
                            "instance {i} lacks input {:?}; the model's inputs are {}",
                            port.name,
                            names()
                        )
                    })?;
                    check_tensor(&t, port).map_err(|m| format!("instance {i}, input {m}"))?;
                    out.push(port.name.clone(), t);
                }
                Ok(out)
            })
            .collect()
    }

    /// The batching key of a checked instance: its shapes in input order.
    pub fn key(&self, instance: &Instance) -> Vec<Vec<usize>> {
        self.inputs
            .iter()
            .map(|p| {
                instance
                    .get(&p.name)
                    .map_or(Vec::new(), |t| t.shape().to_vec())
            })
            .collect()
    }

    /// TF Serving's `GET /v1/models/NAME/metadata` document.
    pub fn tf_metadata(&self) -> Value {
        let ports = |ports: &[Port]| -> Value {
            ports
                .iter()
                .map(|p| {
                    let dims: Vec<Value> = p
                        .batched_shape()
                        .iter()
                        .map(|d| json!({"size": d.to_string(), "name": ""}))
                        .collect();
                    (
                        p.name.clone(),
                        json!({
                            "dtype": p.dtype.tf_name(),
                            "tensor_shape": {"dim": dims, "unknown_rank": false},
                            "name": format!("{}:0", p.name),
                        }),
                    )
                })
                .collect::<serde_json::Map<_, _>>()
                .into()
        };
        json!({
            "model_spec": {"name": self.model_name, "signature_name": "", "version": "1"},
            "metadata": {"signature_def": {"signature_def": {"serving_default": {
                "inputs": ports(&self.inputs),
                "outputs": ports(&self.outputs),
                "method_name": "tensorflow/serving/predict",
            }}}}
        })
    }

    /// KServe v2's `GET /v2/models/NAME` document.
    pub fn kserve_metadata(&self) -> Value {
        let ports = |ports: &[Port]| -> Vec<Value> {
            ports
                .iter()
                .map(|p| {
                    json!({"name": p.name, "datatype": p.dtype.kserve_name(), "shape": p.batched_shape()})
                })
                .collect()
        };
        json!({
            "name": self.model_name,
            "versions": ["1"],
            "platform": "onnx",
            "inputs": ports(&self.inputs),
            "outputs": ports(&self.outputs),
        })
    }
}

/// Keeps the requested outputs (all when none were named), erring on unknown names.
pub(crate) fn select_outputs(
    batched: Instance,
    requested: &[(String, bool)],
) -> Result<Instance, crate::Error> {
    if requested.is_empty() {
        return Ok(batched);
    }
    let mut batched = batched;
    let available: Vec<String> = batched.names().map(str::to_string).collect();
    requested
        .iter()
        .map(|(name, _)| {
            batched
                .take(name)
                .map(|t| (name.clone(), t))
                .ok_or_else(|| {
                    crate::Error::BadRequest(format!(
                        "output {name:?} was requested but the model's outputs are {available:?}"
                    ))
                })
        })
        .collect::<Result<Vec<_>, crate::Error>>()
        .map(|entries| {
            entries
                .into_iter()
                .fold(Instance::new(), |i, (n, t)| i.with(n, t))
        })
}

pub(crate) fn dims_text(dims: &[Option<usize>]) -> String {
    let parts: Vec<String> = dims
        .iter()
        .map(|d| d.map_or("?".into(), |v| v.to_string()))
        .collect();
    format!("[{}]", parts.join(", "))
}

fn check_tensor(t: &Tensor, port: &Port) -> Result<(), String> {
    if t.dtype() != port.dtype {
        return Err(format!(
            "{:?}: expected {} values, found {}",
            port.name,
            port.dtype,
            t.dtype()
        ));
    }
    let shape = t.shape();
    let fits = shape.len() == port.dims.len()
        && shape
            .iter()
            .zip(&port.dims)
            .all(|(&n, d)| d.is_none_or(|v| v == n));
    if !fits {
        return Err(format!(
            "{:?}: expected shape {} per instance, found {shape:?}",
            port.name,
            dims_text(&port.dims)
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sig() -> Signature {
        Signature {
            model_name: "m".into(),
            inputs: vec![Port {
                name: "x".into(),
                dtype: DataType::Float32,
                dims: vec![None, None, Some(3)],
            }],
            outputs: vec![Port {
                name: "y".into(),
                dtype: DataType::Float32,
                dims: vec![None, None, Some(2)],
            }],
            batchable: true,
        }
    }

    fn tile(c: usize) -> Tensor {
        Tensor::zeros(DataType::Float32, &[4, 5, c])
    }

    #[test]
    fn single_input_takes_any_name_and_checks_shape_and_type() {
        let s = sig();
        let ok = s
            .check(vec![Instance::new().with("array", tile(3))])
            .unwrap();
        assert_eq!(ok[0].names().collect::<Vec<_>>(), ["x"]);
        assert_eq!(s.key(&ok[0]), vec![vec![4, 5, 3]]);
        let e = s
            .check(vec![
                Instance::new().with("x", tile(3)),
                Instance::new().with("x", tile(2)),
            ])
            .unwrap_err();
        assert!(e.contains("instance 1") && e.contains("[?, ?, 3]"), "{e}");
        let e = s
            .check(vec![
                Instance::new().with("x", Tensor::zeros(DataType::Float64, &[4, 5, 3]))
            ])
            .unwrap_err();
        assert!(e.contains("expected float32 values, found float64"), "{e}");
        assert!(s.check(Vec::new()).is_err());
    }

    #[test]
    fn unknown_and_missing_names_are_named() {
        let mut s = sig();
        s.inputs.push(Port {
            name: "z".into(),
            dtype: DataType::Int32,
            dims: vec![],
        });
        let e = s
            .check(vec![Instance::new().with("x", tile(3)).with("w", tile(3))])
            .unwrap_err();
        assert!(e.contains("unknown input \"w\""), "{e}");
        let e = s
            .check(vec![Instance::new().with("x", tile(3))])
            .unwrap_err();
        assert!(e.contains("lacks input \"z\""), "{e}");
    }

    #[test]
    fn metadata_documents_name_types_and_free_dimensions() {
        let s = sig();
        let tf = s.tf_metadata();
        let x = &tf["metadata"]["signature_def"]["signature_def"]["serving_default"]["inputs"]["x"];
        assert_eq!(x["dtype"], "DT_FLOAT");
        assert_eq!(x["tensor_shape"]["dim"][3]["size"], "3");
        assert_eq!(x["tensor_shape"]["dim"][0]["size"], "-1");
        let k = s.kserve_metadata();
        assert_eq!(k["outputs"][0]["datatype"], "FP32");
        assert_eq!(k["outputs"][0]["shape"], json!([-1, -1, -1, 2]));
    }
}
