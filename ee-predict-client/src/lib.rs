//! Predictor transports for Earth Engine–style prediction: AI Platform, Vertex AI,
//! TF Serving (REST and gRPC), KServe v2 (REST and gRPC), with request batching under a
//! payload budget, retries with backoff, adaptive concurrency under node pressure, and auth.
//!
//! Encoding and decoding of bodies lives in `ee-tensor-proto`; this crate moves them.
