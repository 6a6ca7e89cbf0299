//! Predictor transports for Earth Engine–style prediction: AI Platform, Vertex AI, TF Serving
//! (REST and gRPC) and KServe v2 (REST, binary and gRPC), with batching under a payload
//! budget, retries with backoff, adaptive concurrency under node pressure, and auth.
//!
//! ```
//! use ee_predict_client::{AuthConfig, ClientConfig, Endpoint, PredictClient, PredictorConfig};
//! use ee_tensor_proto::{DataType, Instance, OutputSpec, PayloadFormat, Tensor};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! # // A stand-in for the hosted model on 127.0.0.1: answers `out` = `B1`.
//! # use ee_tensor_proto::payload::serialized_tf_tensors;
//! # let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! # let addr = listener.local_addr()?;
//! # let app = axum::Router::new().fallback(|body: axum::body::Bytes| async move {
//! #     let spec = [OutputSpec::new("B1", DataType::Float32)];
//! #     let rows = serialized_tf_tensors::decode_request(&body, &spec).unwrap();
//! #     let answers: Vec<Instance> =
//! #         rows.into_iter().map(|mut r| Instance::new().with("out", r.take("B1").unwrap())).collect();
//! #     let mut out = Vec::new();
//! #     serialized_tf_tensors::encode_response(&answers, &mut out).unwrap();
//! #     out
//! # });
//! # tokio::spawn(async move { axum::serve(listener, app).await });
//! # let base_url = format!("http://{addr}");
//! let predictor = PredictorConfig {
//!     endpoint: Endpoint::AiPlatform { project: "p".into(), model: "m".into(), version: None, region: "us-central1".into() },
//!     base_url: Some(base_url), // e.g. "http://127.0.0.1:8080"; None: Google's endpoint
//!     format: PayloadFormat::SerializedTfTensors,
//! };
//! let client = PredictClient::new(&predictor, vec![OutputSpec::new("out", DataType::Float32)], AuthConfig::None, ClientConfig::default())?;
//! let tile = Instance::new().with("B1", Tensor::zeros(DataType::Float32, &[256, 256, 1]));
//! let answers = client.predict(&[tile], &["tile 0".to_string()]).await?;
//! assert_eq!(answers[0].get("out").unwrap().shape(), [256, 256, 1]);
//! # Ok(()) }
//! # tokio::runtime::Runtime::new().unwrap().block_on(run()).unwrap();
//! ```
//!
//! Which failures are retried, how often and for how long is [`retry`]'s, in one table.
//! [`PredictClient::check_inputs`] asks a server that can describe its model (KServe v2, TF
//! Serving REST, ee-serve) what it takes, so that a job that cannot work fails before its
//! first tile.
//!
//! Bodies are encoded and decoded by `ee-tensor-proto`; this crate moves them. It knows
//! nothing of rasters or tiles beyond the labels it puts in error messages.

#![deny(missing_docs)]

pub mod auth;
mod backoff;
mod batch;
mod client;
mod concurrency;
mod endpoint;
mod error;
#[cfg(feature = "grpc")]
mod grpc;
mod http;
mod metadata;
mod metrics;
pub mod retry;
mod transport;

pub use auth::{AuthConfig, AuthError, Secret, TokenProvider};
pub use backoff::{Backoff, BackoffConfig, FastRandom, RandomSource};
pub use batch::plan_batches;
pub use client::{ClientConfig, PredictClient};
pub use concurrency::{AdaptiveConcurrency, Permit};
pub use endpoint::{display_url, Endpoint, ModelVersion, PredictorConfig, DEFAULT_REGION};
pub use error::{Error, Result};
#[cfg(feature = "grpc")]
pub use grpc::{GrpcModel, GrpcTransport, EXAMPLES_INPUT, MAX_MESSAGE_BYTES};
pub use http::HttpTransport;
pub use metadata::{
    Description, InputDescription, InputProblem, ModelCheck, ModelInput, ModelMetadata, Protocol,
};
pub use metrics::{MetricsSnapshot, LATENCY_BUCKETS_MS};
pub use retry::Failure;
pub use transport::{BoxFuture, Prepared, Reply, Transport};

/// The README's examples, compiled and run by `cargo test --doc`.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
