//! Going beyond one machine on the raster side: `ee-model predict --shard i/n` runs whose
//! outputs GDAL mosaics (`gdalbuildvrt`) into exactly the unsharded job's pixels, nodata and
//! georeferencing; `--region` predicts a window whose pixels equal the whole job's there
//! (tile-aligned); bad shards and regions are one-line errors.

mod common;

use std::path::Path;
use std::process::Command;

use common::{make_input, models, scratch};
use gdal::Dataset;

/// The spec file, written once per test process (tests run in parallel).
fn spec() -> &'static Path {
    static SPEC: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    SPEC.get_or_init(write_spec)
}

fn write_spec() -> std::path::PathBuf {
    let spec = scratch("shard_spec.json");
    std::fs::write(
        &spec,
        format!(
            r#"{{"predictor": {{"type": "local", "path": "{}"}}, "inputBands": {{"input": ["B1", "B2", "B3"]}},
                "inputTileSize": [32, 32], "inputOverlapSize": [6, 6], "outputBands": {{"output": {{"type": "float", "dimensions": 1}}}}}}"#,
            models().join("conv_r2.onnx").display()
        ),
    )
    .unwrap();
    spec
}

fn predict(input: &Path, output: &Path, extra: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_ee-model"))
        .args(["predict", "--spec"])
        .arg(spec())
        .arg("--input")
        .arg(input)
        .arg("--output")
        .arg(output)
        .args(extra)
        .output()
        .unwrap()
}

/// Every band's pixels as bit patterns, the geotransform and the CRS.
fn pixels(
    path: &Path,
    window: Option<(usize, usize, usize, usize)>,
) -> (Vec<Vec<u32>>, [f64; 6], String) {
    let ds = Dataset::open(path).unwrap();
    let (w, h) = ds.raster_size();
    let (x, y, ww, wh) = window.unwrap_or((0, 0, w, h));
    let bands = (1..=ds.raster_count())
        .map(|b| {
            let band = ds.rasterband(b).unwrap();
            band.read_as::<f32>((x as isize, y as isize), (ww, wh), (ww, wh), None)
                .unwrap()
                .into_shape_and_vec()
                .1
                .into_iter()
                .map(f32::to_bits)
                .collect()
        })
        .collect();
    (
        bands,
        ds.geo_transform().unwrap(),
        ds.spatial_ref().unwrap().to_wkt().unwrap(),
    )
}

#[test]
fn shards_mosaic_into_the_unsharded_pixels() {
    let input = scratch("shard_in.tif");
    make_input(&input, 150, 203, Some((40, 90, 70, 130)));
    let whole = scratch("shard_whole.tif");
    let out = predict(&input, &whole, &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let n = 3;
    let mut parts = Vec::new();
    for i in 0..n {
        let part = scratch(&format!("shard_{i}.tif"));
        let out = predict(&input, &part, &["--shard", &format!("{i}/{n}")]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        parts.push(part);
    }
    let vrt = scratch("shard_mosaic.vrt");
    let status = Command::new("gdalbuildvrt")
        .arg("-q")
        .arg(&vrt)
        .args(&parts)
        .status()
        .unwrap();
    assert!(status.success());
    let (mosaic, whole_px) = (pixels(&vrt, None), pixels(&whole, None));
    assert_eq!(mosaic.1, whole_px.1, "geotransform");
    assert_eq!(mosaic.2, whole_px.2, "CRS");
    assert_eq!(mosaic.0.len(), whole_px.0.len());
    for (b, (m, w)) in mosaic.0.iter().zip(&whole_px.0).enumerate() {
        assert!(
            m == w,
            "band {}: the mosaic differs from the unsharded output",
            b + 1
        );
    }
    // The nodata hole is there, with the unsharded nodata value.
    let nodata = Dataset::open(&parts[1])
        .unwrap()
        .rasterband(1)
        .unwrap()
        .no_data_value();
    assert_eq!(
        nodata.map(f64::to_bits),
        Dataset::open(&whole)
            .unwrap()
            .rasterband(1)
            .unwrap()
            .no_data_value()
            .map(f64::to_bits)
    );
}

#[test]
fn a_tile_aligned_region_equals_the_whole_job_there() {
    let input = scratch("region_in.tif");
    make_input(&input, 150, 120, None);
    let whole = scratch("region_whole.tif");
    assert!(predict(&input, &whole, &[]).status.success());
    let part = scratch("region_part.tif");
    let out = predict(&input, &part, &["--region", "32,64,96,50"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (region_px, gt, _) = pixels(&part, None);
    let (whole_px, whole_gt, _) = pixels(&whole, Some((32, 64, 96, 50)));
    assert_eq!(gt[0], whole_gt[0] + 32.0 * whole_gt[1]);
    assert_eq!(gt[3], whole_gt[3] + 64.0 * whole_gt[5]);
    // The last tile row reads real pixels below the region (the whole job's tiles read the
    // same), so the region equals the whole job everywhere.
    assert_eq!(region_px, whole_px);
}

#[test]
fn bad_shards_and_regions_are_one_line_errors() {
    let input = scratch("bad_shard_in.tif");
    make_input(&input, 40, 40, None);
    for (args, needle) in [
        (vec!["--shard", "3/3"], "0 to 2"),
        (vec!["--shard", "0/5"], "only 2 tile rows"),
        (vec!["--shard", "half"], "i/n"),
        (
            vec!["--region", "0,0,50,10"],
            "not inside the 40 x 40 input",
        ),
        (vec!["--region", "1,2,3"], "X,Y,WIDTH,HEIGHT"),
        (vec!["--shard", "0/2", "--merge", "blend"], "crop"),
    ] {
        let out_path = scratch("bad_shard_out.tif");
        let out = predict(&input, &out_path, &args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} succeeded");
        assert!(
            stderr.contains(needle),
            "{args:?}: {needle:?} not in {stderr}"
        );
        // One line of error (clap adds its "For more information, try '--help'." hint to
        // argument errors).
        let lines = stderr
            .lines()
            .filter(|l| !l.trim().is_empty() && !l.starts_with("For more information"))
            .count();
        assert_eq!(lines, 1, "{args:?}: {stderr}");
        assert!(!out_path.exists());
    }
}
