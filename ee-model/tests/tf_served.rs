//! The `ee-model predict` command over HTTP against a model prepared by Earth Engine's own
//! `earthengine model prepare` and served by TensorFlow on the AI Platform route with
//! `SERIALIZED_TF_TENSORS`: interior pixels equal TensorFlow's whole-image prediction within
//! 1e-4, every request under `maxPayloadBytes`, several tiles per request. Needs the interop
//! Python (`cargo xtask test` provides it; with `EE_REQUIRE_INTEROP` set its absence fails).

mod common;

use common::ChildGuard;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use ee_model::ModelSpec;
use gdal::raster::{Buffer, RasterCreationOptions};
use gdal::spatial_ref::SpatialRef;
use gdal::{Dataset, DriverManager, Metadata};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_model_prepared_by_earth_engine_and_served_by_tensorflow() {
    let Some(python) = common::interop_python() else {
        return;
    };
    let dir = std::env::temp_dir().join(format!("ee-model-tf-served-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let (w, h) = (70usize, 50usize);
    let input = dir.join("input.tif");
    let mut pixels = vec![0f32; w * h * 3];
    {
        let driver = DriverManager::get_driver_by_name("GTiff").unwrap();
        let mut ds = driver
            .create_with_band_type_with_options::<f32, _>(
                &input,
                w,
                h,
                3,
                &RasterCreationOptions::new(),
            )
            .unwrap();
        ds.set_geo_transform(&[500_000.0, 10.0, 0.0, 5_000_000.0, 0.0, -10.0])
            .unwrap();
        ds.set_spatial_ref(&SpatialRef::from_epsg(32633).unwrap())
            .unwrap();
        for b in 0..3 {
            let data: Vec<f32> = (0..w * h)
                .map(|i| {
                    (((i % w) as f32 * 0.3 + b as f32).sin() + ((i / w) as f32 * 0.2).cos())
                        * (b + 1) as f32
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
    }
    let raw: Vec<u8> = pixels.iter().flat_map(|v| v.to_le_bytes()).collect();
    std::fs::write(dir.join("input.raw"), raw).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/tf_served_model.py");
    let _server = ChildGuard(
        Command::new(&python)
            .arg(&script)
            .arg(&dir)
            .arg(dir.join("input.raw"))
            .arg(h.to_string())
            .arg(w.to_string())
            .spawn()
            .expect("start the TensorFlow server"),
    );
    let start = Instant::now();
    let port = loop {
        if let Ok(p) = std::fs::read_to_string(dir.join("port")) {
            break p.trim().to_string();
        }
        assert!(
            start.elapsed() < Duration::from_secs(240),
            "the TensorFlow server did not start"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    let spec_json = format!(
        r#"{{"predictor": {{"type": "aiPlatform", "projectId": "p", "modelName": "m", "version": "v1", "baseUrl": "http://127.0.0.1:{port}"}},
            "inputBands": {{"B": ["B1", "B2", "B3"]}}, "inputTileSize": [16, 16], "inputOverlapSize": [4, 4],
            "outputBands": {{"out": {{"type": "float", "dimensions": 1}}}},
            "payloadFormat": "SERIALIZED_TF_TENSORS", "maxPayloadBytes": 20000}}"#
    );
    ModelSpec::from_json(&spec_json).expect("the spec is valid");
    std::fs::write(dir.join("spec.json"), spec_json).unwrap();
    let output = dir.join("out.tif");
    let run = Command::new(env!("CARGO_BIN_EXE_ee-model"))
        .args(["predict", "--spec"])
        .arg(dir.join("spec.json"))
        .arg("--input")
        .arg(&input)
        .arg("--output")
        .arg(&output)
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&run.stdout).to_string() + &String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{text}");
    assert!(text.contains("20 tiles (20 to predict)"), "{text}");
    let log = std::fs::read_to_string(dir.join("requests.log")).unwrap();
    let requests: Vec<(usize, usize)> = log
        .lines()
        .map(|l| {
            let mut p = l.split_whitespace().map(|v| v.parse::<usize>().unwrap());
            (p.next().unwrap(), p.next().unwrap())
        })
        .collect();
    assert_eq!(
        requests.iter().map(|r| r.0).sum::<usize>(),
        20,
        "every tile sent once: {requests:?}"
    );
    assert!(
        requests.iter().all(|r| r.1 <= 20_000),
        "requests stay under maxPayloadBytes: {requests:?}"
    );
    assert!(
        requests.iter().any(|r| r.0 > 1),
        "several tiles per request: {requests:?}"
    );
    let reference: Vec<f32> = std::fs::read(dir.join("reference.raw"))
        .unwrap()
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect();
    let ds = Dataset::open(&output).unwrap();
    assert_eq!(ds.raster_size(), (w, h));
    for k in 0..2 {
        let band = ds.rasterband(k + 1).unwrap();
        assert_eq!(band.description().unwrap(), format!("out_{k}"));
        let got = band
            .read_as::<f32>((0, 0), (w, h), (w, h), None)
            .unwrap()
            .into_shape_and_vec()
            .1;
        for y in 2..h - 2 {
            for x in 2..w - 2 {
                let (a, b) = (got[y * w + x], reference[(y * w + x) * 2 + k]);
                assert!(
                    (a - b).abs() <= 1e-4 * b.abs().max(1.0),
                    "band {k} ({x}, {y}): ours {a}, TensorFlow {b}"
                );
            }
        }
    }
}
