//! `ee-model prepare` against TensorFlow and Earth Engine's own `earthengine model prepare`.
//!
//! With the interop Python (`cargo xtask test` provides it; with `EE_REQUIRE_INTEROP` set its
//! absence fails): `prepare_models.py` builds a Keras 3 `model.export()`, a TF1 Builder graph
//! and an all-dtypes graph, prepares each with Earth Engine's prepare and with ours, checks in
//! TensorFlow that both give byte-identical base64 TensorProtos for the same inputs (several
//! tile shapes and batch sizes, every dtype), also through a TF1 session as TF Serving runs
//! it, then serves both prepared Keras models on the AI Platform route. Here: `prepare --list`
//! names the right tensors, and `ee-model predict` with `SERIALIZED_TF_TENSORS` gives the same
//! raster against ours as against Earth Engine's (and TensorFlow's whole-image result in the
//! interior). Without Python: the command's errors, on the fixtures of ee-savedmodel.

mod common;

use common::ChildGuard;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use gdal::raster::{Buffer, RasterCreationOptions};
use gdal::spatial_ref::SpatialRef;
use gdal::{Dataset, DriverManager, Metadata};

fn ee_model(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ee-model"))
        .args(args)
        .output()
        .expect("run ee-model")
}

fn text(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr)
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ee-model-prepare-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A float32 GeoTIFF with bands B1..B3 and the same pixels interleaved (HWC) as raw bytes.
fn write_input(path: &Path, w: usize, h: usize) -> Vec<u8> {
    let mut pixels = vec![0f32; w * h * 3];
    let driver = DriverManager::get_driver_by_name("GTiff").unwrap();
    let mut ds = driver
        .create_with_band_type_with_options::<f32, _>(path, w, h, 3, &RasterCreationOptions::new())
        .unwrap();
    ds.set_geo_transform(&[300_000.0, 20.0, 0.0, 4_000_000.0, 0.0, -20.0])
        .unwrap();
    ds.set_spatial_ref(&SpatialRef::from_epsg(32631).unwrap())
        .unwrap();
    for b in 0..3 {
        let data: Vec<f32> = (0..w * h)
            .map(|i| {
                (((i % w) as f32 * 0.21 + b as f32).cos() + ((i / w) as f32 * 0.17).sin())
                    * (b + 2) as f32
            })
            .collect();
        for (i, v) in data.iter().enumerate() {
            pixels[i * 3 + b] = *v;
        }
        let mut band = ds.rasterband(b + 1).unwrap();
        band.set_description(&format!("B{}", b + 1)).unwrap();
        band.write((0, 0), (w, h), &mut Buffer::new((w, h), data))
            .unwrap();
    }
    pixels.iter().flat_map(|v| v.to_le_bytes()).collect()
}

fn read_bands(path: &Path, w: usize, h: usize, bands: usize) -> Vec<Vec<f32>> {
    let ds = Dataset::open(path).unwrap();
    assert_eq!(ds.raster_size(), (w, h));
    (0..bands)
        .map(|k| {
            ds.rasterband(k + 1)
                .unwrap()
                .read_as::<f32>((0, 0), (w, h), (w, h), None)
                .unwrap()
                .into_shape_and_vec()
                .1
        })
        .collect()
}

#[test]
fn prepared_models_match_earth_engines_in_tensorflow_and_through_predict() {
    let Some(python) = common::interop_python() else {
        return;
    };
    let dir = scratch("tf");
    let (w, h) = (61usize, 45usize);
    let input = dir.join("input.tif");
    let raw = write_input(&input, w, h);
    std::fs::write(dir.join("input.raw"), raw).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/prepare_models.py");
    let stderr = std::fs::File::create(dir.join("python.log")).unwrap();
    let mut server = ChildGuard(
        Command::new(&python)
            .arg(&script)
            .arg(&dir)
            .arg(env!("CARGO_BIN_EXE_ee-model"))
            .arg(dir.join("input.raw"))
            .arg(h.to_string())
            .arg(w.to_string())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("start prepare_models.py"),
    );
    let start = Instant::now();
    let port = loop {
        if let Ok(p) = std::fs::read_to_string(dir.join("port")) {
            break p.trim().to_string();
        }
        if let Ok(Some(status)) = server.0.try_wait() {
            let log = std::fs::read_to_string(dir.join("python.log")).unwrap_or_default();
            let tail: String = log
                .lines()
                .filter(|l| !l.contains("WARNING") && !l.starts_with("Instructions"))
                .collect::<Vec<_>>()
                .join("\n");
            panic!("prepare_models.py failed ({status}):\n{tail}");
        }
        assert!(
            start.elapsed() < Duration::from_secs(400),
            "prepare_models.py did not finish"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    eprintln!(
        "TensorFlow checks and servers ready in {:.1} s",
        start.elapsed().as_secs_f64()
    );

    // What TensorFlow checked (the script raises on any difference, so counts prove coverage).
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("report.json")).unwrap()).unwrap();
    // 5 tile shapes x (keras 1 + tf1 2 + dtypes 13 outputs) + 2 extra keras encodings.
    assert_eq!(report["comparisons"], 82, "{report}");
    assert_eq!(report["session_checks"], 2, "{report}");
    assert_eq!(
        report["signatures"]["tf1"],
        serde_json::json!({"inputs": ["w", "x"], "outputs": ["label", "score"]})
    );
    assert_eq!(
        report["signatures"]["dtypes"]["inputs"]
            .as_array()
            .unwrap()
            .len(),
        13
    );

    // --list on the models TensorFlow just wrote.
    let keras = dir.join("keras");
    let out = ee_model(&["prepare", "--list", keras.to_str().unwrap()]);
    let listing = text(&out);
    assert!(out.status.success(), "{listing}");
    let serving = listing
        .split("signature \"serving_default\"")
        .nth(1)
        .expect("serving_default listed");
    let input_line = serving.lines().find(|l| l.contains("input ")).unwrap();
    assert!(
        input_line.contains(" x ")
            && input_line.contains("serving_default_x:0")
            && input_line.contains("float32")
            && input_line.contains("[-1, -1, -1, 3]"),
        "{listing}"
    );
    let output_line = serving.lines().find(|l| l.contains("output ")).unwrap();
    assert!(
        output_line.contains("output_0")
            && output_line.contains("StatefulPartitionedCall_1:0")
            && output_line.contains("[-1, -1, -1, 2]"),
        "{listing}"
    );
    assert!(
        listing.contains(r#"--input '{"serving_default_x:0":"x"}' --output '{"StatefulPartitionedCall_1:0":"output_0"}'"#),
        "{listing}"
    );
    let out = ee_model(&["prepare", "--list", dir.join("tf1").to_str().unwrap()]);
    let listing = text(&out);
    let label = listing.lines().find(|l| l.contains("label:0")).unwrap();
    assert!(
        label.contains("int64") && label.contains("[-1, -1, -1]"),
        "{listing}"
    );
    // And on a prepared model: one signature of strings.
    let out = ee_model(&[
        "prepare",
        "--list",
        dir.join("ours_keras").to_str().unwrap(),
    ]);
    let listing = text(&out);
    assert_eq!(listing.matches("signature \"").count(), 1, "{listing}");
    assert!(
        listing.contains("earthengine_in_0:0") && listing.contains("string   [-1]"),
        "{listing}"
    );

    // predict against both prepared models on the AI Platform route, with several tiles per
    // request (20000 bytes) and with one (9000 bytes: a 20 x 20 x 3 float tile is about 6.5 kB
    // of base64).
    let mut rasters = std::collections::HashMap::new();
    for budget in [20_000, 9_000] {
        for model in ["ours", "ee"] {
            let spec = format!(
                r#"{{"predictor": {{"type": "aiPlatform", "projectId": "p", "modelName": "{model}", "version": "v1", "baseUrl": "http://127.0.0.1:{port}"}},
                    "inputBands": {{"B": ["B1", "B2", "B3"]}}, "inputTileSize": [16, 16], "inputOverlapSize": [4, 4],
                    "outputBands": {{"out": {{"type": "float", "dimensions": 1}}}},
                    "payloadFormat": "SERIALIZED_TF_TENSORS", "maxPayloadBytes": {budget}}}"#
            );
            let spec_path = dir.join(format!("spec-{model}-{budget}.json"));
            std::fs::write(&spec_path, spec).unwrap();
            let output = dir.join(format!("out-{model}-{budget}.tif"));
            let _ = std::fs::remove_file(dir.join("requests.log"));
            let run = ee_model(&[
                "predict",
                "--spec",
                spec_path.to_str().unwrap(),
                "--input",
                input.to_str().unwrap(),
                "--output",
                output.to_str().unwrap(),
            ]);
            assert!(run.status.success(), "{model}: {}", text(&run));
            rasters.insert((model, budget), read_bands(&output, w, h, 2));
            let log = std::fs::read_to_string(dir.join("requests.log")).unwrap();
            let requests: Vec<(&str, usize, usize, &str)> = log
                .lines()
                .map(|l| {
                    let f: Vec<&str> = l.split_whitespace().collect();
                    (f[0], f[1].parse().unwrap(), f[2].parse().unwrap(), f[3])
                })
                .collect();
            assert!(requests.iter().all(|r| r.0 == model), "{log}");
            assert_eq!(
                requests.iter().map(|r| r.1).sum::<usize>(),
                12,
                "{model}: every 16x16 tile sent once: {log}"
            );
            assert!(requests.iter().all(|r| r.2 <= budget), "{log}");
            if budget == 9_000 {
                assert!(requests.iter().all(|r| r.1 == 1), "{log}");
            } else {
                assert!(
                    requests.iter().any(|r| r.1 > 1),
                    "several tiles per request: {log}"
                );
            }
            // Whatever the batch, the other prepared model answers it with the same strings.
            assert!(
                requests.iter().all(|r| r.3 == "same"),
                "ours and Earth Engine's answer a request differently: {log}"
            );
        }
    }
    // One tile per request: the same batches reach both models, and the rasters are the same
    // to the bit.
    let (ours, theirs) = (&rasters[&("ours", 9_000)], &rasters[&("ee", 9_000)]);
    for k in 0..2 {
        let same = ours[k]
            .iter()
            .zip(&theirs[k])
            .all(|(a, b)| a.to_bits() == b.to_bits());
        assert!(
            same,
            "band {k}: ours and Earth Engine's prepared model differ"
        );
    }
    // Several tiles per request: how tiles fall into requests varies from run to run, and
    // TensorFlow's convolution rounds differently for different batch sizes (each request was
    // checked identical above), so the rasters agree to float rounding.
    let (ours, theirs) = (&rasters[&("ours", 20_000)], &rasters[&("ee", 20_000)]);
    for k in 0..2 {
        for (i, (a, b)) in ours[k].iter().zip(&theirs[k]).enumerate() {
            assert!(
                (a - b).abs() <= 1e-6 * b.abs().max(1.0),
                "band {k} pixel {i}: ours {a}, Earth Engine's {b}"
            );
        }
    }
    let reference: Vec<f32> = std::fs::read(dir.join("reference.raw"))
        .unwrap()
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    for k in 0..2 {
        for y in 2..h - 2 {
            for x in 2..w - 2 {
                let (a, b) = (ours[k][y * w + x], reference[(y * w + x) * 2 + k]);
                assert!(
                    (a - b).abs() <= 1e-4 * b.abs().max(1.0),
                    "band {k} ({x}, {y}): prepared {a}, TensorFlow whole-image {b}"
                );
            }
        }
    }
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

fn fixture(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../ee-savedmodel/tests/fixtures")
        .join(name)
        .to_string_lossy()
        .into_owned()
}

#[test]
fn the_command_names_what_is_wrong() {
    let dir = scratch("errors");
    let dest = dir.join("out");
    let keras = fixture("keras");
    let fail = |args: &[&str], needle: &str| {
        let out = ee_model(args);
        let t = text(&out);
        assert!(!out.status.success(), "{args:?} succeeded: {t}");
        assert!(t.contains(needle), "{args:?}: {t}");
    };
    let d = dest.to_str().unwrap();
    let base = |input: &'static str, output: &'static str| -> Vec<String> {
        [
            "prepare",
            "--source-dir",
            &keras,
            "--dest-dir",
            d,
            "--input",
            input,
            "--output",
            output,
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    };
    let call = |v: Vec<String>, needle: &str| {
        let args: Vec<&str> = v.iter().map(String::as_str).collect();
        fail(&args, needle);
    };
    call(
        base("nope:0", "output_0"),
        "input \"nope:0\" is not in the graph",
    );
    call(base("x", "nope"), "output \"nope\" is not in the graph");
    call(
        base("StatefulPartitionedCall_1:0", "output_0"),
        "is a StatefulPartitionedCall, not a Placeholder",
    );
    call(base("x", "c/kernel:0"), "has dtype resource");
    call(base("{\"x\": 3}", "output_0"), "must be a string");
    let mut tagged = base("x", "output_0");
    tagged.extend(["--tag".to_string(), "gpu".to_string()]);
    call(tagged, "no meta graph has the tag \"gpu\"");
    fail(
        &[
            "prepare",
            "--source-dir",
            d,
            "--dest-dir",
            d,
            "--input",
            "x",
            "--output",
            "y",
        ],
        "is not a SavedModel directory",
    );
    fail(&["prepare", "--list", d], "is not a SavedModel directory");
    fail(&["prepare", "--input", "x"], "--source-dir");
    assert!(!dest.exists(), "nothing written on errors");

    // It works, then refuses to overwrite.
    let ok = base("x", "{\"output_0\": \"water\"}");
    let args: Vec<&str> = ok.iter().map(String::as_str).collect();
    let out = ee_model(&args);
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    assert!(
        t.contains("input  x")
            && t.contains("earthengine_in_0:0")
            && t.contains("serving_default_x:0"),
        "{t}"
    );
    assert!(
        t.contains("output water") && t.contains("earthengine_out_0:0"),
        "{t}"
    );
    assert!(dest.join("saved_model.pb").exists());
    assert!(dest.join("variables/variables.index").exists());
    call(ok, "already exists and is not empty");
    let _ = std::fs::remove_dir_all(&dir);
}
