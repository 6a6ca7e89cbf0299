//! Predicts tiles through the AI Platform `:predict` route of a real HTTP server, the way
//! Earth Engine calls a hosted model: `SERIALIZED_TF_TENSORS` bodies (base64 TensorProtos),
//! batches planned under a payload budget, sent concurrently, overload answers (503, 429)
//! retried with backoff.
//!
//! The server is a small axum app started in this example on 127.0.0.1 (port 0); its "model"
//! computes a water index `ndwi = (green - nir) / (green + nir)` per pixel, and it answers
//! every third request with 503 and one more with 429 so the retries show. The answers are
//! checked against the same index computed here.
//!
//! `cargo run -p ee-predict-client --example ai_platform` (no arguments).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use ee_predict_client::{
    AuthConfig, BackoffConfig, ClientConfig, Endpoint, PredictClient, PredictorConfig,
};
use ee_tensor_proto::payload::serialized_tf_tensors;
use ee_tensor_proto::{DataType, Instance, OutputSpec, PayloadFormat, Tensor};

const TILE: usize = 64;
const TILES: usize = 16;
const ROUTE: &str = "/v1/projects/demo/models/ndwi:predict";

fn ndwi(green: f32, nir: f32) -> f32 {
    (green - nir) / (green + nir)
}

/// The served "model": `array` (h, w, 2) of green and near infrared -> `ndwi` (h, w).
fn model(instances: Vec<Instance>) -> Result<Vec<Instance>, String> {
    instances
        .into_iter()
        .map(|i| {
            let array = i
                .get("array")
                .and_then(|t| t.array::<f32>())
                .ok_or("no float32 input \"array\"")?;
            let (h, w) = (array.shape()[0], array.shape()[1]);
            let out = (0..h * w)
                .map(|p| ndwi(array[[p / w, p % w, 0]], array[[p / w, p % w, 1]]))
                .collect();
            let out = Tensor::from_vec(&[h, w], out).map_err(|e| e.to_string())?;
            Ok(Instance::new().with("ndwi", out))
        })
        .collect()
}

/// Answers `POST ROUTE`, refusing some requests as an overloaded node would.
async fn serve(requests: Arc<AtomicUsize>, uri: Uri, body: Bytes) -> Response {
    if uri.path() != ROUTE {
        return (StatusCode::NOT_FOUND, format!("no route {}", uri.path())).into_response();
    }
    let n = requests.fetch_add(1, Ordering::SeqCst);
    if n % 3 == 1 {
        return (StatusCode::SERVICE_UNAVAILABLE, "busy, try again").into_response();
    }
    if n == 6 {
        return (
            StatusCode::TOO_MANY_REQUESTS,
            [("retry-after", "0")],
            "slow down",
        )
            .into_response();
    }
    let inputs = [OutputSpec::new("array", DataType::Float32)];
    let answer = serialized_tf_tensors::decode_request(&body, &inputs)
        .map_err(|e| e.to_string())
        .and_then(model)
        .and_then(|rows| {
            let mut out = Vec::new();
            serialized_tf_tensors::encode_response(&rows, &mut out).map_err(|e| e.to_string())?;
            Ok(out)
        });
    match answer {
        Ok(out) => ([("content-type", "application/json")], out).into_response(),
        Err(e) => (StatusCode::BAD_REQUEST, format!(r#"{{"error": "{e}"}}"#)).into_response(),
    }
}

/// Tile `k`: green and near-infrared reflectance, water in the tile's upper-left triangle.
fn tile(k: usize) -> Instance {
    let mut values = Vec::with_capacity(TILE * TILE * 2);
    for row in 0..TILE {
        for col in 0..TILE {
            let water = row + col < TILE + k;
            values.extend(if water { [0.07f32, 0.02] } else { [0.06, 0.35] });
        }
    }
    Instance::new().with("array", Tensor::from_vec(&[TILE, TILE, 2], values).unwrap())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // The server.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let requests = Arc::new(AtomicUsize::new(0));
    let counter = requests.clone();
    let app = axum::Router::new()
        .fallback(move |uri: Uri, body: Bytes| serve(counter.clone(), uri, body));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async {
                stopped.await.ok();
            })
            .await
    });
    println!("model server on http://{addr}{ROUTE}");

    // The client: AI Platform's route, pointed at the local server.
    let predictor = PredictorConfig {
        endpoint: Endpoint::AiPlatform {
            project: "demo".into(),
            model: "ndwi".into(),
            version: None,
            region: "us-central1".into(),
        },
        base_url: Some(format!("http://{addr}")),
        format: PayloadFormat::SerializedTfTensors,
    };
    let config = ClientConfig {
        // Small enough that 16 tiles of 32 KiB take several requests.
        max_payload_bytes: 100_000,
        backoff: BackoffConfig {
            init_backoff: Duration::from_millis(10),
            max_backoff: Duration::from_millis(200),
            base: 3.0,
        },
        jitter_seed: Some(1),
        ..ClientConfig::default()
    };
    let outputs = vec![OutputSpec::new("ndwi", DataType::Float32)];
    let client = Arc::new(PredictClient::new(
        &predictor,
        outputs,
        AuthConfig::None,
        config,
    )?);
    println!("client: {}", client.describe());

    let tiles: Vec<Instance> = (0..TILES).map(tile).collect();
    let labels: Vec<String> = (0..TILES).map(|k| format!("tile {k}")).collect();
    let batches = client.plan(&tiles, &labels)?;
    println!(
        "{TILES} tiles of {TILE} x {TILE} x 2 float32 in {} requests of at most 100000 bytes ({} bytes each)",
        batches.len(),
        client.encoded_size(&tiles[batches[0].clone()])?
    );

    // Every batch in flight at once; the client limits concurrency and retries.
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for range in batches {
        let (client, tiles, labels) = (client.clone(), tiles.clone(), labels.clone());
        tasks.spawn(async move {
            let answers = client
                .predict(&tiles[range.clone()], &labels[range.clone()])
                .await;
            (range, answers)
        });
    }
    let mut answers: Vec<Option<Instance>> = vec![None; TILES];
    while let Some(done) = tasks.join_next().await {
        let (range, batch) = done?;
        for (k, answer) in range.zip(batch?) {
            answers[k] = Some(answer);
        }
    }
    let elapsed = start.elapsed();

    // Check every answer against the index computed here.
    let mut water_pixels = 0;
    for (k, answer) in answers.iter().enumerate() {
        let answer = answer
            .as_ref()
            .ok_or(format!("tile {k} was not answered"))?;
        let got = answer
            .get("ndwi")
            .and_then(|t| t.array::<f32>())
            .ok_or(format!("tile {k}: no float32 ndwi"))?;
        let input = tiles[k].get("array").unwrap().array::<f32>().unwrap();
        if got.shape() != [TILE, TILE] {
            return Err(format!("tile {k}: ndwi has shape {:?}", got.shape()).into());
        }
        for r in 0..TILE {
            for c in 0..TILE {
                let v = got[[r, c]];
                if v != ndwi(input[[r, c, 0]], input[[r, c, 1]]) {
                    return Err(format!("tile {k} pixel ({r}, {c}): wrong ndwi {v}").into());
                }
                water_pixels += usize::from(v > 0.0);
            }
        }
    }
    let m = client.metrics();
    println!(
        "all {TILES} tiles answered and checked in {:.0} ms: {water_pixels} water pixels (ndwi > 0)",
        elapsed.as_secs_f64() * 1e3
    );
    println!(
        "server saw {} requests; client: {} ok, {} failed, retries {:?}, {} bytes sent, {} received",
        requests.load(Ordering::SeqCst),
        m.requests_ok,
        m.requests_failed,
        m.retries,
        m.bytes_sent,
        m.bytes_received
    );
    if m.total_retries() == 0 {
        return Err("expected the refused requests to be retried".into());
    }

    stop.send(()).ok();
    server.await??;
    println!("server shut down");
    Ok(())
}
