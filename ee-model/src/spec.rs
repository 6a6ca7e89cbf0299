//! The model description: Earth Engine's parameter names (camelCase in JSON, so a user can
//! paste their Earth Engine arguments) plus `predictor` and `inputBands`. Checked at
//! construction with the numbers in the messages, before any request is sent.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ee_predict_client::{
    AuthConfig, ClientConfig, Endpoint, ModelVersion, PredictorConfig, DEFAULT_REGION,
};
use ee_raster_io::pixel::ValueRange;
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
    /// The band's nodata (`outputBands.NAME.nodata`: a number of the band's type, or `"NaN"`
    /// for floats), written where output is masked; `None`: the writer's default (NaN for
    /// floats, the type's maximum for integers). A GeoTIFF has one nodata value for all its
    /// bands, so the values given must agree (checked here); bands without one take it.
    /// Always `None` for `outputProperties`.
    pub nodata: Option<f64>,
}

impl OutputBandSpec {
    /// The nodata of each GeoTIFF band for `ee_raster_io::WriteOptions::band_nodata`: each
    /// of `bands`' nodata, repeated over its `planes` (as many planes per band as the answers
    /// carry: an array band's `name_0, name_1...`).
    pub fn plane_nodata(bands: &[OutputBandSpec], planes: &[usize]) -> Vec<Option<f64>> {
        bands
            .iter()
            .zip(planes)
            .flat_map(|(b, &n)| std::iter::repeat_n(b.nodata, n))
            .collect()
    }
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

/// The spec as written: numbers, pairs and the objects holding numbers stay JSON values until
/// each is checked against its allowed range (serde's own errors name no field).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawSpec {
    predictor: Value,
    #[serde(default)]
    input_bands: Option<Map<String, Value>>,
    #[serde(default)]
    input_tile_size: Option<Value>,
    #[serde(default)]
    input_overlap_size: Option<Value>,
    #[serde(default)]
    output_tile_size: Option<Value>,
    #[serde(default)]
    output_bands: Option<Map<String, Value>>,
    #[serde(default)]
    output_properties: Option<Map<String, Value>>,
    #[serde(default)]
    payload_format: Option<String>,
    #[serde(default)]
    max_payload_bytes: Option<Value>,
    #[serde(default)]
    output_multiplier: Option<Value>,
    #[serde(default)]
    input_type_override: Option<Map<String, Value>>,
    #[serde(default)]
    input_properties: Option<Vec<String>>,
    #[serde(default)]
    proj: Option<Value>,
    #[serde(default)]
    fix_input_proj: bool,
    #[serde(default)]
    auth: Option<AuthSpec>,
    #[serde(default)]
    max_concurrency: Option<Value>,
    #[serde(default)]
    request_timeout_seconds: Option<Value>,
    #[serde(default)]
    connect_timeout_seconds: Option<Value>,
    #[serde(default)]
    total_budget_seconds: Option<Value>,
}

/// The longest tile side accepted, input or output, in pixels (2^20).
pub const MAX_TILE_SIDE: usize = 1 << 20;

/// The most bytes one tile may take in memory (2 GiB): an input tile with its overlap
/// (pixels x bands x element size), a tile's answer, a local batch of tiles, a request
/// (`maxPayloadBytes`). Beyond it a buffer no longer fits comfortably in memory nor, on 32-bit
/// targets, in an `isize`; specs asking for more are refused with the bytes in the message.
pub const MAX_TILE_BYTES: u64 = 2 << 30;

/// The range a spec number must lie in, with its unit for messages.
#[derive(Clone, Copy, Debug)]
struct Allowed {
    min: f64,
    max: f64,
    /// Whole numbers only.
    whole: bool,
    /// `seconds`, `pixels`... (may be empty).
    unit: &'static str,
}

impl Allowed {
    const fn whole(min: f64, max: f64, unit: &'static str) -> Self {
        Allowed {
            min,
            max,
            whole: true,
            unit,
        }
    }
    const fn real(min: f64, max: f64, unit: &'static str) -> Self {
        Allowed {
            min,
            max,
            whole: false,
            unit,
        }
    }
}

/// A number as people write it: `86400`, `0.001`, `1e12`.
fn plain(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e16 {
        format!("{}", x as i64)
    } else if x != 0.0 && (x.abs() >= 1e16 || x.abs() < 1e-4) {
        format!("{x:e}")
    } else {
        format!("{x}")
    }
}

/// A spec value as written: numbers as in [`plain`] (`1e20`, not serde's `1e+20`).
fn shown(v: &Value) -> String {
    if let Some(i) = v.as_i64() {
        i.to_string()
    } else if let Some(u) = v.as_u64() {
        u.to_string()
    } else if let Some(x) = v.as_f64() {
        plain(x)
    } else {
        v.to_string()
    }
}

impl fmt::Display for Allowed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} to {}", plain(self.min), plain(self.max))?;
        if !self.unit.is_empty() {
            write!(f, " {}", self.unit)?;
        }
        Ok(())
    }
}

const TILE_SIDE: Allowed = Allowed::whole(1.0, MAX_TILE_SIDE as f64, "pixels");
const OVERLAP: Allowed = Allowed::whole(0.0, MAX_TILE_SIDE as f64, "pixels");
const REQUEST_TIMEOUT: Allowed = Allowed::real(0.001, 86_400.0, "seconds");
const CONNECT_TIMEOUT: Allowed = Allowed::real(0.001, 3_600.0, "seconds");
const TOTAL_BUDGET: Allowed = Allowed::real(0.001, 604_800.0, "seconds");
const MAX_PAYLOAD: Allowed = Allowed::whole(1.0, MAX_TILE_BYTES as f64, "bytes");
const OUTPUT_MULTIPLIER: Allowed = Allowed::real(1.0, 10_000.0, "");
const MAX_CONCURRENCY: Allowed = Allowed::whole(1.0, 4_096.0, "requests");
const BATCH_SIZE: Allowed = Allowed::whole(1.0, 4_096.0, "tiles");
const VERSION: Allowed = Allowed::whole(0.0, i64::MAX as f64, "");
const BAND_INDEX: Allowed = Allowed::whole(1.0, i32::MAX as f64, "(1-based)");
const BAND_DIMENSIONS: Allowed =
    Allowed::whole(0.0, 2.0, "(0 a number, 1 a vector, 2 a matrix per pixel)");
const PROPERTY_DIMENSIONS: Allowed = Allowed::whole(0.0, 1.0, "(0 a number, 1 an array)");
const SCALE: Allowed = Allowed::real(1e-12, 1e12, "CRS units per pixel");
const ORIGIN: Allowed = Allowed::real(-1e15, 1e15, "CRS units");

/// `value`, the spec's `field`, as a number in `allowed`; otherwise an error naming the field,
/// the value as written and the range.
fn number_in(field: &str, value: &Value, allowed: Allowed) -> Result<f64> {
    let shown = shown(value);
    let Some(x) = value.as_f64() else {
        return Err(Error::Spec(format!(
            "{field}: {shown} is not a number ({allowed})"
        )));
    };
    if allowed.whole && x.fract() != 0.0 {
        return Err(Error::Spec(format!(
            "{field}: {shown} is not a whole number ({allowed})"
        )));
    }
    if !(x >= allowed.min && x <= allowed.max) {
        return Err(Error::Spec(format!(
            "{field}: {shown} is out of range ({allowed})"
        )));
    }
    Ok(x)
}

/// [`number_in`] for whole numbers from 0 up (`allowed.min >= 0`).
fn count_in(field: &str, value: &Value, allowed: Allowed) -> Result<usize> {
    Ok(match value.as_u64() {
        // Exact for integers beyond f64's 2^53.
        Some(n) if (n as f64) >= allowed.min && (n as f64) <= allowed.max => n as usize,
        _ => number_in(field, value, allowed)? as usize,
    })
}

/// An optional number (absent or `null`: `None`).
fn optional<T>(
    field: &str,
    value: Option<&Value>,
    allowed: Allowed,
    read: fn(&str, &Value, Allowed) -> Result<T>,
) -> Result<Option<T>> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(v) => read(field, v, allowed).map(Some),
    }
}

/// `[x, y]`, each in `allowed`.
fn pair_in<T>(
    field: &str,
    value: &Value,
    allowed: Allowed,
    read: fn(&str, &Value, Allowed) -> Result<T>,
) -> Result<[T; 2]> {
    match value.as_array().map(Vec::as_slice) {
        Some([x, y]) => Ok([
            read(&format!("{field}[0]"), x, allowed)?,
            read(&format!("{field}[1]"), y, allowed)?,
        ]),
        _ => Err(Error::Spec(format!(
            "{field}: {} is not a pair [x, y] of numbers ({allowed})",
            shown(value)
        ))),
    }
}

/// The seconds of `field` as a duration.
fn seconds(field: &str, value: Option<&Value>, allowed: Allowed) -> Result<Option<Duration>> {
    Ok(optional(field, value, allowed, number_in)?.map(Duration::from_secs_f64))
}

/// `nodata` of `what` (a band of `dtype`): a number the type holds, or `"NaN"` for floats.
fn nodata_of(what: &str, v: &Value, dtype: DataType) -> Result<f64> {
    let field = format!("{what}.nodata");
    let range = ValueRange::of(dtype);
    let x = match v {
        Value::Number(n) => n.as_f64().unwrap_or(f64::NAN),
        Value::String(s) if s.eq_ignore_ascii_case("nan") => f64::NAN,
        other => {
            return Err(Error::Spec(format!(
                "{field}: {other} is not a number (or \"NaN\" for float bands)"
            )))
        }
    };
    if range.contains(x) {
        Ok(x)
    } else {
        Err(Error::Spec(format!(
            "{field}: {} does not fit {dtype} ({range})",
            shown(v)
        )))
    }
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
    /// Deadline of one request (`requestTimeoutSeconds`, 0.001 to 86400; default 60).
    pub request_timeout: Duration,
    /// Deadline of connecting to the server (`connectTimeoutSeconds`, 0.001 to 3600; default
    /// the client's, 30).
    pub connect_timeout: Duration,
    /// Time allowed for one request including all its retries (`totalBudgetSeconds`, 0.001
    /// to 604800; default 900).
    pub total_budget: Duration,
}

/// Band `v` of input `input` (`field` in messages).
fn selector(v: &Value, input: &str, field: &str) -> Result<BandSelector> {
    match v {
        Value::String(s) => Ok(BandSelector::Name(s.clone())),
        Value::Number(_) => Ok(BandSelector::Index(count_in(field, v, BAND_INDEX)?)),
        other => Err(Error::Spec(format!(
            "inputBands.{input}: {other} is not a band name or 1-based index"
        ))),
    }
}

/// One declared output (`outputBands` or `outputProperties` entry `v`, named `what` in
/// errors): `type`, `dimensions` within `dimensions`, and for raster bands (`band`) `nodata`.
fn output_spec(
    name: &str,
    v: &Value,
    what: &str,
    dimensions: Allowed,
    band: bool,
) -> Result<OutputBandSpec> {
    let Some(entry) = v.as_object() else {
        return Err(Error::Spec(format!(
            "{what}: {v} is not an object such as {{\"type\": \"float\"}}"
        )));
    };
    let known: &[&str] = if band {
        &["type", "dimensions", "nodata"]
    } else {
        &["type", "dimensions"]
    };
    if let Some(k) = entry.keys().find(|k| !known.contains(&k.as_str())) {
        return Err(Error::Spec(format!(
            "{what}: unknown field {k:?} (expected {})",
            known.join(", ")
        )));
    }
    let ty = entry
        .get("type")
        .ok_or_else(|| Error::Spec(format!("{what} has no \"type\"")))?;
    let dtype = parse_dtype(ty, what)?;
    let dims = optional(
        &format!("{what}.dimensions"),
        entry.get("dimensions"),
        dimensions,
        count_in,
    )?
    .unwrap_or(0);
    let nodata = match entry.get("nodata") {
        None | Some(Value::Null) => None,
        Some(n) => Some(nodata_of(what, n, dtype)?),
    };
    Ok(OutputBandSpec {
        name: name.to_string(),
        dtype,
        dims: BandDims::from_dimensions(dims as u32)
            .map_err(|e| Error::Spec(format!("{what}: {e}")))?,
        nodata,
    })
}

/// The predictor, its numbers checked first.
fn predictor_spec(v: Value) -> Result<PredictorSpec> {
    let kind = v.get("type").and_then(Value::as_str).unwrap_or_default();
    match kind {
        "local" => {
            optional(
                "predictor.batchSize",
                v.get("batchSize"),
                BATCH_SIZE,
                count_in,
            )?;
        }
        "tfServing" => {
            optional("predictor.version", v.get("version"), VERSION, number_in)?;
        }
        _ => {}
    }
    serde_json::from_value(v).map_err(|e| Error::Spec(format!("predictor: {e}")))
}

/// The training projection, its numbers checked first.
fn proj_spec(v: Value) -> Result<ProjSpec> {
    if let Some(scale) = v.get("scale") {
        pair_in("proj.scale", scale, SCALE, number_in)?;
    }
    if let Some(origin) = v.get("origin").filter(|o| !o.is_null()) {
        pair_in("proj.origin", origin, ORIGIN, number_in)?;
    }
    serde_json::from_value(v).map_err(|e| Error::Spec(format!("proj: {e}")))
}

/// `path` resolved against `dir` when relative.
fn beside(dir: &Path, path: &mut PathBuf) {
    if path.is_relative() {
        *path = dir.join(&*path);
    }
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

/// A GeoTIFF has one nodata value for all its bands: the bands' nodata values must agree.
fn check_one_nodata(bands: &[OutputBandSpec]) -> Result<()> {
    let mut given = bands.iter().filter_map(|b| b.nodata.map(|v| (b, v)));
    if let Some((first, v)) = given.next() {
        let same = |a: f64, b: f64| a == b || (a.is_nan() && b.is_nan());
        if let Some((other, w)) = given.find(|(_, w)| !same(v, *w)) {
            return Err(Error::Spec(format!(
                "outputBands.{} nodata {v} and outputBands.{} nodata {w} differ: a GeoTIFF stores one nodata value for all its bands",
                first.name, other.name
            )));
        }
    }
    Ok(())
}

impl ModelSpec {
    /// Reads and validates a spec file. Relative paths inside are relative to the file's
    /// folder: the local model's `path`, `auth.serviceAccountKey`, and the program of
    /// `auth.bearerCommand` when it names a path (holds a `/`; a bare name is looked up on
    /// `PATH`).
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
        let dir = path.parent().unwrap_or(Path::new("."));
        if let PredictorSpec::Local { path: model, .. } = &mut spec.predictor {
            beside(dir, model);
        }
        match &mut spec.auth {
            AuthConfig::ServiceAccount { key_file, .. } => beside(dir, key_file),
            AuthConfig::BearerCommand { command, .. } => {
                if let Some(program) = command.first_mut().filter(|p| p.contains('/')) {
                    let mut p = PathBuf::from(&*program);
                    beside(dir, &mut p);
                    *program = p.display().to_string();
                }
            }
            _ => {}
        }
        Ok(spec)
    }

    /// Parses and validates spec JSON. Every number is checked against its range (see the
    /// fields' docs, [`MAX_TILE_SIDE`] and [`MAX_TILE_BYTES`]) with the field, the value and
    /// the range in the error.
    pub fn from_json(text: &str) -> Result<Self> {
        let raw: RawSpec = serde_json::from_str(text).map_err(|e| Error::Spec(e.to_string()))?;
        let predictor = predictor_spec(raw.predictor)?;
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
        let raw_tile_size = match &raw.input_tile_size {
            Some(v) => pair_in("inputTileSize", v, TILE_SIDE, count_in)?,
            None => [1, 1],
        };
        let [tw, th] = raw_tile_size;
        let input_tile_size = TileSize::new(tw, th)
            .map_err(|_| Error::Spec(format!("inputTileSize [{tw}, {th}] must be positive")))?;
        let [ox, oy] = match &raw.input_overlap_size {
            Some(v) => pair_in("inputOverlapSize", v, OVERLAP, count_in)?,
            None => [0, 0],
        };
        let [ow, oh] = match &raw.output_tile_size {
            Some(v) => pair_in("outputTileSize", v, TILE_SIDE, count_in)?,
            None => raw_tile_size,
        };
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
                output_spec(
                    name,
                    v,
                    &format!("outputProperties.{name}"),
                    PROPERTY_DIMENSIONS,
                    false,
                )
            })
            .collect::<Result<Vec<_>>>()?;
        let output_bands = raw
            .output_bands
            .unwrap_or_default()
            .iter()
            .map(|(name, v)| {
                output_spec(
                    name,
                    v,
                    &format!("outputBands.{name}"),
                    BAND_DIMENSIONS,
                    true,
                )
            })
            .collect::<Result<Vec<_>>>()?;
        check_one_nodata(&output_bands)?;
        let input_bands = raw
            .input_bands
            .unwrap_or_default()
            .iter()
            .map(|(name, v)| {
                let bands = match v {
                    Value::Array(items) if !items.is_empty() => items
                        .iter()
                        .enumerate()
                        .map(|(i, b)| selector(b, name, &format!("inputBands.{name}[{i}]")))
                        .collect::<Result<Vec<_>>>()?,
                    Value::Array(_) => {
                        return Err(Error::Spec(format!("inputBands.{name} lists no band")))
                    }
                    one => vec![selector(one, name, &format!("inputBands.{name}"))?],
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
        // What one tile takes in memory, at least: its pixels with the overlap, times the
        // bands each input stacks at its element size (float32 unless overridden).
        if !output_bands.is_empty() {
            let element = |input: &str| {
                input_type_override
                    .iter()
                    .find(|(n, _)| n == input)
                    .and_then(|(_, t)| t.size())
                    .unwrap_or(4)
            };
            let input_bytes: u128 = if input_bands.is_empty() {
                4
            } else {
                input_bands
                    .iter()
                    .map(|b| b.bands.len() as u128 * element(&b.name) as u128)
                    .sum()
            };
            let sent = [tw + ox, th + oy];
            let tile = sent[0] as u128 * sent[1] as u128 * input_bytes;
            if tile > MAX_TILE_BYTES as u128 {
                return Err(Error::Spec(format!(
                    "inputTileSize [{tw}, {th}] with inputOverlapSize [{ox}, {oy}]: a tile of {} x {} pixels x {input_bytes} bytes (all bands) is {tile} bytes, above the limit of {MAX_TILE_BYTES} bytes (2 GiB) per tile",
                    sent[0], sent[1]
                )));
            }
            // An answer may carry the overlap too, scaled like the tile.
            let answered = [ow + ox * ow / tw, oh + oy * oh / th];
            let answer_bytes: u128 = output_bands
                .iter()
                .map(|b| b.dtype.size().unwrap_or(8) as u128)
                .sum();
            let answer = answered[0] as u128 * answered[1] as u128 * answer_bytes;
            if answer > MAX_TILE_BYTES as u128 {
                return Err(Error::Spec(format!(
                    "outputTileSize [{ow}, {oh}]: an answer of {} x {} pixels (with the overlap, scaled) x {answer_bytes} bytes (all bands, at least) is {answer} bytes, above the limit of {MAX_TILE_BYTES} bytes (2 GiB) per tile",
                    answered[0], answered[1]
                )));
            }
            if let PredictorSpec::Local {
                batch_size: Some(batch),
                ..
            } = &predictor
            {
                let all = tile * *batch as u128;
                if all > MAX_TILE_BYTES as u128 {
                    return Err(Error::Spec(format!(
                        "predictor.batchSize {batch}: a run of {batch} tiles of {tile} bytes is {all} bytes, above the limit of {MAX_TILE_BYTES} bytes (2 GiB)"
                    )));
                }
            }
        }
        let payload_format = match (&raw.payload_format, &predictor) {
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
        let max_payload_bytes = optional(
            "maxPayloadBytes",
            raw.max_payload_bytes.as_ref(),
            MAX_PAYLOAD,
            count_in,
        )?
        .unwrap_or(1_500_000);
        let output_multiplier = optional(
            "outputMultiplier",
            raw.output_multiplier.as_ref(),
            OUTPUT_MULTIPLIER,
            number_in,
        )?
        .unwrap_or(1.0);
        let max_concurrency = optional(
            "maxConcurrency",
            raw.max_concurrency.as_ref(),
            MAX_CONCURRENCY,
            count_in,
        )?
        .unwrap_or(16);
        let request_timeout = seconds(
            "requestTimeoutSeconds",
            raw.request_timeout_seconds.as_ref(),
            REQUEST_TIMEOUT,
        )?
        .unwrap_or(Duration::from_secs(60));
        let connect_timeout = seconds(
            "connectTimeoutSeconds",
            raw.connect_timeout_seconds.as_ref(),
            CONNECT_TIMEOUT,
        )?
        .unwrap_or(ClientConfig::default().connect_timeout);
        let total_budget = seconds(
            "totalBudgetSeconds",
            raw.total_budget_seconds.as_ref(),
            TOTAL_BUDGET,
        )?
        .unwrap_or(ClientConfig::default().total_budget);
        let proj = raw
            .proj
            .filter(|p| !p.is_null())
            .map(proj_spec)
            .transpose()?;
        if raw.fix_input_proj && proj.is_none() {
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
            predictor,
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
            proj,
            fix_input_proj: raw.fix_input_proj,
            auth,
            max_concurrency,
            request_timeout,
            connect_timeout,
            total_budget,
        };
        if !matches!(spec.predictor, PredictorSpec::Local { .. }) {
            spec.predictor_config()?
                .url()
                .map_err(|e| Error::Spec(e.to_string()))?;
        }
        Ok(spec)
    }

    /// The spec with every output band's nodata set to `nodata` (a command line's
    /// `--nodata`), checked against each band's type.
    pub fn with_nodata(mut self, nodata: f64) -> Result<Self> {
        for b in &mut self.output_bands {
            let range = ValueRange::of(b.dtype);
            if !range.contains(nodata) {
                return Err(Error::Options(format!(
                    "--nodata {nodata} does not fit outputBands.{} ({}: {range})",
                    b.name, b.dtype
                )));
            }
            b.nodata = Some(nodata);
        }
        Ok(self)
    }

    /// The nodata of each GeoTIFF band for `ee_raster_io::WriteOptions::band_nodata`:
    /// [`OutputBandSpec::plane_nodata`] of the output bands.
    pub fn band_nodata(&self, planes: &[usize]) -> Vec<Option<f64>> {
        OutputBandSpec::plane_nodata(&self.output_bands, planes)
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
            total_budget: self.total_budget,
            connect_timeout: self.connect_timeout,
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

    /// `EXAMPLE` with `from` replaced by `to`, refused with an error containing every one of
    /// `expect`.
    fn refused(base: &str, from: &str, to: &str, expect: &[&str]) {
        if let Err(e) = refusal(base, from, to, expect) {
            panic!("{e}");
        }
    }

    /// [`refused`], saying what went wrong instead of panicking.
    fn refusal(base: &str, from: &str, to: &str, expect: &[&str]) -> Result<(), String> {
        assert!(base.contains(from), "{from}");
        let text = base.replacen(from, to, 1);
        let err = match std::panic::catch_unwind(|| ModelSpec::from_json(&text)) {
            Ok(Ok(_)) => return Err(format!("accepted: {to}")),
            Ok(Err(e)) => e.to_string(),
            Err(_) => return Err(format!("panicked on {to}")),
        };
        for e in expect {
            if !err.contains(e) {
                return Err(format!("{to}: {e:?} missing from {err:?}"));
            }
        }
        Ok(())
    }

    const LOCAL: &str = r#"{"predictor": {"type": "local", "path": "m.onnx", "batchSize": 4}, "inputTileSize": [16, 16],
 "outputBands": {"out": {"type": "float"}}}"#;
    const TF_SERVING: &str = r#"{"predictor": {"type": "tfServing", "url": "http://127.0.0.1:1", "model": "m", "version": 3},
 "inputTileSize": [16, 16], "outputBands": {"out": {"type": "float"}}}"#;

    #[test]
    fn every_bad_number_is_refused_naming_the_field_the_value_and_the_range() {
        let mp = "\"maxPayloadBytes\": 1500000";
        let with = |extra: &str| format!("{mp}, {extra}");
        let cases: Vec<(&str, String, Vec<&str>)> = vec![
            (mp, with("\"requestTimeoutSeconds\": 1e20"), vec!["requestTimeoutSeconds: 1e20 is out of range (0.001 to 86400 seconds)"]),
            (mp, with("\"requestTimeoutSeconds\": -1"), vec!["requestTimeoutSeconds: -1 is out of range (0.001 to 86400 seconds)"]),
            (mp, with("\"requestTimeoutSeconds\": 0"), vec!["requestTimeoutSeconds: 0 is out of range"]),
            (mp, with("\"requestTimeoutSeconds\": \"10\""), vec!["requestTimeoutSeconds: \"10\" is not a number"]),
            (mp, with("\"connectTimeoutSeconds\": 0"), vec!["connectTimeoutSeconds: 0 is out of range (0.001 to 3600 seconds)"]),
            (mp, with("\"totalBudgetSeconds\": 1e20"), vec!["totalBudgetSeconds: 1e20 is out of range (0.001 to 604800 seconds)"]),
            ("\"dimensions\": 1", "\"dimensions\": 1.5".into(), vec!["outputBands.out.dimensions: 1.5 is not a whole number (0 to 2"]),
            ("\"dimensions\": 1", "\"dimensions\": 3".into(), vec!["outputBands.out.dimensions: 3 is out of range (0 to 2"]),
            ("\"dimensions\": 1", "\"dimensions\": -1".into(), vec!["outputBands.out.dimensions: -1 is out of range"]),
            ("\"inputTileSize\": [128, 128]", "\"inputTileSize\": [100000000, 100000000]".into(), vec!["inputTileSize[0]: 100000000 is out of range (1 to 1048576 pixels)"]),
            ("\"inputTileSize\": [128, 128]", "\"inputTileSize\": [128.5, 128]".into(), vec!["inputTileSize[0]: 128.5 is not a whole number"]),
            ("\"inputTileSize\": [128, 128]", "\"inputTileSize\": [128, -128]".into(), vec!["inputTileSize[1]: -128 is out of range"]),
            ("\"inputTileSize\": [128, 128]", "\"inputTileSize\": [128]".into(), vec!["inputTileSize: [128] is not a pair"]),
            ("\"inputTileSize\": [128, 128]", "\"inputTileSize\": \"128\"".into(), vec!["inputTileSize: \"128\" is not a pair"]),
            // 40008 x 40008 pixels x 3 bands x 4 bytes.
            ("\"inputTileSize\": [128, 128]", "\"inputTileSize\": [40000, 40000]".into(), vec!["inputTileSize", "19207680768 bytes", "2147483648 bytes"]),
            ("\"inputOverlapSize\": [8, 8]", "\"inputOverlapSize\": [-8, 8]".into(), vec!["inputOverlapSize[0]: -8 is out of range (0 to 1048576 pixels)"]),
            ("\"inputOverlapSize\": [8, 8]", "\"inputOverlapSize\": [8, 1e300]".into(), vec!["inputOverlapSize[1]: 1e300 is out of range"]),
            (mp, with("\"outputTileSize\": [0, 128]"), vec!["outputTileSize[0]: 0 is out of range (1 to 1048576 pixels)"]),
            // A 16 x 16 tile answered by 32768 x 32768 pixels of float: 4 GiB.
            ("\"inputTileSize\": [128, 128], \"inputOverlapSize\": [8, 8]", "\"inputTileSize\": [16, 16], \"outputTileSize\": [32768, 32768]".into(), vec!["outputTileSize", "4294967296 bytes"]),
            (mp, "\"maxPayloadBytes\": 0".into(), vec!["maxPayloadBytes: 0 is out of range (1 to 2147483648 bytes)"]),
            (mp, "\"maxPayloadBytes\": 1e12".into(), vec!["maxPayloadBytes: 1000000000000 is out of range"]),
            (mp, "\"maxPayloadBytes\": 1500000.5".into(), vec!["maxPayloadBytes: 1500000.5 is not a whole number"]),
            (mp, with("\"outputMultiplier\": 0.5"), vec!["outputMultiplier: 0.5 is out of range (1 to 10000)"]),
            (mp, with("\"outputMultiplier\": 1e20"), vec!["outputMultiplier: 1e20 is out of range"]),
            (mp, with("\"maxConcurrency\": 0"), vec!["maxConcurrency: 0 is out of range (1 to 4096 requests)"]),
            (mp, with("\"maxConcurrency\": 2.5"), vec!["maxConcurrency: 2.5 is not a whole number"]),
            (mp, with("\"proj\": {\"crs\": \"EPSG:32633\", \"scale\": [0, 10]}"), vec!["proj.scale[0]: 0 is out of range"]),
            (mp, with("\"proj\": {\"crs\": \"EPSG:32633\", \"scale\": [10, -10]}"), vec!["proj.scale[1]: -10 is out of range"]),
            (mp, with("\"proj\": {\"crs\": \"EPSG:32633\", \"scale\": [10, \"10\"]}"), vec!["proj.scale[1]: \"10\" is not a number"]),
            (mp, with("\"proj\": {\"crs\": \"EPSG:32633\", \"scale\": [10, 10], \"origin\": [1e300, 0]}"), vec!["proj.origin[0]: 1e300 is out of range"]),
            ("{\"type\": \"float\", \"dimensions\": 1}", "{\"type\": \"uint8\", \"nodata\": 256}".into(), vec!["outputBands.out.nodata: 256 does not fit uint8 (0 to 255, whole numbers)"]),
            ("{\"type\": \"float\", \"dimensions\": 1}", "{\"type\": \"int16\", \"nodata\": 1.5}".into(), vec!["outputBands.out.nodata: 1.5 does not fit int16"]),
            ("{\"type\": \"float\", \"dimensions\": 1}", "{\"type\": \"float\", \"nodata\": 1e300}".into(), vec!["outputBands.out.nodata: 1e300 does not fit float"]),
            ("{\"type\": \"float\", \"dimensions\": 1}", "{\"type\": \"float\", \"nodata\": \"zero\"}".into(), vec!["outputBands.out.nodata: \"zero\" is not a number"]),
            ("{\"type\": \"float\", \"dimensions\": 1}", "{\"type\": \"float\", \"nodta\": 0}".into(), vec!["outputBands.out: unknown field \"nodta\""]),
            ("[\"B1\", \"B2\", \"B3\"]", "[\"B1\", 0, \"B3\"]".into(), vec!["inputBands.array[1]: 0 is out of range (1 to 2147483647 (1-based))"]),
            ("[\"B1\", \"B2\", \"B3\"]", "[\"B1\", 2.5, \"B3\"]".into(), vec!["inputBands.array[1]: 2.5 is not a whole number"]),
        ];
        let failures: Vec<String> = cases
            .iter()
            .filter_map(|(from, to, expect)| refusal(EXAMPLE, from, to, expect).err())
            .collect();
        assert!(failures.is_empty(), "{}", failures.join("\n"));
        let batch = "\"batchSize\": 4";
        refused(
            LOCAL,
            batch,
            "\"batchSize\": 0",
            &["predictor.batchSize: 0 is out of range (1 to 4096 tiles)"],
        );
        refused(
            LOCAL,
            batch,
            "\"batchSize\": 1.5",
            &["predictor.batchSize: 1.5 is not a whole number"],
        );
        // 4096 tiles of 512 x 512 float32 pixels: 4 GiB in one run.
        refused(
            LOCAL,
            "\"batchSize\": 4}, \"inputTileSize\": [16, 16]",
            "\"batchSize\": 4096}, \"inputTileSize\": [512, 512]",
            &["predictor.batchSize", "4294967296 bytes"],
        );
        refused(
            TF_SERVING,
            "\"version\": 3",
            "\"version\": -3",
            &["predictor.version: -3 is out of range"],
        );
        refused(
            TF_SERVING,
            "\"version\": 3",
            "\"version\": 3.5",
            &["predictor.version: 3.5 is not a whole number"],
        );
        refused(
            PROPERTIES,
            "\"dimensions\": 1",
            "\"dimensions\": 0.5",
            &["outputProperties.w.dimensions: 0.5 is not a whole number (0 to 1"],
        );
        // The limits themselves are accepted.
        let ok = EXAMPLE.replace(mp, &with("\"requestTimeoutSeconds\": 86400, \"connectTimeoutSeconds\": 0.001, \"totalBudgetSeconds\": 604800, \"maxConcurrency\": 4096, \"outputMultiplier\": 1"));
        let s = ModelSpec::from_json(&ok).unwrap();
        assert_eq!(s.request_timeout, Duration::from_secs(86400));
        let c = s.client_config();
        assert_eq!(c.total_budget, Duration::from_secs(604800));
        assert_eq!(c.connect_timeout, Duration::from_millis(1));
        assert_eq!(c.max_concurrency, 4096);
    }

    #[test]
    fn nodata_per_band_is_read_and_checked_against_every_band() {
        let two = EXAMPLE.replace(
            "{\"out\": {\"type\": \"float\", \"dimensions\": 1}}",
            "{\"class\": {\"type\": \"uint8\", \"nodata\": 0}, \"p\": {\"type\": \"float\"}}",
        );
        let s = ModelSpec::from_json(&two).unwrap();
        let nodata: Vec<Option<f64>> = s.output_bands.iter().map(|b| b.nodata).collect();
        assert_eq!(nodata, vec![Some(0.0), None]);
        let nan = two.replace(
            "\"type\": \"float\"}",
            "\"type\": \"float\", \"nodata\": \"NaN\"}",
        );
        let err = ModelSpec::from_json(&nan).unwrap_err().to_string();
        assert!(
            err.contains("outputBands.class nodata 0 and outputBands.p nodata NaN"),
            "{err}"
        );
        assert!(err.contains("one nodata value"), "{err}");
        // `--nodata` overrides every band, checked against each.
        assert_eq!(s.band_nodata(&[1, 3]), vec![Some(0.0), None, None, None]);
        let all = s.clone().with_nodata(7.0).unwrap();
        assert!(all.output_bands.iter().all(|b| b.nodata == Some(7.0)));
        let err = s.with_nodata(-1.0).unwrap_err().to_string();
        assert!(
            err.contains(
                "--nodata -1 does not fit outputBands.class (uint8: 0 to 255, whole numbers)"
            ),
            "{err}"
        );
    }

    #[test]
    fn relative_paths_are_relative_to_the_spec_file() {
        let dir = std::env::temp_dir().join(format!("ee-model-spec-paths-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let write = |name: &str, auth: &str| {
            let path = dir.join(name);
            std::fs::write(
                &path,
                EXAMPLE.replace(
                    "\"maxPayloadBytes\"",
                    &format!("\"auth\": {auth}, \"maxPayloadBytes\""),
                ),
            )
            .unwrap();
            ModelSpec::from_file(&path).unwrap().auth
        };
        match write("key.json", r#"{"serviceAccountKey": "keys/sa.json"}"#) {
            AuthConfig::ServiceAccount { key_file, .. } => {
                assert_eq!(key_file, dir.join("keys/sa.json"))
            }
            other => panic!("{other:?}"),
        }
        match write("abs.json", r#"{"serviceAccountKey": "/etc/sa.json"}"#) {
            AuthConfig::ServiceAccount { key_file, .. } => {
                assert_eq!(key_file, PathBuf::from("/etc/sa.json"))
            }
            other => panic!("{other:?}"),
        }
        // A command with a slash is a path; a bare name is looked up on PATH as ever.
        match write("cmd.json", r#"{"bearerCommand": ["./token.sh", "x"]}"#) {
            AuthConfig::BearerCommand { command, .. } => {
                assert_eq!(
                    command,
                    vec![dir.join("./token.sh").display().to_string(), "x".into()]
                )
            }
            other => panic!("{other:?}"),
        }
        match write(
            "gcloud.json",
            r#"{"bearerCommand": ["gcloud", "auth", "print-access-token"]}"#,
        ) {
            AuthConfig::BearerCommand { command, .. } => assert_eq!(command[0], "gcloud"),
            other => panic!("{other:?}"),
        }
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
            err.contains("outputProperties.w.dimensions: 2 is out of range (0 to 1"),
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
