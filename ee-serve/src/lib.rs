//! A serving node for the embedded ONNX runtime (`ee-model serve`): the model that
//! `ee-runtime` runs in process, answered over the protocols real clients speak.
//!
//! - TF Serving REST: `POST /v1/models/NAME[/versions/1]:predict` (row and columnar,
//!   `{"b64"}`), `GET /v1/models/NAME` and `/metadata`.
//! - AI Platform and Vertex: `POST /v1/projects/*/models/NAME[/versions/*]:predict` and
//!   `POST /v1/projects/*/locations/*/endpoints/*:predict` (and `:rawPredict`), with Earth
//!   Engine's payload formats (`SERIALIZED_TF_TENSORS`, `RAW_JSON`, `ND_ARRAYS`), bare
//!   `[row][col][channel]` lists, or plain numeric instances; errors in Google's JSON form.
//! - KServe v2: `POST /v2/models/NAME[/versions/1]/infer` (JSON and the binary extension),
//!   `GET /v2/health/live`, `/v2/health/ready`, `/v2/models/NAME[/ready]`.
//! - gRPC: `tensorflow.serving.PredictionService/Predict` and
//!   `inference.GRPCInferenceService` (`ModelInfer`, `ServerLive`, `ServerReady`,
//!   `ModelReady`, metadata).
//!
//! Concurrent requests' instances are stacked into one model run when the model has a free
//! batch axis. At most `max_queue` requests are admitted at once, REST and gRPC together, each
//! before its body is read or decoded; beyond, the node answers 429 / RESOURCE_EXHAUSTED with
//! `Retry-After`, so a client's backoff has something real to react to. Bad input is a 400
//! naming what was wrong. Shutdown finishes what is in flight.
//!
//! ```
//! use ee_runtime::{Layout, LocalModel};
//! use ee_serve::{Node, ServeConfig};
//!
//! # async fn run() -> Result<(), ee_serve::Error> {
//! let model = LocalModel::load("../ee-model/demo/water.onnx", Layout::Nhwc)?;
//! let config = ServeConfig {
//!     model_name: "water".into(),
//!     http: Some(([127, 0, 0, 1], 0).into()), // port 0: any free port
//!     ..ServeConfig::default()
//! };
//! let node = Node::start(model, config).await?;
//! println!("serving on {:?}", node.http_addr());
//! // A server waits for SIGTERM or Ctrl-C: `node.run_until_signal().await?`.
//! let stats = node.shutdown().await?;
//! println!("{stats}");
//! # Ok(()) }
//! # tokio::runtime::Runtime::new().unwrap().block_on(run()).unwrap();
//! ```
//!
//! Not here: TLS and authentication (put the node behind a proxy that does them), model
//! versions other than 1, several models per node (run one node per model).

#![deny(missing_docs)]

mod batcher;
mod config;
mod error;
#[cfg(feature = "grpc")]
mod grpc;
mod hosted;
mod node;
mod rest;
mod signature;
mod state;

pub use batcher::StatsSnapshot;
pub use config::ServeConfig;
pub use error::{Error, Result};
pub use node::{shutdown_signal, Node};
pub use signature::{Port, Signature};

/// The README's examples, compiled and run by `cargo test --doc`.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
