"""Writes ee-model/tests/models/sqrt.onnx, the model of the non-finite answer tests: the
square root of every input value, so negative inputs give NaN (and a shifted input gives NaN
everywhere). Run from the repository root:

    target/py/bin/python ee-model/tests/models/make_sqrt.py

Input:  input  float32 [N, H, W, C]
Output: output float32 [N, H, W, C] = sqrt(input)
"""

import os

import onnx
from onnx import TensorProto, helper

MODELS = os.path.dirname(os.path.abspath(__file__))


def make_sqrt(path):
    """Builds and checks the model, then saves it to `path`."""
    dims = ["N", "H", "W", "C"]
    graph = helper.make_graph(
        [helper.make_node("Sqrt", ["input"], ["output"])],
        "sqrt",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, dims)],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, dims)],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, path)


if __name__ == "__main__":
    make_sqrt(os.path.join(MODELS, "sqrt.onnx"))
