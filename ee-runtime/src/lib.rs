//! The embedded runtime: ONNX models run in process with tract (pure Rust, nothing
//! downloaded). Symbolic batch, height and width are bound per concrete input shape and the
//! optimised plan is cached per shape (a fully symbolic plan runs many times slower). Tensors
//! arrive NHWC (Earth Engine's layout); an NCHW model gets them transposed.
//!
//! ```
//! use ee_runtime::{Layout, LocalModel};
//! use ee_tensor_proto::{Instance, Tensor};
//!
//! // The demo model (NHWC float32 reflectance of 4 bands in, "water" probability out).
//! let model = LocalModel::load("../ee-model/demo/water.onnx", Layout::Nhwc)?;
//! let tile = Tensor::F32(ndarray::ArrayD::zeros(vec![64, 64, 4]));
//! let mut instance = Instance::new();
//! instance.push("input", tile);
//! let answers = model.run(&[instance])?;
//! assert_eq!(answers[0].names().collect::<Vec<_>>(), ["water"]);
//! assert_eq!(answers[0].get("water").unwrap().shape(), [64, 64, 1]);
//! # Ok::<(), ee_runtime::Error>(())
//! ```
//!
//! Not here: serving models over HTTP or gRPC (`ee-serve`), tiling rasters (`ee-tiling`),
//! formats other than ONNX.
//!
//! Inside: `model` ([`LocalModel`]: instances matched to inputs, converted, batched), `tract`
//! (the runtime behind it: graph, folded transposes, plans per shape), `io` (tensors into and
//! out of tract), `signature` ([`Layout`], [`TensorInfo`]), `convert` and `error`.

#![deny(missing_docs)]

mod alloc;
mod convert;
mod error;
mod io;
mod model;
mod signature;
#[cfg(test)]
mod tests;
mod tract;

pub use alloc::tune_allocator;
pub use convert::{convert, from_f64};
pub use error::{Error, Result};
pub use model::LocalModel;
pub use signature::{Layout, TensorInfo};

/// The README's examples, compiled and run by `cargo test --doc`.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
