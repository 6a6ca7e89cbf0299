//! `ee.Model.predictImage` on the demo scene with the demo model, run in process: the spec
//! `demo/water-spec.json` (a local ONNX predictor, input bands B2, B3, B4, B8 as one `input`
//! array, 128 x 128 tiles with 8 pixels of overlap, output band `water`) is applied to
//! `demo/scene.tif` (512 x 512), writing a GeoTIFF into the system temp directory. The result
//! is read back and its water fraction printed.
//!
//! `cargo run -p ee-model --example predict_demo` (no arguments).

use std::path::Path;

use ee_model::{Model, ModelSpec, PredictOptions};
use ee_raster_io::{InputStack, Resampling};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let demo = Path::new(env!("CARGO_MANIFEST_DIR")).join("demo");
    let spec = ModelSpec::from_file(&demo.join("water-spec.json"))?;
    let model = Model::new(spec)?;
    println!("predictor: {}", model.describe());

    let dir = std::env::temp_dir().join("ee-model-predict-demo");
    std::fs::create_dir_all(&dir)?;
    let output = dir.join("water.tif");
    let report = model
        .predict_image(
            &[demo.join("scene.tif")],
            &output,
            &PredictOptions::default(),
        )
        .await?;
    println!(
        "{}: {}; bands {:?}; {:.2} s",
        report.output.display(),
        report.plan,
        report.bands,
        report.elapsed.as_secs_f64()
    );

    // Read the prediction back: a probability per pixel, mostly land with a river.
    let stack = InputStack::open(
        std::slice::from_ref(&report.output),
        &[],
        None,
        Resampling::Nearest,
    )?;
    let size = stack.grid().size;
    let water = stack.read_window::<f32>(size.window(), f32::NAN)?;
    let values = water.values.index_axis(ndarray::Axis(0), 0);
    let valid = water.valid.iter().filter(|v| **v).count();
    let wet = values.iter().filter(|p| **p > 0.5).count();
    let in_range = values.iter().all(|p| (0.0..=1.0).contains(p));
    println!(
        "{} x {} pixels, {valid} valid, {:.1}% water (p > 0.5)",
        size.width,
        size.height,
        100.0 * wet as f64 / values.len() as f64
    );
    if (size.width, size.height) != (512, 512) || valid != 512 * 512 || !in_range {
        return Err("the prediction is not a 512 x 512 probability raster".into());
    }
    if wet == 0 || wet == values.len() {
        return Err("expected both water and land in the demo scene".into());
    }
    Ok(())
}
