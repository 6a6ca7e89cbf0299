//! The gRPC transports (tonic): TF Serving's `PredictionService/Predict` in the three Earth
//! Engine gRPC formats, and the Open Inference Protocol's `ModelInfer` with raw contents.
//! Message size limits are raised far above gRPC's 4 MiB default, which real tiles exceed.

use std::time::Duration;

use ee_tensor_proto::example::{bytes_feature, example, float_feature, int64_feature};
use ee_tensor_proto::payload::kserve_v2;
use ee_tensor_proto::proto::inference::grpc_inference_service_client::GrpcInferenceServiceClient;
use ee_tensor_proto::proto::inference::model_infer_request::{
    InferInputTensor, InferRequestedOutputTensor,
};
use ee_tensor_proto::proto::inference::{
    ModelInferRequest, ModelInferResponse, ModelMetadataRequest,
};
use ee_tensor_proto::proto::tensorflow::serving::model_spec::VersionChoice;
use ee_tensor_proto::proto::tensorflow::serving::prediction_service_client::PredictionServiceClient;
use ee_tensor_proto::proto::tensorflow::serving::{ModelSpec, PredictRequest, PredictResponse};
use ee_tensor_proto::proto::tensorflow::Feature;
use ee_tensor_proto::{tensor_proto, DataType, Instance, OutputSpec, PayloadFormat, Tensor};
use prost::Message;
use tokio::sync::OnceCell;
use tonic::transport::{Channel, Endpoint};
use tonic::Code;

use crate::auth::Secret;
use crate::endpoint::{check_url, display_url, ModelVersion, UrlKind};
use crate::metadata::{Description, ModelInput, ModelMetadata, Protocol};
use crate::retry::{grpc_failure, Failure};
use crate::transport::{check_count, Body, BoxFuture, Prepared, Reply, Transport};
use crate::{Error, Result};

/// Largest gRPC message either way.
pub const MAX_MESSAGE_BYTES: usize = 1 << 30;

pub use ee_tensor_proto::payload::EXAMPLES_INPUT;

/// Which service and model a gRPC transport talks to.
#[derive(Clone, Debug, PartialEq)]
pub enum GrpcModel {
    /// TF Serving `PredictionService`.
    TfServing {
        /// Model name.
        name: String,
        /// Version or label.
        version: Option<ModelVersion>,
        /// Signature.
        signature: Option<String>,
    },
    /// Open Inference Protocol `GRPCInferenceService`.
    KServe {
        /// Model name.
        name: String,
        /// Version.
        version: Option<String>,
    },
}

/// A gRPC transport.
pub struct GrpcTransport {
    address: String,
    channel: OnceCell<Channel>,
    format: PayloadFormat,
    model: GrpcModel,
    outputs: Vec<OutputSpec>,
    connect_timeout: Duration,
}

impl GrpcTransport {
    /// A transport to `address` (`http://host:port`; `grpc://` is taken as `http://`).
    pub fn new(
        address: String,
        format: PayloadFormat,
        model: GrpcModel,
        outputs: Vec<OutputSpec>,
    ) -> Result<Self> {
        let address = check_url("url", &address, UrlKind::Grpc)?;
        Endpoint::from_shared(address.clone()).map_err(|e| {
            Error::Config(format!(
                "invalid gRPC address {}: {e}",
                display_url(&address)
            ))
        })?;
        let ok = match &model {
            GrpcModel::TfServing { .. } => matches!(
                format,
                PayloadFormat::GrpcTfTensors
                    | PayloadFormat::GrpcSerializedTfTensors
                    | PayloadFormat::GrpcTfExamples
            ),
            GrpcModel::KServe { .. } => format == PayloadFormat::KServeV2Grpc,
        };
        if !ok {
            return Err(Error::Config(format!(
                "payload format {format} does not go with {model:?}"
            )));
        }
        Ok(GrpcTransport {
            address,
            channel: OnceCell::new(),
            format,
            model,
            outputs,
            connect_timeout: Duration::from_secs(10),
        })
    }

    /// Sets how long one attempt may take to connect (default 10 s).
    pub fn with_connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    async fn channel(&self) -> std::result::Result<Channel, Failure> {
        self.channel
            .get_or_try_init(|| async {
                let endpoint = Endpoint::from_shared(self.address.clone())
                    .map_err(|e| Failure::client(e.to_string()))?;
                Ok(endpoint
                    .connect_timeout(self.connect_timeout)
                    .tcp_nodelay(true)
                    // Tiles are megabytes: HTTP/2's 64 KiB default window would make every
                    // request wait for window updates.
                    .initial_stream_window_size(Some(16 << 20))
                    .initial_connection_window_size(Some(64 << 20))
                    .connect_lazy())
            })
            .await
            .cloned()
    }

    fn model_spec(&self) -> ModelSpec {
        match &self.model {
            GrpcModel::TfServing {
                name,
                version,
                signature,
            } => ModelSpec {
                name: name.clone(),
                version_choice: version.as_ref().map(|v| match v {
                    ModelVersion::Number(n) => VersionChoice::Version(*n),
                    ModelVersion::Label(l) => VersionChoice::VersionLabel(l.clone()),
                }),
                signature_name: signature.clone().unwrap_or_default(),
            },
            GrpcModel::KServe { name, .. } => ModelSpec {
                name: name.clone(),
                ..Default::default()
            },
        }
    }

    fn decode_predict(
        &self,
        response: PredictResponse,
        sent: usize,
    ) -> std::result::Result<Vec<Instance>, Failure> {
        let answer = Failure::answer;
        let names: Vec<(String, Option<DataType>)> = if self.outputs.is_empty() {
            let mut all: Vec<String> = response.outputs.keys().cloned().collect();
            all.sort();
            all.into_iter().map(|n| (n, None)).collect()
        } else {
            self.outputs
                .iter()
                .map(|o| (o.name.clone(), Some(o.dtype)))
                .collect()
        };
        let mut rows = vec![Instance::new(); sent];
        for (name, dtype) in names {
            let proto = response.outputs.get(&name).ok_or_else(|| {
                let mut has: Vec<&String> = response.outputs.keys().collect();
                has.sort();
                answer(format!(
                    "the response lacks output {name:?} (it has: {has:?})"
                ))
            })?;
            let t = tensor_proto::from_proto(proto)
                .map_err(|e| answer(format!("output {name:?}: {e}")))?;
            let parts: Vec<Tensor> = if self.format == PayloadFormat::GrpcSerializedTfTensors {
                let strings = t.strings().ok_or_else(|| {
                    answer(format!(
                        "output {name:?} is {} but serialized tensors are strings",
                        t.dtype()
                    ))
                })?;
                strings
                    .iter()
                    .enumerate()
                    .map(|(i, s)| match dtype {
                        Some(d) => tensor_proto::deserialize_expecting(
                            s,
                            d,
                            &format!("output {name:?} of instance {i}"),
                        ),
                        None => tensor_proto::deserialize(s),
                    })
                    .collect::<std::result::Result<_, _>>()
                    .map_err(|e| answer(e.to_string()))?
            } else {
                if let Some(d) = dtype {
                    tensor_proto::expect_dtype(&t, d, &format!("output {name:?}"))
                        .map_err(|e| answer(e.to_string()))?;
                }
                t.unstack()
                    .map_err(|e| answer(format!("output {name:?}: {e}")))?
            };
            if parts.len() != sent {
                return Err(answer(format!(
                    "{sent} instances were sent but output {name:?} has {} rows",
                    parts.len()
                )));
            }
            for (row, part) in rows.iter_mut().zip(parts) {
                row.push(name.clone(), part);
            }
        }
        Ok(rows)
    }

    fn decode_infer(
        &self,
        response: ModelInferResponse,
        sent: usize,
    ) -> std::result::Result<Vec<Instance>, Failure> {
        let answer = Failure::answer;
        let mut batched = Instance::new();
        for (i, out) in response.outputs.iter().enumerate() {
            let dtype: DataType = out.datatype.parse().map_err(|_| {
                answer(format!(
                    "output {:?} has unsupported datatype {:?}",
                    out.name, out.datatype
                ))
            })?;
            let shape: Vec<usize> = out
                .shape
                .iter()
                .map(|&d| usize::try_from(d))
                .collect::<std::result::Result<_, _>>()
                .map_err(|_| answer(format!("output {:?} has a negative dimension", out.name)))?;
            if let Some(spec) = self.outputs.iter().find(|o| o.name == out.name) {
                if spec.dtype != dtype {
                    return Err(answer(format!(
                        "output {:?}: expected dtype {}, found {dtype}",
                        out.name, spec.dtype
                    )));
                }
            } else if !self.outputs.is_empty() {
                continue;
            }
            let raw = response.raw_output_contents.get(i).ok_or_else(|| {
                answer(format!("output {:?} has no raw_output_contents", out.name))
            })?;
            let t = kserve_v2::tensor_from_raw_contents(
                dtype,
                &shape,
                raw,
                &format!("output {:?}", out.name),
            )
            .map_err(|e| answer(e.to_string()))?;
            batched.push(out.name.clone(), t);
        }
        for spec in &self.outputs {
            if batched.get(&spec.name).is_none() {
                let has: Vec<&str> = response.outputs.iter().map(|o| o.name.as_str()).collect();
                return Err(answer(format!(
                    "the response lacks output {:?} (it has: {has:?})",
                    spec.name
                )));
            }
        }
        check_count(
            Instance::unstack(&batched).map_err(|e| answer(e.to_string()))?,
            sent,
        )
    }
}

/// A tf.train.Example of one instance: floats as `float_list`, integers and bools as
/// `int64_list`, strings as `bytes_list`, each flattened row-major.
fn instance_example(inst: &Instance) -> Result<Vec<u8>> {
    let features: Vec<(String, Feature)> = inst
        .iter()
        .map(|(name, t)| {
            let f = match t {
                Tensor::String(a) => bytes_feature(a.iter().cloned().collect::<Vec<_>>()),
                Tensor::F16(a) => float_feature(a.iter().map(|v| v.to_f32()).collect::<Vec<_>>()),
                Tensor::F32(a) => float_feature(a.iter().copied().collect::<Vec<_>>()),
                Tensor::F64(a) => float_feature(a.iter().map(|&v| v as f32).collect::<Vec<_>>()),
                other => {
                    let bytes = other.to_le_bytes().unwrap_or_default();
                    let as_i64 = Tensor::from_le_bytes(other.dtype(), other.shape(), &bytes)?;
                    int64_feature(integers(&as_i64))
                }
            };
            Ok((name.to_string(), f))
        })
        .collect::<Result<_>>()?;
    Ok(example(features).encode_to_vec())
}

fn integers(t: &Tensor) -> Vec<i64> {
    match t {
        Tensor::I8(a) => a.iter().map(|&v| v as i64).collect(),
        Tensor::I16(a) => a.iter().map(|&v| v as i64).collect(),
        Tensor::I32(a) => a.iter().map(|&v| v as i64).collect(),
        Tensor::I64(a) => a.iter().copied().collect(),
        Tensor::U8(a) => a.iter().map(|&v| v as i64).collect(),
        Tensor::U16(a) => a.iter().map(|&v| v as i64).collect(),
        Tensor::U32(a) => a.iter().map(|&v| v as i64).collect(),
        Tensor::U64(a) => a.iter().map(|&v| v as i64).collect(),
        Tensor::Bool(a) => a.iter().map(|&v| v as i64).collect(),
        _ => Vec::new(),
    }
}

/// Sets the deadline and the bearer token on a request.
fn with_meta<T>(
    mut r: tonic::Request<T>,
    deadline: Duration,
    token: Option<&Secret>,
) -> std::result::Result<tonic::Request<T>, Failure> {
    r.set_timeout(deadline);
    if let Some(t) = token {
        let v = format!("Bearer {}", t.expose()).parse().map_err(|_| {
            Failure::client("the bearer token holds characters metadata cannot carry")
        })?;
        r.metadata_mut().insert("authorization", v);
    }
    Ok(r)
}

impl Transport for GrpcTransport {
    fn prepare(&self, batch: &[Instance]) -> Result<Prepared> {
        let first = batch
            .first()
            .ok_or_else(|| Error::Config("an empty batch cannot be sent".into()))?;
        let body = match self.format {
            PayloadFormat::GrpcTfTensors => {
                let stacked = Instance::stack(batch)?;
                let inputs = stacked
                    .iter()
                    .map(|(n, t)| (n.to_string(), tensor_proto::to_proto(t)))
                    .collect();
                Body::TfPredict(PredictRequest {
                    model_spec: Some(self.model_spec()),
                    inputs,
                    output_filter: Vec::new(),
                })
            }
            PayloadFormat::GrpcSerializedTfTensors => {
                let mut inputs = std::collections::HashMap::new();
                for (name, _) in first.iter() {
                    let values = batch
                        .iter()
                        .map(|inst| {
                            inst.get(name).map(tensor_proto::serialize).ok_or_else(|| {
                                Error::Config(format!("an instance lacks band {name:?}"))
                            })
                        })
                        .collect::<Result<Vec<_>>>()?;
                    let t = Tensor::from_strings(&[values.len()], values)?;
                    inputs.insert(name.to_string(), tensor_proto::to_proto(&t));
                }
                Body::TfPredict(PredictRequest {
                    model_spec: Some(self.model_spec()),
                    inputs,
                    output_filter: Vec::new(),
                })
            }
            PayloadFormat::GrpcTfExamples => {
                let examples = batch
                    .iter()
                    .map(instance_example)
                    .collect::<Result<Vec<_>>>()?;
                let t = Tensor::from_strings(&[examples.len()], examples)?;
                let inputs = [(EXAMPLES_INPUT.to_string(), tensor_proto::to_proto(&t))]
                    .into_iter()
                    .collect();
                Body::TfPredict(PredictRequest {
                    model_spec: Some(self.model_spec()),
                    inputs,
                    output_filter: Vec::new(),
                })
            }
            _ => {
                let GrpcModel::KServe { name, version } = &self.model else {
                    return Err(Error::Config("KSERVE_V2_GRPC needs a KServe model".into()));
                };
                let stacked = Instance::stack(batch)?;
                let mut inputs = Vec::new();
                let mut raw = Vec::new();
                for (n, t) in stacked.iter() {
                    inputs.push(InferInputTensor {
                        name: n.to_string(),
                        datatype: t.dtype().kserve_name().to_string(),
                        shape: t.shape().iter().map(|&d| d as i64).collect(),
                        ..Default::default()
                    });
                    let mut bytes = Vec::new();
                    kserve_v2::write_raw_contents(t, &mut bytes);
                    raw.push(bytes::Bytes::from(bytes));
                }
                Body::KServeInfer(ModelInferRequest {
                    model_name: name.clone(),
                    model_version: version.clone().unwrap_or_default(),
                    inputs,
                    outputs: self
                        .outputs
                        .iter()
                        .map(|o| InferRequestedOutputTensor {
                            name: o.name.clone(),
                            ..Default::default()
                        })
                        .collect(),
                    raw_input_contents: raw,
                    ..Default::default()
                })
            }
        };
        let size = match &body {
            Body::TfPredict(m) => m.encoded_len(),
            Body::KServeInfer(m) => m.encoded_len(),
            Body::Http { bytes, .. } => bytes.len(),
        };
        Ok(Prepared {
            size,
            instances: batch.len(),
            body,
        })
    }

    fn send<'a>(
        &'a self,
        request: &'a Prepared,
        token: Option<&'a Secret>,
        deadline: Duration,
    ) -> BoxFuture<'a, std::result::Result<Reply, Failure>> {
        Box::pin(async move {
            let channel = self.channel().await?;
            let call = async {
                match &request.body {
                    Body::TfPredict(m) => {
                        let mut client = PredictionServiceClient::new(channel)
                            .max_decoding_message_size(MAX_MESSAGE_BYTES)
                            .max_encoding_message_size(MAX_MESSAGE_BYTES);
                        let response = client
                            .predict(with_meta(tonic::Request::new(m.clone()), deadline, token)?)
                            .await
                            .map_err(|s| grpc_failure(&s))?
                            .into_inner();
                        let received = response.encoded_len();
                        let decode_start = std::time::Instant::now();
                        let instances = self.decode_predict(response, request.instances)?;
                        Ok(Reply {
                            instances,
                            bytes_received: received,
                            decode_time: decode_start.elapsed(),
                        })
                    }
                    Body::KServeInfer(m) => {
                        let mut client = GrpcInferenceServiceClient::new(channel)
                            .max_decoding_message_size(MAX_MESSAGE_BYTES)
                            .max_encoding_message_size(MAX_MESSAGE_BYTES);
                        let response = client
                            .model_infer(with_meta(
                                tonic::Request::new(m.clone()),
                                deadline,
                                token,
                            )?)
                            .await
                            .map_err(|s| grpc_failure(&s))?
                            .into_inner();
                        let received = response.encoded_len();
                        let decode_start = std::time::Instant::now();
                        let instances = self.decode_infer(response, request.instances)?;
                        Ok(Reply {
                            instances,
                            bytes_received: received,
                            decode_time: decode_start.elapsed(),
                        })
                    }
                    Body::Http { .. } => Err(Failure::client(
                        "a gRPC transport was handed an HTTP request",
                    )),
                }
            };
            match tokio::time::timeout(deadline.saturating_add(Duration::from_millis(50)), call)
                .await
            {
                Ok(result) => result,
                Err(_) => Err(Failure::timeout(deadline)),
            }
        })
    }

    fn describe(&self) -> String {
        let model = match &self.model {
            GrpcModel::TfServing { name, .. } | GrpcModel::KServe { name, .. } => name,
        };
        format!("{} (gRPC, model {model})", display_url(&self.address))
    }

    fn model_metadata<'a>(
        &'a self,
        token: Option<&'a Secret>,
        deadline: Duration,
    ) -> BoxFuture<'a, std::result::Result<Description, Failure>> {
        Box::pin(async move {
            let GrpcModel::KServe { name, version } = &self.model else {
                return Ok(Description::Unavailable(
                    "TF Serving's gRPC GetModelMetadata is not built into this client".into(),
                ));
            };
            let channel = self.channel().await?;
            let mut client = GrpcInferenceServiceClient::new(channel);
            let request = ModelMetadataRequest {
                name: name.clone(),
                version: version.clone().unwrap_or_default(),
            };
            let call =
                client.model_metadata(with_meta(tonic::Request::new(request), deadline, token)?);
            let response = match tokio::time::timeout(
                deadline.saturating_add(Duration::from_millis(50)),
                call,
            )
            .await
            {
                Err(_) => return Err(Failure::timeout(deadline)),
                Ok(Err(s)) if matches!(s.code(), Code::NotFound | Code::Unimplemented) => {
                    return Ok(Description::Unavailable(format!(
                        "ModelMetadata answered {:?}: {}",
                        s.code(),
                        s.message()
                    )))
                }
                Ok(Err(s)) => return Err(grpc_failure(&s)),
                Ok(Ok(r)) => r.into_inner(),
            };
            Ok(Description::Model(ModelMetadata {
                protocol: Protocol::KServeV2,
                inputs: response
                    .inputs
                    .into_iter()
                    .map(|t| ModelInput {
                        dtype: t.datatype.parse().ok(),
                        name: t.name,
                        datatype: t.datatype,
                        shape: Some(t.shape),
                    })
                    .collect(),
            }))
        })
    }
}
