//! Every transport against a real server on loopback: each HTTP payload format against an
//! axum server that decodes it, runs the identity model and answers in kind; both gRPC
//! services against a tonic server built from the same .proto files.

mod common;

use common::*;
use ee_predict_client::{
    AuthConfig, ClientConfig, Endpoint, ModelVersion, PredictClient, PredictorConfig,
};
use ee_tensor_proto::payload::kserve_v2;
use ee_tensor_proto::proto::inference::grpc_inference_service_server::{
    GrpcInferenceService, GrpcInferenceServiceServer,
};
use ee_tensor_proto::proto::inference::model_infer_response::InferOutputTensor;
use ee_tensor_proto::proto::inference::*;
use ee_tensor_proto::proto::tensorflow::serving::prediction_service_server::{
    PredictionService, PredictionServiceServer,
};
use ee_tensor_proto::proto::tensorflow::serving::{PredictRequest, PredictResponse};
use ee_tensor_proto::proto::tensorflow::{feature, Example};
use ee_tensor_proto::{tensor_proto, DataType, Instance, PayloadFormat, Tensor};
use prost::Message;
use tonic::{Request, Response, Status};

async fn round_trip(predictor: PredictorConfig, outputs: Vec<ee_tensor_proto::OutputSpec>) {
    let client = PredictClient::new(
        &predictor,
        outputs,
        AuthConfig::None,
        ClientConfig::default(),
    )
    .unwrap();
    let tiles: Vec<Instance> = (0..3).map(tile).collect();
    let answers = client
        .predict(&tiles, &labels(0..3))
        .await
        .unwrap_or_else(|e| panic!("{:?}: {e}", predictor.format));
    assert_eq!(answers.len(), 3);
    for (i, a) in answers.iter().enumerate() {
        let got = a
            .get("out")
            .unwrap_or_else(|| panic!("{:?}: no output in {a:?}", predictor.format));
        let want = tile(i).take("B1").unwrap();
        assert!(
            got.bit_eq(&want),
            "{:?} tile {i}: {got:?}",
            predictor.format
        );
    }
    assert_eq!(client.metrics().requests_ok, 1);
}

#[tokio::test]
async fn ai_platform_and_vertex_routes() {
    for format in [PayloadFormat::SerializedTfTensors, PayloadFormat::RawJson] {
        let s = spawn_http(format, "/v1/projects/p/models/m/versions/v1:predict").await;
        let endpoint = Endpoint::AiPlatform {
            project: "p".into(),
            model: "m".into(),
            version: Some("v1".into()),
            region: "us-central1".into(),
        };
        round_trip(
            PredictorConfig {
                endpoint,
                base_url: Some(format!("http://{}", s.addr)),
                format,
            },
            out_spec(),
        )
        .await;
    }
    let s = spawn_http(
        PayloadFormat::SerializedTfTensors,
        "/v1/projects/p/locations/europe-west4/endpoints/42:predict",
    )
    .await;
    let endpoint = Endpoint::Vertex {
        endpoint: "projects/p/locations/europe-west4/endpoints/42".into(),
        raw_predict: false,
    };
    round_trip(
        PredictorConfig {
            endpoint,
            base_url: Some(format!("http://{}", s.addr)),
            format: PayloadFormat::SerializedTfTensors,
        },
        out_spec(),
    )
    .await;
}

#[tokio::test]
async fn nd_arrays_come_back_channel_last() {
    let s = spawn_http(PayloadFormat::NdArrays, "/predict").await;
    let predictor = PredictorConfig {
        endpoint: Endpoint::Url(format!("http://{}/predict", s.addr)),
        base_url: None,
        format: PayloadFormat::NdArrays,
    };
    round_trip(predictor, out_spec()).await;
}

#[tokio::test]
async fn tf_serving_rest_and_kserve_rest() {
    let s = spawn_http(
        PayloadFormat::TfServingJson,
        "/v1/models/m/versions/3:predict",
    )
    .await;
    let endpoint = Endpoint::TfServing {
        url: format!("http://{}", s.addr),
        model: "m".into(),
        version: Some(ModelVersion::Number(3)),
        signature: Some("serving_default".into()),
    };
    round_trip(
        PredictorConfig {
            endpoint,
            base_url: None,
            format: PayloadFormat::TfServingJson,
        },
        out_spec(),
    )
    .await;
    for format in [PayloadFormat::KServeV2Json, PayloadFormat::KServeV2Binary] {
        let s = spawn_http(format, "/v2/models/m/versions/1/infer").await;
        let endpoint = Endpoint::KServeV2 {
            url: format!("http://{}", s.addr),
            model: "m".into(),
            version: Some("1".into()),
        };
        round_trip(
            PredictorConfig {
                endpoint,
                base_url: None,
                format,
            },
            out_spec(),
        )
        .await;
    }
}

#[tokio::test]
async fn bearer_tokens_reach_the_server() {
    let s = spawn_http(
        PayloadFormat::SerializedTfTensors,
        "/v1/projects/p/models/m:predict",
    )
    .await;
    std::env::set_var("EE_TEST_PROTOCOLS_TOKEN", "tok-123");
    let client = PredictClient::new(
        &ai_platform(s.addr),
        out_spec(),
        AuthConfig::BearerEnv {
            var: "EE_TEST_PROTOCOLS_TOKEN".into(),
        },
        ClientConfig::default(),
    )
    .unwrap();
    client.predict(&[tile(0)], &labels(0..1)).await.unwrap();
    assert_eq!(
        s.last_auth.lock().unwrap().as_deref(),
        Some("Bearer tok-123")
    );
}

/// Identity over gRPC: TF Serving Predict (tensors, serialized tensors, examples) and KServe ModelInfer.
struct GrpcIdentity;

fn examples_to_tensor(t: &Tensor) -> Result<Tensor, Status> {
    let strings = t
        .strings()
        .ok_or_else(|| Status::invalid_argument("input must be serialized Examples"))?;
    let mut parts = Vec::new();
    for s in strings.iter() {
        let ex = Example::decode(&s[..]).map_err(|e| Status::invalid_argument(e.to_string()))?;
        let f = ex
            .features
            .and_then(|f| f.feature.get("B1").cloned())
            .ok_or_else(|| Status::invalid_argument("no B1 feature"))?;
        let Some(feature::Kind::FloatList(l)) = f.kind else {
            return Err(Status::invalid_argument("B1 must be a float_list"));
        };
        parts.push(
            Tensor::from_vec(&[8, 8, 2], l.value)
                .map_err(|e| Status::invalid_argument(e.to_string()))?,
        );
    }
    Tensor::stack(&parts.iter().collect::<Vec<_>>())
        .map_err(|e| Status::invalid_argument(e.to_string()))
}

#[tonic::async_trait]
impl PredictionService for GrpcIdentity {
    async fn predict(
        &self,
        request: Request<PredictRequest>,
    ) -> Result<Response<PredictResponse>, Status> {
        let req = request.into_inner();
        let spec = req.model_spec.clone().unwrap_or_default();
        if spec.name == "busy" {
            // A server whose Retry-After is past any Duration arithmetic.
            let mut s = Status::resource_exhausted("saturated");
            s.metadata_mut()
                .insert("retry-after", "18446744073709551615".parse().unwrap());
            return Err(s);
        }
        if spec.name != "m" {
            return Err(Status::not_found(format!(
                "Servable not found for request: Latest({})",
                spec.name
            )));
        }
        let mut outputs = std::collections::HashMap::new();
        if let Some(b1) = req.inputs.get("B1") {
            let t = tensor_proto::from_proto(b1)
                .map_err(|e| Status::invalid_argument(e.to_string()))?;
            // Serialized tensors (strings) are answered as serialized tensors, tensors as tensors.
            outputs.insert("out".to_string(), tensor_proto::to_proto(&t));
        } else if let Some(ex) = req.inputs.get("input") {
            let t = tensor_proto::from_proto(ex)
                .map_err(|e| Status::invalid_argument(e.to_string()))?;
            outputs.insert(
                "out".to_string(),
                tensor_proto::to_proto(&examples_to_tensor(&t)?),
            );
        } else {
            return Err(Status::invalid_argument("no input B1 or input"));
        }
        Ok(Response::new(PredictResponse {
            outputs,
            model_spec: Some(spec),
        }))
    }
}

#[tonic::async_trait]
impl GrpcInferenceService for GrpcIdentity {
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
        _: Request<ModelReadyRequest>,
    ) -> Result<Response<ModelReadyResponse>, Status> {
        Ok(Response::new(ModelReadyResponse { ready: true }))
    }
    async fn server_metadata(
        &self,
        _: Request<ServerMetadataRequest>,
    ) -> Result<Response<ServerMetadataResponse>, Status> {
        Ok(Response::new(ServerMetadataResponse::default()))
    }
    async fn model_metadata(
        &self,
        request: Request<ModelMetadataRequest>,
    ) -> Result<Response<ModelMetadataResponse>, Status> {
        let r = request.into_inner();
        if r.name != "m" {
            return Err(Status::not_found(format!("no model {:?}", r.name)));
        }
        let port = |name: &str| model_metadata_response::TensorMetadata {
            name: name.into(),
            datatype: "FP32".into(),
            shape: vec![-1, 8, 8, 2],
        };
        Ok(Response::new(ModelMetadataResponse {
            name: r.name,
            versions: vec!["1".into()],
            platform: "onnx".into(),
            inputs: vec![port("B1")],
            outputs: vec![port("out")],
        }))
    }
    async fn model_infer(
        &self,
        request: Request<ModelInferRequest>,
    ) -> Result<Response<ModelInferResponse>, Status> {
        let req = request.into_inner();
        let i = req
            .inputs
            .iter()
            .position(|t| t.name == "B1")
            .ok_or_else(|| Status::invalid_argument("no B1"))?;
        let meta = &req.inputs[i];
        let shape: Vec<usize> = meta.shape.iter().map(|&d| d as usize).collect();
        let t = kserve_v2::tensor_from_raw_contents(
            meta.datatype.parse().unwrap(),
            &shape,
            &req.raw_input_contents[i],
            "B1",
        )
        .map_err(|e| Status::invalid_argument(e.to_string()))?;
        let mut raw = Vec::new();
        kserve_v2::write_raw_contents(&t, &mut raw);
        Ok(Response::new(ModelInferResponse {
            model_name: req.model_name,
            outputs: vec![InferOutputTensor {
                name: "out".into(),
                datatype: meta.datatype.clone(),
                shape: meta.shape.clone(),
                ..Default::default()
            }],
            raw_output_contents: vec![raw.into()],
            ..Default::default()
        }))
    }
}

async fn spawn_grpc() -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
    tokio::spawn(async move {
        tonic::transport::Server::builder()
            .add_service(
                PredictionServiceServer::new(GrpcIdentity).max_decoding_message_size(64 << 20),
            )
            .add_service(
                GrpcInferenceServiceServer::new(GrpcIdentity).max_decoding_message_size(64 << 20),
            )
            .serve_with_incoming(incoming)
            .await
            .unwrap();
    });
    addr
}

/// The gRPC service at `addr` for `format` (KServe v2's for KServeV2Grpc, else TF Serving's),
/// serving `model`.
fn grpc(addr: std::net::SocketAddr, model: &str, format: PayloadFormat) -> PredictorConfig {
    let url = format!("http://{addr}");
    let endpoint = if format == PayloadFormat::KServeV2Grpc {
        Endpoint::KServeV2 {
            url,
            model: model.into(),
            version: None,
        }
    } else {
        Endpoint::TfServing {
            url,
            model: model.into(),
            version: None,
            signature: None,
        }
    };
    PredictorConfig {
        endpoint,
        base_url: None,
        format,
    }
}

#[tokio::test]
async fn grpc_tf_serving_in_every_format_and_kserve() {
    let addr = spawn_grpc().await;
    for format in [
        PayloadFormat::GrpcTfTensors,
        PayloadFormat::GrpcSerializedTfTensors,
        PayloadFormat::GrpcTfExamples,
        PayloadFormat::KServeV2Grpc,
    ] {
        round_trip(grpc(addr, "m", format), out_spec()).await;
    }

    // A wrong model name is NOT_FOUND: refused at once with the server's message.
    let client = client_for(
        &grpc(addr, "nope", PayloadFormat::GrpcTfTensors),
        ClientConfig::default(),
    );
    let err = predict_failure(&client, 0..1).await.to_string();
    assert!(
        err.contains("NotFound") && err.contains("Servable not found") && err.contains("tile 0"),
        "{err}"
    );
}

#[tokio::test]
async fn large_grpc_messages_pass() {
    // A 6 MiB request, above gRPC's 4 MiB default limit.
    let addr = spawn_grpc().await;
    let predictor = grpc(addr, "m", PayloadFormat::GrpcTfTensors);
    let config = ClientConfig {
        max_payload_bytes: 64 << 20,
        ..Default::default()
    };
    let client = PredictClient::new(&predictor, vec![], AuthConfig::None, config).unwrap();
    let big: Vec<Instance> = (0..12)
        .map(|i| {
            Instance::new().with(
                "B1",
                Tensor::from_vec(&[256, 256, 2], vec![i as f32; 256 * 256 * 2]).unwrap(),
            )
        })
        .collect();
    let answers = client.predict(&big, &labels(0..12)).await.unwrap();
    assert_eq!(answers.len(), 12);
    assert_eq!(answers[11].get("out").unwrap().dtype(), DataType::Float32);
}

#[tokio::test]
async fn a_grpc_retry_after_past_u64_seconds_is_capped_at_the_budget() {
    let addr = spawn_grpc().await;
    let config = ClientConfig {
        total_budget: std::time::Duration::from_secs(5),
        ..Default::default()
    };
    let client = client_for(&grpc(addr, "busy", PayloadFormat::GrpcTfTensors), config);
    let started = std::time::Instant::now();
    let err = predict_failure(&client, 0..1).await.to_string();
    assert!(
        started.elapsed() < std::time::Duration::from_secs(2),
        "{err}"
    );
    assert!(
        err.contains("ResourceExhausted")
            && err.contains("Retry-After")
            && err.contains("after 1 attempts"),
        "{err}"
    );
}

#[tokio::test]
async fn an_unreachable_grpc_server_fails_within_the_connect_timeout() {
    let addr = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    for (format, endpoint) in [
        (
            PayloadFormat::GrpcTfTensors,
            Endpoint::TfServing {
                url: format!("grpc://{addr}"),
                model: "m".into(),
                version: None,
                signature: None,
            },
        ),
        (
            PayloadFormat::KServeV2Grpc,
            Endpoint::KServeV2 {
                url: format!("http://{addr}"),
                model: "m".into(),
                version: None,
            },
        ),
    ] {
        let predictor = PredictorConfig {
            endpoint,
            base_url: None,
            format,
        };
        let config = ClientConfig {
            connect_timeout: std::time::Duration::from_millis(300),
            backoff: ee_predict_client::BackoffConfig {
                init_backoff: std::time::Duration::from_millis(5),
                max_backoff: std::time::Duration::from_millis(50),
                base: 3.0,
            },
            ..Default::default()
        };
        let client = client_for(&predictor, config);
        let started = std::time::Instant::now();
        let err = predict_failure(&client, 0..1).await;
        let msg = err.to_string();
        assert!(
            matches!(err, ee_predict_client::Error::Unreachable { attempts, .. } if attempts > 1),
            "{msg}"
        );
        assert!(
            started.elapsed() < std::time::Duration::from_secs(3),
            "{msg}"
        );
        assert!(
            msg.starts_with(&format!(
                "http://{addr} (gRPC, model m) could not be reached"
            )) && msg.contains("refused"),
            "{msg}"
        );
    }
}

#[tokio::test]
async fn grpc_model_metadata_is_checked_before_any_tile() {
    use ee_predict_client::{InputDescription, ModelCheck};
    let addr = spawn_grpc().await;
    let client =
        |model: &str, format| client_for(&grpc(addr, model, format), ClientConfig::default());
    let b1 = |dtype| {
        vec![InputDescription {
            name: "B1".into(),
            dtype,
            shape: vec![8, 8, 2],
        }]
    };
    let kserve = client("m", PayloadFormat::KServeV2Grpc);
    assert!(matches!(
        kserve.check_inputs(&b1(DataType::Float32)).await,
        Ok(ModelCheck::Matches { .. })
    ));
    let err = kserve
        .check_inputs(&b1(DataType::Uint8))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(r#"input "B1": the model takes FP32 (float32), the job would send UINT8; set "inputTypeOverride": {"B1": "float32"} in the spec"#),
        "{err}"
    );
    // An unknown model (NOT_FOUND) and TF Serving over gRPC are not described.
    for c in [
        client("nope", PayloadFormat::KServeV2Grpc),
        client("m", PayloadFormat::GrpcTfTensors),
    ] {
        assert!(matches!(
            c.check_inputs(&b1(DataType::Uint8)).await,
            Ok(ModelCheck::NotDescribed { .. })
        ));
    }
}
