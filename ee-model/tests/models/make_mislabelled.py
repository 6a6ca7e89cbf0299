"""Writes ee-model/tests/models/mislabelled.onnx: an NCHW model whose declared output (and
value_info) names the height axis after the batch axis, `[batch_size, 3, batch_size, W]`,
as PyTorch's exporter did for a real U-Net (EfficientNet-b4). onnxruntime runs it; a shape
solver that trusts the declared output dims cannot type it. Run from the repository root:

    target/py/bin/python ee-model/tests/models/make_mislabelled.py

Input:  input  float32 [batch_size, 3, height, width]
Output: output float32 = relu(conv1x1(input, identity weights)) = max(input, 0)
"""

import os

import numpy as np
import onnx
from onnx import TensorProto, helper

MODELS = os.path.dirname(os.path.abspath(__file__))


def make_mislabelled(path):
    """Builds and checks the model, then saves it to `path`."""
    eye = np.eye(3, dtype=np.float32).reshape(-1).tolist()
    w = helper.make_tensor("w", TensorProto.FLOAT, [3, 3, 1, 1], eye)
    wrong = ["batch_size", 3, "batch_size", "Convoutput_dim_3"]
    graph = helper.make_graph(
        [
            helper.make_node("Conv", ["input", "w"], ["c"]),
            helper.make_node("Relu", ["c"], ["output"]),
        ],
        "mislabelled",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch_size", 3, "height", "width"])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, wrong)],
        initializer=[w],
        value_info=[helper.make_tensor_value_info("c", TensorProto.FLOAT, wrong)],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, path)


if __name__ == "__main__":
    make_mislabelled(os.path.join(MODELS, "mislabelled.onnx"))
