//! Load on a serving node (`ee_serve::Node`, the engine of `ee-model serve`) over loopback:
//! a fixed number of requests (one 64 x 64 x 4 float32 tile each, SERIALIZED_TF_TENSORS on the
//! AI Platform route) from many concurrent retrying clients (`ee_predict_client`), first with
//! an admission limit above the client count, then with a small one so the node answers 429s
//! and the clients back off. Prints requests/s, p50/p99 latency per request (retries
//! included), 429s seen, failures (must be 0), the node's batching, and the process's peak
//! RSS. Without `--bench` (as `cargo test` runs it) it runs a small load and checks itself.

use std::sync::Arc;
use std::time::{Duration, Instant};

use ee_model::{Layout, LocalModel};
use ee_predict_client::{AuthConfig, ClientConfig, Endpoint, PredictClient, PredictorConfig};
use ee_serve::{Node, ServeConfig};
use ee_tensor_proto::{DataType, Instance, OutputSpec, PayloadFormat, Tensor};

struct Outcome {
    wall: Duration,
    latencies_ms: Vec<f64>,
    overloads: u64,
    failures: usize,
    runs: u64,
    instances: u64,
    largest_batch: u64,
}

fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|v| v.parse::<f64>().ok())
        })
        .map_or(0.0, |kib| kib / 1024.0)
}

async fn load(clients: usize, per_client: usize, max_queue: usize) -> Outcome {
    let model_path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../ee-model/tests/models/identity.onnx");
    let node = Node::start(
        LocalModel::load(model_path, Layout::Nhwc).expect("identity model"),
        ServeConfig {
            model_name: "ident".into(),
            http: Some("127.0.0.1:0".parse().expect("address")),
            grpc: None,
            max_queue,
            ..ServeConfig::default()
        },
    )
    .await
    .expect("node starts");
    let url = format!("http://{}", node.http_addr().expect("http address"));
    let tile = Tensor::from_vec(
        &[64, 64, 4],
        (0..64 * 64 * 4)
            .map(|i| i as f32 * 0.25)
            .collect::<Vec<f32>>(),
    )
    .expect("tile");
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..clients {
        let (url, tile) = (url.clone(), tile.clone());
        tasks.push(tokio::spawn(async move {
            let client = PredictClient::new(
                &PredictorConfig {
                    endpoint: Endpoint::AiPlatform {
                        project: "p".into(),
                        model: "ident".into(),
                        version: None,
                        region: "us-central1".into(),
                    },
                    base_url: Some(url),
                    format: PayloadFormat::SerializedTfTensors,
                },
                vec![OutputSpec::new("output", DataType::Float32)],
                AuthConfig::None,
                ClientConfig {
                    max_concurrency: 1,
                    initial_concurrency: 1,
                    ..ClientConfig::default()
                },
            )
            .expect("client");
            let mut latencies = Vec::with_capacity(per_client);
            let mut failures = 0;
            for r in 0..per_client {
                let inst = Instance::new().with("input", tile.clone());
                let t0 = Instant::now();
                match client
                    .predict(
                        std::slice::from_ref(&inst),
                        &[format!("client {c} request {r}")],
                    )
                    .await
                {
                    Ok(answer) if answer.len() == 1 => {
                        latencies.push(t0.elapsed().as_secs_f64() * 1e3)
                    }
                    _ => failures += 1,
                }
            }
            let overloads = client.metrics().retries.get("429").copied().unwrap_or(0);
            (latencies, overloads, failures)
        }));
    }
    let mut outcome = Outcome {
        wall: Duration::ZERO,
        latencies_ms: Vec::new(),
        overloads: 0,
        failures: 0,
        runs: 0,
        instances: 0,
        largest_batch: 0,
    };
    for t in tasks {
        let (l, o, f) = t.await.expect("client task");
        outcome.latencies_ms.extend(l);
        outcome.overloads += o;
        outcome.failures += f;
    }
    outcome.wall = started.elapsed();
    let stats = node.shutdown().await.expect("node stops");
    outcome.runs = stats.runs;
    outcome.instances = stats.instances;
    outcome.largest_batch = stats.largest_batch;
    outcome
        .latencies_ms
        .sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    outcome
}

fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

fn main() {
    let bench = std::env::args().any(|a| a == "--bench");
    let (clients, per_client) = if bench { (64, 40) } else { (16, 4) };
    let runtime = Arc::new(
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .expect("runtime"),
    );
    println!(
        "serving node under load: {clients} clients x {per_client} requests, one 64x64x4 f32 tile each (SERIALIZED_TF_TENSORS, AI Platform route), identity model"
    );
    println!(
        "| admission limit | requests | wall s | req/s | p50 ms | p99 ms | 429s | failed | model runs | mean batch | largest batch | peak RSS MiB |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|");
    for max_queue in [clients * 2, 4] {
        let o = runtime.block_on(load(clients, per_client, max_queue));
        let n = o.latencies_ms.len();
        println!(
            "| {max_queue} | {n} | {:.2} | {:.0} | {:.1} | {:.1} | {} | {} | {} | {:.1} | {} | {:.0} |",
            o.wall.as_secs_f64(),
            n as f64 / o.wall.as_secs_f64(),
            quantile(&o.latencies_ms, 0.5),
            quantile(&o.latencies_ms, 0.99),
            o.overloads,
            o.failures,
            o.runs,
            o.instances as f64 / o.runs.max(1) as f64,
            o.largest_batch,
            peak_rss_mib()
        );
        if bench {
            println!(
                "bench-report| serving node, {clients} clients, 64x64x4 f32 per request | admission limit {max_queue} | {:.0} requests/s | | p99 {:.1} ms, {} 429s |",
                n as f64 / o.wall.as_secs_f64(),
                quantile(&o.latencies_ms, 0.99),
                o.overloads
            );
        }
        assert_eq!(o.failures, 0, "no request may fail after retries");
        assert_eq!(n, clients * per_client, "every request answered");
        assert_eq!(o.instances as usize, n, "each request run exactly once");
        if max_queue < clients {
            assert!(
                o.overloads > 0,
                "a limit below the client count must refuse some"
            );
        }
    }
}
