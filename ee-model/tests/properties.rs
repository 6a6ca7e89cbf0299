//! predict-properties end to end: the tabular ONNX model (tests/models/tabular.onnx, made by
//! make_tabular.py: s = 2a + v0 + v1 + v2, w = [a v0, a v1], k = a > 2) run in process and
//! behind a loopback AI Platform route, over GeoJSON and GeoPackage files; the outputs are
//! checked with `ogrinfo` (new fields' values, old fields, geometries, FIDs and order kept),
//! batching under maxPayloadBytes, invalid inputs named or skipped and counted, and the
//! command line.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::models;
use ee_model::{Model, ModelSpec, PropertiesOptions};

/// A fresh folder for `test`.
fn scratch(test: &str) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("ee-model-properties-{}-{test}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Feature `i`'s inputs: binary fractions, exact in float32 and printed exactly.
fn inputs(i: usize) -> (f64, [f64; 3]) {
    let a = 0.25 * (i % 13) as f64;
    let v = [i as f64 * 0.5, 1.0 - 0.125 * (i % 5) as f64, (i % 7) as f64];
    (a, v)
}

/// What the model gives for feature `i`.
fn expected(i: usize) -> (f64, [f64; 2], i64) {
    let (a, v) = inputs(i);
    (
        2.0 * a + v[0] + v[1] + v[2],
        [a * v[0], a * v[1]],
        i64::from(a > 2.0),
    )
}

/// A GeoJSON file of `n` features with ids 100 + 3i (not the reading order), points,
/// polygons and a null geometry, a text field, an integer field, `a` and the list `v`.
fn write_geojson(path: &Path, n: usize) {
    let features: Vec<String> = (0..n)
        .map(|i| {
            let (a, v) = inputs(i);
            let geometry = match i % 3 {
                0 => format!(r#"{{"type": "Point", "coordinates": [{}, {}]}}"#, 10.5 + i as f64, 45.25),
                1 => format!(
                    r#"{{"type": "Polygon", "coordinates": [[[{x}, 40], [{x}.5, 40], [{x}.5, 41], [{x}, 40]]]}}"#,
                    x = i
                ),
                _ => "null".to_string(),
            };
            format!(
                r#"{{"type": "Feature", "id": {}, "properties": {{"name": "f{i}", "code": {}, "a": {a}, "v": [{}, {}, {}]}}, "geometry": {geometry}}}"#,
                100 + 3 * i,
                1000 - i,
                v[0],
                v[1],
                v[2]
            )
        })
        .collect();
    std::fs::write(
        path,
        format!(
            "{{\"type\": \"FeatureCollection\", \"features\": [\n{}\n]}}\n",
            features.join(",\n")
        ),
    )
    .unwrap();
}

fn ogr2ogr_gpkg(from: &Path, to: &Path) {
    let st = Command::new("ogr2ogr")
        .args(["-f", "GPKG"])
        .arg(to)
        .arg(from)
        .output()
        .unwrap();
    assert!(
        st.status.success(),
        "{}",
        String::from_utf8_lossy(&st.stderr)
    );
}

/// One feature as `ogrinfo -al -q` prints it.
#[derive(Clone, Debug, PartialEq)]
struct OgrFeature {
    fid: String,
    /// `(name, type, value)` in order.
    fields: Vec<(String, String, String)>,
    geometry: Option<String>,
}

impl OgrFeature {
    fn field(&self, name: &str) -> &(String, String, String) {
        self.fields
            .iter()
            .find(|f| f.0 == name)
            .unwrap_or_else(|| panic!("no field {name} in {self:?}"))
    }
}

/// The driver and features of `path`, read with `ogrinfo`.
fn ogrinfo(path: &Path) -> (String, Vec<OgrFeature>) {
    let out = Command::new("ogrinfo")
        .args(["-al", "-ro"])
        .arg(path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let driver = text
        .lines()
        .find_map(|l| l.strip_prefix("      using driver `"))
        .and_then(|l| l.split('\'').next())
        .unwrap_or_default()
        .to_string();
    let mut features: Vec<OgrFeature> = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("OGRFeature(") {
            let fid = rest.split("):").nth(1).unwrap().to_string();
            features.push(OgrFeature {
                fid,
                fields: Vec::new(),
                geometry: None,
            });
        } else if let (Some(f), Some(body)) = (features.last_mut(), line.strip_prefix("  ")) {
            match (body.split_once(" ("), body.split_once(") = ")) {
                (Some((name, _)), Some((head, value))) if !name.contains(' ') => {
                    let ty = head[name.len() + 2..].to_string();
                    f.fields.push((name.to_string(), ty, value.to_string()));
                }
                _ if !body.trim().is_empty() => f.geometry = Some(body.to_string()),
                _ => {}
            }
        }
    }
    (driver, features)
}

fn list(xs: &[f64]) -> String {
    format!(
        "({}:{})",
        xs.len(),
        xs.iter()
            .map(|x| x.to_string())
            .collect::<Vec<_>>()
            .join(",")
    )
}

/// Checks `output` against `input`: same driver, same FIDs, order, old fields and
/// geometries, and the model's values in the new fields (`w` a list, or `w_0`, `w_1`).
fn check_output(input: &Path, output: &Path, n: usize) {
    let (in_driver, before) = ogrinfo(input);
    let (out_driver, after) = ogrinfo(output);
    assert_eq!(in_driver, out_driver);
    assert_eq!(before.len(), n);
    assert_eq!(after.len(), n);
    for (i, (b, a)) in before.iter().zip(&after).enumerate() {
        assert_eq!(a.fid, b.fid, "feature {i}: FID");
        assert_eq!(a.geometry, b.geometry, "feature {i}: geometry");
        assert_eq!(
            a.fields[..b.fields.len()],
            b.fields[..],
            "feature {i}: old fields"
        );
        assert_eq!(a.field("name").2, format!("f{i}"), "order");
        let (s, w, k) = expected(i);
        assert_eq!(a.field("s").1, "Real");
        assert_eq!(a.field("s").2, s.to_string(), "feature {i}: s");
        assert_eq!(a.field("k").1, "Integer");
        assert_eq!(a.field("k").2, k.to_string(), "feature {i}: k");
        if out_driver == "GeoJSON" {
            assert_eq!(a.field("w").1, "RealList");
            assert_eq!(a.field("w").2, list(&w), "feature {i}: w");
        } else {
            assert_eq!(a.field("w_0").2, w[0].to_string(), "feature {i}: w_0");
            assert_eq!(a.field("w_1").2, w[1].to_string(), "feature {i}: w_1");
        }
        assert_eq!(
            a.fields.len(),
            b.fields.len() + if out_driver == "GeoJSON" { 3 } else { 4 }
        );
    }
    let partial = ee_raster_io::vector::partial_dir(output);
    assert!(!partial.exists(), "{} left behind", partial.display());
}

const OUTPUTS: &str = r#""outputProperties": {"s": {"type": "float"}, "w": {"type": "float", "dimensions": 1}, "k": {"type": "int32"}}"#;

fn local_spec(extra: &str) -> ModelSpec {
    ModelSpec::from_json(&format!(
        r#"{{"predictor": {{"type": "local", "path": "{}", "batchSize": 4}}, {OUTPUTS}{extra}}}"#,
        models().join("tabular.onnx").display()
    ))
    .unwrap()
}

/// Runs `model` over a GeoJSON file and its GeoPackage copy; returns both reports' request
/// counts.
async fn geojson_and_geopackage(model: &Model, dir: &Path, n: usize) -> Vec<usize> {
    let geojson = dir.join("in.geojson");
    write_geojson(&geojson, n);
    let gpkg = dir.join("in.gpkg");
    ogr2ogr_gpkg(&geojson, &gpkg);
    let mut requests = Vec::new();
    for (input, output) in [
        (&geojson, dir.join("out.geojson")),
        (&gpkg, dir.join("out.gpkg")),
    ] {
        let report = model
            .predict_properties(input, &output, &PropertiesOptions::default())
            .await
            .unwrap();
        assert_eq!(
            (report.features, report.predicted, report.skipped),
            (n, n, 0)
        );
        assert_eq!(report.inputs, vec!["a", "v"]);
        check_output(input, &output, n);
        requests.push(report.requests);
    }
    requests
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_model_over_geojson_and_geopackage() {
    let dir = scratch("local");
    let model = Model::new(local_spec(r#", "inputProperties": ["a", "v"]"#)).unwrap();
    let runs = geojson_and_geopackage(&model, &dir, 10).await;
    // 10 features in runs of batchSize 4.
    assert_eq!(runs, vec![3, 3]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loopback_server_batches_under_the_payload_budget() {
    let (addr, requests) = common::serve_stt("tabular.onnx").await;

    let budget = 700;
    let spec = ModelSpec::from_json(&format!(
        r#"{{"predictor": {{"type": "aiPlatform", "projectId": "p", "modelName": "tab", "version": "v1", "baseUrl": "http://{addr}"}},
            "inputProperties": ["a", "v"], {OUTPUTS}, "maxPayloadBytes": {budget}}}"#
    ))
    .unwrap();
    let model = Model::new(spec).unwrap();
    let dir = scratch("remote");
    let n = 40;
    let sent = geojson_and_geopackage(&model, &dir, n).await;
    let seen: Vec<(usize, usize)> = requests
        .lock()
        .unwrap()
        .iter()
        .map(|(path, rows, bytes)| {
            assert_eq!(path, "/v1/projects/p/models/tab/versions/v1:predict");
            (*rows, *bytes)
        })
        .collect();
    eprintln!("requests per file {sent:?}; (features, bytes) per request {seen:?}");
    assert_eq!(sent.iter().sum::<usize>(), seen.len());
    assert!(
        sent.iter().all(|&k| k > 1),
        "several requests per file: {sent:?}"
    );
    assert!(seen.iter().all(|&(_, bytes)| bytes <= budget), "{seen:?}");
    assert!(
        seen.iter().all(|&(rows, _)| rows > 1),
        "several features per request: {seen:?}"
    );
    assert_eq!(seen.iter().map(|&(rows, _)| rows).sum::<usize>(), 2 * n);
}

/// `a` missing in feature 2 and not a number in feature 4 (`a` becomes a text field).
fn write_invalid(path: &Path) {
    let rows: Vec<String> = (0..6)
        .map(|i| {
            let (a, v) = inputs(i);
            let a = match i {
                2 => String::new(),
                4 => r#""a": "n/a", "#.to_string(),
                _ => format!(r#""a": "{a}", "#),
            };
            format!(
                r#"{{"type": "Feature", "id": {}, "properties": {{"name": "f{i}", {a}"v": [{}, {}, {}]}}, "geometry": {{"type": "Point", "coordinates": [{i}, 1]}}}}"#,
                10 + i,
                v[0],
                v[1],
                v[2]
            )
        })
        .collect();
    std::fs::write(
        path,
        format!(
            "{{\"type\": \"FeatureCollection\", \"features\": [{}]}}",
            rows.join(",\n")
        ),
    )
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_inputs_are_named_or_skipped_and_counted() {
    let dir = scratch("invalid");
    let input = dir.join("bad.geojson");
    write_invalid(&input);
    let model = Model::new(local_spec(r#", "inputProperties": ["a", "v"]"#)).unwrap();
    let output = dir.join("out.geojson");
    let err = model
        .predict_properties(&input, &output, &PropertiesOptions::default())
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("feature 2 (FID 12), field \"a\": missing value"),
        "{err}"
    );
    assert!(!output.exists() && !ee_raster_io::vector::partial_dir(&output).exists());

    let report = model
        .predict_properties(
            &input,
            &output,
            &PropertiesOptions {
                skip_invalid: true,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        (report.features, report.predicted, report.skipped),
        (6, 4, 2)
    );
    assert!(report.skipped_reasons[1]
        .contains("feature 4 (FID 14), field \"a\": \"n/a\" is not a number"));
    let (_, after) = ogrinfo(&output);
    assert_eq!(after.len(), 6);
    for (i, f) in after.iter().enumerate() {
        assert_eq!(f.fid, (10 + i).to_string());
        if i == 2 || i == 4 {
            assert_eq!(f.field("s").2, "(null)", "feature {i}");
            assert_eq!(f.field("w").2, "(null)", "feature {i}");
        } else {
            assert_eq!(f.field("s").2, expected(i).0.to_string(), "feature {i}");
        }
    }

    // An unknown output driver, and an image prediction with a properties-only spec.
    let err = model
        .predict_properties(
            &input,
            &dir.join("y.geojson"),
            &PropertiesOptions {
                skip_invalid: true,
                format: Some("NoSuchDriver".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("no OGR driver named \"NoSuchDriver\""),
        "{err}"
    );
    let err = model
        .predict_image(
            &[dir.join("scene.tif")],
            &dir.join("z.tif"),
            &ee_model::PredictOptions::default(),
        )
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("predicting an image needs outputBands"),
        "{err}"
    );

    // An unknown input property is refused with the layer's fields listed.
    let model = Model::new(local_spec(r#", "inputProperties": ["a", "nope"]"#)).unwrap();
    let err = model
        .predict_properties(
            &input,
            &dir.join("x.geojson"),
            &PropertiesOptions::default(),
        )
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("has no field \"nope\" (fields: name (String), a (String), v (RealList))"),
        "{err}"
    );
}

#[test]
fn the_command_line_writes_every_numeric_property_and_counts_skips() {
    let dir = scratch("cli");
    let spec = dir.join("spec.json");
    // No inputProperties: every numeric field is sent (code, a, v); the model takes a and v.
    std::fs::write(
        &spec,
        format!(
            r#"{{"predictor": {{"type": "local", "path": "{}"}}, {OUTPUTS}}}"#,
            models().join("tabular.onnx").display()
        ),
    )
    .unwrap();
    let input = dir.join("in.geojson");
    write_geojson(&input, 5);
    let run = |args: &[&str], output: &Path| {
        Command::new(env!("CARGO_BIN_EXE_ee-model"))
            .arg("predict-properties")
            .arg("--spec")
            .arg(&spec)
            .arg("--input")
            .arg(&input)
            .arg("--output")
            .arg(output)
            .args(args)
            .output()
            .unwrap()
    };
    let gpkg = dir.join("out.gpkg");
    let out = run(&["--format", "GPKG"], &gpkg);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains(
            "5 features, 5 predicted, 0 skipped; inputs code, a, v; new fields s, w_0, w_1, k"
        ),
        "{stdout}"
    );
    let (driver, features) = ogrinfo(&gpkg);
    assert_eq!(driver, "GPKG");
    assert_eq!(features[3].field("w_1").2, expected(3).1[1].to_string());

    // Here `a` is a text field (a non-number in it), so the inputs are named.
    let bad = dir.join("bad.geojson");
    write_invalid(&bad);
    let named = dir.join("named.json");
    std::fs::write(
        &named,
        format!(
            r#"{{"predictor": {{"type": "local", "path": "{}"}}, "inputProperties": ["a", "v"], {OUTPUTS}}}"#,
            models().join("tabular.onnx").display()
        ),
    )
    .unwrap();
    let run_bad = |args: &[&str], output: &Path| {
        Command::new(env!("CARGO_BIN_EXE_ee-model"))
            .arg("predict-properties")
            .arg("--spec")
            .arg(&named)
            .arg("--input")
            .arg(&bad)
            .arg("--output")
            .arg(output)
            .args(args)
            .output()
            .unwrap()
    };
    let out_path = dir.join("bad_out.geojson");
    let out = run_bad(&[], &out_path);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("feature 2 (FID 12), field \"a\": missing value"),
        "{stderr}"
    );
    let out = run_bad(&["--skip-invalid"], &out_path);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("6 features, 4 predicted, 2 skipped"),
        "{stdout}"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("skipped") && stderr.contains("FID 14"),
        "{stderr}"
    );
}
