//! End-to-end tests without Python: export then import is the identity on the raster, the
//! errors name the record and the sizes, masked patches are dropped, training samples are
//! stratified, split and deterministic.

mod common;

use std::fs::File;
use std::path::Path;

use common::{read_band, tmp, value, Raster, TRANSFORM};
use ee_patches::{
    export_image, export_training, import_predictions, mixer_path, shard_path, ExportOptions,
    ImportOptions, LabelSource, Mixer, TrainingOptions,
};
use ee_raster_io::{InputStack, Resampling};
use ee_tensor_proto::example::{example, float_feature, int64_feature};
use ee_tensor_proto::proto::tensorflow::{feature, Example};
use ee_tensor_proto::tfrecord::{open_reader, Compression, TfRecordWriter};
use ee_tiling::GeoTransform;
use prost::Message;

fn stack(path: &Path) -> InputStack {
    InputStack::open(&[path.to_path_buf()], &[], None, Resampling::Nearest).unwrap()
}

#[test]
fn export_then_import_of_the_same_records_gives_the_raster_back() {
    let dir = tmp("roundtrip");
    let raster = Raster::new(37, 23, &["B1", "B2", "B3"], |x, y| {
        (x * 3 + y * 7) % 13 == 0
    });
    let input = dir.join("in.tif");
    raster.write(&input);
    let options = ExportOptions {
        patch_dimensions: [8, 6],
        kernel_size: [5, 3],
        compressed: false,
        max_file_size: 4000,
        default_value: -1.0,
        ..Default::default()
    };
    let report = export_image(&stack(&input), &dir.join("p"), &options).unwrap();
    assert_eq!(report.grid, [5, 4]);
    assert_eq!(report.patches, 20);
    assert_eq!(report.buffered, [12, 8]);
    // 3 features of 96 floats: about 1.2 kB a record, 3 to a 4000-byte shard.
    assert_eq!(report.files.len(), 7);
    for (i, f) in report.files.iter().enumerate() {
        assert_eq!(f, &shard_path(&dir.join("p"), i, Compression::None));
        assert!(std::fs::metadata(f).unwrap().len() <= 4000);
    }
    let mixer = Mixer::read(report.mixer.as_ref().unwrap()).unwrap();
    assert_eq!(mixer.projection.crs, "EPSG:32633");
    assert_eq!(mixer.transform().to_gdal(), TRANSFORM);
    assert_eq!((mixer.patches_per_row, mixer.total_patches), (5, 20));

    let out = dir.join("back.tif");
    let imported = import_predictions(
        &mixer,
        &report.files,
        &out,
        &ImportOptions {
            kernel_size: Some([5, 3]),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(imported.records, 20);
    assert_eq!(imported.bands, vec!["B1", "B2", "B3"]);
    assert_eq!(imported.features[0].2, [2, 1]);
    for b in 0..3 {
        let (w, h, data) = read_band(&out, b + 1);
        assert_eq!((w, h), (40, 24));
        for y in 0..h {
            for x in 0..w {
                assert_eq!(
                    data[y * w + x] as f32,
                    raster.exported(b, x as i64, y as i64, -1.0),
                    "band {b} at ({x}, {y})"
                );
            }
        }
    }
    let ds = gdal::Dataset::open(&out).unwrap();
    assert_eq!(ds.geo_transform().unwrap(), TRANSFORM);
    assert_eq!(ds.spatial_ref().unwrap().auth_code().unwrap(), 32633);
}

fn write_records(path: &Path, records: &[Example]) {
    let mut w = TfRecordWriter::new(File::create(path).unwrap(), Compression::Gzip);
    for r in records {
        w.write_record(&r.encode_to_vec()).unwrap();
    }
    w.finish().unwrap();
}

fn small_mixer() -> Mixer {
    Mixer::new(
        "EPSG:32633".into(),
        GeoTransform::from_gdal(TRANSFORM),
        [4, 4],
        2,
        4,
    )
}

fn prediction(i: usize, len: usize) -> Example {
    example([
        ("p", float_feature(vec![i as f32; len])),
        ("c", int64_feature(vec![i as i64; 16])),
    ])
}

fn import_err(dir: &Path, records: &[Example]) -> String {
    let path = dir.join("preds.tfrecord.gz");
    write_records(&path, records);
    let out = dir.join("out.tif");
    let err = import_predictions(&small_mixer(), &[path], &out, &ImportOptions::default())
        .unwrap_err()
        .to_string();
    assert!(
        !out.exists() && !ee_raster_io::partial_path(&out).exists(),
        "{err}"
    );
    err
}

#[test]
fn import_errors_name_the_record_and_the_sizes() {
    let dir = tmp("errors");
    let good: Vec<Example> = (0..4).map(|i| prediction(i, 16)).collect();
    // The good case first: ints and floats, core patches.
    let path = dir.join("good.tfrecord.gz");
    write_records(&path, &good);
    let out = dir.join("good.tif");
    let r = import_predictions(&small_mixer(), &[path], &out, &ImportOptions::default()).unwrap();
    assert_eq!(r.bands, vec!["c", "p"]);
    let (w, h, c) = read_band(&out, 1);
    assert_eq!((w, h), (8, 8));
    assert_eq!(c[0], 0.0);
    assert_eq!(c[7 * 8 + 7], 3.0);

    let err = import_err(&dir, &good[..3]);
    assert!(
        err.contains("expected 4 records") && err.contains("found 3"),
        "{err}"
    );
    let mut five = good.clone();
    five.push(prediction(4, 16));
    let err = import_err(&dir, &five);
    assert!(
        err.contains("expected 4 records") && err.contains("found 5"),
        "{err}"
    );
    let mut short = good.clone();
    short[2] = prediction(2, 15);
    let err = import_err(&dir, &short);
    assert!(
        err.starts_with("record 2 (") && err.contains("feature \"p\" has 15 values, expected 16"),
        "{err}"
    );
    let mut missing = good.clone();
    missing[1] = example([("c", int64_feature(vec![1i64; 16]))]);
    let err = import_err(&dir, &missing);
    assert!(
        err.starts_with("record 1 (") && err.contains("no feature \"p\" (found \"c\")"),
        "{err}"
    );
    let mut odd = good.clone();
    odd[0] = prediction(0, 17);
    let err = import_err(&dir, &odd);
    assert!(
        err.starts_with("record 0 (") && err.contains("17 values"),
        "{err}"
    );
    let mut typed = good.clone();
    typed[3] = example([
        ("p", int64_feature(vec![1i64; 16])),
        ("c", int64_feature(vec![1i64; 16])),
    ]);
    let err = import_err(&dir, &typed);
    assert!(
        err.starts_with("record 3 (")
            && err.contains("is a int64_list but earlier records have a float_list"),
        "{err}"
    );

    // A corrupt byte in the third record's data.
    let plain = dir.join("plain.tfrecord");
    let mut w = TfRecordWriter::new(File::create(&plain).unwrap(), Compression::None);
    let lens: Vec<usize> = good.iter().map(|e| e.encoded_len()).collect();
    for e in &good {
        w.write_record(&e.encode_to_vec()).unwrap();
    }
    w.finish().unwrap();
    let mut bytes = std::fs::read(&plain).unwrap();
    let at = 16 + lens[0] + 16 + lens[1] + 12 + 5;
    bytes[at] ^= 0x40;
    std::fs::write(&plain, &bytes).unwrap();
    let out = dir.join("corrupt.tif");
    let err = import_predictions(
        &small_mixer(),
        std::slice::from_ref(&plain),
        &out,
        &ImportOptions::default(),
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.starts_with("record 2 (") && err.contains("data CRC mismatch"),
        "{err}"
    );
    // Records spread over two files count across them.
    let a = dir.join("a.tfrecord.gz");
    let b = dir.join("b.tfrecord");
    write_records(&a, &good[..1]);
    let mut w = TfRecordWriter::new(File::create(&b).unwrap(), Compression::None);
    w.write_record(&good[1].encode_to_vec()).unwrap();
    w.write_record(&prediction(2, 9).encode_to_vec()).unwrap();
    w.finish().unwrap();
    let err = import_predictions(
        &small_mixer(),
        &[a, b.clone()],
        &out,
        &ImportOptions::default(),
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.starts_with(&format!(
            "record 2 ({}, record 1 of that file)",
            b.display()
        )),
        "{err}"
    );
}

#[test]
fn masked_patches_are_dropped_and_stale_outputs_removed() {
    let dir = tmp("masked");
    let raster = Raster::new(32, 8, &["B1", "B2"], |x, _| x < 16);
    let input = dir.join("in.tif");
    raster.write(&input);
    let prefix = dir.join("m");
    // First a sharded export with a mixer...
    let first = export_image(
        &stack(&input),
        &prefix,
        &ExportOptions {
            patch_dimensions: [8, 8],
            max_file_size: 600,
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!((first.patches, first.files.len()), (4, 4));
    assert!(mixer_path(&prefix).exists());
    // ...then one dropping the masked half: fewer shards, no mixer, nothing stale left.
    let second = export_image(
        &stack(&input),
        &prefix,
        &ExportOptions {
            patch_dimensions: [8, 8],
            max_masked_ratio: 0.5,
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!((second.patches, second.dropped_masked), (2, 2));
    assert_eq!(
        second.files,
        vec![shard_path(&prefix, 0, Compression::Gzip)]
    );
    assert!(second.mixer.is_none() && !mixer_path(&prefix).exists());
    for i in 1..4 {
        assert!(!shard_path(&prefix, i, Compression::Gzip).exists());
    }
    // The two kept are the unmasked ones, in order.
    let (reader, _) = open_reader(File::open(&second.files[0]).unwrap()).unwrap();
    let firsts: Vec<f32> = reader
        .map(|r| {
            let e = Example::decode(&r.unwrap()[..]).unwrap();
            match &e.features.unwrap().feature["B2"].kind {
                Some(feature::Kind::FloatList(l)) => l.value[0],
                _ => panic!("not floats"),
            }
        })
        .collect();
    assert_eq!(firsts, vec![value(1, 16, 0, 32), value(1, 24, 0, 32)]);
}

#[test]
fn drop_partial_keeps_whole_patches_only() {
    let dir = tmp("partial");
    let raster = Raster::new(37, 23, &["B1"], |_, _| false);
    let input = dir.join("in.tif");
    raster.write(&input);
    let opts = ExportOptions {
        patch_dimensions: [8, 8],
        drop_partial: true,
        ..Default::default()
    };
    let r = export_image(&stack(&input), &dir.join("d"), &opts).unwrap();
    assert_eq!((r.grid, r.patches), ([4, 2], 8));
    let m = Mixer::read(r.mixer.unwrap()).unwrap();
    assert_eq!((m.patches_per_row, m.total_patches), (4, 8));
    let too_small = ExportOptions {
        patch_dimensions: [64, 8],
        drop_partial: true,
        ..Default::default()
    };
    let err = export_image(&stack(&input), &dir.join("e"), &too_small).unwrap_err();
    assert!(
        err.to_string().contains("holds no whole 64x8 patch"),
        "{err}"
    );
}

/// Writes an int16 label raster: class `x / 10` (0..3), nodata on row 0.
fn labels(path: &Path, w: usize, h: usize) {
    use gdal::raster::{Buffer, RasterCreationOptions};
    let driver = gdal::DriverManager::get_driver_by_name("GTiff").unwrap();
    let mut ds = driver
        .create_with_band_type_with_options::<i16, _>(path, w, h, 1, &RasterCreationOptions::new())
        .unwrap();
    ds.set_geo_transform(&TRANSFORM).unwrap();
    ds.set_spatial_ref(&gdal::spatial_ref::SpatialRef::from_epsg(32633).unwrap())
        .unwrap();
    let data: Vec<i16> = (0..w * h)
        .map(|i| {
            if i / w == 0 {
                -1
            } else {
                ((i % w) / 10) as i16
            }
        })
        .collect();
    let mut band = ds.rasterband(1).unwrap();
    band.set_no_data_value(Some(-1.0)).unwrap();
    band.write((0, 0), (w, h), &mut Buffer::new((w, h), data))
        .unwrap();
}

/// Decodes every Example of a record file into (band values, label).
pub fn samples(path: &Path, bands: &[&str], label: &str) -> Vec<(Vec<Vec<f32>>, f64)> {
    let (reader, _) = open_reader(File::open(path).unwrap()).unwrap();
    reader
        .map(|r| {
            let e = Example::decode(&r.unwrap()[..]).unwrap();
            let f = e.features.unwrap().feature;
            let values = bands
                .iter()
                .map(|b| match &f[*b].kind {
                    Some(feature::Kind::FloatList(l)) => l.value.clone(),
                    _ => panic!("{b} is not a float_list"),
                })
                .collect();
            let label = match &f[label].kind {
                Some(feature::Kind::Int64List(l)) => l.value[0] as f64,
                Some(feature::Kind::FloatList(l)) => l.value[0] as f64,
                _ => panic!("no label"),
            };
            (values, label)
        })
        .collect()
}

/// Checks each sample's neighbourhood against the raster and its label against `label_at`;
/// returns the sample centres.
pub fn check_samples(
    raster: &Raster,
    found: &[(Vec<Vec<f32>>, f64)],
    k: usize,
    label_at: impl Fn(usize, usize) -> f64,
) -> Vec<(usize, usize)> {
    let half = (k / 2) as i64;
    found
        .iter()
        .map(|(values, label)| {
            // Band 2 is never masked: its centre value names the pixel.
            let centre = values[1][k * k / 2] - 0.5 - 10_000.0;
            let (x, y) = (
                centre as usize % raster.width,
                centre as usize / raster.width,
            );
            for (b, v) in values.iter().enumerate() {
                assert_eq!(
                    v,
                    &raster.window(b, x as i64 - half, y as i64 - half, k, k, 0.0),
                    "band {b} at ({x}, {y})"
                );
            }
            assert_eq!(*label, label_at(x, y), "label at ({x}, {y})");
            (x, y)
        })
        .collect()
}

#[test]
fn training_samples_are_stratified_split_and_deterministic() {
    let dir = tmp("training");
    let raster = Raster::new(37, 23, &["B1", "B2"], |x, y| (x + y) % 9 == 0);
    let input = dir.join("in.tif");
    raster.write(&input);
    let lab = dir.join("labels.tif");
    labels(&lab, 37, 23);
    let run = |seed: u64, out: &str| {
        export_training(
            std::slice::from_ref(&input),
            &LabelSource::Raster(lab.clone()),
            &dir.join(out),
            &TrainingOptions {
                kernel: 3,
                samples: Some(100),
                seed,
                splits: vec![("train".into(), 0.75), ("eval".into(), 0.25)],
                ..Default::default()
            },
        )
        .unwrap()
    };
    let report = run(42, "a.tfrecord.gz");
    assert!(report.integer_labels);
    assert_eq!(report.label, "label");
    assert_eq!(report.splits[0].path, dir.join("a-train.tfrecord.gz"));
    assert_eq!(report.splits[1].path, dir.join("a-eval.tfrecord.gz"));
    // Candidates: rows 1..23, minus B1's masked pixels; class 3 (x 30..36) has fewer than 100.
    let candidates = |class: usize| {
        (1..23)
            .flat_map(|y| (0..37).map(move |x| (x, y)))
            .filter(|&(x, y)| x / 10 == class && (x + y) % 9 != 0)
            .count() as u64
    };
    assert_eq!(report.candidates, (0..4).map(candidates).sum::<u64>());
    for class in 0..4 {
        let kept = candidates(class).min(100);
        let train = report.splits[0].per_label[&class.to_string()];
        let eval = report.splits[1].per_label[&class.to_string()];
        assert_eq!(train + eval, kept, "class {class}");
        assert_eq!(train, (kept as f64 * 0.75).round() as u64, "class {class}");
    }
    let mut all = Vec::new();
    for split in &report.splits {
        let found = samples(&split.path, &["B1", "B2"], "label");
        assert_eq!(found.len() as u64, split.records);
        all.extend(check_samples(&raster, &found, 3, |x, _| (x / 10) as f64));
    }
    all.sort();
    let n = all.len();
    all.dedup();
    assert_eq!(all.len(), n, "a pixel was sampled twice");

    // Same seed, same bytes; another seed, another draw.
    let again = run(42, "b.tfrecord.gz");
    let other = run(7, "c.tfrecord.gz");
    for i in 0..2 {
        let a = std::fs::read(&report.splits[i].path).unwrap();
        assert_eq!(a, std::fs::read(&again.splits[i].path).unwrap());
        assert_ne!(a, std::fs::read(&other.splits[i].path).unwrap());
    }
}

#[test]
fn training_at_points_reads_their_property() {
    let dir = tmp("points");
    let raster = Raster::new(20, 10, &["B1", "B2"], |x, y| x == 3 && y == 3);
    let input = dir.join("in.tif");
    raster.write(&input);
    // Pixel centres in the raster's CRS; one masked, one outside.
    let centre = |x: f64, y: f64| {
        (
            TRANSFORM[0] + (x + 0.5) * 10.0,
            TRANSFORM[3] - (y + 0.5) * 10.0,
        )
    };
    let pts = [
        (1.0, 2.0, 0.25),
        (3.0, 3.0, 9.0),
        (19.0, 9.0, 1.5),
        (25.0, 1.0, 2.0),
        (5.0, 0.0, -4.0),
    ];
    let features: Vec<String> = pts
        .iter()
        .map(|&(x, y, v)| {
            let (e, n) = centre(x, y);
            format!(r#"{{"type":"Feature","properties":{{"w":{v:.2}}},"geometry":{{"type":"Point","coordinates":[{e},{n}]}}}}"#)
        })
        .collect();
    let geojson = dir.join("pts.geojson");
    std::fs::write(
        &geojson,
        format!(
            r#"{{"type":"FeatureCollection","crs":{{"type":"name","properties":{{"name":"urn:ogc:def:crs:EPSG::32633"}}}},"features":[{}]}}"#,
            features.join(",")
        ),
    )
    .unwrap();
    let out = dir.join("pts.tfrecord");
    let report = export_training(
        &[input],
        &LabelSource::Points {
            path: geojson,
            property: "w".into(),
        },
        &out,
        &TrainingOptions {
            kernel: 5,
            seed: 3,
            ..Default::default()
        },
    )
    .unwrap();
    assert!(!report.integer_labels);
    assert_eq!((report.candidates, report.skipped_points), (3, 2));
    assert_eq!(report.label, "w");
    let found = samples(&out, &["B1", "B2"], "w");
    let mut got = check_samples(&raster, &found, 5, |x, y| {
        pts.iter()
            .find(|p| p.0 as usize == x && p.1 as usize == y)
            .unwrap()
            .2
    });
    got.sort();
    assert_eq!(got, vec![(1, 2), (5, 0), (19, 9)]);
}
