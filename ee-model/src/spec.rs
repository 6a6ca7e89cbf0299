//! The model description: Earth Engine's parameter names (camelCase in JSON, so a user can
//! paste their Earth Engine arguments) plus `predictor` and `inputBands`. Checked at
//! construction with the numbers in the messages, before any request is sent.

use std::path::{Path, PathBuf};
use std::time::Duration;

use ee_predict_client::{
    AuthConfig, ClientConfig, Endpoint, ModelVersion, PredictorConfig, DEFAULT_REGION,
};
use ee_raster_io::BandSelector;
use ee_tensor_proto::{DataType, PayloadFormat};
use ee_tiling::{BandDims, Overlap, RasterSize, TileGrid, TileSize};
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::{Error, Result};
use ee_runtime::Layout;

/// Where the model runs, as written in the spec's `predictor` object.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(
    tag = "type",
    rename_all = "camelCase",
    rename_all_fields = "camelCase",
    deny_unknown_fields
)]
pub enum PredictorSpec {
    /// An ONNX model run in process.
    Local {
        /// The `.onnx` file (relative paths are relative to the spec file).
        path: PathBuf,
        /// `NHWC` (default) or `NCHW`.
        #[serde(default)]
        layout: Option<String>,
        /// Tiles per model run.
        #[serde(default)]
        batch_size: Option<usize>,
    },
    /// AI Platform online prediction.
    AiPlatform {
        /// Project.
        project_id: String,
        /// Model.
        model_name: String,
        /// Version.
        #[serde(default)]
        version: Option<String>,
        /// Region.
        #[serde(default)]
        region: Option<String>,
        /// Overrides the host.
        #[serde(default)]
        base_url: Option<String>,
    },
    /// A Vertex AI endpoint.
    VertexAi {
        /// `projects/P/locations/R/endpoints/ID`.
        endpoint: String,
        /// Use `:rawPredict`.
        #[serde(default)]
        raw_predict: bool,
        /// Overrides the host.
        #[serde(default)]
        base_url: Option<String>,
    },
    /// TensorFlow Serving.
    TfServing {
        /// Server address.
        url: String,
        /// Model name.
        model: String,
        /// Version number.
        #[serde(default)]
        version: Option<i64>,
        /// Version label.
        #[serde(default)]
        label: Option<String>,
        /// Signature.
        #[serde(default)]
        signature_name: Option<String>,
        /// Use gRPC (`GRPC_TF_TENSORS` unless `payloadFormat` says otherwise).
        #[serde(default)]
        grpc: bool,
    },
    /// A KServe v2 server.
    KserveV2 {
        /// Server address.
        url: String,
        /// Model name.
        model: String,
        /// Version.
        #[serde(default)]
        version: Option<String>,
        /// Use gRPC.
        #[serde(default)]
        grpc: bool,
    },
    /// Any URL taking the body as is.
    Url {
        /// The URL.
        url: String,
    },
}

/// Auth as written in the spec.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AuthSpec {
    /// Environment variable holding a bearer token.
    #[serde(default)]
    pub bearer_env: Option<String>,
    /// Command printing a bearer token (argv).
    #[serde(default)]
    pub bearer_command: Option<Vec<String>>,
    /// Service-account key file.
    #[serde(default)]
    pub service_account_key: Option<PathBuf>,
}

/// A declared output band.
#[derive(Clone, Debug, PartialEq)]
pub struct OutputBandSpec {
    /// Name (the model output it maps to).
    pub name: String,
    /// Element type.
    pub dtype: DataType,
    /// Per-pixel rank.
    pub dims: BandDims,
}

/// A model input: a name and the raster bands stacked into it.
#[derive(Clone, Debug, PartialEq)]
pub struct InputBandSpec {
    /// The model input name.
    pub name: String,
    /// Raster bands (by description or 1-based index over all inputs).
    pub bands: Vec<BandSelector>,
}

/// The projection the model was trained in.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProjSpec {
    /// CRS: WKT, `EPSG:n` or anything GDAL accepts.
    pub crs: String,
    /// Pixel size `[x, y]` in CRS units.
    pub scale: [f64; 2],
    /// Grid origin `[x, y]` (pixels are aligned to it); default `[0, 0]`.
    #[serde(default)]
    pub origin: Option<[f64; 2]>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawSpec {
    predictor: PredictorSpec,
    #[serde(default)]
    input_bands: Option<Map<String, Value>>,
    #[serde(default)]
    input_tile_size: Option<[usize; 2]>,
    #[serde(default)]
    input_overlap_size: Option<[usize; 2]>,
    #[serde(default)]
    output_tile_size: Option<[usize; 2]>,
    #[serde(default)]
    output_bands: Option<Map<String, Value>>,
    #[serde(default)]
    output_properties: Option<Map<String, Value>>,
    #[serde(default)]
    payload_format: Option<String>,
    #[serde(default)]
    max_payload_bytes: Option<usize>,
    #[serde(default)]
    output_multiplier: Option<f64>,
    #[serde(default)]
    input_type_override: Option<Map<String, Value>>,
    #[serde(default)]
    input_properties: Option<Vec<String>>,
    #[serde(default)]
    proj: Option<ProjSpec>,
    #[serde(default)]
    fix_input_proj: bool,
    #[serde(default)]
    auth: Option<AuthSpec>,
    #[serde(default)]
    max_concurrency: Option<usize>,
    #[serde(default)]
    request_timeout_seconds: Option<f64>,
}

/// A validated model description.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelSpec {
    /// Where the model runs.
    pub predictor: PredictorSpec,
    /// Model inputs and the bands stacked into each; empty: every band its own input.
    pub input_bands: Vec<InputBandSpec>,
    /// Core tile size `[w, h]` (1 x 1 in a spec for properties only, without `outputBands`).
    pub input_tile_size: TileSize,
    /// Total overlap per axis.
    pub input_overlap_size: Overlap,
    /// Core answer size.
    pub output_tile_size: TileSize,
    /// Declared output bands, in order (empty in a spec for properties only).
    pub output_bands: Vec<OutputBandSpec>,
    /// Feature properties sent as the model's inputs (`inputProperties`); empty: every
    /// numeric property. For `predict_properties` only.
    pub input_properties: Vec<String>,
    /// Declared output properties (`outputProperties`), in order: new feature fields of
    /// `predict_properties`, dimensions 0 (scalar) or 1 (array).
    pub output_properties: Vec<OutputBandSpec>,
    /// Payload format (hosted predictors).
    pub payload_format: PayloadFormat,
    /// Largest request body.
    pub max_payload_bytes: usize,
    /// Expected answer bytes / request bytes.
    pub output_multiplier: f64,
    /// Per input name: the type to send.
    pub input_type_override: Vec<(String, DataType)>,
    /// The training projection.
    pub proj: Option<ProjSpec>,
    /// Always sample inputs in `proj`.
    pub fix_input_proj: bool,
    /// Auth.
    pub auth: AuthConfig,
    /// Most requests in flight.
    pub max_concurrency: usize,
    /// Deadline of one request.
    pub request_timeout: Duration,
}

fn selector(v: &Value, input: &str) -> Result<BandSelector> {
    match v {
        Value::String(s) => Ok(BandSelector::Name(s.clone())),
        Value::Number(n) => n
            .as_u64()
            .filter(|&i| i >= 1)
            .map(|i| BandSelector::Index(i as usize))
            .ok_or_else(|| {
                Error::Spec(format!(
                    "inputBands.{input}: band index {n} must be a positive integer (1-based)"
                ))
            }),
        other => Err(Error::Spec(format!(
            "inputBands.{input}: {other} is not a band name or 1-based index"
        ))),
    }
}

/// One declared output (`outputBands` or `outputProperties` entry `v`, named `what` in
/// errors) of `dims` dimensions.
fn output_spec(name: &str, v: &Value, what: &str, dims: u64) -> Result<OutputBandSpec> {
    let ty = v
        .get("type")
        .ok_or_else(|| Error::Spec(format!("{what} has no \"type\"")))?;
    Ok(OutputBandSpec {
        name: name.to_string(),
        dtype: parse_dtype(ty, what)?,
        dims: BandDims::from_dimensions(dims as u32)
            .map_err(|e| Error::Spec(format!("{what}: {e}")))?,
    })
}

fn parse_dtype(v: &Value, what: &str) -> Result<DataType> {
    let s = v
        .as_str()
        .ok_or_else(|| Error::Spec(format!("{what}: type must be a string such as \"float\"")))?;
    let d: DataType = s.parse().map_err(|_| {
        Error::Spec(format!(
            "{what}: unknown type {s:?} (float, double, int8..int64, uint8..uint64)"
        ))
    })?;
    if d == DataType::String {
        return Err(Error::Spec(format!(
            "{what}: string bands cannot be rasters"
        )));
    }
    Ok(d)
}

impl ModelSpec {
    /// Reads and validates a spec file; relative paths inside are relative to it.
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::SpecFile {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        let mut spec = ModelSpec::from_json(&text).map_err(|e| match e {
            Error::Spec(m) => Error::SpecFile {
                path: path.to_path_buf(),
                message: m,
            },
            other => other,
        })?;
        if let PredictorSpec::Local { path: model, .. } = &mut spec.predictor {
            if model.is_relative() {
                *model = path.parent().unwrap_or(Path::new(".")).join(&*model);
            }
        }
        Ok(spec)
    }

    /// Parses and validates spec JSON.
    pub fn from_json(text: &str) -> Result<Self> {
        let raw: RawSpec = serde_json::from_str(text).map_err(|e| Error::Spec(e.to_string()))?;
        if raw.output_bands.is_none() && raw.output_properties.is_none() {
            return Err(Error::Spec(
                "declare the model's outputs: outputBands (images, e.g. {\"out\": {\"type\": \"float\"}}) or outputProperties (features)".into(),
            ));
        }
        if raw.output_bands.is_some() && raw.input_tile_size.is_none() {
            return Err(Error::Spec(
                "inputTileSize is required with outputBands (images)".into(),
            ));
        }
        let raw_tile_size = raw.input_tile_size.unwrap_or([1, 1]);
        let [tw, th] = raw_tile_size;
        let input_tile_size = TileSize::new(tw, th)
            .map_err(|_| Error::Spec(format!("inputTileSize [{tw}, {th}] must be positive")))?;
        let [ox, oy] = raw.input_overlap_size.unwrap_or([0, 0]);
        let [ow, oh] = raw.output_tile_size.unwrap_or(raw_tile_size);
        let output_tile_size = TileSize::new(ow, oh)
            .map_err(|_| Error::Spec(format!("outputTileSize [{ow}, {oh}] must be positive")))?;
        // Check the geometry on a region of one tile: overlap < tile, whole ratios.
        TileGrid::new(RasterSize::new(tw, th).window(), input_tile_size, Overlap::new(ox, oy), output_tile_size)
            .map_err(|e| Error::Spec(format!("inputTileSize [{tw}, {th}], inputOverlapSize [{ox}, {oy}], outputTileSize [{ow}, {oh}]: {e}")))?;
        if raw.output_bands.as_ref().is_some_and(Map::is_empty) {
            return Err(Error::Spec("outputBands is empty: declare the model's outputs, e.g. {\"out\": {\"type\": \"float\"}}".into()));
        }
        if raw.output_properties.as_ref().is_some_and(Map::is_empty) {
            return Err(Error::Spec("outputProperties is empty: declare the model's outputs, e.g. {\"score\": {\"type\": \"float\"}}".into()));
        }
        let output_properties = raw
            .output_properties
            .unwrap_or_default()
            .iter()
            .map(|(name, v)| {
                let what = format!("outputProperties.{name}");
                let dims = match v.get("dimensions") {
                    None => 0,
                    Some(d) => d.as_u64().filter(|&d| d <= 1).ok_or_else(|| {
                        Error::Spec(format!(
                            "{what}: dimensions {d} must be 0 (a number) or 1 (an array) for a property"
                        ))
                    })?,
                };
                output_spec(name, v, &what, dims)
            })
            .collect::<Result<Vec<_>>>()?;
        let output_bands = raw
            .output_bands
            .unwrap_or_default()
            .iter()
            .map(|(name, v)| {
                let what = format!("outputBands.{name}");
                let dims = v.get("dimensions").and_then(Value::as_u64).unwrap_or(0);
                output_spec(name, v, &what, dims)
            })
            .collect::<Result<Vec<_>>>()?;
        let input_bands = raw
            .input_bands
            .unwrap_or_default()
            .iter()
            .map(|(name, v)| {
                let bands = match v {
                    Value::Array(items) if !items.is_empty() => items
                        .iter()
                        .map(|i| selector(i, name))
                        .collect::<Result<Vec<_>>>()?,
                    Value::Array(_) => {
                        return Err(Error::Spec(format!("inputBands.{name} lists no band")))
                    }
                    one => vec![selector(one, name)?],
                };
                Ok(InputBandSpec {
                    name: name.clone(),
                    bands,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let input_type_override = raw
            .input_type_override
            .unwrap_or_default()
            .iter()
            .map(|(name, v)| {
                Ok((
                    name.clone(),
                    parse_dtype(v, &format!("inputTypeOverride.{name}"))?,
                ))
            })
            .collect::<Result<Vec<_>>>()?;
        let payload_format = match (&raw.payload_format, &raw.predictor) {
            (Some(f), _) => f.parse::<PayloadFormat>().map_err(|e| match e {
                ee_tensor_proto::Error::Payload { message, .. } => {
                    Error::Spec(format!("payloadFormat: {message}"))
                }
                e => Error::Spec(e.to_string()),
            })?,
            (None, PredictorSpec::TfServing { grpc: true, .. }) => PayloadFormat::GrpcTfTensors,
            (None, PredictorSpec::TfServing { .. }) => PayloadFormat::TfServingJson,
            (None, PredictorSpec::KserveV2 { grpc: true, .. }) => PayloadFormat::KServeV2Grpc,
            (None, PredictorSpec::KserveV2 { .. }) => PayloadFormat::KServeV2Binary,
            (None, _) => PayloadFormat::SerializedTfTensors,
        };
        let max_payload_bytes = raw.max_payload_bytes.unwrap_or(1_500_000);
        if max_payload_bytes == 0 {
            return Err(Error::Spec("maxPayloadBytes must be positive".into()));
        }
        let output_multiplier = raw.output_multiplier.unwrap_or(1.0);
        if !(output_multiplier >= 1.0 && output_multiplier.is_finite()) {
            return Err(Error::Spec(format!(
                "outputMultiplier must be >= 1, not {output_multiplier}"
            )));
        }
        if let Some(p) = &raw.proj {
            if !(p.scale[0] > 0.0 && p.scale[1] > 0.0) {
                return Err(Error::Spec(format!(
                    "proj.scale {:?} must be positive",
                    p.scale
                )));
            }
        }
        if raw.fix_input_proj && raw.proj.is_none() {
            return Err(Error::Spec(
                "fixInputProj needs proj (crs and scale)".into(),
            ));
        }
        let input_properties = raw.input_properties.unwrap_or_default();
        if !input_properties.is_empty() && output_properties.is_empty() {
            return Err(Error::Spec(
                "inputProperties apply to predict-properties, not to images (declare outputProperties)".into(),
            ));
        }
        if let Some(dup) = input_properties
            .iter()
            .enumerate()
            .find(|(i, p)| input_properties[..*i].contains(p))
        {
            return Err(Error::Spec(format!(
                "inputProperties lists {:?} twice",
                dup.1
            )));
        }
        let auth = match raw.auth {
            None => AuthConfig::None,
            Some(AuthSpec {
                bearer_env: Some(var),
                bearer_command: None,
                service_account_key: None,
            }) => AuthConfig::BearerEnv { var },
            Some(AuthSpec {
                bearer_env: None,
                bearer_command: Some(command),
                service_account_key: None,
            }) => AuthConfig::BearerCommand {
                command,
                ttl: Duration::from_secs(300),
            },
            Some(AuthSpec {
                bearer_env: None,
                bearer_command: None,
                service_account_key: Some(key_file),
            }) => AuthConfig::ServiceAccount {
                key_file,
                scopes: AuthConfig::default_scopes(),
            },
            Some(_) => {
                return Err(Error::Spec(
                    "auth takes exactly one of bearerEnv, bearerCommand, serviceAccountKey".into(),
                ))
            }
        };
        let spec = ModelSpec {
            predictor: raw.predictor,
            input_bands,
            input_tile_size,
            input_overlap_size: Overlap::new(ox, oy),
            output_tile_size,
            output_bands,
            input_properties,
            output_properties,
            payload_format,
            max_payload_bytes,
            output_multiplier,
            input_type_override,
            proj: raw.proj,
            fix_input_proj: raw.fix_input_proj,
            auth,
            max_concurrency: raw.max_concurrency.unwrap_or(16).max(1),
            request_timeout: Duration::from_secs_f64(
                raw.request_timeout_seconds.unwrap_or(60.0).max(0.001),
            ),
        };
        if !matches!(spec.predictor, PredictorSpec::Local { .. }) {
            spec.predictor_config()?
                .url()
                .map_err(|e| Error::Spec(e.to_string()))?;
        }
        Ok(spec)
    }

    /// The hosted predictor's client configuration (not for `local`).
    pub fn predictor_config(&self) -> Result<PredictorConfig> {
        let format = self.payload_format;
        let (endpoint, base_url) = match &self.predictor {
            PredictorSpec::Local { .. } => {
                return Err(Error::Spec(
                    "a local predictor has no client configuration".into(),
                ))
            }
            PredictorSpec::AiPlatform {
                project_id,
                model_name,
                version,
                region,
                base_url,
            } => (
                Endpoint::AiPlatform {
                    project: project_id.clone(),
                    model: model_name.clone(),
                    version: version.clone(),
                    region: region.clone().unwrap_or_else(|| DEFAULT_REGION.to_string()),
                },
                base_url.clone(),
            ),
            PredictorSpec::VertexAi {
                endpoint,
                raw_predict,
                base_url,
            } => (
                Endpoint::Vertex {
                    endpoint: endpoint.clone(),
                    raw_predict: *raw_predict,
                },
                base_url.clone(),
            ),
            PredictorSpec::TfServing {
                url,
                model,
                version,
                label,
                signature_name,
                ..
            } => {
                let version = match (version, label) {
                    (Some(_), Some(_)) => {
                        return Err(Error::Spec(
                            "tfServing takes a version or a label, not both".into(),
                        ))
                    }
                    (Some(v), None) => Some(ModelVersion::Number(*v)),
                    (None, Some(l)) => Some(ModelVersion::Label(l.clone())),
                    (None, None) => None,
                };
                (
                    Endpoint::TfServing {
                        url: url.clone(),
                        model: model.clone(),
                        version,
                        signature: signature_name.clone(),
                    },
                    None,
                )
            }
            PredictorSpec::KserveV2 {
                url,
                model,
                version,
                ..
            } => (
                Endpoint::KServeV2 {
                    url: url.clone(),
                    model: model.clone(),
                    version: version.clone(),
                },
                None,
            ),
            PredictorSpec::Url { url } => (Endpoint::Url(url.clone()), None),
        };
        Ok(PredictorConfig {
            endpoint,
            base_url,
            format,
        })
    }

    /// The client configuration the spec implies.
    pub fn client_config(&self) -> ClientConfig {
        ClientConfig {
            max_payload_bytes: self.max_payload_bytes,
            output_multiplier: self.output_multiplier,
            max_concurrency: self.max_concurrency,
            initial_concurrency: self.max_concurrency.min(4),
            request_timeout: self.request_timeout,
            ..Default::default()
        }
    }

    /// The local model's layout.
    pub fn layout(&self) -> Result<Layout> {
        match &self.predictor {
            PredictorSpec::Local {
                layout: Some(l), ..
            } => Ok(l.parse()?),
            _ => Ok(Layout::Nhwc),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = r#"{"predictor": {"type": "aiPlatform", "projectId": "p", "modelName": "m", "version": "v1",
               "region": "us-central1", "baseUrl": "http://127.0.0.1:8080"},
 "inputBands": {"array": ["B1", "B2", "B3"]},
 "inputTileSize": [128, 128], "inputOverlapSize": [8, 8],
 "outputBands": {"out": {"type": "float", "dimensions": 1}},
 "payloadFormat": "SERIALIZED_TF_TENSORS", "maxPayloadBytes": 1500000}"#;

    #[test]
    fn the_issue_example_parses() {
        let s = ModelSpec::from_json(EXAMPLE).unwrap();
        assert_eq!(s.input_bands[0].bands.len(), 3);
        assert_eq!(s.output_bands[0].dims, BandDims::Vector);
        assert_eq!(s.output_tile_size, s.input_tile_size);
        assert_eq!(
            s.predictor_config().unwrap().url().unwrap(),
            "http://127.0.0.1:8080/v1/projects/p/models/m/versions/v1:predict"
        );
    }

    #[test]
    fn bad_parameters_are_refused_with_numbers() {
        let bad = EXAMPLE.replace(
            "\"inputOverlapSize\": [8, 8]",
            "\"inputOverlapSize\": [130, 8]",
        );
        let err = ModelSpec::from_json(&bad).unwrap_err().to_string();
        assert!(
            err.contains("overlap [130, 8] must be smaller than the tile [128, 128]"),
            "{err}"
        );
        let bad = EXAMPLE.replace("\"SERIALIZED_TF_TENSORS\"", "\"PICKLES\"");
        assert!(ModelSpec::from_json(&bad)
            .unwrap_err()
            .to_string()
            .contains("unknown payload format \"PICKLES\""));
        let bad = EXAMPLE.replace("us-central1", "global");
        assert!(ModelSpec::from_json(&bad)
            .unwrap_err()
            .to_string()
            .contains("regional endpoints"));
        let bad = EXAMPLE.replace(
            "\"inputTileSize\": [128, 128]",
            "\"inputTileSize\": [128, 128], \"outputTileSize\": [100, 100]",
        );
        assert!(ModelSpec::from_json(&bad)
            .unwrap_err()
            .to_string()
            .contains("not whole multiples"));
        let bad = EXAMPLE.replace("\"maxPayloadBytes\"", "\"maxPayloadByte\"");
        assert!(ModelSpec::from_json(&bad)
            .unwrap_err()
            .to_string()
            .contains("unknown field `maxPayloadByte`"));
    }

    const PROPERTIES: &str = r#"{"predictor": {"type": "aiPlatform", "projectId": "p", "modelName": "m", "baseUrl": "http://127.0.0.1:8080"},
 "inputProperties": ["a", "v"], "inputTypeOverride": {"a": "double"},
 "outputProperties": {"s": {"type": "float"}, "w": {"type": "int64", "dimensions": 1}}}"#;

    #[test]
    fn a_properties_spec_needs_no_tiles() {
        let s = ModelSpec::from_json(PROPERTIES).unwrap();
        assert_eq!(s.input_properties, vec!["a", "v"]);
        assert!(s.output_bands.is_empty());
        let outs: Vec<(&str, DataType, BandDims)> = s
            .output_properties
            .iter()
            .map(|o| (o.name.as_str(), o.dtype, o.dims))
            .collect();
        assert_eq!(
            outs,
            vec![
                ("s", DataType::Float32, BandDims::Scalar),
                ("w", DataType::Int64, BandDims::Vector)
            ]
        );
        assert_eq!(
            s.input_type_override,
            vec![("a".to_string(), DataType::Float64)]
        );
    }

    #[test]
    fn properties_and_images_are_told_apart() {
        // inputProperties without outputProperties stays refused for images.
        let bad = EXAMPLE.replace(
            "\"inputTileSize\"",
            "\"inputProperties\": [\"a\"], \"inputTileSize\"",
        );
        let err = ModelSpec::from_json(&bad).unwrap_err().to_string();
        assert!(
            err.contains("inputProperties apply to predict-properties"),
            "{err}"
        );
        // outputBands still need a tile size.
        let bad = EXAMPLE.replace("\"inputTileSize\": [128, 128], ", "");
        let err = ModelSpec::from_json(&bad).unwrap_err().to_string();
        assert!(
            err.contains("inputTileSize is required with outputBands"),
            "{err}"
        );
        // Some outputs must be declared.
        let bad = PROPERTIES.replace("\"outputProperties\"", "\"outputPropertie\"");
        assert!(ModelSpec::from_json(&bad).is_err());
        let bad = r#"{"predictor": {"type": "url", "url": "http://127.0.0.1:1/p"}}"#;
        let err = ModelSpec::from_json(bad).unwrap_err().to_string();
        assert!(err.contains("outputBands (images"), "{err}");
        // Properties are numbers or arrays.
        let bad = PROPERTIES.replace("\"dimensions\": 1", "\"dimensions\": 2");
        let err = ModelSpec::from_json(&bad).unwrap_err().to_string();
        assert!(
            err.contains("outputProperties.w: dimensions 2 must be 0"),
            "{err}"
        );
        let bad = PROPERTIES.replace("[\"a\", \"v\"]", "[\"a\", \"a\"]");
        let err = ModelSpec::from_json(&bad).unwrap_err().to_string();
        assert!(err.contains("lists \"a\" twice"), "{err}");
        let bad = PROPERTIES.replace(
            "{\"s\": {\"type\": \"float\"}, \"w\": {\"type\": \"int64\", \"dimensions\": 1}}",
            "{}",
        );
        let err = ModelSpec::from_json(&bad).unwrap_err().to_string();
        assert!(err.contains("outputProperties is empty"), "{err}");
    }
}
