//! Exports a raster as TFRecord patches, "predicts" by reading the patches back and writing
//! the mean of the bands per pixel as prediction records, then imports them into a GeoTIFF.
//!
//! `cargo run -p ee-patches --example roundtrip -- [IN.tif [OUT_DIR]]`: IN.tif defaults to the
//! demo scene (`ee-model/demo/scene.tif`), OUT_DIR to a folder in the system temp directory.

use std::fs::File;
use std::path::{Path, PathBuf};

use ee_patches::{export_image, import_predictions, ExportOptions, ImportOptions, Mixer};
use ee_raster_io::{InputStack, Resampling};
use ee_tensor_proto::example::{example, float_feature};
use ee_tensor_proto::proto::tensorflow::{feature, Example};
use ee_tensor_proto::tfrecord::{open_reader, Compression, TfRecordWriter};
use prost::Message;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let input = args.next().map(PathBuf::from).unwrap_or_else(|| {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../ee-model/demo/scene.tif")
    });
    let dir = args
        .next()
        .map(PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("ee-patches-roundtrip"));
    std::fs::create_dir_all(&dir)?;
    println!("{} -> {}", input.display(), dir.display());
    let stack = InputStack::open(&[input], &[], None, Resampling::Nearest)?;
    let options = ExportOptions {
        patch_dimensions: [128, 128],
        ..Default::default()
    };
    let report = export_image(&stack, &dir.join("patches"), &options)?;
    println!(
        "{} patches in {} file(s)",
        report.patches,
        report.files.len()
    );

    // The "model": the mean of the bands at each pixel.
    let preds = dir.join("pred-00000.tfrecord.gz");
    let mut writer = TfRecordWriter::new(File::create(&preds)?, Compression::Gzip);
    for path in &report.files {
        let (reader, _) = open_reader(File::open(path)?)?;
        for record in reader {
            let ex = Example::decode(&record?[..])?;
            let mut mean = vec![0f32; 128 * 128];
            let features = ex.features.map(|f| f.feature).unwrap_or_default();
            for f in features.values() {
                if let Some(feature::Kind::FloatList(l)) = &f.kind {
                    for (m, v) in mean.iter_mut().zip(&l.value) {
                        *m += v / features.len() as f32;
                    }
                }
            }
            writer.write_record(&example([("mean", float_feature(mean))]).encode_to_vec())?;
        }
    }
    writer.finish()?;
    let mixer = Mixer::read(report.mixer.as_deref().unwrap_or(Path::new("")))?;
    let out = import_predictions(
        &mixer,
        &[preds],
        &dir.join("mean.tif"),
        &ImportOptions::default(),
    )?;
    println!(
        "wrote {} ({} x {})",
        out.output.display(),
        out.size.width,
        out.size.height
    );

    // Check: the imported raster is the mean of the input's bands at every pixel.
    let window = ee_tiling::RasterSize::new(out.size.width, out.size.height).window();
    let bands = stack.read_window::<f32>(window, 0.0)?.values;
    let mean = InputStack::open(
        std::slice::from_ref(&out.output),
        &[],
        None,
        Resampling::Nearest,
    )?
    .read_window::<f32>(window, 0.0)?
    .values;
    let expected = bands.mean_axis(ndarray::Axis(0)).ok_or("no bands")?;
    let worst = expected
        .iter()
        .zip(mean.iter())
        .map(|(e, m)| (e - m).abs() / e.abs().max(1.0))
        .fold(0.0f32, f32::max);
    println!("checked: mean of the bands at every pixel (largest relative difference {worst:e})");
    if worst > 1e-5 {
        return Err(format!("imported means differ from the bands' by up to {worst}").into());
    }
    Ok(())
}
