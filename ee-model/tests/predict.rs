//! End-to-end predictions with the embedded runtime and over HTTP, on GeoTIFFs whose sizes
//! are not multiples of the tile: tiled equals whole-image inference in the interior, masks
//! and nodata, a classifier's coarser output grid, sampling in another projection, the
//! zoom-out guard, the command line, and kill-and-resume giving identical files.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use ee_model::{LocalModel, Model, ModelSpec, PredictOptions};
use ee_tensor_proto::{Instance, Tensor};
use gdal::{Dataset, Metadata};

use common::{make_input, models, read_band, scratch};

fn conv_spec(tile: usize, overlap: usize) -> ModelSpec {
    let json = format!(
        r#"{{"predictor": {{"type": "local", "path": "{}"}},
            "inputBands": {{"input": ["B1", "B2", "B3"]}},
            "inputTileSize": [{tile}, {tile}], "inputOverlapSize": [{overlap}, {overlap}],
            "outputBands": {{"output": {{"type": "float", "dimensions": 1}}}}}}"#,
        models().join("conv_r2.onnx").display()
    );
    ModelSpec::from_json(&json).unwrap()
}

/// The whole image through the model at once: `(h, w, 2)` values.
fn whole_image(input: &Path) -> (Vec<f32>, usize, usize) {
    let bands: Vec<_> = (1..=3).map(|b| read_band(input, b)).collect();
    let (w, h) = (bands[0].1, bands[0].2);
    let mut data = Vec::with_capacity(w * h * 3);
    for i in 0..w * h {
        for b in &bands {
            data.push(b.0[i]);
        }
    }
    let model = LocalModel::load(models().join("conv_r2.onnx"), ee_model::Layout::Nhwc).unwrap();
    let out = model
        .run(&[Instance::new().with("input", Tensor::from_vec(&[h, w, 3], data).unwrap())])
        .unwrap();
    let t = out[0].get("output").unwrap();
    (t.array::<f32>().unwrap().iter().copied().collect(), w, h)
}

async fn run(
    spec: ModelSpec,
    inputs: &[PathBuf],
    output: &Path,
    options: &PredictOptions,
) -> ee_model::Report {
    Model::new(spec)
        .unwrap()
        .predict_image(inputs, output, options)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tiled_equals_whole_image_in_the_interior() {
    for (w, h, tile) in [(157, 93, 32), (64, 64, 16), (33, 70, 20)] {
        let input = scratch(&format!("conv_in_{w}x{h}.tif"));
        make_input(&input, w, h, None);
        let output = scratch(&format!("conv_out_{w}x{h}.tif"));
        let report = run(
            conv_spec(tile, 4),
            std::slice::from_ref(&input),
            &output,
            &PredictOptions::default(),
        )
        .await;
        assert_eq!(report.bands, vec!["output_0", "output_1"]);
        let (whole, ww, wh) = whole_image(&input);
        assert_eq!((ww, wh), (w, h));
        for k in 0..2 {
            let (tiled, ow, oh, _) = read_band(&output, k + 1);
            assert_eq!((ow, oh), (w, h));
            for y in 2..h - 2 {
                for x in 2..w - 2 {
                    let (a, b) = (tiled[y * w + x], whole[(y * w + x) * 2 + k]);
                    assert!(
                        (a - b).abs() <= 1e-5 * b.abs().max(1.0),
                        "{w}x{h} tile {tile} band {k} ({x}, {y}): tiled {a}, whole {b}"
                    );
                }
            }
        }
        let ds = Dataset::open(&output).unwrap();
        assert_eq!(
            ds.geo_transform().unwrap(),
            [500_000.0, 10.0, 0.0, 5_000_000.0, 0.0, -10.0]
        );
        assert_eq!(ds.rasterband(2).unwrap().description().unwrap(), "output_1");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn masked_inputs_give_nodata_outputs() {
    let input = scratch("mask_in.tif");
    make_input(&input, 80, 60, Some((10, 20, 25, 30)));
    let output = scratch("mask_out.tif");
    run(
        conv_spec(32, 4),
        std::slice::from_ref(&input),
        &output,
        &PredictOptions::default(),
    )
    .await;
    let (v, w, _, nodata) = read_band(&output, 1);
    assert!(
        nodata.unwrap().is_nan(),
        "float outputs use NaN nodata: {nodata:?}"
    );
    for (x, y) in [(10, 20), (24, 29), (17, 25)] {
        assert!(v[y * w + x].is_nan(), "({x}, {y}) should be masked");
    }
    for (x, y) in [(9, 20), (25, 29), (40, 40)] {
        assert!(v[y * w + x].is_finite(), "({x}, {y}) should be valid");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_classifier_gives_one_pixel_per_tile() {
    let input = scratch("clf_in.tif");
    make_input(&input, 100, 70, None);
    let output = scratch("clf_out.tif");
    let spec = local_spec(
        "classifier.onnx",
        "",
        r#""inputBands": {"input": ["B1", "B2", "B3"]}, "inputTileSize": [32, 32], "outputTileSize": [1, 1],
           "outputBands": {"output": {"type": "float", "dimensions": 1}}"#,
    );
    run(
        spec,
        std::slice::from_ref(&input),
        &output,
        &PredictOptions::default(),
    )
    .await;
    let ds = Dataset::open(&output).unwrap();
    assert_eq!(ds.raster_size(), (4, 3));
    assert_eq!(
        ds.geo_transform().unwrap(),
        [500_000.0, 320.0, 0.0, 5_000_000.0, 0.0, -320.0]
    );
    // Tile (0, 0) by hand: the model on the first 32 x 32 window.
    let bands: Vec<_> = (1..=3).map(|b| read_band(&input, b).0).collect();
    let mut data = Vec::new();
    for y in 0..32 {
        for x in 0..32 {
            for b in &bands {
                data.push(b[y * 100 + x]);
            }
        }
    }
    let model = LocalModel::load(models().join("classifier.onnx"), ee_model::Layout::Nhwc).unwrap();
    let want = model
        .run(&[Instance::new().with("input", Tensor::from_vec(&[32, 32, 3], data).unwrap())])
        .unwrap();
    let want = want[0]
        .get("output")
        .unwrap()
        .array::<f32>()
        .unwrap()
        .iter()
        .copied()
        .collect::<Vec<_>>();
    assert!((read_band(&output, 1).0[0] - want[0]).abs() < 1e-5);
    assert!((read_band(&output, 2).0[0] - want[1]).abs() < 1e-5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fix_input_proj_samples_in_the_model_projection() {
    let input = scratch("proj_in.tif");
    make_input(&input, 90, 90, None);
    let output = scratch("proj_out.tif");
    let spec = ModelSpec::from_json(&format!(
        r#"{{"predictor": {{"type": "local", "path": "{}"}}, "inputBands": {{"input": ["B1"]}},
            "inputTileSize": [16, 16], "outputBands": {{"output": {{"type": "float"}}}},
            "proj": {{"crs": "EPSG:4326", "scale": [0.0002, 0.0002]}}, "fixInputProj": true}}"#,
        models().join("identity.onnx").display()
    ))
    .unwrap();
    run(
        spec,
        std::slice::from_ref(&input),
        &output,
        &PredictOptions::default(),
    )
    .await;
    let ds = Dataset::open(&output).unwrap();
    let gt = ds.geo_transform().unwrap();
    assert_eq!((gt[1], gt[5]), (0.0002, -0.0002));
    assert!(
        (gt[0] / 0.0002 - (gt[0] / 0.0002).round()).abs() < 1e-6,
        "grid aligned to the origin: {gt:?}"
    );
    assert_eq!(ds.spatial_ref().unwrap().auth_code().unwrap(), 4326);
    // Same pixels as gdalwarp onto that grid (nearest, exact transformer).
    let (w, h) = ds.raster_size();
    let reference = scratch("proj_ref.tif");
    let te = [
        gt[0],
        gt[3] + gt[5] * h as f64,
        gt[0] + gt[1] * w as f64,
        gt[3],
    ];
    let st = Command::new("gdalwarp")
        .args(["-q", "-overwrite", "-t_srs", "EPSG:4326", "-te"])
        .args(te.iter().map(|v| v.to_string()))
        .args([
            "-ts",
            &w.to_string(),
            &h.to_string(),
            "-r",
            "near",
            "-et",
            "0",
        ])
        .arg(&input)
        .arg(&reference)
        .status()
        .unwrap();
    assert!(st.success());
    let (ours, ..) = read_band(&output, 1);
    let (theirs, ..) = read_band(&reference, 1);
    let mut compared = 0;
    for (a, b) in ours.iter().zip(&theirs) {
        if a.is_finite() && *b != -9999.0 {
            assert_eq!(a, b);
            compared += 1;
        }
    }
    assert!(
        compared > w * h / 2,
        "only {compared} of {} pixels compared",
        w * h
    );
}

#[tokio::test]
async fn the_zoom_out_guard_refuses_with_figures() {
    let input = scratch("guard_in.tif");
    make_input(&input, 64, 64, None);
    let options = PredictOptions {
        max_requests: 3,
        ..Default::default()
    };
    let err = Model::new(conv_spec(16, 4))
        .unwrap()
        .predict_image(&[input], &scratch("guard_out.tif"), &options)
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("refusing to send 4 requests")
            && err.contains("16 tiles")
            && err.contains("limit is 3"),
        "{err}"
    );
    assert!(!scratch("guard_out.tif").exists());
}

/// Integer outputs: a real 255 in a uint8 band whose nodata is 0 reads back as 255, the
/// values the type cannot hold are counted in the report (saturated, not silently), and the
/// band's nodata is written where the input is masked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn integer_outputs_keep_their_values_and_count_what_was_clamped() {
    let input = scratch("int_in.tif");
    make_input(&input, 50, 40, Some((5, 5, 15, 10)));
    let spec = |nodata: &str| {
        local_spec(
            "identity.onnx",
            "",
            &format!(
                r#""inputBands": {{"input": ["B2"]}}, "inputTileSize": [16, 16], "outputBands": {{"output": {{"type": "byte"{nodata}}}}}"#
            ),
        )
    };
    let output = scratch("int_out.tif");
    let report = run(
        spec(r#", "nodata": 0"#),
        std::slice::from_ref(&input),
        &output,
        &PredictOptions::default(),
    )
    .await;
    // B2 holds values in about [-4, 4]: the negative ones that round below 0 saturate at 0.
    let (b2, ..) = read_band(&input, 2);
    let valid = |v: f32| v != -9999.0;
    let clamped = b2
        .iter()
        .filter(|&&v| valid(v) && (v as f64).round() < 0.0)
        .count();
    let zeros = b2
        .iter()
        .filter(|&&v| valid(v) && (v as f64).round() == 0.0)
        .count();
    assert!(clamped > 100, "the input has values below the type's range");
    assert_eq!(report.written.clamped, clamped as u64);
    assert_eq!(
        report.written.nodata_collisions,
        (clamped + zeros) as u64,
        "valid values written as 0, the nodata value"
    );
    let (out, _, _, nodata) = read_band(&output, 1);
    assert_eq!(nodata, Some(0.0));
    for (i, (&o, &v)) in out.iter().zip(&b2).enumerate() {
        let want = if valid(v) {
            (v as f64).round().clamp(0.0, 255.0) as f32
        } else {
            0.0
        };
        assert_eq!(o, want, "pixel {i}: input {v}");
    }
    // With the default nodata (255 for a byte band) nothing valid collides with it here.
    let report = run(
        spec(""),
        std::slice::from_ref(&input),
        &output,
        &PredictOptions::default(),
    )
    .await;
    assert_eq!(read_band(&output, 1).3, Some(255.0));
    assert_eq!(report.written.nodata_collisions, 0);
}

/// Never a silent wrong answer: the square-root model answers NaN for negative inputs. Where
/// some values are NaN the job writes them and reports the exact count; where a tile's every
/// valid value is NaN (the inputs shifted below zero) the job fails naming the tile, the
/// output and the runtime, unless such answers are allowed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_finite_answers_are_counted_and_an_all_nan_tile_fails_the_job() {
    let spec = |band: &str| {
        local_spec(
            "sqrt.onnx",
            r#", "batchSize": 3"#,
            &format!(
                r#""inputBands": {{"input": ["{band}"]}}, "inputTileSize": [16, 16], "outputBands": {{"output": {{"type": "float"}}}}"#
            ),
        )
    };
    let input = scratch("nan_in.tif");
    make_input(&input, 40, 30, Some((0, 0, 40, 3)));
    let output = scratch("nan_out.tif");
    // Band 2: about half its values negative, its top rows masked.
    let report = run(
        spec("B2"),
        std::slice::from_ref(&input),
        &output,
        &PredictOptions::default(),
    )
    .await;
    let (b2, ..) = read_band(&input, 2);
    let negative = b2.iter().filter(|&&v| v != -9999.0 && v < 0.0).count();
    assert!(negative > 100);
    assert_eq!(report.non_finite.values, negative as u64, "counted exactly");
    assert!(report.non_finite.tiles > 0 && report.non_finite.tiles <= 6);

    // An input whose every value is negative: every tile answers NaN everywhere.
    let negative_input = scratch("nan_negative.tif");
    let ds = common::create_tiff::<f32>(&negative_input, 40, 30, 1);
    ds.rasterband(1)
        .unwrap()
        .write(
            (0, 0),
            (40, 30),
            &mut gdal::raster::Buffer::new((40, 30), vec![-1.0f32; 1200]),
        )
        .unwrap();
    drop(ds);
    let output = scratch("nan_out_all.tif");
    let err = Model::new(spec("B1"))
        .unwrap()
        .predict_image(
            std::slice::from_ref(&negative_input),
            &output,
            &PredictOptions::default(),
        )
        .await
        .expect_err("an all-NaN tile fails the job")
        .to_string();
    assert!(
        err.starts_with("model answer: tile (col ")
            && err.contains("nan_out_all.tif")
            && err.contains("sqrt.onnx")
            && err.contains("NaN"),
        "{err}"
    );
    assert!(!output.exists(), "no output that looks complete");
    let allowed = PredictOptions {
        allow_non_finite: true,
        ..Default::default()
    };
    let report = run(spec("B1"), &[negative_input], &output, &allowed).await;
    assert_eq!(
        (report.non_finite.tiles, report.non_finite.values),
        (6, 1200)
    );
}

/// Declared shapes are hints: a model whose declared output and value_info name the height
/// after the batch axis (as PyTorch's exporter did) loads, and answers what the graph
/// computes (`max(input, 0)`, checked against the input; onnxruntime gives the same, see
/// `models/make_mislabelled.py`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contradicting_declared_output_shapes_are_dropped() {
    let input = scratch("mislabelled_in.tif");
    make_input(&input, 40, 30, Some((3, 4, 9, 8)));
    let output = scratch("mislabelled_out.tif");
    let spec = local_spec(
        "mislabelled.onnx",
        r#", "layout": "NCHW""#,
        r#""inputBands": {"input": ["B1", "B2", "B3"]}, "inputTileSize": [16, 16], "inputOverlapSize": [2, 2],
           "outputBands": {"output": {"type": "float", "dimensions": 1}}"#,
    );
    run(
        spec,
        std::slice::from_ref(&input),
        &output,
        &PredictOptions::default(),
    )
    .await;
    let mask = read_band(&input, 2).0;
    for b in 1..=3 {
        let (inp, ..) = read_band(&input, b);
        let (out, ..) = read_band(&output, b);
        for (i, (&x, &y)) in inp.iter().zip(&out).enumerate() {
            if mask[i] == -9999.0 {
                assert!(y.is_nan(), "band {b} pixel {i}: masked");
            } else {
                assert_eq!(y, x.max(0.0), "band {b} pixel {i}");
            }
        }
    }
}

/// The case the guard exists for: a `proj.scale` typo under `fixInputProj` (0.001 m where 10 m
/// was meant) asks for about 5e8 tiles. It is refused with its figures by the command, run
/// with its address space capped at 3 GiB: the guard works from the grid's arithmetic, where
/// a list of the tiles (or a flag per tile) would not fit.
#[test]
fn a_scale_typo_is_refused_in_constant_memory() {
    let input = scratch("typo_in.tif");
    make_input(&input, 40, 30, None);
    let spec = local_spec_file(
        "typo_spec.json",
        "identity.onnx",
        "",
        r#""inputBands": {"input": ["B1"]}, "inputTileSize": [16, 16], "outputBands": {"output": {"type": "float"}},
           "proj": {"crs": "EPSG:32633", "scale": [0.001, 0.001]}, "fixInputProj": true"#,
    );
    let output = scratch("typo_out.tif");
    let mut shell = Command::new("sh");
    shell
        .arg("-c")
        .arg(r#"ulimit -v 3145728 && exec "$@""#)
        .arg("sh")
        .arg(env!("CARGO_BIN_EXE_ee-model"));
    let run = predict_args(shell, &spec, &input, &output)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&run.stderr);
    assert_eq!(
        run.status.code(),
        Some(1),
        "a clean refusal, not a crash: {err}"
    );
    assert!(
        err.contains("refusing to send")
            && err.contains("468750000 tiles")
            && err.contains("400000 x 300000 output"),
        "{err}"
    );
    assert!(!output.exists());
    assert!(!ee_model::journal::journal_path(&output).exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_http_with_serialized_tf_tensors() {
    // An AI Platform route whose model is the same ONNX file, answering SERIALIZED_TF_TENSORS.
    let (addr, requests) = common::serve_stt("conv_r2.onnx").await;
    let input = scratch("http_in.tif");
    make_input(&input, 70, 50, None);
    let spec = ModelSpec::from_json(&format!(
        r#"{{"predictor": {{"type": "aiPlatform", "projectId": "p", "modelName": "conv", "version": "v1", "baseUrl": "http://{addr}"}},
            "inputBands": {{"input": ["B1", "B2", "B3"]}}, "inputTileSize": [16, 16], "inputOverlapSize": [4, 4],
            "outputBands": {{"output": {{"type": "float", "dimensions": 1}}}}, "maxPayloadBytes": 20000}}"#
    ))
    .unwrap();
    let http_out = scratch("http_out.tif");
    let report = run(
        spec,
        std::slice::from_ref(&input),
        &http_out,
        &PredictOptions::default(),
    )
    .await;
    let local_out = scratch("http_local_out.tif");
    run(
        conv_spec(16, 4),
        std::slice::from_ref(&input),
        &local_out,
        &PredictOptions::default(),
    )
    .await;
    for k in 1..=2 {
        let (a, ..) = read_band(&http_out, k);
        let (b, ..) = read_band(&local_out, k);
        assert_eq!(a, b, "band {k}: HTTP and local differ");
    }
    let seen = requests.lock().unwrap().clone();
    assert!(
        seen.iter()
            .all(|(path, _, _)| path == "/v1/projects/p/models/conv/versions/v1:predict"),
        "{seen:?}"
    );
    assert!(seen.iter().all(|&(_, _, bytes)| bytes <= 20000), "{seen:?}");
    assert!(
        seen.iter().any(|&(_, n, _)| n > 1),
        "several tiles per request: {seen:?}"
    );
    assert_eq!(seen.iter().map(|&(_, n, _)| n).sum::<usize>(), 20);
    assert_eq!(report.metrics.unwrap().requests_ok as usize, seen.len());
}

#[test]
fn the_command_line_runs_and_fails_in_one_line() {
    let input = scratch("cli_in.tif");
    make_input(&input, 40, 30, None);
    let spec = local_spec_file("cli_spec.json", "conv_r2.onnx", "", CONV_FIELDS);
    let output = scratch("cli_out.tif");
    let png = scratch("cli_out.png");
    let run = Command::new(env!("CARGO_BIN_EXE_ee-model"))
        .args(["predict", "--spec"])
        .arg(&spec)
        .arg("--input")
        .arg(&input)
        .arg("--output")
        .arg(&output)
        .arg("--quicklook")
        .arg(&png)
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&run.stdout).to_string() + &String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{text}");
    assert!(
        text.contains("6 tiles (6 to predict) in 2 model runs"),
        "{text}"
    );
    assert!(output.exists() && png.exists());

    std::fs::write(&spec, r#"{"predictor": {"type": "local", "path": "nope.onnx"}, "inputTileSize": [16, 16], "outputBands": {"o": {"type": "float"}}}"#).unwrap();
    let run = predict_args(
        Command::new(env!("CARGO_BIN_EXE_ee-model")),
        &spec,
        &input,
        &output,
    )
    .output()
    .unwrap();
    let err = String::from_utf8_lossy(&run.stderr).to_string();
    assert!(!run.status.success());
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.contains("nope.onnx") && err.contains("no such file"),
        "{err}"
    );
}

/// The conv model's inputs, tiles and output band, as spec fields.
const CONV_FIELDS: &str = r#""inputBands": {"input": ["B1", "B2", "B3"]}, "inputTileSize": [16, 16], "inputOverlapSize": [4, 4],
    "outputBands": {"output": {"type": "float", "dimensions": 1}}"#;

/// The spec of the local test model `model` (with `predictor_extra` fields in its predictor)
/// and `fields`, as JSON.
fn local_json(model: &str, predictor_extra: &str, fields: &str) -> String {
    format!(
        r#"{{"predictor": {{"type": "local", "path": "{}"{predictor_extra}}}, {fields}}}"#,
        models().join(model).display()
    )
}

/// [`local_json`] as a spec.
fn local_spec(model: &str, predictor_extra: &str, fields: &str) -> ModelSpec {
    ModelSpec::from_json(&local_json(model, predictor_extra, fields)).unwrap()
}

/// Writes [`local_json`] to the spec file `name`.
fn local_spec_file(name: &str, model: &str, predictor_extra: &str, fields: &str) -> PathBuf {
    let spec = scratch(name);
    std::fs::write(&spec, local_json(model, predictor_extra, fields)).unwrap();
    spec
}

/// `command` (the program, or a shell that runs it) given `predict --spec S --input I
/// --output O`.
fn predict_args(mut command: Command, spec: &Path, input: &Path, output: &Path) -> Command {
    command
        .args(["predict", "--spec"])
        .arg(spec)
        .arg("--input")
        .arg(input)
        .arg("--output")
        .arg(output);
    command
}

fn cli(args: &[&std::ffi::OsStr]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_ee-model"));
    c.args(args);
    c
}

/// Pixels of every band as bits, transform, CRS and nodata bits: what "identical" means here.
type Fingerprint = (Vec<Vec<u32>>, [f64; 6], String, Vec<Option<u64>>);

fn fingerprint(path: &Path) -> Fingerprint {
    let ds = Dataset::open(path).unwrap();
    let (w, h) = ds.raster_size();
    let mut bands = Vec::new();
    let mut nodata = Vec::new();
    for b in 1..=ds.raster_count() {
        let band = ds.rasterband(b).unwrap();
        nodata.push(band.no_data_value().map(f64::to_bits));
        bands.push(
            band.read_as::<f32>((0, 0), (w, h), (w, h), None)
                .unwrap()
                .into_shape_and_vec()
                .1
                .iter()
                .map(|v| v.to_bits())
                .collect(),
        );
    }
    (
        bands,
        ds.geo_transform().unwrap(),
        ds.spatial_ref().unwrap().to_wkt().unwrap(),
        nodata,
    )
}

#[test]
fn killed_and_resumed_runs_give_identical_files() {
    let input = scratch("resume_in.tif");
    make_input(&input, 640, 480, Some((100, 100, 140, 130)));
    let spec = local_spec_file(
        "resume_spec.json",
        "conv_r2.onnx",
        r#", "batchSize": 1"#,
        CONV_FIELDS,
    );
    let reference = scratch("resume_ref.tif");
    let start = std::time::Instant::now();
    let done = cli(&[
        "predict".as_ref(),
        "--spec".as_ref(),
        spec.as_os_str(),
        "--input".as_ref(),
        input.as_os_str(),
        "--output".as_ref(),
        reference.as_os_str(),
    ])
    .output()
    .unwrap();
    assert!(
        done.status.success(),
        "{}",
        String::from_utf8_lossy(&done.stderr)
    );
    let full = start.elapsed();
    let want = fingerprint(&reference);
    let mut resumed_somewhere = false;
    for (i, fraction) in [0.15, 0.4, 0.65, 0.9].iter().enumerate() {
        let output = scratch(&format!("resume_out_{i}.tif"));
        let args = [
            "predict".as_ref(),
            "--spec".as_ref(),
            spec.as_os_str(),
            "--input".as_ref(),
            input.as_os_str(),
            "--output".as_ref(),
            output.as_os_str(),
        ];
        let mut child = cli(&args)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        // Killed once the journal holds about `fraction` of the job's 1200 tiles (about 2.1 kB
        // each): a point in the job, not in time, so a slow machine moves nothing.
        let journal = ee_model::journal::journal_path(&output);
        let target = (fraction * 1200.0 * 2100.0) as u64;
        let deadline = std::time::Instant::now() + full * 20;
        while child.try_wait().unwrap().is_none()
            && std::fs::metadata(&journal).map_or(0, |m| m.len()) < target
            && std::time::Instant::now() < deadline
        {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        let _ = child.kill(); // SIGKILL
        child.wait().unwrap();
        let mut again: Vec<&std::ffi::OsStr> = args.to_vec();
        again.push("--resume".as_ref());
        let run = cli(&again).output().unwrap();
        let text = String::from_utf8_lossy(&run.stdout).to_string();
        assert!(
            run.status.success(),
            "{}",
            String::from_utf8_lossy(&run.stderr)
        );
        resumed_somewhere |= !text.contains("(0 resumed)");
        let got = fingerprint(&output);
        assert_eq!(
            (&got.1, &got.2, &got.3),
            (&want.1, &want.2, &want.3),
            "georeferencing differs after resuming"
        );
        for (b, (g, w)) in got.0.iter().zip(&want.0).enumerate() {
            let diffs: Vec<usize> = (0..g.len()).filter(|&i| g[i] != w[i]).collect();
            assert!(
                diffs.is_empty(),
                "run killed at {fraction} of its tiles: band {} differs after resuming at {} pixels, first at pixel {} (col {}, row {}): {} vs {}",
                b + 1,
                diffs.len(),
                diffs[0],
                diffs[0] % 640,
                diffs[0] / 640,
                f32::from_bits(g[diffs[0]]),
                f32::from_bits(w[diffs[0]])
            );
        }
        assert!(
            std::fs::read(&output).unwrap() == std::fs::read(&reference).unwrap(),
            "run killed at {fraction} of its tiles: the resumed file's bytes differ from the reference's"
        );
        assert!(
            !ee_model::journal::journal_path(&output).exists(),
            "the journal is removed when the job completes"
        );
    }
    assert!(
        resumed_somewhere,
        "no run was killed after finishing a tile: the job is too fast for this test"
    );

    // A journal from other arguments is refused. The journal is made certain: the first run
    // predicts every tile, then cannot put its output into place (a directory is in the way).
    let output = scratch("resume_out_other.tif");
    std::fs::create_dir_all(output.join("in the way")).unwrap();
    let args = [
        "predict".as_ref(),
        "--spec".as_ref(),
        spec.as_os_str(),
        "--input".as_ref(),
        input.as_os_str(),
        "--output".as_ref(),
        output.as_os_str(),
    ];
    let run = cli(&args).output().unwrap();
    assert!(
        !run.status.success(),
        "the output could not be put into place"
    );
    std::fs::remove_dir_all(&output).unwrap();
    assert!(
        ee_model::journal::journal_path(&output).exists(),
        "a failed job keeps its journal: {}",
        String::from_utf8_lossy(&run.stderr)
    );
    let run = cli(&[
        &args[..],
        &["--resume".as_ref(), "--merge".as_ref(), "blend".as_ref()],
    ]
    .concat())
    .output()
    .unwrap();
    let err = String::from_utf8_lossy(&run.stderr);
    assert!(
        !run.status.success() && err.contains("other arguments"),
        "{err}"
    );
    // With the same arguments it resumes: every tile from the journal, the same bytes.
    let run = cli(&[&args[..], &["--resume".as_ref()]].concat())
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(
        std::fs::read(&output).unwrap() == std::fs::read(&reference).unwrap(),
        "a job resumed from a journal of every tile gives the reference's bytes"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blend_of_agreeing_answers_is_the_answer() {
    // With the identity model every overlapping answer agrees, so blending (raised-cosine
    // weights summing to one) must give the input back, edges and seams included.
    let input = scratch("blend_in.tif");
    make_input(&input, 75, 53, None);
    let output = scratch("blend_out.tif");
    let spec = ModelSpec::from_json(&format!(
        r#"{{"predictor": {{"type": "local", "path": "{}"}}, "inputBands": {{"input": ["B1", "B2", "B3"]}},
            "inputTileSize": [16, 16], "inputOverlapSize": [6, 6],
            "outputBands": {{"output": {{"type": "float", "dimensions": 1}}}}}}"#,
        models().join("identity.onnx").display()
    ))
    .unwrap();
    let options = PredictOptions {
        merge: ee_tiling::MergeMode::Blend,
        ..Default::default()
    };
    run(spec, std::slice::from_ref(&input), &output, &options).await;
    for b in 1..=3 {
        let (got, w, h, _) = read_band(&output, b);
        let (want, ..) = read_band(&input, b);
        assert_eq!((w, h), (75, 53));
        for (i, (g, x)) in got.iter().zip(&want).enumerate() {
            assert!(
                (g - x).abs() <= 1e-5 * x.abs().max(1.0),
                "band {b} pixel {i}: blended {g}, input {x}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_nchw_model_gives_what_its_nhwc_twin_gives() {
    let input = scratch("nchw_in.tif");
    make_input(&input, 45, 38, None);
    let nhwc = scratch("nchw_ref.tif");
    run(
        conv_spec(16, 4),
        std::slice::from_ref(&input),
        &nhwc,
        &PredictOptions::default(),
    )
    .await;
    let spec = ModelSpec::from_json(&format!(
        r#"{{"predictor": {{"type": "local", "path": "{}", "layout": "NCHW"}},
            "inputBands": {{"input": ["B1", "B2", "B3"]}}, "inputTileSize": [16, 16], "inputOverlapSize": [4, 4],
            "outputBands": {{"output": {{"type": "float", "dimensions": 1}}}}}}"#,
        models().join("conv_r2_nchw.onnx").display()
    ))
    .unwrap();
    let nchw = scratch("nchw_out.tif");
    run(
        spec,
        std::slice::from_ref(&input),
        &nchw,
        &PredictOptions::default(),
    )
    .await;
    for b in 1..=2 {
        let (a, ..) = read_band(&nhwc, b);
        let (c, ..) = read_band(&nchw, b);
        for (i, (x, y)) in a.iter().zip(&c).enumerate() {
            assert!(
                (x - y).abs() <= 1e-5 * x.abs().max(1.0),
                "band {b} pixel {i}: NHWC {x}, NCHW {y}"
            );
        }
    }
}
