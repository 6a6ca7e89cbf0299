//! TensorFlow reads what we write and we read what TensorFlow writes, in one Python process
//! (`tf_check.py`): exported patches parsed with `tf.data.TFRecordDataset` +
//! `tf.io.parse_single_example` and `FixedLenFeature`s of the buffered size equal the raster
//! (gzip and plain, one and many shards, with and without kernel, tensor depths, collapsed
//! bands); prediction records written by `tf.io.TFRecordWriter` import into a GeoTIFF equal to
//! what was written and georeferenced like the source (checked with `gdalinfo -json`);
//! training Examples parse and hold the raster's neighbourhoods. Needs the interop Python
//! (`cargo xtask test` provides it; with `EE_REQUIRE_INTEROP` set its absence fails).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{f32s, read_band, tmp, Raster, TRANSFORM};
use ee_fuzzkit::interop_python;
use ee_patches::{
    export_image, export_training, import_predictions, ExportOptions, ExportReport, ImportOptions,
    LabelSource, Mixer, TrainingOptions,
};
use ee_raster_io::{InputStack, Resampling};
use serde_json::{json, Value};

struct Export {
    raster: usize,
    options: ExportOptions,
    report: ExportReport,
    dump: PathBuf,
}

fn stack(path: &Path) -> InputStack {
    InputStack::open(&[path.to_path_buf()], &[], None, Resampling::Nearest).unwrap()
}

/// Values of one exported record, feature after feature, as the export must hold them.
fn expected_record(raster: &Raster, e: &Export, row: usize, col: usize) -> Vec<f32> {
    let [pw, ph] = e.options.patch_dimensions;
    let [mx, my] = e.options.margins();
    let [bw, bh] = e.report.buffered;
    let fill = e.options.default_value as f32;
    let (x0, y0) = ((col * pw) as i64 - mx as i64, (row * ph) as i64 - my as i64);
    let mut out = Vec::new();
    for f in &e.report.features {
        for plane in &f.planes {
            match plane {
                Some(b) => out.extend(raster.window(*b, x0, y0, bw, bh, fill)),
                None => out.extend(std::iter::repeat_n(fill, bw * bh)),
            }
        }
    }
    out
}

/// Prediction values at output pixel (x, y), which may be in a margin (negative or past).
fn prob(x: i64, y: i64) -> f32 {
    (x * 3 + y * 1000) as f32 + 0.25
}
fn class(x: i64, y: i64) -> i64 {
    (x * 7 + y * 13).rem_euclid(11) - 5
}
fn vec_k(k: usize, x: i64, y: i64) -> f32 {
    (k as i64 * 100_000 + x + y * 100) as f32 - 0.5
}

#[test]
fn tensorflow_reads_our_records_and_we_read_its() {
    let Some(python) = interop_python() else {
        return;
    };
    let dir = tmp("tf");
    let r1 = Raster::new(37, 23, &["B1", "B2", "B3"], |x, y| {
        (x * 3 + y * 7) % 13 == 0
    });
    let in1 = dir.join("r1.tif");
    r1.write(&in1);
    let r2 = Raster::new(37, 23, &["emb_0", "emb_1", "B9"], |x, y| (x + y) % 5 == 0);
    let in2 = dir.join("r2.tif");
    r2.write(&in2);
    let rasters = [&r1, &r2];
    let inputs = [&in1, &in2];

    let configs: Vec<(usize, &str, ExportOptions)> = vec![
        // gzip, one shard, no kernel
        (
            0,
            "e1",
            ExportOptions {
                patch_dimensions: [8, 8],
                ..Default::default()
            },
        ),
        // plain, seven shards, kernel 5x3, another fill
        (
            0,
            "e2",
            ExportOptions {
                patch_dimensions: [8, 6],
                kernel_size: [5, 3],
                compressed: false,
                max_file_size: 4000,
                default_value: -5.0,
                ..Default::default()
            },
        ),
        // gzip, many shards, kernel 3, whole patches only
        (
            0,
            "e3",
            ExportOptions {
                patch_dimensions: [10, 10],
                kernel_size: [3, 3],
                max_file_size: 2500,
                drop_partial: true,
                ..Default::default()
            },
        ),
        // an array band of depth 3 (two bands and a padding plane)
        (
            1,
            "e4",
            ExportOptions {
                patch_dimensions: [8, 8],
                kernel_size: [3, 3],
                tensor_depths: vec![("emb".into(), 3)],
                default_value: 7.0,
                ..Default::default()
            },
        ),
        // everything in one feature
        (
            1,
            "e5",
            ExportOptions {
                patch_dimensions: [8, 8],
                kernel_size: [3, 3],
                tensor_depths: vec![("emb".into(), 3)],
                collapse_bands: true,
                compressed: false,
                ..Default::default()
            },
        ),
    ];
    let mut exports = Vec::new();
    let mut jobs = Vec::new();
    for (raster, name, options) in configs {
        let report = export_image(&stack(inputs[raster]), &dir.join(name), &options).unwrap();
        let [bw, bh] = report.buffered;
        let features: Vec<Value> = report
            .features
            .iter()
            .map(|f| {
                let dims = if f.planes.len() == 1 {
                    json!([bh, bw])
                } else {
                    json!([f.planes.len(), bh, bw])
                };
                json!([f.name, dims, "float32"])
            })
            .collect();
        let dump = dir.join(format!("{name}.bin"));
        jobs.push(json!({
            "op": "parse", "files": report.files,
            "compression": if options.compressed { "GZIP" } else { "" },
            "features": features, "out": dump,
        }));
        exports.push(Export {
            raster,
            options,
            report,
            dump,
        });
    }
    assert_eq!(exports[0].report.files.len(), 1);
    assert_eq!(exports[1].report.files.len(), 7);
    assert!(exports[2].report.files.len() > 2);
    assert_eq!(exports[4].report.features[0].name, "emb");

    // Predictions for e2's grid (5 x 4 patches of 8 x 6, kernel 5 x 3), written by TensorFlow:
    // "prob" buffered (12 x 8), "class" int64 core, "vec" a depth-3 core array (channel-first).
    let mixer = Mixer::read(exports[1].report.mixer.as_ref().unwrap()).unwrap();
    let (cols, rows) = (mixer.patches_per_row, mixer.patch_rows());
    let mut raw = [Vec::new(), Vec::new()];
    for n in 0..cols * rows {
        let (r, c) = (n / cols, n % cols);
        let (x0, y0) = ((c * 8) as i64, (r * 6) as i64);
        let out = &mut raw[usize::from(n >= 7)];
        for y in -1..7 {
            for x in -2..10 {
                out.extend_from_slice(&prob(x0 + x, y0 + y).to_le_bytes());
            }
        }
        for y in 0..6 {
            for x in 0..8 {
                out.extend_from_slice(&class(x0 + x, y0 + y).to_le_bytes());
            }
        }
        for k in 0..3 {
            for y in 0..6 {
                for x in 0..8 {
                    out.extend_from_slice(&vec_k(k, x0 + x, y0 + y).to_le_bytes());
                }
            }
        }
    }
    let pred_files = [
        dir.join("pred-00000.tfrecord.gz"),
        dir.join("pred-00001.tfrecord"),
    ];
    let pred_features = json!([
        ["prob", 96, "float32"],
        ["class", 48, "int64"],
        ["vec", 144, "float32"]
    ]);
    for (i, (file, values)) in pred_files.iter().zip(&raw).enumerate() {
        let v = dir.join(format!("pred{i}.bin"));
        std::fs::write(&v, values).unwrap();
        jobs.push(json!({
            "op": "write", "file": file, "compression": if i == 0 { "GZIP" } else { "" },
            "records": if i == 0 { 7 } else { cols * rows - 7 },
            "features": pred_features, "values": v,
        }));
    }

    // Training samples, parsed by TensorFlow too.
    let labels = dir.join("labels.tif");
    Raster::new(37, 23, &["class"], |_, y| y == 0).write(&labels);
    let training = export_training(
        std::slice::from_ref(&in1),
        &LabelSource::Raster(labels.clone()),
        &dir.join("train.tfrecord.gz"),
        &TrainingOptions {
            kernel: 3,
            samples: Some(40),
            seed: 5,
            splits: vec![("train".into(), 0.5), ("eval".into(), 0.5)],
            ..Default::default()
        },
    )
    .unwrap();
    assert!(
        !training.integer_labels,
        "a float32 label band gives float labels"
    );
    for split in &training.splits {
        jobs.push(json!({
            "op": "parse", "files": [split.path], "compression": "GZIP",
            "features": [["B1", [9], "float32"], ["B2", [9], "float32"], ["B3", [9], "float32"], ["label", [1], "float32"]],
            "out": split.path.with_extension("bin"),
        }));
    }

    // One Python process for everything.
    let jobs_path = dir.join("jobs.json");
    let results_path = dir.join("results.json");
    std::fs::write(&jobs_path, serde_json::to_vec(&jobs).unwrap()).unwrap();
    let run = Command::new(&python)
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/tf_check.py"))
        .args([&jobs_path, &results_path])
        .env("TF_CPP_MIN_LOG_LEVEL", "2")
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let results: Vec<Value> =
        serde_json::from_slice(&std::fs::read(&results_path).unwrap()).unwrap();
    for (job, result) in jobs.iter().zip(&results) {
        assert!(result.get("error").is_none(), "{job}: {result}");
    }

    // Our exports, as TensorFlow parsed them.
    for (i, e) in exports.iter().enumerate() {
        let raster = rasters[e.raster];
        let values = f32s(&std::fs::read(&e.dump).unwrap());
        let [cols, rows] = e.report.grid;
        assert_eq!(results[i]["records"], (cols * rows) as u64, "export {i}");
        let per = values.len() / (cols * rows);
        for n in 0..cols * rows {
            let want = expected_record(raster, e, n / cols, n % cols);
            assert_eq!(per, want.len(), "export {i}");
            assert_eq!(
                &values[n * per..(n + 1) * per],
                &want[..],
                "export {i}, record {n}"
            );
        }
        // The mixer georeferences the core grid exactly as the raster.
        if let Some(m) = &e.report.mixer {
            let m = Mixer::read(m).unwrap();
            let ds = gdal::Dataset::open(inputs[e.raster]).unwrap();
            let gt = ds.geo_transform().unwrap();
            assert_eq!(
                m.projection.affine.double_matrix,
                [gt[1], gt[2], gt[0], gt[4], gt[5], gt[3]]
            );
            assert_eq!(m.projection.crs, "EPSG:32633");
            assert_eq!((m.patches_per_row, m.total_patches), (cols, cols * rows));
        }
    }

    // TensorFlow's prediction records, imported.
    let out = dir.join("pred.tif");
    let report = import_predictions(
        &mixer,
        &pred_files,
        &out,
        &ImportOptions {
            kernel_size: Some([5, 3]),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(
        report.bands,
        vec!["class", "prob", "vec_0", "vec_1", "vec_2"]
    );
    let (w, h) = (cols * 8, rows * 6);
    let bands = (1..=5).map(|b| read_band(&out, b)).collect::<Vec<_>>();
    for y in 0..h {
        for x in 0..w {
            let (xi, yi) = (x as i64, y as i64);
            let at = y * w + x;
            assert_eq!(bands[0].2[at] as i64, class(xi, yi), "class at ({x}, {y})");
            assert_eq!(bands[1].2[at] as f32, prob(xi, yi), "prob at ({x}, {y})");
            for k in 0..3 {
                assert_eq!(
                    bands[2 + k].2[at] as f32,
                    vec_k(k, xi, yi),
                    "vec_{k} at ({x}, {y})"
                );
            }
        }
    }
    let info = Command::new("gdalinfo")
        .arg("-json")
        .arg(&out)
        .output()
        .unwrap();
    assert!(info.status.success());
    let info: Value = serde_json::from_slice(&info.stdout).unwrap();
    let gt: Vec<f64> = info["geoTransform"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    assert_eq!(gt, TRANSFORM);
    assert_eq!(info["size"], json!([w, h]));
    assert!(info["coordinateSystem"]["wkt"]
        .as_str()
        .unwrap()
        .contains("UTM zone 33N"));
    assert_eq!(
        info["bands"][0]["type"], "Float64",
        "int64 and float32 bands share float64"
    );

    // Training Examples: TensorFlow parsed every one; each holds its pixel's neighbourhood.
    for (j, split) in training.splits.iter().enumerate() {
        let result = &results[exports.len() + 2 + j];
        assert_eq!(result["records"], split.records);
        let values = f32s(&std::fs::read(split.path.with_extension("bin")).unwrap());
        assert_eq!(values.len() as u64, split.records * 28);
        for rec in values.chunks_exact(28) {
            let centre = rec[9 + 4] - 0.5 - 10_000.0;
            let (x, y) = ((centre as usize) % 37, (centre as usize) / 37);
            for b in 0..3 {
                assert_eq!(
                    &rec[b * 9..(b + 1) * 9],
                    &r1.window(b, x as i64 - 1, y as i64 - 1, 3, 3, 0.0)[..]
                );
            }
            assert_eq!(rec[27], common::value(0, x, y, 37), "label at ({x}, {y})");
        }
    }
}
