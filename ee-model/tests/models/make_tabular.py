"""Writes ee-model/tests/models/tabular.onnx, the small per-feature model of the
predict-properties tests. Exact, simple arithmetic so the tests can check values exactly
(inputs chosen as small binary fractions are exact in float32). Run from the repository root:

    target/py/bin/python ee-model/tests/models/make_tabular.py

Inputs (N symbolic):
  a  float32 [N]      a scalar per feature
  v  float32 [N, 3]   an array of three per feature
Outputs:
  s  float32 [N]      2 * a + v0 + v1 + v2
  w  float32 [N, 2]   [a * v0, a * v1]
  k  int32   [N]      1 where a > 2, else 0
"""

import os

import onnx
from onnx import TensorProto, helper

MODELS = os.path.dirname(os.path.abspath(__file__))


def make_tabular(path):
    """Builds and checks the model, then saves it to `path`."""
    c = lambda name, dtype, dims, vals: helper.make_tensor(name, dtype, dims, vals)
    nodes = [
        helper.make_node("Constant", [], ["two"], value=c("two", TensorProto.FLOAT, [], [2.0])),
        helper.make_node("Constant", [], ["ax1"], value=c("ax1", TensorProto.INT64, [1], [1])),
        helper.make_node("Constant", [], ["start"], value=c("start", TensorProto.INT64, [1], [0])),
        helper.make_node("Constant", [], ["end"], value=c("end", TensorProto.INT64, [1], [2])),
        # s = 2a + sum(v, axis 1)
        helper.make_node("Mul", ["a", "two"], ["a2"]),
        helper.make_node("ReduceSum", ["v", "ax1"], ["vsum"], keepdims=0),
        helper.make_node("Add", ["a2", "vsum"], ["s"]),
        # w = a[:, None] * v[:, 0:2]
        helper.make_node("Unsqueeze", ["a", "ax1"], ["a_col"]),
        helper.make_node("Slice", ["v", "start", "end", "ax1"], ["v01"]),
        helper.make_node("Mul", ["a_col", "v01"], ["w"]),
        # k = int32(a > 2)
        helper.make_node("Greater", ["a", "two"], ["gt"]),
        helper.make_node("Cast", ["gt"], ["k"], to=TensorProto.INT32),
    ]
    graph = helper.make_graph(
        nodes,
        "tabular",
        [
            helper.make_tensor_value_info("a", TensorProto.FLOAT, ["N"]),
            helper.make_tensor_value_info("v", TensorProto.FLOAT, ["N", 3]),
        ],
        [
            helper.make_tensor_value_info("s", TensorProto.FLOAT, ["N"]),
            helper.make_tensor_value_info("w", TensorProto.FLOAT, ["N", 2]),
            helper.make_tensor_value_info("k", TensorProto.INT32, ["N"]),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, path)


if __name__ == "__main__":
    make_tabular(os.path.join(MODELS, "tabular.onnx"))
