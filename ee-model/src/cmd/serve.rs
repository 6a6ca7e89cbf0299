//! `ee-model serve`: the embedded runtime behind TF Serving, AI Platform / Vertex and KServe
//! v2 routes (REST and gRPC), until SIGTERM or Ctrl-C.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use ee_model::{Layout, LocalModel};
use ee_serve::{Node, ServeConfig};

/// `ee-model serve`: answer predictions from an ONNX model over the real protocols.
#[derive(Args)]
pub struct ServeArgs {
    /// The ONNX model.
    #[arg(long)]
    model: PathBuf,
    /// The model's name in routes (default: the file's stem).
    #[arg(long)]
    name: Option<String>,
    /// Axis order of the model's rank-4 tensors; requests are NHWC either way.
    #[arg(long, default_value = "NHWC")]
    layout: String,
    /// REST address: PORT (on 127.0.0.1) or HOST:PORT.
    #[arg(long, default_value = "8501", value_parser = parse_addr)]
    http: SocketAddr,
    /// gRPC address: PORT (on 127.0.0.1) or HOST:PORT.
    #[arg(long, value_parser = parse_addr)]
    grpc: Option<SocketAddr>,
    /// Most instances stacked into one model run.
    #[arg(long, default_value_t = 64)]
    max_batch: usize,
    /// Model runs at once (default: the number of cores).
    #[arg(long)]
    max_concurrency: Option<usize>,
    /// Requests admitted at once (read, queued or running); beyond, 429 with Retry-After.
    #[arg(long, default_value_t = 64)]
    max_queue: usize,
    /// Largest request body, in bytes.
    #[arg(long, default_value_t = 64 << 20)]
    max_body_bytes: usize,
    /// Seconds in the Retry-After of a 429.
    #[arg(long, default_value_t = 1)]
    retry_after: u64,
}

fn parse_addr(s: &str) -> Result<SocketAddr, String> {
    if let Ok(port) = s.parse::<u16>() {
        return Ok(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port));
    }
    s.parse()
        .map_err(|_| format!("{s:?} is neither a port nor HOST:PORT (e.g. 127.0.0.1:8501)"))
}

/// Runs `ee-model serve`.
pub async fn run(_verbose: u8, args: ServeArgs) -> Result<(), String> {
    let layout: Layout = args.layout.parse().map_err(|e| format!("{e}"))?;
    let model = LocalModel::load(&args.model, layout).map_err(|e| e.to_string())?;
    let name = match args.name {
        Some(n) => n,
        None => args
            .model
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("model")
            .to_string(),
    };
    let defaults = ServeConfig::default();
    let config = ServeConfig {
        model_name: name.clone(),
        http: Some(args.http),
        grpc: args.grpc,
        max_batch: args.max_batch,
        max_concurrency: args.max_concurrency.unwrap_or(defaults.max_concurrency),
        max_queue: args.max_queue,
        max_body_bytes: args.max_body_bytes,
        retry_after: Duration::from_secs(args.retry_after),
    };
    let node = Node::start(model, config)
        .await
        .map_err(|e| e.to_string())?;
    let sig = node.signature();
    let ports = |ports: &[ee_serve::Port]| {
        ports
            .iter()
            .map(|p| format!("{} {} {:?}", p.name, p.dtype, p.batched_shape()))
            .collect::<Vec<_>>()
            .join(", ")
    };
    println!(
        "serving model {name:?} (inputs: {}; outputs: {})",
        ports(&sig.inputs),
        ports(&sig.outputs)
    );
    if let Some(a) = node.http_addr() {
        println!("http: http://{a} (TF Serving /v1/models/{name}:predict, AI Platform /v1/projects/*/models/{name}:predict, KServe /v2/models/{name}/infer)");
    }
    if let Some(a) = node.grpc_addr() {
        println!(
            "grpc: {a} (tensorflow.serving.PredictionService, inference.GRPCInferenceService)"
        );
    }
    let stats = node.run_until_signal().await.map_err(|e| e.to_string())?;
    println!("stopped: {stats}");
    Ok(())
}
