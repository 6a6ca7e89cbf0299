//! Asking the server what the model takes, once, before the first tile is read, and checking
//! the inputs' names, dtypes and shapes against what the job would send.
//!
//! Servers that can describe a model: the Open Inference Protocol's model metadata
//! (`GET /v2/models/NAME[/versions/V]`, gRPC `ModelMetadata`: KServe, Triton, MLServer,
//! ee-serve) and TF Serving's REST metadata (`GET /v1/models/NAME[/versions/N]/metadata`,
//! the `signature_def` of the signature used). Hosted endpoints (AI Platform, Vertex), plain
//! URLs, TF Serving over gRPC (no `GetModelMetadata` stubs here) and the serialized-tensor
//! formats (the model takes strings, not the tensors inside them) are not described: the
//! check says so and checks nothing. Dimensions of `-1` (or any negative size) and an unknown
//! rank match anything.

use std::fmt;

use ee_tensor_proto::DataType;
use serde_json::Value;

/// One input as the job will send it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InputDescription {
    /// The input's name (the band, or the name the model's signature gives it).
    pub name: String,
    /// The dtype the job sends it as.
    pub dtype: DataType,
    /// Its shape per instance, without the batch dimension (e.g. `[256, 256, 3]`).
    pub shape: Vec<usize>,
}

/// The protocol a description came in; it decides how dtypes are named in messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    /// The Open Inference Protocol (KServe v2): `FP32`, `UINT8`...
    KServeV2,
    /// TF Serving: `DT_FLOAT`, `DT_UINT8`...
    TfServing,
}

impl Protocol {
    fn dtype_name(self, d: DataType) -> &'static str {
        match self {
            Protocol::KServeV2 => d.kserve_name(),
            Protocol::TfServing => d.tf_name(),
        }
    }
}

/// One input as the server describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModelInput {
    /// Its name.
    pub name: String,
    /// Its datatype as the server wrote it (`FP32`, `DT_FLOAT`...).
    pub datatype: String,
    /// That datatype, when this client has it.
    pub dtype: Option<DataType>,
    /// Its shape with the batch dimension if the model has one; negative sizes are free;
    /// `None` for an unknown rank.
    pub shape: Option<Vec<i64>>,
}

/// What a server says the model takes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModelMetadata {
    /// How it was described.
    pub protocol: Protocol,
    /// Its inputs.
    pub inputs: Vec<ModelInput>,
}

/// What a server said when asked to describe the model.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Description {
    /// The model's inputs.
    Model(ModelMetadata),
    /// The server cannot describe it; why.
    Unavailable(String),
}

/// The outcome of [`crate::PredictClient::check_inputs`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ModelCheck {
    /// The server described the model and what the job would send fits it.
    Matches {
        /// The model's inputs, as described.
        inputs: Vec<ModelInput>,
    },
    /// The server cannot describe the model; nothing was checked.
    NotDescribed {
        /// Why (the endpoint kind, the payload format, or the server's answer).
        reason: String,
    },
}

/// One way what the job would send does not fit the model.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InputProblem {
    /// The model takes another dtype.
    Dtype {
        /// The input.
        name: String,
        /// The protocol's naming.
        protocol: Protocol,
        /// The model's datatype as the server wrote it.
        model: String,
        /// That datatype, when this client has it.
        model_dtype: Option<DataType>,
        /// What the job would send.
        sent: DataType,
    },
    /// The model takes another shape.
    Shape {
        /// The input.
        name: String,
        /// The model's shape (with its batch dimension, if any; negative sizes are free).
        model: Vec<i64>,
        /// The job's shape per instance.
        sent: Vec<usize>,
    },
    /// The model takes an input the job does not send.
    Missing {
        /// The input.
        name: String,
    },
    /// The job would send an input the model does not take.
    Unexpected {
        /// The input.
        name: String,
        /// The model's inputs.
        model_inputs: Vec<String>,
    },
}

fn dims(d: &[i64]) -> String {
    let parts: Vec<String> = d
        .iter()
        .map(|&v| if v < 0 { "-1".into() } else { v.to_string() })
        .collect();
    format!("[{}]", parts.join(", "))
}

impl fmt::Display for InputProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InputProblem::Dtype {
                name,
                protocol,
                model,
                model_dtype: Some(d),
                sent,
            } => write!(
                f,
                "input {name:?}: the model takes {model} ({d}), the job would send {}; set \"inputTypeOverride\": {{{name:?}: \"{d}\"}} in the spec",
                protocol.dtype_name(*sent)
            ),
            InputProblem::Dtype {
                name,
                protocol,
                model,
                model_dtype: None,
                sent,
            } => write!(
                f,
                "input {name:?}: the model takes {model}, which this client cannot send (the job would send {})",
                protocol.dtype_name(*sent)
            ),
            InputProblem::Shape { name, model, sent } => {
                let sent_dims: Vec<String> = sent.iter().map(|d| d.to_string()).collect();
                write!(
                    f,
                    "input {name:?}: the model takes shape {}, the job would send [batch, {}]",
                    dims(model),
                    sent_dims.join(", ")
                )?;
                if model.len() == sent.len() {
                    write!(f, " (the model has no batch dimension)")
                } else if model.len() == sent.len() + 1 {
                    write!(
                        f,
                        "; the tile with its overlap must match the model's fixed dimensions"
                    )
                } else {
                    Ok(())
                }
            }
            InputProblem::Missing { name } => write!(
                f,
                "input {name:?}: the model takes it but the job does not send it"
            ),
            InputProblem::Unexpected { name, model_inputs } => write!(
                f,
                "input {name:?}: the job would send it but the model takes only {model_inputs:?}"
            ),
        }
    }
}

/// The problems, `; `-separated, for messages.
pub(crate) fn join(problems: &[InputProblem]) -> String {
    problems
        .iter()
        .map(|p| p.to_string())
        .collect::<Vec<_>>()
        .join("; ")
}

/// Compares what the job would send with what the model takes.
pub fn compare(model: &ModelMetadata, inputs: &[InputDescription]) -> Vec<InputProblem> {
    let mut problems = Vec::new();
    for sent in inputs {
        let Some(m) = model.inputs.iter().find(|m| m.name == sent.name) else {
            problems.push(InputProblem::Unexpected {
                name: sent.name.clone(),
                model_inputs: model.inputs.iter().map(|m| m.name.clone()).collect(),
            });
            continue;
        };
        if m.dtype != Some(sent.dtype) {
            problems.push(InputProblem::Dtype {
                name: sent.name.clone(),
                protocol: model.protocol,
                model: m.datatype.clone(),
                model_dtype: m.dtype,
                sent: sent.dtype,
            });
        }
        if let Some(shape) = &m.shape {
            // The model's shape includes the batch dimension (any size: batches vary).
            let fits = shape.len() == sent.shape.len() + 1
                && shape[1..]
                    .iter()
                    .zip(&sent.shape)
                    .all(|(&d, &n)| d < 0 || usize::try_from(d) == Ok(n));
            if !fits {
                problems.push(InputProblem::Shape {
                    name: sent.name.clone(),
                    model: shape.clone(),
                    sent: sent.shape.clone(),
                });
            }
        }
    }
    for m in &model.inputs {
        if !inputs.iter().any(|i| i.name == m.name) {
            problems.push(InputProblem::Missing {
                name: m.name.clone(),
            });
        }
    }
    problems
}

/// A dimension written as a number or a numeric string (TF Serving writes int64 as strings).
fn dim(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn input(name: &str, datatype: &str, shape: Option<Vec<i64>>) -> ModelInput {
    ModelInput {
        name: name.to_string(),
        datatype: datatype.to_string(),
        dtype: datatype.parse().ok(),
        shape,
    }
}

/// Reads an Open Inference Protocol model metadata document:
/// `{"name", "versions", "platform", "inputs": [{"name", "datatype", "shape"}], "outputs"}`.
pub fn parse_kserve(body: &[u8]) -> Result<ModelMetadata, String> {
    let v: Value = serde_json::from_slice(body).map_err(|e| format!("not JSON: {e}"))?;
    let inputs = v
        .get("inputs")
        .and_then(Value::as_array)
        .ok_or("no \"inputs\" list")?;
    let inputs = inputs
        .iter()
        .map(|i| {
            let name = i
                .get("name")
                .and_then(Value::as_str)
                .ok_or("an input without a name")?;
            let datatype = i
                .get("datatype")
                .and_then(Value::as_str)
                .ok_or_else(|| format!("input {name:?} has no datatype"))?;
            let shape = i
                .get("shape")
                .and_then(Value::as_array)
                .ok_or_else(|| format!("input {name:?} has no shape"))?
                .iter()
                .map(dim)
                .collect::<Option<Vec<i64>>>()
                .ok_or_else(|| format!("input {name:?} has a shape that is not integers"))?;
            Ok(input(name, datatype, Some(shape)))
        })
        .collect::<Result<_, String>>()?;
    Ok(ModelMetadata {
        protocol: Protocol::KServeV2,
        inputs,
    })
}

/// Reads TF Serving's `GET /v1/models/NAME/metadata` document, taking the inputs of
/// `signature` (`serving_default` when `None`).
pub fn parse_tf_serving(body: &[u8], signature: Option<&str>) -> Result<ModelMetadata, String> {
    let v: Value = serde_json::from_slice(body).map_err(|e| format!("not JSON: {e}"))?;
    let defs = v
        .pointer("/metadata/signature_def/signature_def")
        .and_then(Value::as_object)
        .ok_or("no metadata.signature_def.signature_def")?;
    let wanted = signature.unwrap_or("serving_default");
    let sig = defs.get(wanted).ok_or_else(|| {
        let mut has: Vec<&str> = defs
            .keys()
            .map(String::as_str)
            .filter(|k| !k.starts_with("__"))
            .collect();
        has.sort();
        format!("the model has no signature {wanted:?} (it has {has:?})")
    })?;
    let inputs = sig
        .get("inputs")
        .and_then(Value::as_object)
        .ok_or_else(|| format!("signature {wanted:?} has no inputs"))?;
    let mut inputs = inputs
        .iter()
        .map(|(name, i)| {
            let datatype = i
                .get("dtype")
                .and_then(Value::as_str)
                .ok_or_else(|| format!("input {name:?} has no dtype"))?;
            let ts = i.get("tensor_shape");
            let unknown_rank = ts
                .and_then(|t| t.get("unknown_rank"))
                .and_then(Value::as_bool)
                .unwrap_or(false);
            let shape = if unknown_rank || ts.is_none() {
                None
            } else {
                let dims = ts.and_then(|t| t.get("dim")).and_then(Value::as_array);
                Some(
                    dims.map(|d| d.as_slice())
                        .unwrap_or_default()
                        .iter()
                        .map(|d| d.get("size").map_or(Some(-1), dim))
                        .collect::<Option<Vec<i64>>>()
                        .ok_or_else(|| {
                            format!("input {name:?} has a dimension that is not an integer")
                        })?,
                )
            };
            Ok(input(name, datatype, shape))
        })
        .collect::<Result<Vec<_>, String>>()?;
    inputs.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(ModelMetadata {
        protocol: Protocol::TfServing,
        inputs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sent(name: &str, dtype: DataType, shape: &[usize]) -> InputDescription {
        InputDescription {
            name: name.into(),
            dtype,
            shape: shape.to_vec(),
        }
    }

    /// Triton's answer for a model with max_batch_size > 0 (its batch dimension is -1).
    const TRITON: &str = r#"{"name":"unet","versions":["1"],"platform":"onnxruntime_onnx",
        "inputs":[{"name":"x","datatype":"FP32","shape":[-1,256,256,3]}],
        "outputs":[{"name":"y","datatype":"FP32","shape":[-1,256,256,1]}]}"#;

    /// TF Serving's answer (int64 sizes as strings, an init-op signature beside the default).
    const TF_SERVING: &str = r#"{"model_spec":{"name":"m","signature_name":"","version":"3"},
        "metadata":{"signature_def":{"signature_def":{
          "__saved_model_init_op":{"inputs":{},"outputs":{"__saved_model_init_op":{"dtype":"DT_INVALID","tensor_shape":{"dim":[],"unknown_rank":true},"name":"NoOp"}},"method_name":""},
          "serving_default":{"inputs":{"x":{"dtype":"DT_FLOAT","tensor_shape":{"dim":[{"size":"-1","name":""},{"size":"256","name":""},{"size":"256","name":""},{"size":"3","name":""}],"unknown_rank":false},"name":"serving_default_x:0"}},
            "outputs":{"y":{"dtype":"DT_FLOAT","tensor_shape":{"dim":[{"size":"-1","name":""}],"unknown_rank":false},"name":"StatefulPartitionedCall:0"}},
            "method_name":"tensorflow/serving/predict"}}}}}"#;

    #[test]
    fn kserve_metadata_is_read_and_checked() {
        let m = parse_kserve(TRITON.as_bytes()).unwrap();
        assert_eq!(
            m.inputs,
            vec![ModelInput {
                name: "x".into(),
                datatype: "FP32".into(),
                dtype: Some(DataType::Float32),
                shape: Some(vec![-1, 256, 256, 3]),
            }]
        );
        assert!(compare(&m, &[sent("x", DataType::Float32, &[256, 256, 3])]).is_empty());
        let p = compare(&m, &[sent("x", DataType::Uint8, &[256, 256, 3])]);
        assert_eq!(
            join(&p),
            r#"input "x": the model takes FP32 (float32), the job would send UINT8; set "inputTypeOverride": {"x": "float32"} in the spec"#
        );
    }

    #[test]
    fn tf_serving_metadata_is_read_and_checked() {
        let m = parse_tf_serving(TF_SERVING.as_bytes(), None).unwrap();
        assert_eq!(m.inputs.len(), 1);
        assert_eq!(m.inputs[0].shape, Some(vec![-1, 256, 256, 3]));
        let p = compare(&m, &[sent("x", DataType::Uint8, &[128, 128, 3])]);
        assert_eq!(
            join(&p),
            "input \"x\": the model takes DT_FLOAT (float32), the job would send DT_UINT8; set \"inputTypeOverride\": {\"x\": \"float32\"} in the spec; \
             input \"x\": the model takes shape [-1, 256, 256, 3], the job would send [batch, 128, 128, 3]; the tile with its overlap must match the model's fixed dimensions"
        );
        let err = parse_tf_serving(TF_SERVING.as_bytes(), Some("predict")).unwrap_err();
        assert_eq!(
            err,
            "the model has no signature \"predict\" (it has [\"serving_default\"])"
        );
    }

    #[test]
    fn free_dimensions_unknown_ranks_and_names() {
        let free = ModelMetadata {
            protocol: Protocol::KServeV2,
            inputs: vec![
                input("a", "INT16", Some(vec![-1, -1, -1, 2])),
                input("b", "BF16", None),
            ],
        };
        let p = compare(
            &free,
            &[
                sent("a", DataType::Int16, &[17, 9, 2]),
                sent("c", DataType::Float32, &[1]),
            ],
        );
        assert_eq!(
            p,
            vec![
                InputProblem::Unexpected {
                    name: "c".into(),
                    model_inputs: vec!["a".into(), "b".into()]
                },
                InputProblem::Missing { name: "b".into() },
            ]
        );
        let p = compare(
            &free,
            &[
                sent("a", DataType::Int16, &[17, 9, 3]),
                sent("b", DataType::Float32, &[4]),
            ],
        );
        assert_eq!(
            join(&p),
            "input \"a\": the model takes shape [-1, -1, -1, 2], the job would send [batch, 17, 9, 3]; the tile with its overlap must match the model's fixed dimensions; \
             input \"b\": the model takes BF16, which this client cannot send (the job would send FP32)"
        );
        // A model without a batch dimension cannot take a batch.
        let unbatched = ModelMetadata {
            protocol: Protocol::KServeV2,
            inputs: vec![input("x", "FP32", Some(vec![8, 8]))],
        };
        let p = compare(&unbatched, &[sent("x", DataType::Float32, &[8, 8])]);
        assert!(
            join(&p).ends_with("(the model has no batch dimension)"),
            "{p:?}"
        );
    }

    #[test]
    fn documents_that_are_not_metadata_are_refused_with_the_reason() {
        assert!(parse_kserve(b"<html>").unwrap_err().starts_with("not JSON"));
        assert_eq!(parse_kserve(b"{}").unwrap_err(), "no \"inputs\" list");
        assert_eq!(
            parse_kserve(br#"{"inputs":[{"name":"x","datatype":"FP32","shape":["a"]}]}"#)
                .unwrap_err(),
            "input \"x\" has a shape that is not integers"
        );
        assert_eq!(
            parse_tf_serving(b"{}", None).unwrap_err(),
            "no metadata.signature_def.signature_def"
        );
    }
}
