//! `predict_properties`, Earth Engine's `Model.predictProperties` over a vector file: every
//! feature of one layer is an instance whose tensors are its input properties
//! (`inputProperties`, or every numeric property), scalars or arrays; the model's answers
//! become new fields named by `outputProperties`, written to a copy of the file in the same
//! format (geometry, order and existing fields kept; see `ee_raster_io::vector` for lists
//! versus per-element fields).
//!
//! Values are read as numbers from numeric fields, numeric list fields, and text fields
//! holding a number, a JSON array of numbers (`[1, 2.5]`) or OGR's list text (`(2:1,2.5)`).
//! Each input is sent as float32 unless `inputTypeOverride` names another type; a local
//! model converts to its own input types anyway. A feature whose input is missing or not
//! numeric, or whose array length differs from the first feature's, is an error naming the
//! feature and the field, or with `skip_invalid` it is written with its new fields null and
//! counted in the report.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ee_predict_client::MetricsSnapshot;
use ee_raster_io::vector::{
    write_with_new_fields, FeatureValues, NewField, NewFieldType, NewValue, Value, VectorSource,
};
use ee_runtime::LocalModel;
use ee_tensor_proto::{DataType, Instance, Tensor};
use ee_tiling::BandDims;
use ndarray::{ArrayD, IxDyn};

use crate::pipeline::Runner;
use crate::spec::{ModelSpec, OutputBandSpec};
use crate::{Error, Result};

/// How to run `predict_properties`.
#[derive(Clone, Debug, Default)]
pub struct PropertiesOptions {
    /// Write features whose inputs are missing or not numeric with null outputs (and count
    /// them) instead of failing.
    pub skip_invalid: bool,
    /// OGR driver of the output (`GeoJSON`, `GPKG`, `CSV`, `ESRI Shapefile`...); default:
    /// the input's.
    pub format: Option<String>,
    /// The layer to read; default: the file's only layer.
    pub layer: Option<String>,
}

/// How many skipped features a report names (all are counted).
pub const SKIPPED_NAMED: usize = 20;

/// What `predict_properties` did.
#[derive(Clone, Debug)]
pub struct PropertiesReport {
    /// The file written.
    pub output: PathBuf,
    /// Its OGR driver.
    pub driver: String,
    /// The layer read and written.
    pub layer: String,
    /// The input properties sent, in order.
    pub inputs: Vec<String>,
    /// The fields added, as written (`w_0`, `w_1` where arrays are split).
    pub fields: Vec<String>,
    /// True when array outputs are list fields, false when split per element.
    pub lists: bool,
    /// Features in the layer (all written).
    pub features: usize,
    /// Features predicted.
    pub predicted: usize,
    /// Features skipped (written with null outputs).
    pub skipped: usize,
    /// Why, for the first 20 skipped features.
    pub skipped_reasons: Vec<String>,
    /// Requests sent (model runs, for a local model).
    pub requests: usize,
    /// True when "requests" are local model runs.
    pub local: bool,
    /// Wall time.
    pub elapsed: Duration,
    /// Client counters (hosted predictors).
    pub metrics: Option<MetricsSnapshot>,
    /// Integer output values clamped to their declared type (outside its range, or NaN,
    /// written as 0), rounded and saturated as rasters are
    /// ([`ee_raster_io::pixel::to_integer`]).
    pub clamped: u64,
}

/// One input property: its field position, name, and the type sent.
#[derive(Clone, Debug)]
struct InputField {
    index: usize,
    name: String,
    dtype: DataType,
}

/// Checks that a local model returns the declared output properties.
pub(crate) fn check_local_outputs(spec: &ModelSpec, model: &LocalModel, path: &Path) -> Result<()> {
    let outs = model.outputs();
    if outs.len() == 1 && spec.output_properties.len() == 1 {
        return Ok(());
    }
    for p in &spec.output_properties {
        if !outs.contains(&p.name) {
            return Err(Error::Spec(format!(
                "output property {:?} is not an output of {} (it has: {})",
                p.name,
                path.display(),
                outs.join(", ")
            )));
        }
    }
    Ok(())
}

/// Reads a value as numbers: `Ok((values, is_array))`, or why not.
fn numbers(v: &Value) -> std::result::Result<(Vec<f64>, bool), String> {
    match v {
        Value::Null => Err("missing value".into()),
        Value::Number(x) => Ok((vec![*x], false)),
        Value::Numbers(xs) => Ok((xs.clone(), true)),
        Value::Text(s) => parse_text(s),
        Value::Texts(items) => items
            .iter()
            .map(|s| {
                s.trim()
                    .parse::<f64>()
                    .map_err(|_| format!("list item {s:?} is not a number"))
            })
            .collect::<std::result::Result<Vec<_>, _>>()
            .map(|xs| (xs, true)),
        Value::Other(what) => Err(format!("not a number ({what})")),
    }
}

/// A number, a JSON array of numbers, or OGR's list text `(n:a,b,...)`.
fn parse_text(s: &str) -> std::result::Result<(Vec<f64>, bool), String> {
    let t = s.trim();
    if t.is_empty() {
        return Err("missing value (empty text)".into());
    }
    if let Ok(x) = t.parse::<f64>() {
        return Ok((vec![x], false));
    }
    if t.starts_with('[') {
        return serde_json::from_str::<Vec<f64>>(t)
            .map(|xs| (xs, true))
            .map_err(|_| format!("{s:?} is not a number or an array of numbers"));
    }
    if let Some(body) = t.strip_prefix('(').and_then(|b| b.strip_suffix(')')) {
        if let Some((count, items)) = body.split_once(':') {
            let xs = items
                .split(',')
                .filter(|i| !i.trim().is_empty())
                .map(|i| i.trim().parse::<f64>())
                .collect::<std::result::Result<Vec<_>, _>>();
            if let (Ok(n), Ok(xs)) = (count.trim().parse::<usize>(), xs) {
                if n == xs.len() {
                    return Ok((xs, true));
                }
            }
        }
    }
    Err(format!("{s:?} is not a number or an array of numbers"))
}

/// Per input: the shape of the first valid feature (`[]` scalar, `[n]` array).
type Shapes = Vec<Option<Vec<usize>>>;

/// Builds one feature's instance, or says which field is wrong and why.
fn build_instance(
    row: &FeatureValues,
    inputs: &[InputField],
    shapes: &mut Shapes,
) -> std::result::Result<Instance, (String, String)> {
    let mut parts = Vec::with_capacity(inputs.len());
    for (k, input) in inputs.iter().enumerate() {
        let (xs, array) = numbers(&row.values[k]).map_err(|m| (input.name.clone(), m))?;
        if array && xs.is_empty() {
            return Err((input.name.clone(), "empty array".into()));
        }
        let shape = if array { vec![xs.len()] } else { vec![] };
        if let Some(expected) = &shapes[k] {
            if *expected != shape {
                let say = |s: &[usize]| match s {
                    [] => "a single number".to_string(),
                    [n] => format!("an array of {n}"),
                    other => format!("shape {other:?}"),
                };
                return Err((
                    input.name.clone(),
                    format!(
                        "{} where earlier features have {}",
                        say(&shape),
                        say(expected)
                    ),
                ));
            }
        }
        parts.push((shape, xs));
    }
    let mut instance = Instance::new();
    for (k, (shape, xs)) in parts.into_iter().enumerate() {
        let input = &inputs[k];
        let array = ArrayD::from_shape_vec(IxDyn(&shape), xs)
            .map_err(|e| (input.name.clone(), e.to_string()))?;
        let tensor = Tensor::from_f64(&array, input.dtype).ok_or_else(|| {
            (
                input.name.clone(),
                format!("cannot be sent as {}", input.dtype),
            )
        })?;
        shapes[k].get_or_insert(shape);
        instance.push(input.name.clone(), tensor);
    }
    Ok(instance)
}

/// The field type for an output's element type.
fn field_type(dtype: DataType) -> NewFieldType {
    match dtype {
        DataType::Float16 | DataType::Float32 | DataType::Float64 => NewFieldType::Real,
        DataType::Int64 | DataType::Uint32 | DataType::Uint64 => NewFieldType::Integer64,
        _ => NewFieldType::Integer,
    }
}

/// `x` as an integer property of `dtype`, converted as a raster band of `dtype` is
/// (rounded half away from zero, saturated); counts it in `clamped` when out of range.
fn integer_value(x: f64, dtype: DataType, clamped: &mut u64) -> i64 {
    // Every integer field type is an integer DataType; a float one never gets here.
    let (v, c) = ee_raster_io::pixel::to_integer(x, dtype).unwrap_or((x as i64, false));
    *clamped += c as u64;
    v
}

/// One answer's outputs as new field values; `lengths` holds each array output's length
/// (set by the first answer, checked against the others); integer values changed beyond
/// rounding are counted in `clamped`.
fn answer_values(
    answer: &Instance,
    outputs: &[OutputBandSpec],
    lengths: &mut [Option<usize>],
    label: &str,
    clamped: &mut u64,
) -> Result<Vec<NewValue>> {
    let single = outputs.len() == 1 && answer.len() == 1;
    let mut row = Vec::with_capacity(outputs.len());
    for (k, out) in outputs.iter().enumerate() {
        let tensor = match answer.get(&out.name) {
            Some(t) => t,
            None if single => answer
                .iter()
                .next()
                .map(|(_, t)| t)
                .ok_or_else(|| Error::Answer(format!("the answer for {label} is empty")))?,
            None => {
                return Err(Error::Answer(format!(
                    "outputProperties.{}: the model's answer for {label} has no such output (it has: {})",
                    out.name,
                    answer.names().collect::<Vec<_>>().join(", ")
                )))
            }
        };
        let values = tensor.to_f64().ok_or_else(|| {
            Error::Answer(format!(
                "outputProperties.{}: the answer for {label} is {}, not numbers",
                out.name,
                tensor.dtype()
            ))
        })?;
        let shape = values.shape().to_vec();
        let xs: Vec<f64> = values.into_iter().collect();
        let integer = field_type(out.dtype) != NewFieldType::Real;
        let value = match out.dims {
            BandDims::Scalar => {
                let [x] = xs.as_slice() else {
                    return Err(Error::Answer(format!(
                        "outputProperties.{} is declared a number (dimensions 0) but the answer for {label} has shape {shape:?}",
                        out.name
                    )));
                };
                if integer {
                    NewValue::Integer(integer_value(*x, out.dtype, clamped))
                } else {
                    NewValue::Real(*x)
                }
            }
            _ => {
                if shape.len() > 1 {
                    return Err(Error::Answer(format!(
                        "outputProperties.{} is declared an array (dimensions 1) but the answer for {label} has shape {shape:?}",
                        out.name
                    )));
                }
                match lengths[k] {
                    Some(n) if n != xs.len() => {
                        return Err(Error::Answer(format!(
                            "outputProperties.{}: the answer for {label} has {} values, earlier answers {n}",
                            out.name,
                            xs.len()
                        )))
                    }
                    _ => lengths[k] = Some(xs.len()),
                }
                if integer {
                    NewValue::Integers(
                        xs.iter()
                            .map(|&x| integer_value(x, out.dtype, clamped))
                            .collect(),
                    )
                } else {
                    NewValue::Reals(xs)
                }
            }
        };
        row.push(value);
    }
    Ok(row)
}

/// Sends `instances` to the model: local runs of `batch` instances, or requests planned
/// under the payload budget and sent concurrently. Returns the answers in order and the
/// number of runs or requests.
async fn run_model(
    runner: &Runner,
    spec: &ModelSpec,
    instances: Vec<Instance>,
    labels: Vec<String>,
) -> Result<(Vec<Instance>, usize)> {
    if instances.is_empty() {
        return Ok((Vec::new(), 0));
    }
    match runner {
        Runner::Local { model, batch } => {
            let model = model.clone();
            let batch = *batch;
            tokio::task::spawn_blocking(move || -> Result<(Vec<Instance>, usize)> {
                let mut out = Vec::with_capacity(instances.len());
                let mut runs = 0;
                for chunk in instances.chunks(batch) {
                    out.extend(model.run(chunk)?);
                    runs += 1;
                }
                Ok((out, runs))
            })
            .await
            .map_err(|_| Error::Worker("local model task".into()))?
        }
        Runner::Remote(client) => {
            let ranges = client.plan(&instances, &labels)?;
            let instances = Arc::new(instances);
            let labels = Arc::new(labels);
            let limit = Arc::new(tokio::sync::Semaphore::new(spec.max_concurrency.max(1)));
            let mut tasks = tokio::task::JoinSet::new();
            let mut answers: Vec<Option<Vec<Instance>>> = vec![None; ranges.len()];
            // Files an answer in its place; a failed request stops the job.
            let mut file = |done: std::result::Result<
                (usize, ee_predict_client::Result<Vec<Instance>>),
                tokio::task::JoinError,
            >|
             -> Result<()> {
                let (n, result) = done.map_err(|_| Error::Worker("request task".into()))?;
                let got = result?;
                let want = ranges[n].len();
                if got.len() != want {
                    return Err(Error::Answer(format!(
                        "the model answered {} predictions for {want} features ({} and on)",
                        got.len(),
                        labels[ranges[n].start]
                    )));
                }
                answers[n] = Some(got);
                Ok(())
            };
            for (n, range) in ranges.iter().cloned().enumerate() {
                let permit = limit
                    .clone()
                    .acquire_owned()
                    .await
                    .map_err(|_| Error::Worker("request limiter".into()))?;
                while let Some(done) = tasks.try_join_next() {
                    file(done)?;
                }
                let (client, instances, labels) =
                    (client.clone(), instances.clone(), labels.clone());
                tasks.spawn(async move {
                    let answers = client
                        .predict(&instances[range.clone()], &labels[range])
                        .await;
                    drop(permit);
                    (n, answers)
                });
            }
            while let Some(done) = tasks.join_next().await {
                file(done)?;
            }
            let out = answers.into_iter().flatten().flatten().collect();
            Ok((out, ranges.len()))
        }
    }
}

/// Runs the model over every feature of `input` and writes `output`.
pub(crate) async fn predict_properties(
    spec: &ModelSpec,
    runner: &Runner,
    input: &Path,
    output: &Path,
    options: &PropertiesOptions,
) -> Result<PropertiesReport> {
    let start = Instant::now();
    if spec.output_properties.is_empty() {
        return Err(Error::Spec(
            "predict-properties needs outputProperties (e.g. {\"score\": {\"type\": \"float\"}})"
                .into(),
        ));
    }
    if matches!(runner, Runner::Remote(_)) && !spec.output_bands.is_empty() {
        return Err(Error::Spec(
            "a spec for predict-properties over a hosted model declares outputProperties only (its client decodes outputBands when both are given)".into(),
        ));
    }
    // Read the layer and the input values (GDAL, off the async runtime).
    let (source, inputs, rows) = {
        let (input, layer) = (input.to_path_buf(), options.layer.clone());
        let spec = spec.clone();
        tokio::task::spawn_blocking(move || -> Result<_> {
            let source = VectorSource::open(&input, layer.as_deref())?;
            let inputs = resolve_inputs(&spec, &source)?;
            let positions: Vec<usize> = inputs.iter().map(|i| i.index).collect();
            let rows = source.read(&positions)?;
            Ok((source, inputs, rows))
        })
        .await
        .map_err(|_| Error::Worker("vector reader".into()))??
    };

    // Instances, or the first invalid feature (or all of them, counted, when skipping).
    let mut shapes: Shapes = vec![None; inputs.len()];
    let (mut instances, mut labels, mut predicted_rows) = (Vec::new(), Vec::new(), Vec::new());
    let (mut skipped, mut skipped_reasons) = (0usize, Vec::new());
    for row in &rows {
        match build_instance(row, &inputs, &mut shapes) {
            Ok(instance) => {
                instances.push(instance);
                labels.push(row.label());
                predicted_rows.push(row.index);
            }
            Err((field, message)) => {
                let err = ee_raster_io::Error::Feature {
                    path: source.path().to_path_buf(),
                    feature: row.label(),
                    field,
                    message,
                };
                if !options.skip_invalid {
                    return Err(err.into());
                }
                skipped += 1;
                if skipped_reasons.len() < SKIPPED_NAMED {
                    skipped_reasons.push(err.to_string());
                }
            }
        }
    }
    tracing::info!(
        features = rows.len(),
        valid = instances.len(),
        skipped,
        "read {} features from {}",
        rows.len(),
        source.path().display()
    );

    let predicted = instances.len();
    let (answers, requests) = run_model(runner, spec, instances, labels.clone()).await?;
    if answers.len() != predicted {
        return Err(Error::Answer(format!(
            "the model answered {} predictions for {predicted} features",
            answers.len()
        )));
    }

    // New field values per feature, null for skipped features.
    let outputs = &spec.output_properties;
    let mut lengths: Vec<Option<usize>> = vec![None; outputs.len()];
    let mut values: Vec<Vec<NewValue>> = vec![vec![NewValue::Null; outputs.len()]; rows.len()];
    let mut clamped = 0u64;
    for ((answer, &row), label) in answers.iter().zip(&predicted_rows).zip(&labels) {
        values[row] = answer_values(answer, outputs, &mut lengths, label, &mut clamped)?;
    }
    if clamped > 0 {
        tracing::warn!(
            clamped,
            "{clamped} integer output values were outside their declared type (or NaN) and were clamped to it"
        );
    }
    let new_fields: Vec<NewField> = outputs
        .iter()
        .zip(&lengths)
        .map(|(o, len)| NewField {
            name: o.name.clone(),
            ty: field_type(o.dtype),
            length: match o.dims {
                BandDims::Scalar => None,
                _ => Some(len.unwrap_or(0)),
            },
        })
        .collect();

    let outcome = {
        let (output, format) = (output.to_path_buf(), options.format.clone());
        let source = source.clone();
        tokio::task::spawn_blocking(move || {
            write_with_new_fields(&source, &output, format.as_deref(), &new_fields, &values)
        })
        .await
        .map_err(|_| Error::Worker("vector writer".into()))??
    };
    Ok(PropertiesReport {
        output: outcome.path,
        driver: outcome.driver,
        layer: source.layer_name().to_string(),
        inputs: inputs.into_iter().map(|i| i.name).collect(),
        fields: outcome.fields,
        lists: outcome.lists,
        features: outcome.features,
        predicted,
        skipped,
        skipped_reasons,
        requests,
        local: matches!(runner, Runner::Local { .. }),
        elapsed: start.elapsed(),
        metrics: match runner {
            Runner::Remote(c) => Some(c.metrics()),
            Runner::Local { .. } => None,
        },
        clamped,
    })
}

/// The input properties: `inputProperties` in order, or every numeric field.
fn resolve_inputs(spec: &ModelSpec, source: &VectorSource) -> Result<Vec<InputField>> {
    let fields = source.fields();
    let list = || {
        fields
            .iter()
            .map(|f| format!("{} ({})", f.name, f.kind))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let chosen: Vec<usize> = if spec.input_properties.is_empty() {
        let numeric: Vec<usize> = (0..fields.len())
            .filter(|&i| fields[i].kind.is_numeric())
            .collect();
        if numeric.is_empty() {
            return Err(Error::Spec(format!(
                "{} layer {:?} has no numeric field to send (fields: {}); name the inputs with inputProperties",
                source.path().display(),
                source.layer_name(),
                list()
            )));
        }
        numeric
    } else {
        spec.input_properties
            .iter()
            .map(|name| {
                source.field_index(name).ok_or_else(|| {
                    Error::Spec(format!(
                        "inputProperties: {} layer {:?} has no field {name:?} (fields: {})",
                        source.path().display(),
                        source.layer_name(),
                        list()
                    ))
                })
            })
            .collect::<Result<_>>()?
    };
    Ok(chosen
        .into_iter()
        .map(|i| {
            let name = fields[i].name.clone();
            let dtype = spec
                .input_type_override
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, d)| *d)
                .unwrap_or(DataType::Float32);
            InputField {
                index: i,
                name,
                dtype,
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ee_tensor_proto::Tensor;

    #[test]
    fn text_values_parse_as_numbers_json_arrays_or_ogr_lists() {
        assert_eq!(parse_text(" 2.5 ").unwrap(), (vec![2.5], false));
        assert_eq!(
            parse_text("[1, 2.5, -3]").unwrap(),
            (vec![1.0, 2.5, -3.0], true)
        );
        assert_eq!(parse_text("[ 1.0, 2.0 ]").unwrap(), (vec![1.0, 2.0], true));
        assert_eq!(
            parse_text("(3:1,2,3.5)").unwrap(),
            (vec![1.0, 2.0, 3.5], true)
        );
        assert!(parse_text("(4:1,2,3.5)").is_err());
        assert!(parse_text("abc")
            .unwrap_err()
            .contains("\"abc\" is not a number"));
        assert!(parse_text("[1, \"x\"]").is_err());
        assert!(parse_text("").unwrap_err().contains("missing"));
        assert_eq!(
            numbers(&Value::Texts(vec!["1".into(), " 2 ".into()])).unwrap(),
            (vec![1.0, 2.0], true)
        );
        assert!(numbers(&Value::Null).unwrap_err().contains("missing"));
        assert!(numbers(&Value::Other("date 2024-01-01".into()))
            .unwrap_err()
            .contains("not a number (date"));
    }

    fn inputs() -> Vec<InputField> {
        vec![
            InputField {
                index: 0,
                name: "a".into(),
                dtype: DataType::Float32,
            },
            InputField {
                index: 1,
                name: "v".into(),
                dtype: DataType::Float64,
            },
        ]
    }

    fn row(index: usize, a: Value, v: Value) -> FeatureValues {
        FeatureValues {
            index,
            fid: Some(index as u64 + 10),
            values: vec![a, v],
        }
    }

    #[test]
    fn instances_have_scalars_and_arrays_of_the_declared_types() {
        let mut shapes = vec![None, None];
        let inst = build_instance(
            &row(0, Value::Number(1.5), Value::Numbers(vec![1.0, 2.0])),
            &inputs(),
            &mut shapes,
        )
        .unwrap();
        let a = inst.get("a").unwrap();
        assert_eq!(a.dtype(), DataType::Float32);
        assert_eq!(a.shape(), &[] as &[usize]);
        let v = inst.get("v").unwrap();
        assert!(v.bit_eq(&Tensor::from_vec(&[2], vec![1.0f64, 2.0]).unwrap()));
        // A later feature with another array length, or a missing value, names the field.
        let err = build_instance(
            &row(1, Value::Number(1.0), Value::Text("[1, 2, 3]".into())),
            &inputs(),
            &mut shapes,
        )
        .unwrap_err();
        assert_eq!(err.0, "v");
        assert!(err
            .1
            .contains("an array of 3 where earlier features have an array of 2"));
        let err =
            build_instance(&row(2, Value::Null, Value::Null), &inputs(), &mut shapes).unwrap_err();
        assert_eq!(err, ("a".to_string(), "missing value".to_string()));
        let err = build_instance(
            &row(3, Value::Numbers(vec![]), Value::Null),
            &inputs(),
            &mut shapes,
        )
        .unwrap_err();
        assert_eq!(err.1, "empty array");
    }

    fn out(name: &str, dtype: DataType, dims: BandDims) -> OutputBandSpec {
        OutputBandSpec {
            name: name.into(),
            dtype,
            dims,
            nodata: None,
        }
    }

    #[test]
    fn answers_become_field_values_with_checked_shapes() {
        let outputs = vec![
            out("s", DataType::Float32, BandDims::Scalar),
            out("k", DataType::Int64, BandDims::Scalar),
            out("w", DataType::Float32, BandDims::Vector),
        ];
        let answer = Instance::new()
            .with("w", Tensor::from_vec(&[2], vec![0.5f32, 1.5]).unwrap())
            .with("s", Tensor::from_vec(&[1], vec![2.0f32]).unwrap())
            .with("k", Tensor::from_vec(&[], vec![3i64]).unwrap());
        let mut lengths = vec![None; 3];
        let row = answer_values(&answer, &outputs, &mut lengths, "feature 0", &mut 0).unwrap();
        assert_eq!(
            row,
            vec![
                NewValue::Real(2.0),
                NewValue::Integer(3),
                NewValue::Reals(vec![0.5, 1.5])
            ]
        );
        assert_eq!(lengths, vec![None, None, Some(2)]);
        let longer = answer
            .clone()
            .with("w", Tensor::from_vec(&[3], vec![0.5f32, 1.5, 2.0]).unwrap());
        let err = answer_values(&longer, &outputs, &mut lengths, "feature 1", &mut 0)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("feature 1 has 3 values, earlier answers 2"),
            "{err}"
        );
        let wide = answer
            .clone()
            .with("s", Tensor::from_vec(&[2], vec![1.0f32, 2.0]).unwrap());
        let err = answer_values(&wide, &outputs, &mut lengths, "feature 2", &mut 0)
            .unwrap_err()
            .to_string();
        assert!(err.contains("declared a number (dimensions 0)"), "{err}");
        let mut partial = answer.clone();
        partial.take("k");
        let err = answer_values(&partial, &outputs, &mut lengths, "feature 3", &mut 0)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("outputProperties.k: the model's answer for feature 3 has no such output"),
            "{err}"
        );
        // A single declared output takes a single unnamed answer.
        let one = vec![out("p", DataType::Float64, BandDims::Scalar)];
        let bare = Instance::new().with("output", Tensor::from_vec(&[], vec![0.25f64]).unwrap());
        assert_eq!(
            answer_values(&bare, &one, &mut [None], "feature 4", &mut 0).unwrap(),
            vec![NewValue::Real(0.25)]
        );
    }

    #[test]
    fn integer_properties_round_as_rasters_do() {
        // The rasters' conversion (ee_raster_io::pixel::FromF64): half away from zero,
        // saturated at the declared type.
        let outputs = vec![
            out("k", DataType::Int64, BandDims::Scalar),
            out("c", DataType::Uint8, BandDims::Vector),
        ];
        let answer = Instance::new()
            .with("k", Tensor::from_vec(&[], vec![2.6f32]).unwrap())
            .with(
                "c",
                Tensor::from_vec(&[4], vec![2.5f64, -2.6, 300.0, 254.6]).unwrap(),
            );
        let mut clamped = 0;
        let row = answer_values(
            &answer,
            &outputs,
            &mut [None, None],
            "feature 0",
            &mut clamped,
        )
        .unwrap();
        assert_eq!(
            row,
            vec![
                NewValue::Integer(3),
                NewValue::Integers(vec![3, 0, 255, 255])
            ]
        );
        // -2.6 (below 0) and 300 (above 255) were clamped; 254.6 rounds to 255.
        assert_eq!(clamped, 2);
    }

    #[test]
    fn field_types_follow_the_declared_types() {
        assert_eq!(field_type(DataType::Float32), NewFieldType::Real);
        assert_eq!(field_type(DataType::Int32), NewFieldType::Integer);
        assert_eq!(field_type(DataType::Uint8), NewFieldType::Integer);
        assert_eq!(field_type(DataType::Int64), NewFieldType::Integer64);
        assert_eq!(field_type(DataType::Uint32), NewFieldType::Integer64);
    }
}
