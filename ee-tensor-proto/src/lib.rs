//! TensorFlow's wire formats for Earth Engine–style prediction, with no I/O and no network.
//!
//! - [`Tensor`]: an ndarray-backed tensor of any [`DataType`] TensorFlow serving carries
//!   (u8…u64, i8…i64, f16, f32, f64, bool, string), with lossless conversion to and from
//!   `tensorflow.TensorProto` ([`tensor_proto`]), byte-identical to `tf.io.serialize_tensor`.
//! - Generated protobuf messages ([`proto`]): TensorProto, tf.train.Example / SequenceExample,
//!   TF Serving's PredictRequest / PredictResponse / ModelSpec, the Open Inference Protocol v2
//!   gRPC messages, and (feature `grpc`) tonic stubs for both prediction services.
//! - Request and response bodies of every payload format ([`payload`]): Earth Engine's
//!   `SERIALIZED_TF_TENSORS`, `RAW_JSON` and `ND_ARRAYS`, TF Serving row and columnar JSON,
//!   KServe v2 JSON and its binary extension. Encoders append to a reusable buffer.
//! - TFRecord framing ([`tfrecord`]) with masked CRC-32C and gzip.
//!
//! ```
//! use ee_tensor_proto::payload::{serialized_tf_tensors, Instance, OutputSpec};
//! use ee_tensor_proto::{DataType, Tensor};
//!
//! let tile = Tensor::from_vec(&[2, 2, 1], vec![0.5f32, 1.5, 2.5, 3.5])?;
//! let mut body = Vec::new();
//! serialized_tf_tensors::encode_request(&[Instance::new().with("B1", tile.clone())], &mut body)?;
//! assert!(body.starts_with(br#"{"instances":[{"B1":""#));
//!
//! // A server answering with the same tensor as its single output:
//! let answer = br#"{"predictions": ["CAESDBICCAISAggCEgIIASIQAAAAPwAAwD8AACBAAABgQA"]}"#;
//! let rows = serialized_tf_tensors::decode_response(answer, &[OutputSpec::new("out", DataType::Float32)])?;
//! assert_eq!(rows[0].get("out"), Some(&tile));
//! # Ok::<(), ee_tensor_proto::Error>(())
//! ```
//!
//! Not here: sending requests (`ee-predict-client`), reading rasters (`ee-raster-io`), tiling
//! (`ee-tiling`).

#![deny(missing_docs)]

mod b64;
mod dtype;
mod error;
pub mod example;
mod json;
pub mod payload;
pub mod proto;
mod tensor;
pub mod tensor_proto;
pub mod tfrecord;

pub use b64::{decode_any as decode_base64, encode_standard_into, encode_url_safe_into};
pub use dtype::{DataType, ALL_DATA_TYPES};
pub use error::{Error, Result};
pub use json::sniff_instances;
pub use payload::{Instance, OutputSpec, PayloadFormat};
pub use tensor::{Element, Tensor};

/// The README's examples, compiled and run by `cargo test --doc`.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
