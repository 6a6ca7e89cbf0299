//! The embedded runtime (`ee_runtime::LocalModel`, tract) on the demo model
//! (`ee-model/demo/water.onnx`, a batch of four 128 x 128 x 4 tiles) and on a ResNet basic
//! block (`benches/models/resnet_block.onnx`, 64 channels, made by
//! `benches/python/make_resnet_block.py`), one thread, median time per run. With `--bench` it
//! prints one machine-readable line per model,
//!
//! ```text
//! bench-runtime| NAME | SHAPE | median ms per run | mean |output|
//! ```
//!
//! the same lines `benches/python/onnxruntime_bench.py` prints for onnxruntime on the same
//! models, inputs and thread count; `cargo xtask bench` runs both and reports the ratio.
//! Without `--bench` (as `cargo test` runs it) it runs each model twice and checks the answers.

use std::path::PathBuf;
use std::time::Instant;

use ee_runtime::{Layout, LocalModel};
use ee_tensor_proto::{Instance, Tensor};

/// Name, model path (from the workspace root), NHWC input shape. Keep in step with
/// `benches/python/onnxruntime_bench.py`.
const CASES: [(&str, &str, [usize; 4]); 2] = [
    ("water", "ee-model/demo/water.onnx", [4, 128, 128, 4]),
    (
        "resnet_block",
        "benches/models/resnet_block.onnx",
        [1, 64, 64, 64],
    ),
];

/// The batch as instances: values sin(i * 0.618034) over the flat NHWC index, in float32.
fn batch(shape: [usize; 4]) -> Vec<Instance> {
    let per = shape[1] * shape[2] * shape[3];
    (0..shape[0])
        .map(|n| {
            let values: Vec<f32> = (n * per..(n + 1) * per)
                .map(|i| ((i as f32) * 0.618_034).sin())
                .collect();
            Instance::new().with(
                "input",
                Tensor::from_vec(&shape[1..], values).expect("shape matches"),
            )
        })
        .collect()
}

/// Mean absolute value of every output of a run.
fn mean_abs(rows: &[Instance]) -> f64 {
    let (mut sum, mut n) = (0.0f64, 0usize);
    for row in rows {
        for (_, t) in row.iter() {
            let a = t.to_f64().expect("numeric output");
            sum += a.iter().map(|v| v.abs()).sum::<f64>();
            n += a.len();
        }
    }
    sum / n.max(1) as f64
}

/// CPU time of the calling thread (Linux), in seconds.
fn thread_cpu_seconds() -> Option<f64> {
    #[cfg(target_os = "linux")]
    {
        #[repr(C)]
        struct Timespec {
            tv_sec: i64,
            tv_nsec: i64,
        }
        extern "C" {
            fn clock_gettime(clock: i32, ts: *mut Timespec) -> i32;
        }
        const CLOCK_THREAD_CPUTIME_ID: i32 = 3;
        let mut ts = Timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: clock_gettime writes one timespec through a valid pointer.
        let rc = unsafe { clock_gettime(CLOCK_THREAD_CPUTIME_ID, &mut ts) };
        (rc == 0).then_some(ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9)
    }
    #[cfg(not(target_os = "linux"))]
    {
        None
    }
}

fn main() {
    // As the ee-model binary does at start-up; EE_BENCH_RUNTIME_MALLOC=default leaves glibc's
    // malloc as it is, to measure what the tuning is worth.
    if std::env::var("EE_BENCH_RUNTIME_MALLOC").as_deref() != Ok("default") {
        ee_runtime::tune_allocator();
    }
    let bench = std::env::args().any(|a| a == "--bench");
    let runs: usize = std::env::var("EE_BENCH_RUNTIME_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(30);
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    // EE_BENCH_RUNTIME_CLOCK=cpu times runs in this thread's CPU time instead of wall time
    // (as onnxruntime_bench.py does with the same variable): steadier on a busy machine.
    let cpu_clock = std::env::var("EE_BENCH_RUNTIME_CLOCK").as_deref() == Ok("cpu");
    // EE_BENCH_RUNTIME_ONLY=NAME runs one model (to profile it, e.g. under `perf record`).
    let only = std::env::var("EE_BENCH_RUNTIME_ONLY").ok();
    for (name, rel, shape) in CASES {
        if only.as_deref().is_some_and(|o| o != name) {
            continue;
        }
        let model = LocalModel::load(root.join(rel), Layout::Nhwc).expect("model loads");
        let input = batch(shape);
        // The first run plans for the shape (cached afterwards), as in a prediction job.
        let mut out = model.run(&input).expect("model runs");
        if !bench {
            let again = model.run(&input).expect("model runs again");
            assert_eq!(out, again, "{name}: two runs give the same answer");
            assert_eq!(out.len(), shape[0], "{name}: one answer per instance");
            let t = out[0].iter().next().expect("an output").1;
            let channels = if name == "water" { 1 } else { 64 };
            assert_eq!(
                t.shape(),
                [shape[1], shape[2], channels],
                "{name}: output shape"
            );
            let m = mean_abs(&out);
            assert!(m.is_finite() && m > 0.0, "{name}: mean |output| {m}");
            println!("{name}: ok, mean |output| {m:.6}");
            continue;
        }
        for _ in 0..2 {
            out = model.run(&input).expect("model runs");
        }
        let mut times: Vec<f64> = (0..runs)
            .map(|_| {
                let (start, cpu) = (Instant::now(), thread_cpu_seconds());
                out = model.run(std::hint::black_box(&input)).expect("model runs");
                match (cpu_clock, cpu, thread_cpu_seconds()) {
                    (true, Some(a), Some(b)) => b - a,
                    _ => start.elapsed().as_secs_f64(),
                }
            })
            .collect();
        times.sort_by(|a, b| a.total_cmp(b));
        let shape_s = shape.map(|d| d.to_string()).join("x");
        println!(
            "bench-runtime| {name} | {shape_s} | {:.3} | {:.6}",
            times[times.len() / 2] * 1e3,
            mean_abs(&out)
        );
    }
}
