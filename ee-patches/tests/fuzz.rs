//! Fuzzing of the mixer reader (`PREFIX-mixer.json`, the sidecar that tells an import where
//! the patches go): valid mixers mutated by proptest (bit flips, truncation, inserted and
//! deleted bytes, forged 8-byte words, JSON punctuation) plus random bytes. `Mixer::read` must
//! return `Ok` or `Err`, never panic; a mixer it accepts must describe a grid whose size and
//! transform can be computed without overflow; reading `n` bytes allocates at most a fixed
//! multiple of `n` plus a constant (a counting global allocator checks it).

use std::path::PathBuf;

use ee_fuzzkit::{allocated_by, apply, config, fuzzed, mutation, Counting};
use ee_patches::Mixer;
use ee_tiling::GeoTransform;
use proptest::prelude::*;

#[global_allocator]
static GLOBAL: Counting = Counting;

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ee-patches-fuzz-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

fn seeds() -> Vec<Vec<u8>> {
    let utm = Mixer::new(
        "EPSG:32633".into(),
        GeoTransform {
            x0: 500_000.0,
            dx: 10.0,
            rx: 0.0,
            y0: 5_000_000.0,
            ry: 0.0,
            dy: -10.0,
        },
        [256, 256],
        4,
        12,
    );
    let wkt = Mixer::new(
        r#"GEOGCS["WGS 84",DATUM["WGS_1984",SPHEROID["WGS 84",6378137,298.257223563]],PRIMEM["Greenwich",0],UNIT["degree",0.0174532925199433]]"#.into(),
        GeoTransform {
            x0: -180.0,
            dx: 0.25,
            rx: 0.0,
            y0: 90.0,
            ry: 0.0,
            dy: -0.25,
        },
        [8, 16],
        1,
        1,
    );
    let mut out = vec![
        serde_json::to_vec_pretty(&utm).unwrap(),
        serde_json::to_vec(&wkt).unwrap(),
    ];
    // Earth Engine's own spelling, written by hand.
    out.push(
        br#"{"projection": {"crs": "EPSG:4326", "affine": {"doubleMatrix": [0.1, 0.0, 10.0, 0.0, -0.1, 50.0]}}, "patchDimensions": [64, 64], "patchesPerRow": 3, "totalPatches": 6}"#
            .to_vec(),
    );
    out
}

/// Reads `bytes` as a mixer file; an accepted mixer must give its raster size and transform.
fn check(bytes: &[u8], file: &std::path::Path) {
    std::fs::write(file, bytes).unwrap();
    let (result, used) = allocated_by(|| Mixer::read(file));
    assert!(
        used <= 16 * bytes.len() + (256 << 10),
        "reading a {}-byte mixer allocated {used} bytes",
        bytes.len()
    );
    if let Ok(m) = result {
        let size = m.raster_size();
        assert!(size.width > 0 && size.height > 0, "{m:?}");
        let _ = m.transform();
        let _ = m.patch_rows();
    }
}

proptest! {
    #![proptest_config(config(1500))]
    #[test]
    fn mixer_reading_never_panics_nor_balloons(bytes in fuzzed(seeds())) {
        let file = scratch(&format!("mixer-{:?}.json", std::thread::current().id()));
        check(&bytes, &file);
    }
}

#[test]
fn seeds_are_valid_mixers() {
    for (i, s) in seeds().iter().enumerate() {
        let file = scratch(&format!("seed-{i}.json"));
        std::fs::write(&file, s).unwrap();
        Mixer::read(&file).unwrap();
    }
}

#[test]
fn forged_grid_sizes_are_errors_not_overflows() {
    let forged = [
        // Patch side times patches per row overflows usize.
        r#"{"projection": {"crs": "EPSG:4326", "affine": {"doubleMatrix": [1, 0, 0, 0, -1, 0]}}, "patchDimensions": [4294967296, 4294967296], "patchesPerRow": 4294967296, "totalPatches": 4294967296}"#,
        r#"{"projection": {"crs": "EPSG:4326", "affine": {"doubleMatrix": [1, 0, 0, 0, -1, 0]}}, "patchDimensions": [18446744073709551615, 1], "patchesPerRow": 2, "totalPatches": 2}"#,
        r#"{"projection": {"crs": "EPSG:4326", "affine": {"doubleMatrix": [1, 0, 0, 0, -1, 0]}}, "patchDimensions": [1, 18446744073709551615], "patchesPerRow": 1, "totalPatches": 2}"#,
        // Negative and fractional counts.
        r#"{"projection": {"crs": "EPSG:4326", "affine": {"doubleMatrix": [1, 0, 0, 0, -1, 0]}}, "patchDimensions": [-1, 1], "patchesPerRow": 1, "totalPatches": 1}"#,
        r#"{"projection": {"crs": "EPSG:4326", "affine": {"doubleMatrix": [1, 0, 0, 0, -1, 0]}}, "patchDimensions": [1.5, 1], "patchesPerRow": 1, "totalPatches": 1}"#,
        // A singular affine.
        r#"{"projection": {"crs": "EPSG:4326", "affine": {"doubleMatrix": [0, 0, 0, 0, 0, 0]}}, "patchDimensions": [1, 1], "patchesPerRow": 1, "totalPatches": 1}"#,
    ];
    for (i, text) in forged.iter().enumerate() {
        let file = scratch(&format!("forged-{i}.json"));
        std::fs::write(&file, text).unwrap();
        let err = Mixer::read(&file).expect_err(text).to_string();
        assert!(err.contains(&*file.to_string_lossy()), "{err}");
    }
}

// ---- prediction records (tf.train.Examples in TFRecords) read by the import ----

fn import_mixer() -> Mixer {
    Mixer::new(
        "EPSG:32633".into(),
        GeoTransform {
            x0: 500_000.0,
            dx: 10.0,
            rx: 0.0,
            y0: 5_000_000.0,
            ry: 0.0,
            dy: -10.0,
        },
        [8, 8],
        2,
        4,
    )
}

/// The serialized Examples of a valid prediction for `import_mixer`: one float feature `p`
/// per 8 x 8 patch, and an int64 feature `c` of the same size.
fn prediction_examples() -> Vec<Vec<u8>> {
    use ee_tensor_proto::example::{example, float_feature, int64_feature};
    use prost::Message;
    (0..4)
        .map(|k| {
            let values: Vec<f32> = (0..64).map(|i| (k * 64 + i) as f32 * 0.5).collect();
            let classes: Vec<i64> = (0..64).map(|i| (k + i) as i64 % 3).collect();
            example([("p", float_feature(values)), ("c", int64_feature(classes))]).encode_to_vec()
        })
        .collect()
}

fn frame(records: &[Vec<u8>]) -> Vec<u8> {
    use ee_tensor_proto::tfrecord::{Compression, TfRecordWriter};
    let mut w = TfRecordWriter::new(Vec::new(), Compression::None);
    for r in records {
        w.write_record(r).unwrap();
    }
    w.finish().unwrap()
}

/// One record's Example mutated and framed with valid CRCs (so the Example decoder and the
/// import's checks see it), or the framed file itself mutated.
fn record_cases() -> impl Strategy<Value = Vec<u8>> {
    let examples = prediction_examples();
    let file = frame(&examples);
    prop_oneof![
        3 => (0..examples.len(), prop::collection::vec(mutation(), 1..6)).prop_map(move |(r, m)| {
            let mut records = examples.clone();
            records[r] = apply(records[r].clone(), &m);
            frame(&records)
        }),
        1 => prop::collection::vec(mutation(), 1..6).prop_map(move |m| apply(file.clone(), &m)),
    ]
}

fn import(bytes: &[u8], tag: &str) -> ee_patches::Result<ee_patches::ImportReport> {
    let records = scratch(&format!("pred-{tag}.tfrecord"));
    std::fs::write(&records, bytes).unwrap();
    let output = scratch(&format!("pred-{tag}.tif"));
    let _ = std::fs::remove_file(&output);
    ee_patches::import_predictions(
        &import_mixer(),
        &[records],
        &output,
        &ee_patches::ImportOptions::default(),
    )
}

#[test]
fn valid_predictions_import() {
    let report = import(&frame(&prediction_examples()), "valid").unwrap();
    assert_eq!(report.records, 4);
    assert_eq!((report.size.width, report.size.height), (16, 16));
}

proptest! {
    #![proptest_config(config(250))]
    #[test]
    fn prediction_import_never_panics(bytes in record_cases()) {
        let tag = format!("{:?}", std::thread::current().id()).replace(|c: char| !c.is_ascii_alphanumeric(), "");
        let (_, used) = allocated_by(|| import(&bytes, &tag).map(|r| r.records));
        // The output raster (16 x 16 x at most a few bands) plus GDAL's own buffers.
        assert!(used <= 64 * bytes.len() + (16 << 20), "importing {} bytes allocated {used}", bytes.len());
    }
}
