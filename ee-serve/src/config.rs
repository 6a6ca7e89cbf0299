//! What a node is told: its model's name, where to listen, and its limits.

use std::net::SocketAddr;
use std::time::Duration;

/// The node's configuration. `Default` listens on 127.0.0.1 (HTTP port 8501, no gRPC), as
/// TF Serving's REST port, and sizes the limits for one machine.
#[derive(Clone, Debug)]
pub struct ServeConfig {
    /// The model's name in routes (`/v1/models/NAME`, `/v2/models/NAME`).
    pub model_name: String,
    /// REST address (TF Serving, AI Platform / Vertex, KServe v2); `None` for no REST.
    pub http: Option<SocketAddr>,
    /// gRPC address (TF Serving PredictionService, KServe GRPCInferenceService); `None` for
    /// no gRPC.
    pub grpc: Option<SocketAddr>,
    /// Most instances stacked into one model run (requests are batched together up to this).
    pub max_batch: usize,
    /// Model runs at once (each run is single-threaded).
    pub max_concurrency: usize,
    /// Requests admitted at once (being read, queued or run); beyond, 429 /
    /// RESOURCE_EXHAUSTED with `Retry-After`.
    pub max_queue: usize,
    /// Largest request body accepted, in bytes (REST and gRPC).
    pub max_body_bytes: usize,
    /// `Retry-After` sent with 429s.
    pub retry_after: Duration,
}

impl Default for ServeConfig {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        ServeConfig {
            model_name: "model".into(),
            http: Some(SocketAddr::from(([127, 0, 0, 1], 8501))),
            grpc: None,
            max_batch: 64,
            max_concurrency: cores,
            max_queue: 64,
            max_body_bytes: 64 << 20,
            retry_after: Duration::from_secs(1),
        }
    }
}
