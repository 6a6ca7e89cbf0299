//! Real servers for the client's tests, all on 127.0.0.1 port 0: an axum server speaking each
//! HTTP protocol, a raw TCP HTTP server that injects faults at a seeded rate, and a tonic
//! server for both gRPC services. The "model" is the identity: output `out` = input `B1`.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use ee_predict_client::{AuthConfig, ClientConfig, Endpoint, PredictClient, PredictorConfig};
use ee_tensor_proto::payload::{kserve_v2, raw_json, serialized_tf_tensors, tf_serving};
use ee_tensor_proto::{DataType, Instance, OutputSpec, PayloadFormat, Tensor};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

pub fn out_spec() -> Vec<OutputSpec> {
    vec![OutputSpec::new("out", DataType::Float32)]
}

pub fn in_spec() -> Vec<OutputSpec> {
    vec![OutputSpec::new("B1", DataType::Float32)]
}

/// A tile-like instance whose values identify it.
pub fn tile(id: usize) -> Instance {
    let values: Vec<f32> = (0..8 * 8 * 2)
        .map(|i| id as f32 * 1000.0 + i as f32)
        .collect();
    Instance::new().with("B1", Tensor::from_vec(&[8, 8, 2], values).unwrap())
}

pub fn labels(ids: std::ops::Range<usize>) -> Vec<String> {
    ids.map(|i| format!("tile {i}")).collect()
}

/// The AI Platform route `/v1/projects/p/models/m:predict` on `addr`, in SERIALIZED_TF_TENSORS.
pub fn ai_platform(addr: SocketAddr) -> PredictorConfig {
    PredictorConfig {
        endpoint: Endpoint::AiPlatform {
            project: "p".into(),
            model: "m".into(),
            version: None,
            region: "us-central1".into(),
        },
        base_url: Some(format!("http://{addr}")),
        format: PayloadFormat::SerializedTfTensors,
    }
}

/// A client of `predictor` without credentials, for a model answering `out` (float32).
pub fn client_for(predictor: &PredictorConfig, config: ClientConfig) -> PredictClient {
    PredictClient::new(predictor, out_spec(), AuthConfig::None, config).unwrap()
}

/// Sends the tiles `ids` in one request, which must fail: the error.
pub async fn predict_failure(
    client: &PredictClient,
    ids: std::ops::Range<usize>,
) -> ee_predict_client::Error {
    let tiles: Vec<Instance> = ids.clone().map(tile).collect();
    client.predict(&tiles, &labels(ids)).await.unwrap_err()
}

/// The model: `out` = `B1`.
pub fn identity(instances: Vec<Instance>) -> Vec<Instance> {
    instances
        .into_iter()
        .map(|mut i| Instance::new().with("out", i.take("B1").expect("B1 band")))
        .collect()
}

/// Decodes a request of `format`, runs the identity and encodes the answer: (body, content type,
/// KServe header length).
pub fn answer(
    format: PayloadFormat,
    body: &[u8],
    header_length: Option<usize>,
) -> Result<(Vec<u8>, Option<usize>), String> {
    let mut out = Vec::new();
    let mut hl = None;
    match format {
        PayloadFormat::SerializedTfTensors => {
            let rows = serialized_tf_tensors::decode_request(body, &in_spec())
                .map_err(|e| e.to_string())?;
            serialized_tf_tensors::encode_response(&identity(rows), &mut out)
                .map_err(|e| e.to_string())?;
        }
        PayloadFormat::RawJson => {
            let rows = raw_json::decode_request(body, &in_spec()).map_err(|e| e.to_string())?;
            raw_json::encode_response(&identity(rows), &mut out).map_err(|e| e.to_string())?;
        }
        PayloadFormat::NdArrays => {
            // Instances are channel-first (C, H, W); the identity answers them as they are.
            let text = std::str::from_utf8(body).map_err(|e| e.to_string())?;
            let v: serde_json::Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
            out = serde_json::to_vec(&serde_json::json!({"predictions": v["instances"]})).unwrap();
        }
        PayloadFormat::TfServingJson => {
            let req = tf_serving::decode_request(body, &in_spec()).map_err(|e| e.to_string())?;
            tf_serving::encode_response(
                &identity(req.instances),
                tf_serving::Layout::Row,
                &mut out,
            )
            .map_err(|e| e.to_string())?;
        }
        PayloadFormat::KServeV2Json | PayloadFormat::KServeV2Binary => {
            let req = kserve_v2::decode_request(body, header_length).map_err(|e| e.to_string())?;
            let rows = Instance::unstack(&req.inputs).map_err(|e| e.to_string())?;
            let answer = Instance::stack(&identity(rows)).map_err(|e| e.to_string())?;
            let binary = req.outputs.iter().any(|(_, b)| *b);
            hl = kserve_v2::encode_response("m", None, None, &answer, binary, &mut out)
                .map_err(|e| e.to_string())?;
        }
        other => return Err(format!("{other} is not served over HTTP here")),
    }
    Ok((out, hl))
}

fn respond(format: PayloadFormat, headers: &HeaderMap, body: &[u8]) -> Response {
    let hl = headers
        .get(kserve_v2::HEADER_LENGTH_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    match answer(format, body, hl) {
        Ok((out, Some(h))) => {
            ([(kserve_v2::HEADER_LENGTH_HEADER, h.to_string())], out).into_response()
        }
        Ok((out, None)) => ([("content-type", "application/json")], out).into_response(),
        Err(e) => (
            StatusCode::BAD_REQUEST,
            axum::Json(serde_json::json!({"error": e})),
        )
            .into_response(),
    }
}

/// An axum server answering `format` on exactly `path` (404 elsewhere); counts requests and
/// remembers the last Authorization header.
pub struct HttpServer {
    pub addr: SocketAddr,
    pub requests: Arc<AtomicUsize>,
    pub last_auth: Arc<std::sync::Mutex<Option<String>>>,
}

pub async fn spawn_http(format: PayloadFormat, path: &'static str) -> HttpServer {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let requests = Arc::new(AtomicUsize::new(0));
    let last_auth = Arc::new(std::sync::Mutex::new(None));
    let (r, a) = (requests.clone(), last_auth.clone());
    let app = axum::Router::new().fallback(move |uri: Uri, headers: HeaderMap, body: Bytes| {
        let (r, a) = (r.clone(), a.clone());
        async move {
            r.fetch_add(1, Ordering::SeqCst);
            *a.lock().unwrap() = headers
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            if uri.path() != path {
                return (StatusCode::NOT_FOUND, format!("no model at {}", uri.path()))
                    .into_response();
            }
            respond(format, &headers, &body)
        }
    });
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    HttpServer {
        addr,
        requests,
        last_auth,
    }
}

/// What the fault server does with one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Fault {
    Ok,
    TooMany,
    TooManyRetryAfter,
    Unavailable,
    Internal,
    Reset,
    Stall,
    Truncated,
    Malformed,
    /// A well-formed answer for only the first instance (a wrong shape for the batch).
    WrongCount,
}

pub const FAULTS: [Fault; 8] = [
    Fault::TooMany,
    Fault::TooManyRetryAfter,
    Fault::Unavailable,
    Fault::Internal,
    Fault::Reset,
    Fault::Stall,
    Fault::Truncated,
    Fault::Malformed,
];

/// Counts of what the fault server did.
#[derive(Default)]
pub struct FaultLog {
    pub by_kind: std::sync::Mutex<std::collections::HashMap<Fault, usize>>,
    pub in_flight: AtomicUsize,
    pub peak_in_flight: AtomicUsize,
}

/// How the fault server behaves.
#[derive(Clone)]
pub struct FaultPlan {
    pub format: PayloadFormat,
    /// Probability of a fault per request.
    pub rate: f64,
    pub seed: u64,
    /// Faults to draw from.
    pub kinds: Vec<Fault>,
    /// How long a stall lasts.
    pub stall: Duration,
    /// Admit at most this many concurrent requests, answering 429 beyond (0: no limit).
    pub admit: usize,
    /// Time the model takes per request.
    pub work: Duration,
    /// Always answer this status and body instead of predicting.
    pub always: Option<(u16, &'static str)>,
}

impl FaultPlan {
    pub fn new(format: PayloadFormat) -> Self {
        FaultPlan {
            format,
            rate: 0.0,
            seed: 1,
            kinds: FAULTS.to_vec(),
            stall: Duration::from_millis(400),
            admit: 0,
            work: Duration::ZERO,
            always: None,
        }
    }
}

async fn read_request(sock: &mut TcpStream) -> Option<(String, Vec<(String, String)>, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 65536];
    let head_end = loop {
        if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break p;
        }
        let n = sock.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let mut lines = head.split("\r\n");
    let request_line = lines.next()?.to_string();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| {
            l.split_once(':')
                .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        })
        .collect();
    let len: usize = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = buf[head_end + 4..].to_vec();
    while body.len() < len {
        let n = sock.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    Some((request_line, headers, body))
}

async fn write_response(
    sock: &mut TcpStream,
    status: &str,
    headers: &[(&str, String)],
    body: &[u8],
    declared_len: usize,
) {
    let mut head = format!("HTTP/1.1 {status}\r\ncontent-length: {declared_len}\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    let _ = sock.write_all(head.as_bytes()).await;
    let _ = sock.write_all(body).await;
    let _ = sock.flush().await;
}

/// A keep-alive HTTP/1.1 server on raw TCP that injects faults per `plan`.
pub async fn spawn_faulty(plan: FaultPlan) -> (SocketAddr, Arc<FaultLog>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let log = Arc::new(FaultLog::default());
    // Whether a request fails is drawn at the seeded rate; which fault it gets cycles through
    // the kinds, so every kind occurs once there have been as many faults as kinds.
    let rng = Arc::new(std::sync::Mutex::new((
        fastrand::Rng::with_seed(plan.seed),
        0usize,
    )));
    let log2 = log.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            let (plan, log, rng) = (plan.clone(), log2.clone(), rng.clone());
            tokio::spawn(async move {
                while let Some((_line, headers, body)) = read_request(&mut sock).await {
                    let now = log.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                    log.peak_in_flight.fetch_max(now, Ordering::SeqCst);
                    let fault = {
                        let mut guard = rng.lock().unwrap();
                        let (r, next) = &mut *guard;
                        if plan.admit > 0 && now > plan.admit {
                            Fault::TooMany
                        } else if r.f64() < plan.rate {
                            *next += 1;
                            plan.kinds[(*next - 1) % plan.kinds.len()]
                        } else {
                            Fault::Ok
                        }
                    };
                    *log.by_kind.lock().unwrap().entry(fault).or_default() += 1;
                    if !plan.work.is_zero() {
                        tokio::time::sleep(plan.work).await;
                    }
                    let keep = match (plan.always, fault) {
                        (Some((status, text)), _) => {
                            let body =
                                serde_json::to_vec(&serde_json::json!({"error": text})).unwrap();
                            write_response(
                                &mut sock,
                                &format!("{status} Refused"),
                                &[],
                                &body,
                                body.len(),
                            )
                            .await;
                            true
                        }
                        (None, Fault::Ok) => {
                            let hl = headers
                                .iter()
                                .find(|(k, _)| {
                                    k == &kserve_v2::HEADER_LENGTH_HEADER.to_ascii_lowercase()
                                })
                                .and_then(|(_, v)| v.parse().ok());
                            match answer(plan.format, &body, hl) {
                                Ok((out, h)) => {
                                    let extra: Vec<(&str, String)> = h
                                        .map(|h| {
                                            vec![(kserve_v2::HEADER_LENGTH_HEADER, h.to_string())]
                                        })
                                        .unwrap_or_default();
                                    write_response(&mut sock, "200 OK", &extra, &out, out.len())
                                        .await;
                                }
                                Err(e) => {
                                    let b = serde_json::to_vec(&serde_json::json!({"error": e}))
                                        .unwrap();
                                    write_response(&mut sock, "400 Bad Request", &[], &b, b.len())
                                        .await;
                                }
                            }
                            true
                        }
                        (None, Fault::TooMany) => {
                            write_response(
                                &mut sock,
                                "429 Too Many Requests",
                                &[],
                                b"{\"error\": \"node saturated\"}",
                                27,
                            )
                            .await;
                            true
                        }
                        (None, Fault::TooManyRetryAfter) => {
                            write_response(
                                &mut sock,
                                "429 Too Many Requests",
                                &[("retry-after", "0".into())],
                                b"{\"error\": \"node saturated\"}",
                                27,
                            )
                            .await;
                            true
                        }
                        (None, Fault::Unavailable) => {
                            write_response(
                                &mut sock,
                                "503 Service Unavailable",
                                &[],
                                b"overloaded",
                                10,
                            )
                            .await;
                            true
                        }
                        (None, Fault::Internal) => {
                            write_response(
                                &mut sock,
                                "500 Internal Server Error",
                                &[],
                                b"{\"error\": \"transient\"}",
                                22,
                            )
                            .await;
                            true
                        }
                        (None, Fault::Reset) => false,
                        (None, Fault::Stall) => {
                            tokio::time::sleep(plan.stall).await;
                            false
                        }
                        (None, Fault::Truncated) => {
                            let (out, _) = answer(plan.format, &body, None).unwrap_or_default();
                            write_response(
                                &mut sock,
                                "200 OK",
                                &[],
                                &out[..out.len() / 2],
                                out.len(),
                            )
                            .await;
                            false
                        }
                        (None, Fault::WrongCount) => {
                            let rows = serialized_tf_tensors::decode_request(&body, &in_spec())
                                .unwrap_or_default();
                            let mut out = Vec::new();
                            serialized_tf_tensors::encode_response(
                                &identity(rows.into_iter().take(1).collect()),
                                &mut out,
                            )
                            .unwrap();
                            write_response(&mut sock, "200 OK", &[], &out, out.len()).await;
                            true
                        }
                        (None, Fault::Malformed) => {
                            write_response(
                                &mut sock,
                                "200 OK",
                                &[],
                                b"{\"predictions\": [\"AAA",
                                21,
                            )
                            .await;
                            true
                        }
                    };
                    log.in_flight.fetch_sub(1, Ordering::SeqCst);
                    if !keep {
                        return;
                    }
                }
            });
        }
    });
    (addr, log)
}
