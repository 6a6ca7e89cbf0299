//! Predictor transports for Earth Engine–style prediction: AI Platform, Vertex AI, TF Serving
//! (REST and gRPC) and KServe v2 (REST, binary and gRPC), with batching under a payload
//! budget, retries with backoff, adaptive concurrency under node pressure, and auth.
//!
//! ```no_run
//! use ee_predict_client::{AuthConfig, ClientConfig, Endpoint, PredictClient, PredictorConfig};
//! use ee_tensor_proto::{DataType, Instance, OutputSpec, PayloadFormat, Tensor};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let predictor = PredictorConfig {
//!     endpoint: Endpoint::AiPlatform { project: "p".into(), model: "m".into(), version: None, region: "us-central1".into() },
//!     base_url: Some("http://127.0.0.1:8080".into()),
//!     format: PayloadFormat::SerializedTfTensors,
//! };
//! let client = PredictClient::new(&predictor, vec![OutputSpec::new("out", DataType::Float32)], AuthConfig::None, ClientConfig::default())?;
//! let tile = Instance::new().with("B1", Tensor::zeros(DataType::Float32, &[256, 256, 1]));
//! let answers = client.predict(&[tile], &["tile 0".to_string()]).await?;
//! # Ok(()) }
//! ```
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
mod metrics;
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
pub use metrics::{MetricsSnapshot, LATENCY_BUCKETS_MS};
pub use transport::{BoxFuture, Failure, Prepared, Reply, Transport};
