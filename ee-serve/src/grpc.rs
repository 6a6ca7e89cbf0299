//! The gRPC services: TF Serving's `PredictionService/Predict` and KServe v2's
//! `GRPCInferenceService` (`ModelInfer`, `ServerLive`, `ServerReady`, `ModelReady`,
//! `ServerMetadata`, `ModelMetadata`).
//!
//! `Predict` takes, per input, either one batched numeric TensorProto (`GRPC_TF_TENSORS`)
//! or a string tensor of one serialized TensorProto per instance
//! (`GRPC_SERIALIZED_TF_TENSORS`), and answers in the same form. A string tensor named
//! `input` holding tf.train.Examples (`GRPC_TF_EXAMPLES`) is taken when every input's
//! per-instance shape is fixed, so the flat feature lists can be shaped.
//!
//! Admission happens before tonic reads the body: [`Admit`] wraps each generated server and
//! takes the node's admission slot for `Predict` and `ModelInfer` when a call's headers
//! arrive, answering RESOURCE_EXHAUSTED (with `retry-after`) at once when the node is full, so
//! a refused call costs no decoding and its body is never buffered beyond the HTTP/2 window.
//! The slot is held until the handler has answered.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use ee_tensor_proto::payload::{kserve_v2, EXAMPLES_INPUT};
use ee_tensor_proto::proto::inference::grpc_inference_service_server::GrpcInferenceService;
use ee_tensor_proto::proto::inference::{
    model_infer_response, model_metadata_response, InferTensorContents, ModelInferRequest,
    ModelInferResponse, ModelMetadataRequest, ModelMetadataResponse, ModelReadyRequest,
    ModelReadyResponse, ServerLiveRequest, ServerLiveResponse, ServerMetadataRequest,
    ServerMetadataResponse, ServerReadyRequest, ServerReadyResponse,
};
use ee_tensor_proto::proto::tensorflow::feature::Kind;
use ee_tensor_proto::proto::tensorflow::serving::prediction_service_server::PredictionService;
use ee_tensor_proto::proto::tensorflow::serving::{ModelSpec, PredictRequest, PredictResponse};
use ee_tensor_proto::proto::tensorflow::Example;
use ee_tensor_proto::{tensor_proto, DataType, Instance, Tensor};
use prost::Message;
use tonic::codegen::{http, Service};
use tonic::server::NamedService;
use tonic::{Request, Response, Status};

use crate::error::Error;
use crate::signature::Signature;
use crate::state::Shared;

/// Both gRPC services over one node.
#[derive(Clone)]
pub struct Services {
    pub(crate) node: Arc<Shared>,
}

fn bad(m: impl Into<String>) -> Status {
    Error::BadRequest(m.into()).grpc_status()
}

impl Services {
    fn check_model(&self, name: &str, version: &str) -> Result<(), Status> {
        self.node
            .batcher
            .signature()
            .check_model(name, Some(version))
            .map_err(|e| e.grpc_status())
    }

    /// Runs the rows, counting and logging like the REST side.
    async fn run(&self, rows: Vec<Instance>, what: &str) -> Result<Vec<Instance>, Status> {
        let id = self.node.next_id();
        let started = Instant::now();
        let n = rows.len();
        let result = self.node.batcher.predict(rows, id).await;
        let stats = self.node.batcher.stats();
        match &result {
            Ok(_) => stats.answered.fetch_add(1, Ordering::Relaxed),
            Err(Error::BadRequest(_)) => stats.bad.fetch_add(1, Ordering::Relaxed),
            Err(_) => 0,
        };
        tracing::info!(
            request = id,
            rpc = what,
            ok = result.is_ok(),
            instances = n,
            ms = started.elapsed().as_secs_f64() * 1e3,
            "request"
        );
        result.map_err(|e| e.grpc_status())
    }
}

/// A generated gRPC server behind the node's admission: `Predict` and `ModelInfer` calls take
/// an admission slot before their body is read or decoded, and hold it until answered; when
/// the node is full they are answered RESOURCE_EXHAUSTED at once. Other calls (health,
/// metadata) pass as they are.
#[derive(Clone)]
pub(crate) struct Admit<S> {
    inner: S,
    node: Arc<Shared>,
}

impl<S> Admit<S> {
    pub(crate) fn new(inner: S, node: Arc<Shared>) -> Self {
        Admit { inner, node }
    }
}

/// Whether a gRPC method runs the model (and so is admission-limited).
fn admitted(path: &str) -> bool {
    matches!(
        path,
        "/tensorflow.serving.PredictionService/Predict"
            | "/inference.GRPCInferenceService/ModelInfer"
    )
}

impl<S: NamedService> NamedService for Admit<S> {
    const NAME: &'static str = S::NAME;
}

impl<S, B> Service<http::Request<B>> for Admit<S>
where
    S: Service<http::Request<B>, Response = http::Response<tonic::body::Body>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let admission = if admitted(request.uri().path()) {
            match self.node.batcher.admit() {
                Ok(a) => Some(a),
                Err(e) => {
                    let refused = e.grpc_status().into_http();
                    return Box::pin(async move { Ok(refused) });
                }
            }
        } else {
            None
        };
        // The inner service was made ready by poll_ready; a fresh clone takes its place.
        let fresh = self.inner.clone();
        let mut ready = std::mem::replace(&mut self.inner, fresh);
        Box::pin(async move {
            let answer = ready.call(request).await;
            drop(admission);
            answer
        })
    }
}

/// How a `PredictRequest` carried its inputs, so the answer comes back the same way.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Carried {
    Batched,
    Serialized,
}

fn decode_predict(
    sig: &Signature,
    inputs: HashMap<String, ee_tensor_proto::proto::tensorflow::TensorProto>,
) -> Result<(Vec<Instance>, Carried), Status> {
    if inputs.is_empty() {
        return Err(bad("the request has no inputs"));
    }
    let mut decoded = Vec::with_capacity(inputs.len());
    for (name, proto) in &inputs {
        let t = tensor_proto::from_proto(proto).map_err(|e| bad(format!("input {name:?}: {e}")))?;
        decoded.push((name.clone(), t));
    }
    decoded.sort_by(|a, b| a.0.cmp(&b.0));
    let all_strings = decoded.iter().all(|(_, t)| t.dtype() == DataType::String);
    let any_string_port = sig.inputs.iter().any(|p| p.dtype == DataType::String);
    if all_strings && !any_string_port {
        if decoded.len() == 1
            && decoded[0].0 == EXAMPLES_INPUT
            && !sig.inputs.iter().any(|p| p.name == EXAMPLES_INPUT)
        {
            return Ok((examples(sig, &decoded[0].1)?, Carried::Serialized));
        }
        let mut rows: Vec<Instance> = Vec::new();
        for (name, t) in &decoded {
            let strings = t.strings().ok_or_else(|| bad("string tensor expected"))?;
            if t.shape().len() != 1 {
                return Err(bad(format!(
                    "input {name:?}: serialized tensors come as a vector, one per instance, not shape {:?}",
                    t.shape()
                )));
            }
            if rows.is_empty() {
                rows = vec![Instance::new(); strings.len()];
            } else if rows.len() != strings.len() {
                return Err(bad(format!(
                    "input {name:?} has {} instances but others have {}",
                    strings.len(),
                    rows.len()
                )));
            }
            for (i, (row, bytes)) in rows.iter_mut().zip(strings.iter()).enumerate() {
                let part = tensor_proto::deserialize(bytes)
                    .map_err(|e| bad(format!("input {name:?}, instance {i}: {e}")))?;
                row.push(name.clone(), part);
            }
        }
        return Ok((rows, Carried::Serialized));
    }
    let batched = decoded
        .into_iter()
        .fold(Instance::new(), |i, (n, t)| i.with(n, t));
    let rows = Instance::unstack(&batched).map_err(|e| bad(format!("inputs: {e}")))?;
    Ok((rows, Carried::Batched))
}

/// tf.train.Examples with one feature per input, shaped by the signature's fixed dimensions.
fn examples(sig: &Signature, t: &Tensor) -> Result<Vec<Instance>, Status> {
    let strings = t.strings().ok_or_else(|| bad("string tensor expected"))?;
    strings
        .iter()
        .enumerate()
        .map(|(i, bytes)| {
            let ex = Example::decode(bytes.as_slice())
                .map_err(|e| bad(format!("example {i}: not a tf.train.Example: {e}")))?;
            let features = ex.features.map(|f| f.feature).unwrap_or_default();
            let mut row = Instance::new();
            for port in &sig.inputs {
                let dims: Option<Vec<usize>> = port.dims.iter().copied().collect();
                let dims = dims.ok_or_else(|| {
                    bad(format!(
                        "tf.train.Examples carry flat lists, but input {:?} has free dimensions; send tensors instead",
                        port.name
                    ))
                })?;
                let kind = features
                    .get(&port.name)
                    .and_then(|f| f.kind.as_ref())
                    .ok_or_else(|| bad(format!("example {i} lacks feature {:?}", port.name)))?;
                let flat = match kind {
                    Kind::FloatList(l) => Tensor::from_vec(&[l.value.len()], l.value.clone()),
                    Kind::Int64List(l) => Tensor::from_vec(&[l.value.len()], l.value.clone()),
                    Kind::BytesList(_) => {
                        return Err(bad(format!(
                            "example {i}, feature {:?}: bytes features cannot feed a numeric input",
                            port.name
                        )))
                    }
                }
                .and_then(|t| t.reshape(&dims))
                .map_err(|e| bad(format!("example {i}, feature {:?}: {e}", port.name)))?;
                let flat = ee_runtime::convert(&flat, port.dtype)
                    .map_err(|m| bad(format!("example {i}, feature {:?}: {m}", port.name)))?;
                row.push(port.name.clone(), flat);
            }
            Ok(row)
        })
        .collect()
}

#[tonic::async_trait]
impl PredictionService for Services {
    async fn predict(
        &self,
        request: Request<PredictRequest>,
    ) -> Result<Response<PredictResponse>, Status> {
        let req = request.into_inner();
        let spec = req.model_spec.unwrap_or_default();
        let version = match &spec.version_choice {
            Some(ee_tensor_proto::proto::tensorflow::serving::model_spec::VersionChoice::Version(v)) => v.to_string(),
            Some(ee_tensor_proto::proto::tensorflow::serving::model_spec::VersionChoice::VersionLabel(l)) => {
                return Err(Error::NotFound(format!(
                    "label {l:?} is not assigned; this node serves version 1 unlabelled"
                ))
                .grpc_status())
            }
            None => String::new(),
        };
        self.check_model(&spec.name, &version)?;
        if !spec.signature_name.is_empty() && spec.signature_name != "serving_default" {
            return Err(Error::NotFound(format!(
                "signature {:?} not found; this node serves \"serving_default\"",
                spec.signature_name
            ))
            .grpc_status());
        }
        let sig = self.node.batcher.signature();
        let (rows, carried) = decode_predict(sig, req.inputs)?;
        let rows = self.run(rows, "Predict").await?;
        let filter = &req.output_filter;
        let mut outputs = HashMap::new();
        for port in &sig.outputs {
            if !filter.is_empty() && !filter.contains(&port.name) {
                continue;
            }
            let parts: Vec<&Tensor> = rows
                .iter()
                .map(|r| {
                    r.get(&port.name)
                        .ok_or_else(|| Status::internal("missing output"))
                })
                .collect::<Result<_, _>>()?;
            let t = match carried {
                Carried::Batched => {
                    Tensor::stack(&parts).map_err(|e| Status::internal(e.to_string()))?
                }
                Carried::Serialized => Tensor::from_strings(
                    &[parts.len()],
                    parts.iter().map(|t| tensor_proto::serialize(t)).collect(),
                )
                .map_err(|e| Status::internal(e.to_string()))?,
            };
            outputs.insert(port.name.clone(), tensor_proto::to_proto(&t));
        }
        for name in filter {
            if !sig.outputs.iter().any(|p| &p.name == name) {
                return Err(bad(format!(
                    "output_filter names {name:?}, which is not an output of the model"
                )));
            }
        }
        Ok(Response::new(PredictResponse {
            outputs,
            model_spec: Some(ModelSpec {
                name: sig.model_name.clone(),
                version_choice: Some(
                    ee_tensor_proto::proto::tensorflow::serving::model_spec::VersionChoice::Version(
                        1,
                    ),
                ),
                signature_name: "serving_default".into(),
            }),
        }))
    }
}

fn contents_tensor(
    dtype: DataType,
    shape: &[usize],
    c: &InferTensorContents,
    what: &str,
) -> Result<Tensor, Status> {
    let fail = |m: String| bad(format!("{what}: {m}"));
    let t = match dtype {
        DataType::Float32 => Tensor::from_vec(shape, c.fp32_contents.clone()),
        DataType::Float64 => Tensor::from_vec(shape, c.fp64_contents.clone()),
        // The narrow integers travel widened in int_contents / uint_contents.
        DataType::Int32 | DataType::Int8 | DataType::Int16 => {
            Tensor::from_vec(shape, c.int_contents.clone())
        }
        DataType::Uint32 | DataType::Uint8 | DataType::Uint16 => {
            Tensor::from_vec(shape, c.uint_contents.clone())
        }
        DataType::Int64 => Tensor::from_vec(shape, c.int64_contents.clone()),
        DataType::Uint64 => Tensor::from_vec(shape, c.uint64_contents.clone()),
        DataType::Bool => Tensor::from_vec(shape, c.bool_contents.clone()),
        DataType::String => Tensor::from_strings(shape, c.bytes_contents.clone()),
        DataType::Float16 => {
            return Err(fail(
                "FP16 has no typed contents field; send it in raw_input_contents".into(),
            ))
        }
    }
    .map_err(|e| fail(e.to_string()))?;
    if t.dtype() == dtype {
        Ok(t)
    } else {
        ee_runtime::convert(&t, dtype).map_err(fail)
    }
}

#[tonic::async_trait]
impl GrpcInferenceService for Services {
    async fn server_live(
        &self,
        _: Request<ServerLiveRequest>,
    ) -> Result<Response<ServerLiveResponse>, Status> {
        Ok(Response::new(ServerLiveResponse { live: true }))
    }

    async fn server_ready(
        &self,
        _: Request<ServerReadyRequest>,
    ) -> Result<Response<ServerReadyResponse>, Status> {
        Ok(Response::new(ServerReadyResponse { ready: true }))
    }

    async fn model_ready(
        &self,
        request: Request<ModelReadyRequest>,
    ) -> Result<Response<ModelReadyResponse>, Status> {
        let r = request.into_inner();
        let ready = self.check_model(&r.name, &r.version).is_ok();
        Ok(Response::new(ModelReadyResponse { ready }))
    }

    async fn server_metadata(
        &self,
        _: Request<ServerMetadataRequest>,
    ) -> Result<Response<ServerMetadataResponse>, Status> {
        Ok(Response::new(ServerMetadataResponse {
            name: "ee-serve".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            extensions: vec!["binary_tensor_data".into()],
        }))
    }

    async fn model_metadata(
        &self,
        request: Request<ModelMetadataRequest>,
    ) -> Result<Response<ModelMetadataResponse>, Status> {
        let r = request.into_inner();
        self.check_model(&r.name, &r.version)?;
        let sig = self.node.batcher.signature();
        let ports = |ports: &[crate::signature::Port]| {
            ports
                .iter()
                .map(|p| model_metadata_response::TensorMetadata {
                    name: p.name.clone(),
                    datatype: p.dtype.kserve_name().into(),
                    shape: p.batched_shape(),
                })
                .collect()
        };
        Ok(Response::new(ModelMetadataResponse {
            name: sig.model_name.clone(),
            versions: vec!["1".into()],
            platform: "onnx".into(),
            inputs: ports(&sig.inputs),
            outputs: ports(&sig.outputs),
        }))
    }

    async fn model_infer(
        &self,
        request: Request<ModelInferRequest>,
    ) -> Result<Response<ModelInferResponse>, Status> {
        let req = request.into_inner();
        self.check_model(&req.model_name, &req.model_version)?;
        let raw = !req.raw_input_contents.is_empty();
        if raw && req.raw_input_contents.len() != req.inputs.len() {
            return Err(bad(format!(
                "{} inputs but {} raw_input_contents",
                req.inputs.len(),
                req.raw_input_contents.len()
            )));
        }
        let mut batched = Instance::new();
        for (i, input) in req.inputs.iter().enumerate() {
            let what = format!("input {:?}", input.name);
            let dtype: DataType = input
                .datatype
                .parse()
                .map_err(|_| bad(format!("{what}: unknown datatype {:?}", input.datatype)))?;
            let shape: Vec<usize> = input
                .shape
                .iter()
                .map(|&d| usize::try_from(d))
                .collect::<Result<_, _>>()
                .map_err(|_| bad(format!("{what}: negative dimension in {:?}", input.shape)))?;
            let t = if raw {
                kserve_v2::tensor_from_raw_contents(
                    dtype,
                    &shape,
                    &req.raw_input_contents[i],
                    &what,
                )
                .map_err(|e| bad(e.to_string()))?
            } else {
                let contents = input
                    .contents
                    .as_ref()
                    .ok_or_else(|| bad(format!("{what} has neither contents nor raw contents")))?;
                contents_tensor(dtype, &shape, contents, &what)?
            };
            batched.push(input.name.clone(), t);
        }
        let rows = Instance::unstack(&batched).map_err(|e| bad(format!("inputs: {e}")))?;
        let rows = self.run(rows, "ModelInfer").await?;
        let stacked = Instance::stack(&rows).map_err(|e| Status::internal(e.to_string()))?;
        let requested: Vec<(String, bool)> =
            req.outputs.iter().map(|o| (o.name.clone(), true)).collect();
        let selected =
            crate::signature::select_outputs(stacked, &requested).map_err(|e| e.grpc_status())?;
        let mut outputs = Vec::new();
        let mut raw_out = Vec::new();
        for (name, t) in selected.iter() {
            outputs.push(model_infer_response::InferOutputTensor {
                name: name.to_string(),
                datatype: t.dtype().kserve_name().into(),
                shape: t.shape().iter().map(|&d| d as i64).collect(),
                ..Default::default()
            });
            let mut bytes = Vec::new();
            kserve_v2::write_raw_contents(t, &mut bytes);
            raw_out.push(bytes::Bytes::from(bytes));
        }
        Ok(Response::new(ModelInferResponse {
            model_name: req.model_name,
            model_version: "1".into(),
            id: req.id,
            outputs,
            raw_output_contents: raw_out,
            ..Default::default()
        }))
    }
}
