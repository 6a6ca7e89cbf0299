//! Exports a raster as TFRecord patches, "predicts" by reading the patches back and writing
//! the mean of the bands per pixel as prediction records, then imports them into a GeoTIFF.
//!
//! `cargo run -p ee-patches --example roundtrip -- IN.tif OUT_DIR`

use std::fs::File;
use std::path::{Path, PathBuf};

use ee_patches::{export_image, import_predictions, ExportOptions, ImportOptions, Mixer};
use ee_raster_io::{InputStack, Resampling};
use ee_tensor_proto::example::{example, float_feature};
use ee_tensor_proto::proto::tensorflow::{feature, Example};
use ee_tensor_proto::tfrecord::{open_reader, Compression, TfRecordWriter};
use prost::Message;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let (input, dir) = match &args[1..] {
        [i, d] => (PathBuf::from(i), PathBuf::from(d)),
        _ => return Err("usage: roundtrip IN.tif OUT_DIR".into()),
    };
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
    Ok(())
}
