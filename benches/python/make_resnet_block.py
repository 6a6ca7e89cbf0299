"""Builds benches/models/resnet_block.onnx: one ResNet basic block, 64 channels.

    x (NHWC) -> Transpose to NCHW -> Conv3x3(64->64, bias) -> Relu -> Conv3x3(64->64, bias)
      -> Add(x) -> Relu -> Transpose to NHWC

Batch normalisation is folded into the convolutions' biases, as exporters do for inference.
The input is NHWC (Earth Engine's layout) with symbolic batch, height and width, so the same
graph runs in tract (ee_runtime::LocalModel, Layout::Nhwc) and in onnxruntime. Weights are
He-initialised from a fixed seed, so the file is reproducible:

    target/py/bin/python benches/python/make_resnet_block.py benches/models/resnet_block.onnx
"""

import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

C = 64


def conv_weights(rng, name):
    w = rng.standard_normal((C, C, 3, 3)).astype(np.float32) * np.float32(np.sqrt(2.0 / (C * 9)))
    b = (rng.standard_normal(C) * 0.01).astype(np.float32)
    return numpy_helper.from_array(w, name + "_w"), numpy_helper.from_array(b, name + "_b")


def main(path):
    rng = np.random.default_rng(20240501)
    w1, b1 = conv_weights(rng, "conv1")
    w2, b2 = conv_weights(rng, "conv2")
    conv = dict(kernel_shape=[3, 3], pads=[1, 1, 1, 1], strides=[1, 1])
    nodes = [
        helper.make_node("Transpose", ["input"], ["x"], perm=[0, 3, 1, 2]),
        helper.make_node("Conv", ["x", "conv1_w", "conv1_b"], ["c1"], **conv),
        helper.make_node("Relu", ["c1"], ["r1"]),
        helper.make_node("Conv", ["r1", "conv2_w", "conv2_b"], ["c2"], **conv),
        helper.make_node("Add", ["c2", "x"], ["s"]),
        helper.make_node("Relu", ["s"], ["r2"]),
        helper.make_node("Transpose", ["r2"], ["output"], perm=[0, 2, 3, 1]),
    ]
    graph = helper.make_graph(
        nodes,
        "resnet_basic_block",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", "H", "W", C])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["N", "H", "W", C])],
        initializer=[w1, b1, w2, b2],
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="ee-benches"
    )
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, path)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "resnet_block.onnx")
