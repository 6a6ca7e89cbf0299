//! Bad rasters and bad specs given to `ee-model predict` (the binary): missing bands, a CRS
//! GDAL does not know, a raster without georeferencing, a zero-size raster, a truncated
//! GeoTIFF, an overlap as large as the tile, an unknown payload format, a tile larger than the
//! payload budget. Each must end with a non-zero exit and one clear line on stderr (no panic,
//! no backtrace), and must leave no output file that looks complete.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{make_input, models, scratch};
use gdal::Metadata;

/// A local-predictor spec of the conv model with `extra` spliced in (or replacing defaults).
fn spec(name: &str, fields: &str) -> PathBuf {
    let path = scratch(&format!("{name}.json"));
    std::fs::write(
        &path,
        format!(
            r#"{{"predictor": {{"type": "local", "path": "{}"}}, {fields}}}"#,
            models().join("conv_r2.onnx").display()
        ),
    )
    .unwrap();
    path
}

const BANDS: &str = r#""inputBands": {"input": ["B1", "B2", "B3"]}"#;
const OUTPUT: &str = r#""outputBands": {"output": {"type": "float", "dimensions": 1}}"#;

fn good_fields() -> String {
    format!(r#"{BANDS}, "inputTileSize": [16, 16], "inputOverlapSize": [4, 4], {OUTPUT}"#)
}

fn good_input() -> PathBuf {
    let input = scratch("good_in.tif");
    if !input.exists() {
        make_input(&input, 40, 30, None);
    }
    input
}

/// Whether `line` is the job's plan (`N tiles (M to predict) in ...`).
fn is_plan(line: &str) -> bool {
    line.contains(" tiles (") && line.contains(" to predict)")
}

/// Runs `ee-model predict` and checks the failure: non-zero exit, one line on stderr that
/// contains every one of `expect` (case-insensitive), no output file. Returns the line.
fn fails(name: &str, spec: &Path, input: &Path, expect: &[&str]) -> String {
    fails_with(name, spec, input, &[], expect)
}

/// [`fails`] with more arguments after the usual ones.
fn fails_with(name: &str, spec: &Path, input: &Path, args: &[&str], expect: &[&str]) -> String {
    let output = scratch(&format!("{name}_out.tif"));
    let run = Command::new(env!("CARGO_BIN_EXE_ee-model"))
        .arg("predict")
        .arg("--spec")
        .arg(spec)
        .arg("--input")
        .arg(input)
        .arg("--output")
        .arg(&output)
        .args(args)
        .env("RUST_BACKTRACE", "0")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr).to_string();
    assert!(!run.status.success(), "{name}: succeeded:\n{stderr}");
    assert_eq!(
        run.status.code(),
        Some(1),
        "{name}: exit {:?}: {stderr}",
        run.status
    );
    assert!(!stderr.contains("panicked"), "{name}: panic:\n{stderr}");
    // The plan ("N tiles (M to predict) in K requests...") comes before any read, so a bad
    // raster found while reading follows it; the error is the one other line.
    let lines: Vec<&str> = stderr
        .lines()
        .filter(|l| !l.trim().is_empty() && !is_plan(l))
        .collect();
    assert_eq!(lines.len(), 1, "{name}: not one line:\n{stderr}");
    let line = lines[0].to_string();
    let lower = line.to_lowercase();
    for e in expect {
        assert!(
            lower.contains(&e.to_lowercase()),
            "{name}: {e:?} missing from {line:?}"
        );
    }
    assert!(
        !output.exists(),
        "{name}: {} exists after a failure",
        output.display()
    );
    // A partial file may remain only under a name saying so.
    for e in std::fs::read_dir(output.parent().unwrap())
        .unwrap()
        .flatten()
    {
        let n = e.file_name().to_string_lossy().to_string();
        if n.starts_with(&format!("{name}_out.tif")) {
            assert!(
                n.ends_with(".partial") || n.ends_with(".journal"),
                "{name}: left {n}"
            );
        }
    }
    eprintln!("{name}: {line}");
    line
}

#[test]
fn missing_band_is_named() {
    let s = spec(
        "missing_band",
        &format!(
            r#""inputBands": {{"input": ["B1", "B2", "B7"]}}, "inputTileSize": [16, 16], {OUTPUT}"#
        ),
    );
    fails("missing_band", &s, &good_input(), &["B7"]);
}

#[test]
fn unknown_crs_is_refused() {
    let s = spec(
        "bad_crs",
        &format!(
            r#"{}, "proj": {{"crs": "EPSG:999999", "scale": [10, 10]}}, "fixInputProj": true"#,
            good_fields()
        ),
    );
    fails("bad_crs", &s, &good_input(), &["EPSG:999999", "not a CRS"]);
}

#[test]
fn raster_without_georeferencing_under_a_fixed_projection_is_refused() {
    let input = scratch("nogeo_in.tif");
    let driver = gdal::DriverManager::get_driver_by_name("GTiff").unwrap();
    let ds = driver
        .create_with_band_type::<f32, _>(&input, 20, 20, 3)
        .unwrap();
    for b in 1..=3 {
        ds.rasterband(b)
            .unwrap()
            .set_description(&format!("B{b}"))
            .unwrap();
    }
    drop(ds);
    let s = spec(
        "nogeo",
        &format!(
            r#"{}, "proj": {{"crs": "EPSG:32633", "scale": [10, 10]}}, "fixInputProj": true"#,
            good_fields()
        ),
    );
    fails("nogeo", &s, &input, &["nogeo_in.tif"]);
}

#[test]
fn zero_size_raster_is_refused() {
    // GDAL cannot write a 0 x 0 GeoTIFF; a VRT can describe one.
    let input = scratch("zero_in.vrt");
    std::fs::write(
        &input,
        r#"<VRTDataset rasterXSize="0" rasterYSize="0">
  <VRTRasterBand dataType="Float32" band="1"><Description>B1</Description></VRTRasterBand>
  <VRTRasterBand dataType="Float32" band="2"><Description>B2</Description></VRTRasterBand>
  <VRTRasterBand dataType="Float32" band="3"><Description>B3</Description></VRTRasterBand>
</VRTDataset>"#,
    )
    .unwrap();
    let s = spec("zero", &good_fields());
    fails("zero", &s, &input, &["zero_in.vrt"]);
}

#[test]
fn empty_file_is_refused() {
    let input = scratch("empty_in.tif");
    std::fs::write(&input, b"").unwrap();
    let s = spec("empty", &good_fields());
    fails("empty", &s, &input, &["empty_in.tif"]);
}

#[test]
fn truncated_geotiff_is_an_error_naming_the_file() {
    let full = scratch("trunc_full.tif");
    make_input(&full, 300, 200, None);
    let bytes = std::fs::read(&full).unwrap();
    for (name, keep) in [("trunc_half", bytes.len() / 2), ("trunc_head", 100)] {
        let input = scratch(&format!("{name}_in.tif"));
        std::fs::write(&input, &bytes[..keep]).unwrap();
        let s = spec(name, &good_fields());
        fails(name, &s, &input, &[&format!("{name}_in.tif")]);
    }
}

#[test]
fn overlap_as_large_as_the_tile_is_refused_with_the_numbers() {
    let s = spec(
        "overlap",
        &format!(r#"{BANDS}, "inputTileSize": [16, 16], "inputOverlapSize": [16, 4], {OUTPUT}"#),
    );
    fails("overlap", &s, &good_input(), &["overlap", "16"]);
}

#[test]
fn unknown_payload_format_is_named() {
    let s = spec(
        "format",
        &format!(r#"{}, "payloadFormat": "PICKLED_TENSORS""#, good_fields()),
    );
    fails(
        "format",
        &s,
        &good_input(),
        &["payloadFormat: unknown", "PICKLED_TENSORS"],
    );
}

#[test]
fn tile_above_the_payload_budget_is_refused_with_the_numbers() {
    // A hosted predictor (nothing listens there: the spec is refused before any request).
    let s = scratch("budget.json");
    std::fs::write(
        &s,
        format!(
            r#"{{"predictor": {{"type": "aiPlatform", "projectId": "p", "modelName": "m", "baseUrl": "http://127.0.0.1:9"}},
                {BANDS}, "inputTileSize": [256, 256], "inputOverlapSize": [4, 4], {OUTPUT}, "maxPayloadBytes": 10000}}"#
        ),
    )
    .unwrap();
    fails("budget", &s, &good_input(), &["10000"]);
}

#[test]
fn missing_input_file_is_named() {
    let s = spec("missing_file", &good_fields());
    fails(
        "missing_file",
        &s,
        &scratch("no_such_input.tif"),
        &["no_such_input.tif"],
    );
}

#[test]
fn spec_numbers_out_of_range_are_named_with_the_value_and_the_range() {
    let cases: &[(&str, String, &[&str])] = &[
        (
            "timeout_huge",
            format!(r#"{}, "requestTimeoutSeconds": 1e20"#, good_fields()),
            &[
                "requestTimeoutSeconds: 1e20 is out of range",
                "0.001 to 86400 seconds",
            ],
        ),
        (
            "timeout_negative",
            format!(r#"{}, "requestTimeoutSeconds": -1"#, good_fields()),
            &["requestTimeoutSeconds: -1 is out of range"],
        ),
        (
            "dimensions_fraction",
            format!(
                r#"{BANDS}, "inputTileSize": [16, 16], "outputBands": {{"output": {{"type": "float", "dimensions": 1.5}}}}"#
            ),
            &["outputBands.output.dimensions: 1.5 is not a whole number"],
        ),
        (
            "tile_huge",
            format!(r#"{BANDS}, "inputTileSize": [100000000, 100000000], {OUTPUT}"#),
            &[
                "inputTileSize[0]: 100000000 is out of range",
                "1048576 pixels",
            ],
        ),
        (
            // 40000 x 40000 pixels x 3 bands x 4 bytes: 19.2 GB per tile.
            "tile_bytes",
            format!(r#"{BANDS}, "inputTileSize": [40000, 40000], {OUTPUT}"#),
            &[
                "inputTileSize [40000, 40000]",
                "19200000000 bytes",
                "2147483648 bytes",
            ],
        ),
        (
            "nodata_uint8",
            format!(
                r#"{BANDS}, "inputTileSize": [16, 16], "outputBands": {{"output": {{"type": "uint8", "dimensions": 1, "nodata": 256}}}}"#
            ),
            &[
                "outputBands.output.nodata: 256 does not fit uint8",
                "0 to 255",
            ],
        ),
        (
            "batch_zero",
            format!(r#"{}, "maxConcurrency": 0"#, good_fields()),
            &["maxConcurrency: 0 is out of range (1 to 4096 requests)"],
        ),
    ];
    for (name, fields, expect) in cases {
        let s = spec(name, fields);
        fails(name, &s, &good_input(), expect);
    }
}

#[test]
fn a_nodata_flag_that_does_not_fit_the_output_type_is_refused() {
    let s = spec(
        "nodata_flag",
        &format!(
            r#"{BANDS}, "inputTileSize": [16, 16], "outputBands": {{"output": {{"type": "uint8", "dimensions": 1}}}}"#
        ),
    );
    fails_with(
        "nodata_flag",
        &s,
        &good_input(),
        &["--nodata", "-1"],
        &["--nodata -1 does not fit outputBands.output (uint8: 0 to 255"],
    );
}
