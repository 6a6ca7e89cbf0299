//! `cargo xtask memory [--quick]`: peak memory of `ee-model predict` against raster size.
//! Single-band float32 GeoTIFFs of 10000 x 10000 and 40000 x 40000 pixels (sparse, so they
//! take almost no disk: unwritten blocks read as zeros) are predicted with the identity model
//! in 512-pixel tiles with 16 pixels of overlap, by the release binary; the peak resident set
//! (VmHWM) of each run is sampled from /proc while it runs. The table goes to stdout and
//! `target/memory-report.md`. `--quick` uses 5000 and 20000 pixels.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::setup::{run, Env};

fn peak_kib(pid: u32) -> Option<u64> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

fn make_sparse(path: &Path, size: usize) -> Result<(), String> {
    if path.exists() {
        return Ok(());
    }
    let size = size.to_string();
    let (west, north) = (500_000.0, 5_000_000.0);
    let east = west + 10.0 * size.parse::<f64>().unwrap_or(0.0);
    let south = north - 10.0 * size.parse::<f64>().unwrap_or(0.0);
    run(
        Command::new("gdal_create")
            .args(["-q", "-of", "GTiff", "-ot", "Float32", "-bands", "1"])
            .args(["-outsize", &size, &size])
            .args([
                "-co",
                "TILED=YES",
                "-co",
                "SPARSE_OK=TRUE",
                "-co",
                "COMPRESS=DEFLATE",
            ])
            .args(["-a_srs", "EPSG:32633", "-a_ullr"])
            .args([
                west.to_string(),
                north.to_string(),
                east.to_string(),
                south.to_string(),
            ])
            .arg(path),
        "gdal_create of a sparse raster",
    )
}

pub fn memory(args: &[String]) -> Result<(), String> {
    let quick = args.iter().any(|a| a == "--quick");
    let sizes: [usize; 2] = if quick {
        [5_000, 20_000]
    } else {
        [10_000, 40_000]
    };
    let env = Env::discover()?;
    env.ensure_system_packages(crate::setup::TEST_PACKAGES)?;
    let binary = env.build_release("ee-model", "ee-model")?;
    let dir = env.root.join("target/bench-data/memory");
    std::fs::create_dir_all(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    let spec = dir.join("identity-spec.json");
    let model = env.root.join("ee-model/tests/models/identity.onnx");
    std::fs::write(
        &spec,
        format!(
            r#"{{"predictor": {{"type": "local", "path": "{}", "batchSize": 4}},
  "inputBands": {{"input": ["b1"]}}, "inputTileSize": [512, 512], "inputOverlapSize": [16, 16],
  "outputBands": {{"output": {{"type": "float"}}}}}}"#,
            model.display()
        ),
    )
    .map_err(|e| format!("writing {}: {e}", spec.display()))?;
    let mut rows = Vec::new();
    for size in sizes {
        let input = dir.join(format!("sparse-{size}.tif"));
        make_sparse(&input, size)?;
        let output = dir.join(format!("out-{size}.tif"));
        let _ = std::fs::remove_file(&output);
        println!("xtask memory: predicting {size} x {size} ...");
        let started = Instant::now();
        let mut child = Command::new(&binary)
            .args(["predict", "--spec"])
            .arg(&spec)
            .arg("--input")
            .arg(&input)
            .arg("--output")
            .arg(&output)
            .stdout(std::process::Stdio::null())
            .spawn()
            .map_err(|e| format!("starting {}: {e}", binary.display()))?;
        let mut peak = 0;
        let status = loop {
            if let Some(kib) = peak_kib(child.id()) {
                peak = peak.max(kib);
            }
            match child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) => std::thread::sleep(Duration::from_millis(100)),
                Err(e) => return Err(format!("waiting for ee-model: {e}")),
            }
        };
        let wall = started.elapsed().as_secs_f64();
        if !status.success() {
            return Err(format!(
                "ee-model predict of the {size} x {size} raster failed"
            ));
        }
        let out_bytes = std::fs::metadata(&output).map(|m| m.len()).unwrap_or(0);
        let _ = std::fs::remove_file(&output);
        let _ = std::fs::remove_file(dir.join(format!("out-{size}.tif.journal")));
        rows.push(format!(
            "| {size} x {size} | {:.0} | {:.1} | {:.1} | {:.0} |",
            (size * size) as f64 / 1e6,
            wall,
            (size * size) as f64 / 1e6 / wall,
            peak as f64 / 1024.0
        ));
        println!(
            "  {wall:.1} s, peak RSS {:.0} MiB, output {:.1} MB",
            peak as f64 / 1024.0,
            out_bytes as f64 / 1e6
        );
    }
    let report = format!(
        "Peak memory of `ee-model predict` (identity model, single-band float32, 512-pixel tiles, 16 overlap, local runtime, DEFLATE output; {} cores)\n\n| raster | Mpx | wall s | Mpx/s | peak RSS MiB |\n|---|---|---|---|---|\n{}\n",
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        rows.join("\n")
    );
    println!("\n{report}");
    let path = env.root.join("target/memory-report.md");
    std::fs::write(&path, &report).map_err(|e| format!("writing {}: {e}", path.display()))?;
    Ok(())
}
