//! End-to-end throughput of `Model::predict_image` with a zero-cost (identity) model, on a
//! 2048 x 2048 x 4 float32 GeoTIFF in 256-pixel tiles: in process (the identity ONNX in the
//! embedded runtime) and over loopback against the real serving node (`ee_serve::Node`, the
//! engine of `ee-model serve`, running the same identity ONNX) with HTTP
//! SERIALIZED_TF_TENSORS (AI Platform route), HTTP TF Serving JSON, HTTP KServe v2 binary,
//! gRPC `GRPC_TF_TENSORS` and gRPC KServe v2. Every output is checked to equal the input
//! pixels. Prints Mpx/s and the busy time of each stage, and `bench-report|` rows for
//! `cargo xtask bench`. Without `--bench` (as `cargo test` runs it) it runs every case on a
//! 256 x 256 raster.
//!
//! The output is written uncompressed so the table shows the transports; a last row writes
//! DEFLATE (the default of `ee-model predict`), whose compression is the bottleneck on two
//! cores.

use std::path::{Path, PathBuf};
use std::time::Instant;

use ee_model::{Layout, LocalModel, Model, ModelSpec, PredictOptions};
use ee_raster_io::Compression;
use ee_serve::{Node, ServeConfig};
use gdal::raster::{Buffer, RasterCreationOptions};
use gdal::{Dataset, DriverManager};

fn make_raster(path: &Path, size: usize) {
    if path.exists() {
        return;
    }
    let driver = DriverManager::get_driver_by_name("GTiff").unwrap();
    let opts = RasterCreationOptions::from_iter(["TILED=YES", "COMPRESS=DEFLATE", "PREDICTOR=3"]);
    let mut ds = driver
        .create_with_band_type_with_options::<f32, _>(path, size, size, 4, &opts)
        .unwrap();
    ds.set_geo_transform(&[0.0, 10.0, 0.0, 0.0, 0.0, -10.0])
        .unwrap();
    for b in 1..=4 {
        let data: Vec<f32> = (0..size * size)
            .map(|i| ((i % size) as f32 * 0.01 + b as f32).sin() * 100.0)
            .collect();
        ds.rasterband(b)
            .unwrap()
            .write((0, 0), (size, size), &mut Buffer::new((size, size), data))
            .unwrap();
    }
}

/// Every band of `a` equals the same band of `b`.
fn same_pixels(a: &Path, b: &Path) -> bool {
    let (a, b) = (Dataset::open(a).unwrap(), Dataset::open(b).unwrap());
    if a.raster_count() != b.raster_count() || a.raster_size() != b.raster_size() {
        return false;
    }
    let size = a.raster_size();
    (1..=a.raster_count()).all(|i| {
        let read = |d: &Dataset| {
            d.rasterband(i)
                .unwrap()
                .read_as::<f32>((0, 0), size, size, None)
                .unwrap()
                .into_shape_and_vec()
                .1
        };
        read(&a) == read(&b)
    })
}

const CASES: [&str; 7] = [
    "in process (local ONNX)",
    "HTTP SERIALIZED_TF_TENSORS",
    "HTTP TF_SERVING_JSON",
    "HTTP KSERVE_V2_BINARY",
    "gRPC GRPC_TF_TENSORS",
    "gRPC KSERVE_V2_GRPC",
    "in process, DEFLATE output",
];

fn main() {
    let bench = std::env::args().any(|a| a == "--bench");
    let size = if bench { 2048 } else { 256 };
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/bench-data");
    std::fs::create_dir_all(&dir).unwrap();
    let input = dir.join(format!("end_to_end_{size}.tif"));
    make_raster(&input, size);
    let identity_onnx =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../ee-model/tests/models/identity.onnx");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let node = rt
        .block_on(Node::start(
            LocalModel::load(&identity_onnx, Layout::Nhwc).expect("identity model"),
            ServeConfig {
                model_name: "ident".into(),
                http: Some("127.0.0.1:0".parse().unwrap()),
                grpc: Some("127.0.0.1:0".parse().unwrap()),
                ..ServeConfig::default()
            },
        ))
        .expect("serving node starts");
    let (http, grpc) = (node.http_addr().unwrap(), node.grpc_addr().unwrap());
    println!("\n| {size} x {size} x 4 float32, 256-pixel tiles, identity model | Mpx/s | read s | predict s | encode s | decode s | write s |");
    println!("|---|---|---|---|---|---|---|");
    let mut in_process = f64::NAN;
    for case in CASES {
        let predictor = match case {
            "HTTP SERIALIZED_TF_TENSORS" => format!(
                r#"{{"type": "aiPlatform", "projectId": "p", "modelName": "ident", "baseUrl": "http://{http}"}}"#
            ),
            "HTTP TF_SERVING_JSON" => {
                format!(r#"{{"type": "tfServing", "url": "http://{http}", "model": "ident"}}"#)
            }
            "HTTP KSERVE_V2_BINARY" => {
                format!(r#"{{"type": "kserveV2", "url": "http://{http}", "model": "ident"}}"#)
            }
            "gRPC GRPC_TF_TENSORS" => format!(
                r#"{{"type": "tfServing", "url": "http://{grpc}", "model": "ident", "grpc": true}}"#
            ),
            "gRPC KSERVE_V2_GRPC" => format!(
                r#"{{"type": "kserveV2", "url": "http://{grpc}", "model": "ident", "grpc": true}}"#
            ),
            _ => format!(
                r#"{{"type": "local", "path": "{}"}}"#,
                identity_onnx.display()
            ),
        };
        let spec = ModelSpec::from_json(&format!(
            r#"{{"predictor": {predictor}, "inputBands": {{"input": [1, 2, 3, 4]}}, "inputTileSize": [256, 256],
                "outputBands": {{"output": {{"type": "float", "dimensions": 1}}}}, "maxPayloadBytes": 6000000}}"#
        ))
        .unwrap();
        let output = dir.join("end_to_end_out.tif");
        let options = PredictOptions {
            compression: if case.contains("DEFLATE") {
                Compression::Deflate
            } else {
                Compression::None
            },
            ..PredictOptions::default()
        };
        let start = Instant::now();
        let r = rt
            .block_on(async {
                Model::new(spec)
                    .unwrap()
                    .predict_image(std::slice::from_ref(&input), &output, &options)
                    .await
            })
            .unwrap_or_else(|e| panic!("{case}: {e}"));
        let wall = start.elapsed();
        assert!(
            same_pixels(&input, &output),
            "{case}: the identity model's output must equal the input"
        );
        let mpx = (size * size) as f64 / 1e6 / wall.as_secs_f64();
        if case == CASES[0] {
            in_process = mpx;
        }
        let (enc, dec) = r
            .metrics
            .as_ref()
            .map(|m| (m.encode_time.as_secs_f64(), m.decode_time.as_secs_f64()))
            .unwrap_or((0.0, 0.0));
        println!(
            "| {case} | {mpx:.1} | {:.2} | {:.2} | {enc:.2} | {dec:.2} | {:.2} |",
            r.stages.read.as_secs_f64(),
            r.stages.predict.as_secs_f64(),
            r.stages.write.as_secs_f64()
        );
        if bench {
            println!(
                "bench-report| end to end, {size}x{size}x4 f32, identity model, loopback | {case} | {mpx:.1} Mpx/s | in process: {in_process:.1} Mpx/s | {:.2}x |",
                mpx / in_process
            );
        }
        let _ = std::fs::remove_file(&output);
    }
    let stats = rt.block_on(node.shutdown()).expect("node stops");
    println!("serving node: {stats}");
}
