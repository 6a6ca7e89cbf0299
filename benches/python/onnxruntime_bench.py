"""onnxruntime side of the embedded-runtime comparison (the Rust side is
benches/benches/runtime.rs; `cargo xtask bench` runs both and prints the ratio).

Same models, same input shapes and values, same thread count (one: tract runs on the calling
thread), full graph optimisation (onnxruntime's default). Prints one machine-readable line per
model:

    bench-runtime| NAME | SHAPE | median ms per run | mean |output|

    target/py/bin/python benches/python/onnxruntime_bench.py [--runs N]

EE_BENCH_RUNTIME_CLOCK=cpu times in the thread's CPU time (steadier on a busy machine).
"""

import argparse
import os
import time

import numpy as np
import onnxruntime as ort

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))

# name, model path (from the workspace root), NHWC input shape. Keep in step with runtime.rs.
CASES = [
    ("water", "ee-model/demo/water.onnx", (4, 128, 128, 4)),
    ("resnet_block", "benches/models/resnet_block.onnx", (1, 64, 64, 64)),
]


def sample(shape):
    """The values runtime.rs feeds: sin(i * 0.618034), i the flat index, in float32."""
    n = int(np.prod(shape))
    i = np.arange(n, dtype=np.float32)
    return np.sin(i * np.float32(0.618034)).astype(np.float32).reshape(shape)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    # EE_BENCH_RUNTIME_CLOCK=cpu: this thread's CPU time instead of wall time, as runtime.rs
    # does with the same variable (onnxruntime with one intra-op thread runs on this thread).
    cpu = os.environ.get("EE_BENCH_RUNTIME_CLOCK") == "cpu"
    clock = time.thread_time if cpu else time.perf_counter
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    for name, rel, shape in CASES:
        sess = ort.InferenceSession(
            os.path.join(ROOT, rel), sess_options=opts, providers=["CPUExecutionProvider"]
        )
        feed = {sess.get_inputs()[0].name: sample(shape)}
        for _ in range(3):
            out = sess.run(None, feed)[0]
        times = []
        for _ in range(args.runs):
            t0 = clock()
            out = sess.run(None, feed)[0]
            times.append(clock() - t0)
        times.sort()
        median_ms = times[len(times) // 2] * 1e3
        shape_s = "x".join(map(str, shape))
        print(
            f"bench-runtime| {name} | {shape_s} | {median_ms:.3f} | {float(np.abs(out).mean()):.6f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
