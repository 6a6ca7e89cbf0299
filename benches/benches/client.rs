//! Requests per second and MB/s of the predict client against a loopback server that answers
//! instantly (a canned answer), per payload format, with 1 and 16 requests in flight. Each
//! request carries four 64 x 64 x 4 float32 tiles. Prints a table; without `--bench` (as
//! `cargo test` runs it) it does a few requests per case as a check.

use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::http::HeaderMap;
use axum::response::IntoResponse;
use ee_predict_client::{AuthConfig, ClientConfig, Endpoint, PredictClient, PredictorConfig};
use ee_tensor_proto::payload::{kserve_v2, serialized_tf_tensors, tf_serving};
use ee_tensor_proto::proto::tensorflow::serving::prediction_service_server::{
    PredictionService, PredictionServiceServer,
};
use ee_tensor_proto::proto::tensorflow::serving::{PredictRequest, PredictResponse};
use ee_tensor_proto::{tensor_proto, DataType, Instance, OutputSpec, PayloadFormat, Tensor};

fn tiles() -> Vec<Instance> {
    (0..4)
        .map(|i| {
            Instance::new().with(
                "B1",
                Tensor::from_vec(
                    &[64, 64, 4],
                    (0..64 * 64 * 4).map(|v| (v + i) as f32).collect(),
                )
                .unwrap(),
            )
        })
        .collect()
}

/// The answer a model with output `out` = `B1` gives to `tiles()`, and its KServe header length.
fn canned(format: PayloadFormat) -> (Vec<u8>, Option<usize>) {
    let rows: Vec<Instance> = tiles()
        .into_iter()
        .map(|mut t| Instance::new().with("out", t.take("B1").unwrap()))
        .collect();
    let mut out = Vec::new();
    let hl = match format {
        PayloadFormat::SerializedTfTensors => {
            serialized_tf_tensors::encode_response(&rows, &mut out).map(|_| None)
        }
        PayloadFormat::TfServingJson => {
            tf_serving::encode_response(&rows, tf_serving::Layout::Row, &mut out).map(|_| None)
        }
        _ => kserve_v2::encode_response(
            "m",
            None,
            None,
            &Instance::stack(&rows).unwrap(),
            format == PayloadFormat::KServeV2Binary,
            &mut out,
        ),
    }
    .unwrap();
    (out, hl)
}

async fn serve(format: PayloadFormat) -> std::net::SocketAddr {
    let (body, hl) = canned(format);
    let body = Bytes::from(body);
    let app = axum::Router::new().fallback(move |_h: HeaderMap, _b: Bytes| {
        let body = body.clone();
        async move {
            match hl {
                Some(h) => {
                    ([(kserve_v2::HEADER_LENGTH_HEADER, h.to_string())], body).into_response()
                }
                None => body.into_response(),
            }
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

/// A PredictionService answering every request with the canned outputs for `tiles()`.
struct CannedPredict(PredictResponse);

#[tonic::async_trait]
impl PredictionService for CannedPredict {
    async fn predict(
        &self,
        _: tonic::Request<PredictRequest>,
    ) -> Result<tonic::Response<PredictResponse>, tonic::Status> {
        Ok(tonic::Response::new(self.0.clone()))
    }
}

async fn serve_grpc() -> std::net::SocketAddr {
    let rows: Vec<Instance> = tiles()
        .into_iter()
        .map(|mut t| Instance::new().with("out", t.take("B1").unwrap()))
        .collect();
    let stacked = Instance::stack(&rows).unwrap();
    let outputs = stacked
        .iter()
        .map(|(n, t)| (n.to_string(), tensor_proto::to_proto(t)))
        .collect();
    let canned = CannedPredict(PredictResponse {
        outputs,
        model_spec: None,
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    use tokio_stream::StreamExt;
    let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener).map(|s| {
        s.inspect(|s| {
            let _ = s.set_nodelay(true);
        })
    });
    tokio::spawn(async move {
        tonic::transport::Server::builder()
            .initial_stream_window_size(Some(16 << 20))
            .initial_connection_window_size(Some(64 << 20))
            .add_service(PredictionServiceServer::new(canned).max_decoding_message_size(64 << 20))
            .serve_with_incoming(incoming)
            .await
            .unwrap();
    });
    addr
}

fn main() {
    let bench = std::env::args().any(|a| a == "--bench");
    let requests = if bench { 2000 } else { 20 };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    println!("\n| format | in flight | requests/s | MB/s sent | MB/s received |");
    println!("|---|---|---|---|---|");
    for format in [
        PayloadFormat::SerializedTfTensors,
        PayloadFormat::TfServingJson,
        PayloadFormat::KServeV2Json,
        PayloadFormat::KServeV2Binary,
        PayloadFormat::GrpcTfTensors,
    ] {
        for in_flight in [1usize, 16] {
            let (rps, sent, received) = rt.block_on(async {
                let addr = if format == PayloadFormat::GrpcTfTensors {
                    serve_grpc().await
                } else {
                    serve(format).await
                };
                let endpoint = match format {
                    PayloadFormat::SerializedTfTensors => Endpoint::AiPlatform {
                        project: "p".into(),
                        model: "m".into(),
                        version: None,
                        region: "us-central1".into(),
                    },
                    PayloadFormat::TfServingJson | PayloadFormat::GrpcTfTensors => {
                        Endpoint::TfServing {
                            url: format!("http://{addr}"),
                            model: "m".into(),
                            version: None,
                            signature: None,
                        }
                    }
                    _ => Endpoint::KServeV2 {
                        url: format!("http://{addr}"),
                        model: "m".into(),
                        version: None,
                    },
                };
                let base_url =
                    (format != PayloadFormat::GrpcTfTensors).then(|| format!("http://{addr}"));
                let predictor = PredictorConfig {
                    endpoint,
                    base_url,
                    format,
                };
                let config = ClientConfig {
                    max_concurrency: in_flight,
                    initial_concurrency: in_flight,
                    max_payload_bytes: 8 << 20,
                    ..Default::default()
                };
                let client = Arc::new(
                    PredictClient::new(
                        &predictor,
                        vec![OutputSpec::new("out", DataType::Float32)],
                        AuthConfig::None,
                        config,
                    )
                    .unwrap(),
                );
                let batch = Arc::new(tiles());
                let labels = Arc::new(vec!["bench".to_string(); 4]);
                let start = Instant::now();
                let mut set = tokio::task::JoinSet::new();
                for _ in 0..requests {
                    let (client, batch, labels) = (client.clone(), batch.clone(), labels.clone());
                    set.spawn(
                        async move { client.predict(&batch, &labels).await.map(|a| a.len()) },
                    );
                }
                while let Some(r) = set.join_next().await {
                    assert_eq!(r.unwrap().unwrap(), 4);
                }
                let secs = start.elapsed().as_secs_f64();
                let m = client.metrics();
                (
                    requests as f64 / secs,
                    m.bytes_sent as f64 / 1e6 / secs,
                    m.bytes_received as f64 / 1e6 / secs,
                )
            });
            println!("| {format} | {in_flight} | {rps:.0} | {sent:.0} | {received:.0} |");
            if bench {
                println!(
                    "bench-report| client vs instant loopback server, 4x64x64x4 f32 per request | {format}, {in_flight} in flight | {rps:.0} requests/s | | {sent:.0} MB/s sent |"
                );
            }
        }
    }
}
