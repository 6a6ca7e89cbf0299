//! Earth Engine's `ee.Model.predictImage` on your own rasters and model servers.
//!
//! A [`Model`] is built from a [`ModelSpec`] (Earth Engine's parameters, validated at
//! construction) and runs [`Model::predict_image`]: read windows with GDAL, pack tiles into
//! tensors, send batched requests to the predictor (an embedded ONNX runtime, AI Platform,
//! Vertex AI, TF Serving or KServe), crop or blend the answers and stream a masked,
//! georeferenced GeoTIFF. Finished tiles are journaled so a killed job resumes.
//!
//! ```
//! use ee_model::{Model, ModelSpec, PredictOptions};
//!
//! # async fn run() -> Result<(), ee_model::Error> {
//! // A local ONNX model; hosted predictors (AI Platform, Vertex, TF Serving, KServe) likewise.
//! let spec = ModelSpec::from_file("demo/water-spec.json".as_ref())?;
//! let model = Model::new(spec)?;
//! let output = std::env::temp_dir().join("ee-model-doc-water.tif");
//! let report = model.predict_image(&["demo/scene.tif".into()], &output, &PredictOptions::default()).await?;
//! println!("{} tiles, bands {:?}", report.plan.tiles, report.bands);
//! # Ok(()) }
//! # tokio::runtime::Runtime::new().unwrap().block_on(run()).unwrap();
//! ```

#![deny(missing_docs)]

mod error;
pub mod journal;
mod pipeline;
mod properties;
pub mod spec;

use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use ee_runtime::{Layout, LocalModel};
pub use error::{Error, Result};
pub use pipeline::{
    JobPlan, NonFinite, PlanFn, PredictOptions, Progress, ProgressFn, Report, StageTimes,
};
pub use properties::{PropertiesOptions, PropertiesReport};
pub use spec::{ModelSpec, OutputBandSpec, PredictorSpec};

use ee_predict_client::PredictClient;
use ee_tensor_proto::OutputSpec;
use pipeline::Runner;

/// Tiles per model run for a local model, unless the spec says otherwise.
pub const DEFAULT_LOCAL_BATCH: usize = 4;

/// A model ready to predict.
pub struct Model {
    spec: ModelSpec,
    runner: Runner,
}

impl Model {
    /// Loads the local model or sets up the client; checks that a local model returns the
    /// declared output bands.
    pub fn new(spec: ModelSpec) -> Result<Self> {
        let runner = match &spec.predictor {
            PredictorSpec::Local {
                path, batch_size, ..
            } => {
                let model = LocalModel::load(path, spec.layout()?)?;
                let outs = model.outputs();
                let single = outs.len() == 1 && spec.output_bands.len() == 1;
                for band in &spec.output_bands {
                    if !single && !outs.contains(&band.name) {
                        return Err(Error::Spec(format!(
                            "output band {:?} is not an output of {} (it has: {})",
                            band.name,
                            path.display(),
                            outs.join(", ")
                        )));
                    }
                }
                properties::check_local_outputs(&spec, &model, path)?;
                Runner::Local {
                    model: Arc::new(model),
                    batch: batch_size.unwrap_or(DEFAULT_LOCAL_BATCH).max(1),
                }
            }
            _ => {
                // A spec for properties only decodes its outputProperties.
                let declared = if spec.output_bands.is_empty() {
                    &spec.output_properties
                } else {
                    &spec.output_bands
                };
                let outputs: Vec<OutputSpec> = declared
                    .iter()
                    .map(|b| OutputSpec::new(&b.name, b.dtype))
                    .collect();
                let predictor = spec.predictor_config()?;
                let client = PredictClient::new(
                    &predictor,
                    outputs,
                    spec.auth.clone(),
                    spec.client_config(),
                )?;
                Runner::Remote(Arc::new(client))
            }
        };
        Ok(Model { spec, runner })
    }

    /// A model over an already built client (custom transports, auth providers).
    pub fn with_client(spec: ModelSpec, client: PredictClient) -> Self {
        Model {
            spec,
            runner: Runner::Remote(Arc::new(client)),
        }
    }

    /// The spec.
    pub fn spec(&self) -> &ModelSpec {
        &self.spec
    }

    /// Where predictions go, for messages.
    pub fn describe(&self) -> String {
        match &self.runner {
            Runner::Local { model, .. } => format!(
                "local ONNX model (inputs {:?}, outputs {:?})",
                model.inputs(),
                model.outputs()
            ),
            Runner::Remote(c) => c.describe(),
        }
    }

    /// Runs the pipeline over `inputs` (bands stacked in order) into the GeoTIFF `output`.
    pub async fn predict_image(
        &self,
        inputs: &[PathBuf],
        output: &Path,
        options: &PredictOptions,
    ) -> Result<Report> {
        if self.spec.output_bands.is_empty() {
            return Err(Error::Spec(
                "predicting an image needs outputBands (and inputTileSize); this spec declares outputProperties only".into(),
            ));
        }
        pipeline::predict_image(&self.spec, &self.runner, inputs, output, options).await
    }

    /// Earth Engine's `predictProperties` over a vector file: every feature of one layer of
    /// `input` is an instance of its input properties; the answers are written as new fields
    /// (`outputProperties`) to `output`, a copy in the same format (or `options.format`).
    pub async fn predict_properties(
        &self,
        input: &Path,
        output: &Path,
        options: &PropertiesOptions,
    ) -> Result<PropertiesReport> {
        properties::predict_properties(&self.spec, &self.runner, input, output, options).await
    }
}

/// The README's examples, compiled and run by `cargo test --doc`.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
