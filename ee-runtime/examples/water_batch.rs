//! Loads the demo water model (`ee-model/demo/water.onnx`: NHWC float32 reflectance of bands
//! B2, B3, B4, B8 in, a "water" probability out), runs one batch of four synthetic 64 x 64
//! tiles that are 0, 1/3, 2/3 and all water, and prints what came back per tile. A second run
//! of the same shape reuses the cached plan.
//!
//! `cargo run -p ee-runtime --example water_batch` (no arguments).

use std::path::Path;
use std::time::Instant;

use ee_runtime::{Layout, LocalModel};
use ee_tensor_proto::{Instance, Tensor};

const SIZE: usize = 64;
/// Reflectance x 10000 of B2, B3, B4, B8, as in the demo scene.
const WATER: [f32; 4] = [600.0, 700.0, 400.0, 200.0];
const FOREST: [f32; 4] = [300.0, 600.0, 300.0, 3800.0];

/// A tile whose first `water_cols` columns are water, the rest forest.
fn tile(water_cols: usize) -> Tensor {
    let mut values = Vec::with_capacity(SIZE * SIZE * 4);
    for _row in 0..SIZE {
        for col in 0..SIZE {
            values.extend(if col < water_cols { WATER } else { FOREST });
        }
    }
    Tensor::from_vec(&[SIZE, SIZE, 4], values).expect("64 x 64 x 4 values")
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../ee-model/demo/water.onnx");
    let model = LocalModel::load(&path, Layout::Nhwc)?;
    for i in model.input_infos() {
        println!("input  {:?} {} {:?}", i.name, i.dtype, i.signed_shape());
    }
    for o in model.output_infos() {
        println!("output {:?} {} {:?}", o.name, o.dtype, o.signed_shape());
    }
    println!("batchable: {}", model.batchable());

    let water_cols = [0, SIZE / 3, 2 * SIZE / 3, SIZE];
    let batch: Vec<Instance> = water_cols
        .iter()
        .map(|&w| Instance::new().with("input", tile(w)))
        .collect();

    let start = Instant::now();
    let answers = model.run(&batch)?;
    let first = start.elapsed();
    let start = Instant::now();
    model.run(&batch)?;
    let second = start.elapsed();
    println!(
        "ran a batch of {} tiles: {:.0} ms (planning for the shape included), {:.0} ms again (cached plan)",
        batch.len(),
        first.as_secs_f64() * 1e3,
        second.as_secs_f64() * 1e3
    );

    if answers.len() != batch.len() {
        return Err(format!("{} answers for {} tiles", answers.len(), batch.len()).into());
    }
    for (answer, &w) in answers.iter().zip(&water_cols) {
        let out = answer.get("water").ok_or("no output named \"water\"")?;
        let probs = out
            .array::<f32>()
            .ok_or("the water output is not float32")?;
        if out.shape() != [SIZE, SIZE, 1] {
            return Err(format!("water output has shape {:?}", out.shape()).into());
        }
        let mean = probs.mean().unwrap_or(f32::NAN);
        let (lo, hi) = probs
            .iter()
            .fold((f32::MAX, f32::MIN), |(lo, hi), &v| (lo.min(v), hi.max(v)));
        let wet = probs.iter().filter(|&&p| p > 0.5).count() as f64 / probs.len() as f64;
        let expected = w as f64 / SIZE as f64;
        println!(
            "tile {:>3.0}% water: output {:?}, mean {mean:.3}, min {lo:.3}, max {hi:.3}, {:.1}% of pixels > 0.5",
            expected * 100.0,
            out.shape(),
            wet * 100.0
        );
        if !(0.0..=1.0).contains(&lo) || !(0.0..=1.0).contains(&hi) {
            return Err("probabilities outside [0, 1]".into());
        }
        // Only the pixels next to the water's edge may go either way.
        if (wet - expected).abs() > 2.0 / SIZE as f64 {
            return Err(
                format!("expected {expected:.3} of the tile as water, got {wet:.3}").into(),
            );
        }
    }
    println!("ok");
    Ok(())
}
