//! Benchmarks for the workspace (see `benches/`): codec throughput against memcpy, and
//! later tiling, raster I/O and end-to-end prediction. Shared fixtures live here.

use ee_tensor_proto::{Instance, Tensor};

/// A 256 x 256 x 4 float32 tile with varied values, the size Earth Engine users send.
pub fn sample_tile() -> Tensor {
    let (h, w, d) = (256usize, 256usize, 4usize);
    let values: Vec<f32> = (0..h * w * d)
        .map(|i| ((i as f32) * 0.618_034).sin() * 1000.0)
        .collect();
    Tensor::from_vec(&[h, w, d], values).expect("shape matches")
}

/// One instance holding the sample tile as band `B1`.
pub fn sample_instance() -> Instance {
    Instance::new().with("B1", sample_tile())
}

/// The fault-injecting HTTP proxy of `cargo xtask chaos` (also run in process by
/// `ee-model/tests/chaos.rs`).
#[path = "src/chaos.rs"]
pub mod chaos;
