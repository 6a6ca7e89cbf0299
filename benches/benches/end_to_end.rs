//! End-to-end throughput of `Model::predict_image` with a zero-cost (identity) model: over
//! loopback HTTP (SERIALIZED_TF_TENSORS and KServe binary, the server decoding and re-encoding
//! each tile) and in process (identity ONNX), on a 2048 x 2048 x 4 float32 GeoTIFF in 256-pixel
//! tiles. Prints Mpx/s and the busy time of each stage. Without `--bench` (as `cargo test`
//! runs it) it checks itself on a 256 x 256 raster.

use std::path::{Path, PathBuf};
use std::time::Instant;

use axum::body::Bytes;
use axum::http::HeaderMap;
use axum::response::IntoResponse;
use ee_model::{Model, ModelSpec, PredictOptions};
use ee_tensor_proto::payload::{kserve_v2, serialized_tf_tensors};
use ee_tensor_proto::{Instance, PayloadFormat};
use gdal::raster::{Buffer, RasterCreationOptions};
use gdal::DriverManager;

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

fn identity(rows: Vec<Instance>) -> Vec<Instance> {
    rows.into_iter()
        .map(|mut r| Instance::new().with("output", r.take("input").unwrap()))
        .collect()
}

async fn serve(format: PayloadFormat) -> std::net::SocketAddr {
    let app = axum::Router::new().fallback(move |headers: HeaderMap, body: Bytes| async move {
        let mut out = Vec::new();
        if format == PayloadFormat::SerializedTfTensors {
            let rows = serialized_tf_tensors::decode_request(&body, &[]).unwrap();
            serialized_tf_tensors::encode_response(&identity(rows), &mut out).unwrap();
            out.into_response()
        } else {
            let hl = headers
                .get(kserve_v2::HEADER_LENGTH_HEADER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse().ok());
            let req = kserve_v2::decode_request(&body, hl).unwrap();
            let rows = Instance::unstack(&req.inputs).unwrap();
            let answer = Instance::stack(&identity(rows)).unwrap();
            let h = kserve_v2::encode_response("m", None, None, &answer, true, &mut out)
                .unwrap()
                .unwrap();
            ([(kserve_v2::HEADER_LENGTH_HEADER, h.to_string())], out).into_response()
        }
    });
    let app = app.layer(axum::extract::DefaultBodyLimit::disable());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

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
    println!("\n| {size} x {size} x 4 float32, 256-pixel tiles, identity model | Mpx/s | read s | predict s | encode s | decode s | write s |");
    println!("|---|---|---|---|---|---|---|");
    for case in [
        "local (in process)",
        "HTTP SERIALIZED_TF_TENSORS",
        "HTTP KSERVE_V2_BINARY",
    ] {
        let report = rt.block_on(async {
            let predictor = match case {
                "local (in process)" => format!(r#"{{"type": "local", "path": "{}"}}"#, identity_onnx.display()),
                "HTTP SERIALIZED_TF_TENSORS" => {
                    let addr = serve(PayloadFormat::SerializedTfTensors).await;
                    format!(r#"{{"type": "aiPlatform", "projectId": "p", "modelName": "m", "baseUrl": "http://{addr}"}}"#)
                }
                _ => {
                    let addr = serve(PayloadFormat::KServeV2Binary).await;
                    format!(r#"{{"type": "kserveV2", "url": "http://{addr}", "model": "m"}}"#)
                }
            };
            let spec = ModelSpec::from_json(&format!(
                r#"{{"predictor": {predictor}, "inputBands": {{"input": [1, 2, 3, 4]}}, "inputTileSize": [256, 256],
                    "outputBands": {{"output": {{"type": "float", "dimensions": 1}}}}, "maxPayloadBytes": 6000000}}"#
            ))
            .unwrap();
            let output = dir.join("end_to_end_out.tif");
            let start = Instant::now();
            let report = Model::new(spec).unwrap().predict_image(std::slice::from_ref(&input), &output, &PredictOptions::default()).await.unwrap();
            (report, start.elapsed())
        });
        let (r, wall) = report;
        let mpx = (size * size) as f64 / 1e6 / wall.as_secs_f64();
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
    }
}
