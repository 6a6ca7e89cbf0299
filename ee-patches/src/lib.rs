//! Earth Engine's TFRecord patch formats for your own rasters: export an image as patches of
//! `tf.train.Example`s with the mixer that georeferences them, import prediction records back
//! into a GeoTIFF, and export labelled training samples.
//!
//! - [`export_image`]: `Export.image` with `fileFormat: 'TFRecord'` — a row-major grid of
//!   patches (optionally buffered by a kernel), one `float_list` feature per band, shards of at
//!   most `max_file_size`, gzip or plain, `tensor_depths`, `collapse_bands`,
//!   `max_masked_ratio`, and `PREFIX-mixer.json`.
//! - [`import_predictions`]: prediction records in the export's order (core or buffered
//!   patches, float or int64 features, plain or gzip) + the mixer -> a GeoTIFF, written row of
//!   patches by row of patches.
//! - [`export_training`]: pixels sampled at random per class of a label raster, or at labelled
//!   points, with `k x k` neighbourhoods, deterministic for a seed, split into named files.
//!
//! ```
//! use std::path::PathBuf;
//! use ee_patches::{export_image, import_predictions, ExportOptions, ImportOptions, Mixer};
//! use ee_raster_io::{InputStack, Resampling};
//!
//! let dir = std::env::temp_dir().join("ee-patches-doc");
//! std::fs::create_dir_all(&dir).unwrap();
//! // The demo scene: 512 x 512 pixels, bands B2, B3, B4, B8.
//! let scene = PathBuf::from("../ee-model/demo/scene.tif");
//! let stack = InputStack::open(&[scene], &[], None, Resampling::Nearest)?;
//! let options = ExportOptions { patch_dimensions: [128, 128], kernel_size: [9, 9], ..Default::default() };
//! let report = export_image(&stack, &dir.join("scene"), &options)?;
//! assert_eq!((report.patches, report.buffered), (16, [136, 136]));
//!
//! // ... a model reads dir/scene-*.tfrecord.gz and writes its predictions in the same order;
//! // here the "model" is the identity, so the export's own records are the predictions ...
//! let mixer = Mixer::read(report.mixer.as_ref().unwrap())?;
//! let options = ImportOptions { kernel_size: Some([9, 9]), ..Default::default() };
//! let imported = import_predictions(&mixer, &report.files, &dir.join("pred.tif"), &options)?;
//! assert_eq!((imported.size.width, imported.size.height), (512, 512));
//! assert_eq!(imported.bands.len(), 4);
//! # Ok::<(), ee_patches::Error>(())
//! ```
//!
//! The mixer is plain JSON in Earth Engine's field names:
//!
//! ```
//! use ee_patches::Mixer;
//! use ee_tiling::GeoTransform;
//!
//! let m = Mixer::new("EPSG:32633".into(), GeoTransform::north_up(5e5, 5e6, 10.0, 10.0), [256, 256], 4, 12);
//! let json = serde_json::to_string(&m).unwrap();
//! assert!(json.contains(r#""doubleMatrix":[10.0,0.0,500000.0,0.0,-10.0,5000000.0]"#));
//! assert_eq!(m.raster_size().width, 1024);
//! ```
//!
//! Not here: reading and writing rasters (`ee-raster-io`), the TFRecord framing and the
//! protobuf messages (`ee-tensor-proto`), running models (`ee-model`). `sequenceData`
//! (SequenceExample output) is not supported.

#![deny(missing_docs)]

mod encode;
mod error;
pub mod export;
pub mod import;
pub mod mixer;
mod shards;
pub mod training;

pub use error::{Error, Result};
pub use export::{
    export_image, mixer_path, plan_features, ExportOptions, ExportReport, FeatureLayout,
};
pub use import::{import_predictions, DepthLayout, ImportOptions, ImportReport};
pub use mixer::{Affine, Mixer, Projection};
pub use shards::{compression_of, shard_path};
pub use training::{
    export_training, split_path, LabelSource, SplitReport, TrainingOptions, TrainingReport,
};

/// The README's examples, compiled and run by `cargo test --doc`.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
