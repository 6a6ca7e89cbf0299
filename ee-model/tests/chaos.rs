//! Faults between the client and a real serving node, in bounded form (the full run with a
//! table is `cargo xtask chaos`): a fault-injecting proxy (`benches/src/chaos.rs`, run in
//! process) fails 20% of the requests with 429 + Retry-After, 503, connection resets, stalls
//! past the client's deadline and truncated bodies, and the output is identical to a clean
//! run's: every band's pixels, the masks, geotransform, CRS and nodata. And `ee-model
//! predict` killed with SIGKILL at seeded points of a run through that proxy and resumed with
//! `--resume` gives identical pixels every time.

mod common;

#[allow(dead_code)]
#[path = "../../benches/src/chaos.rs"]
mod chaos;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use chaos::{ChaosConfig, ChaosProxy, Fault};
use common::{make_input, models, scratch};
use ee_model::{Layout, LocalModel, Model, ModelSpec, PredictOptions};
use ee_serve::{Node, ServeConfig};
use gdal::Dataset;

/// Everything about a raster that must survive faults: per band the pixel values (as bits),
/// the mask band's bytes and the nodata value; the geotransform and the CRS.
#[derive(Debug, PartialEq)]
struct Fingerprint {
    size: (usize, usize),
    bands: Vec<(Vec<u64>, Vec<u8>, Option<u64>)>,
    geo_transform: [u64; 6],
    crs: String,
}

fn fingerprint(path: &Path) -> Fingerprint {
    let ds = Dataset::open(path).unwrap();
    let (w, h) = ds.raster_size();
    let mut bands = Vec::new();
    for b in 1..=ds.raster_count() {
        let band = ds.rasterband(b).unwrap();
        let values = band
            .read_as::<f64>((0, 0), (w, h), (w, h), None)
            .unwrap()
            .into_shape_and_vec()
            .1
            .iter()
            .map(|v| v.to_bits())
            .collect();
        let mask = band
            .open_mask_band()
            .unwrap()
            .read_as::<u8>((0, 0), (w, h), (w, h), None)
            .unwrap()
            .into_shape_and_vec()
            .1;
        bands.push((values, mask, band.no_data_value().map(f64::to_bits)));
    }
    Fingerprint {
        size: (w, h),
        bands,
        geo_transform: ds.geo_transform().unwrap().map(f64::to_bits),
        crs: ds.spatial_ref().unwrap().to_wkt().unwrap(),
    }
}

fn assert_same(got: &Path, want: &Fingerprint, what: &str) {
    let got = fingerprint(got);
    assert_eq!(got.size, want.size, "{what}: size");
    assert_eq!(
        got.geo_transform, want.geo_transform,
        "{what}: geotransform"
    );
    assert_eq!(got.crs, want.crs, "{what}: CRS");
    assert_eq!(got.bands.len(), want.bands.len(), "{what}: band count");
    for (b, (g, w)) in got.bands.iter().zip(&want.bands).enumerate() {
        assert_eq!(g.2, w.2, "{what}: nodata of band {}", b + 1);
        assert!(g.1 == w.1, "{what}: mask of band {} differs", b + 1);
        let diffs = g.0.iter().zip(&w.0).filter(|(a, b)| a != b).count();
        assert_eq!(diffs, 0, "{what}: band {} differs at {diffs} pixels", b + 1);
    }
}

async fn start_node() -> Node {
    Node::start(
        LocalModel::load(models().join("conv_r2.onnx"), Layout::Nhwc).unwrap(),
        ServeConfig {
            model_name: "conv".into(),
            http: Some("127.0.0.1:0".parse().unwrap()),
            grpc: None,
            ..ServeConfig::default()
        },
    )
    .await
    .unwrap()
}

/// A spec on the AI Platform route of `addr` with a short per-request deadline, so stalls are
/// cut off and retried quickly.
fn spec_json(addr: std::net::SocketAddr, tile: usize) -> String {
    format!(
        r#"{{"predictor": {{"type": "aiPlatform", "projectId": "p", "modelName": "conv", "version": "v1", "baseUrl": "http://{addr}"}},
            "payloadFormat": "SERIALIZED_TF_TENSORS",
            "inputBands": {{"input": ["B1", "B2", "B3"]}}, "inputTileSize": [{tile}, {tile}], "inputOverlapSize": [4, 4],
            "outputBands": {{"output": {{"type": "float", "dimensions": 1}}}},
            "maxPayloadBytes": 10000, "maxConcurrency": 8, "requestTimeoutSeconds": 0.5}}"#
    )
}

async fn predict(spec: &str, input: &Path, output: &Path) -> ee_model::Report {
    Model::new(ModelSpec::from_json(spec).unwrap())
        .unwrap()
        .predict_image(&[input.to_path_buf()], output, &PredictOptions::default())
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_percent_faults_give_the_clean_output() {
    let input = scratch("chaos_in.tif");
    make_input(&input, 180, 150, Some((30, 40, 90, 70)));
    let node = start_node().await;
    let clean = scratch("chaos_clean.tif");
    predict(&spec_json(node.http_addr().unwrap(), 16), &input, &clean).await;
    let want = fingerprint(&clean);
    // Masked pixels in the input make masked pixels in the output: the masks are compared.
    assert!(
        want.bands[0].1.contains(&0),
        "the clean output has no masked pixel"
    );

    let proxy = ChaosProxy::start(ChaosConfig {
        stall: Duration::from_millis(1200),
        ..ChaosConfig::new(node.http_addr().unwrap(), 20240917)
    })
    .await
    .unwrap();
    let out = scratch("chaos_out.tif");
    let report = predict(&spec_json(proxy.addr(), 16), &input, &out).await;
    assert_same(&out, &want, "through the chaos proxy");

    let stats = proxy.stats();
    let requests = stats.requests.load(std::sync::atomic::Ordering::Relaxed);
    let faults = stats.total_faults();
    assert!(requests >= 60, "too few requests to mean anything: {stats}");
    assert!(
        (faults as f64) > 0.1 * requests as f64 && (faults as f64) < 0.3 * requests as f64,
        "about 20% of requests should fail: {stats}"
    );
    for kind in Fault::ALL {
        assert!(
            stats.faults(kind) > 0,
            "no {} fault injected: {stats}",
            kind.name()
        );
    }
    let metrics = report.metrics.expect("a remote predictor reports metrics");
    assert!(
        metrics.total_retries() >= faults,
        "every injected fault is a retry: {metrics} vs {stats}"
    );
    drop(proxy);
    node.shutdown().await.unwrap();
}

/// A seeded fraction in `[lo, hi)`.
fn fractions(seed: u64, n: usize, lo: f64, hi: f64) -> Vec<f64> {
    let mut state = seed;
    (0..n)
        .map(|_| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            lo + (hi - lo) * ((state >> 11) as f64 / (1u64 << 53) as f64)
        })
        .collect()
}

fn predict_cli(spec: &Path, input: &Path, output: &Path, resume: bool) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ee-model"));
    cmd.arg("predict")
        .arg("--spec")
        .arg(spec)
        .arg("--input")
        .arg(input)
        .arg("--output")
        .arg(output);
    if resume {
        cmd.arg("--resume");
    }
    cmd
}

fn resumed_tiles(stdout: &str) -> usize {
    // "wrote OUT (W x H, bands ...) in S s: T tiles (R resumed), ..."
    stdout
        .split(" resumed)")
        .next()
        .and_then(|head| head.rsplit('(').next())
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no resumed count in {stdout:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_at_seeded_points_through_faults_and_resumed_gives_identical_pixels() {
    let input = scratch("chaos_kill_in.tif");
    make_input(&input, 320, 240, Some((50, 60, 120, 110)));
    let node = start_node().await;
    let proxy = ChaosProxy::start(ChaosConfig {
        stall: Duration::from_millis(800),
        retry_after_s: 0,
        ..ChaosConfig::new(node.http_addr().unwrap(), 77)
    })
    .await
    .unwrap();
    let spec = scratch("chaos_kill_spec.json");
    std::fs::write(&spec, spec_json(proxy.addr(), 16)).unwrap();
    let reference = scratch("chaos_kill_ref.tif");
    let started = Instant::now();
    let run = predict_cli(&spec, &input, &reference, false)
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let full = started.elapsed();
    let want = fingerprint(&reference);

    let mut resumed_any = false;
    for (i, fraction) in fractions(0x5EED, 3, 0.15, 0.85).into_iter().enumerate() {
        let output: PathBuf = scratch(&format!("chaos_kill_out_{i}.tif"));
        let mut child = predict_cli(&spec, &input, &output, false)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(full.mul_f64(fraction));
        // Runs vary (other faults, load): one may finish before its kill point.
        let finished_first = child.try_wait().unwrap().is_some();
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        assert!(
            finished_first || !output.exists(),
            "a killed run left {} looking complete",
            output.display()
        );
        let again = predict_cli(&spec, &input, &output, true).output().unwrap();
        let stdout = String::from_utf8_lossy(&again.stdout).to_string();
        assert!(
            again.status.success(),
            "resume after a kill at {fraction:.2} of the run failed: {}",
            String::from_utf8_lossy(&again.stderr)
        );
        resumed_any |= resumed_tiles(&stdout) > 0;
        assert_same(
            &output,
            &want,
            &format!("killed at {fraction:.2} of the run and resumed"),
        );
    }
    assert!(
        resumed_any,
        "no kill came after a finished tile: the run is too short for this test"
    );
    drop(proxy);
    node.shutdown().await.unwrap();
}
