//! TensorFlow SavedModels read and rewritten from their protobufs alone, with no TensorFlow:
//! the engine of `ee-model prepare`, our `earthengine model prepare`.
//!
//! Earth Engine's hosted models take each input as a batch of URL-safe base64 strings of
//! serialized TensorProtos (one per instance) and give each output back the same way.
//! [`prepare`] rewrites a SavedModel (a Keras 3 `model.export()`, a TF1 `saved_model.Builder`
//! graph, anything with placeholders) to that contract: string placeholders
//! `earthengine_in_i`, outputs `earthengine_out_j`, glue ops between them and the model (see
//! below), one `serving_default` predict signature keyed by band names, tag `serve`. The
//! variables checkpoint and the assets are copied unchanged. [`list`] prints what a
//! SavedModel's signatures take and give, and [`TensorMap`] accepts the names it shows (graph
//! tensors, signature keys or node names).
//!
//! ```
//! use ee_savedmodel::{list_bytes, rewrite, TensorMap};
//! use std::path::Path;
//!
//! // A Keras 3 model exported with `model.export()` (see tests/fixtures/make_fixtures.py).
//! let path = Path::new("tests/fixtures/keras/saved_model.pb");
//! let bytes = std::fs::read(path).unwrap();
//! let listing = list_bytes(path, &bytes)?;
//! let serving = &listing.meta_graphs[0].signatures.iter().find(|s| s.key == "serving_default").unwrap();
//! assert_eq!(serving.inputs[0].tensor, "serving_default_x:0");
//!
//! // Signature keys work as well as tensor names.
//! let inputs = TensorMap::parse("--input", r#"{"x": "B"}"#)?;
//! let outputs = TensorMap::parse("--output", r#"{"output_0": "out"}"#)?;
//! let (_new_pb, prepared) = rewrite(path, &bytes, &inputs, &outputs, "serve")?;
//! assert_eq!(prepared.inputs[0].placeholder, "earthengine_in_0:0");
//! assert_eq!(prepared.inputs[0].feeds, "serving_default_x:0");
//! assert_eq!(prepared.outputs[0].tensor, "earthengine_out_0:0");
//! # Ok::<(), ee_savedmodel::Error>(())
//! ```
//!
//! How: the containers (`SavedModel`, `MetaGraphDef`, `GraphDef`) are decoded with every field
//! declared and their sub-messages kept as raw bytes, so what prepare does not change is
//! written back byte for byte. Each chosen placeholder is replaced by an `Identity` of the
//! decoded batch (so no other node changes); the decoding and encoding run in functional
//! while loops (`StatelessWhile` over `GatherV2`, `DecodeBase64`, `ParseTensor` /
//! `SerializeTensor`, `EncodeBase64`, `TensorListSetItem`, then `TensorListStack`), the graph
//! TensorFlow 2's `tf.map_fn` builds, whose functions are appended to the graph's library.
//! The TF2 object graph is dropped: TensorFlow then loads the result as it loads Earth
//! Engine's own prepared models, through the signature and the saver.
//!
//! Not here: text-format `saved_model.pbtxt`, Cloud Storage paths, sparse or composite
//! signature tensors, running models (`ee-runtime` runs ONNX; TensorFlow serves these).

#![deny(missing_docs)]

mod dtype;
mod error;
mod glue;
mod graph;
mod listing;
mod model;
mod prepare;
mod proto;
mod rewrite;
mod spec;

pub use error::{Error, Result};
pub use listing::{list, list_bytes, Listing, MetaGraphListing, SignatureListing, TensorEntry};
pub use prepare::{prepare, PrepareOptions};
pub use rewrite::{rewrite, Prepared, PreparedInput, PreparedOutput};
pub use spec::{TensorMap, TensorMapping};

/// The README's examples, compiled and run by `cargo test --doc`.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
