"""The real Python clients against `ee-model serve` (run by ee-model/tests/serve.rs).

usage: serve_clients.py HTTP_ADDR GRPC_ADDR MODEL.onnx

Each check sends the same random tiles through one client and compares the answer with the
ONNX reference evaluator's output for the same model, printing "<check> ok":
- tf-serving-grpc: the tensorflow-serving-api PredictionService stub, tf.make_tensor_proto
- tf-serving-rest-row / -columnar: requests, TF Serving REST JSON
- ai-platform-serialized / vertex-serialized: requests, instances of URL-safe base64 of
  tf.io.serialize_tensor, answers decoded by tf.io.parse_tensor
- kserve-v2-json: requests, Open Inference Protocol v2 JSON
- metadata: TF Serving and KServe metadata name the input, dtype and shape
- bad-input: malformed JSON is a 400 with {"error"}, wrong channels an INVALID_ARGUMENT
- google-aiplatform-*: Google's own google-cloud-aiplatform PredictionServiceClient (REST
  transport) on the Vertex route: bare [row][col][channel] lists and SERIALIZED_TF_TENSORS
  through predict, the same JSON through raw_predict, and bad requests raised as
  google.api_core.exceptions.BadRequest carrying the node's message. Prints
  "google-aiplatform missing" when the package is not installed.
"""

import base64
import json
import sys

import grpc
import numpy as np
import requests
import tensorflow as tf
from onnx.reference import ReferenceEvaluator
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

HTTP, GRPC, MODEL = sys.argv[1:4]
NAME = "conv"

ref = ReferenceEvaluator(MODEL)
rng = np.random.default_rng(7)
x = rng.normal(size=(3, 9, 11, 3)).astype(np.float32)
want = ref.run(None, {"input": x})[0]


def close(got, what):
    got = np.asarray(got, dtype=np.float32)
    assert got.shape == want.shape, f"{what}: shape {got.shape} != {want.shape}"
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5, err_msg=what)
    print(f"{what} ok", flush=True)


def post(path, **kw):
    r = requests.post(f"http://{HTTP}{path}", timeout=60, **kw)
    assert r.status_code == 200, f"{path}: {r.status_code} {r.text[:300]}"
    return r.json()


# TF Serving gRPC with the official stub.
channel = grpc.insecure_channel(GRPC, options=[("grpc.max_receive_message_length", 64 << 20)])
stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)


def grpc_request(tiles):
    req = predict_pb2.PredictRequest()
    req.model_spec.name = NAME
    req.model_spec.signature_name = "serving_default"
    req.inputs["input"].CopyFrom(tf.make_tensor_proto(tiles))
    return req


resp = stub.Predict(grpc_request(x), timeout=60)
close(tf.make_ndarray(resp.outputs["output"]), "tf-serving-grpc")

# TF Serving REST, row and columnar.
rows = post(f"/v1/models/{NAME}:predict", json={"instances": x.tolist()})["predictions"]
close(rows, "tf-serving-rest-row")
cols = post(f"/v1/models/{NAME}/versions/1:predict", json={"inputs": {"input": x.tolist()}})["outputs"]
close(cols["output"] if isinstance(cols, dict) else cols, "tf-serving-rest-columnar")


# AI Platform and Vertex with Earth Engine's SERIALIZED_TF_TENSORS.
def b64(tile):
    return base64.urlsafe_b64encode(tf.io.serialize_tensor(tile).numpy()).decode().rstrip("=")


def unb64(text):
    raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    return tf.io.parse_tensor(raw, tf.float32).numpy()


body = {"instances": [{"input": b64(x[i])} for i in range(len(x))]}
for path, what in [
    (f"/v1/projects/p/models/{NAME}/versions/v1:predict", "ai-platform-serialized"),
    ("/v1/projects/p/locations/us-central1/endpoints/123:predict", "vertex-serialized"),
]:
    preds = post(path, json=body)["predictions"]
    assert all(isinstance(p, str) for p in preds), "a single-output model answers strings"
    close(np.stack([unb64(p) for p in preds]), what)

# KServe v2 JSON.
ks = post(
    f"/v2/models/{NAME}/infer",
    json={"inputs": [{"name": "input", "shape": list(x.shape), "datatype": "FP32",
                      "data": x.flatten().tolist()}]},
)
out = ks["outputs"][0]
assert out["name"] == "output" and out["datatype"] == "FP32", out
close(np.array(out["data"], np.float32).reshape(out["shape"]), "kserve-v2-json")

# Metadata.
meta = requests.get(f"http://{HTTP}/v1/models/{NAME}/metadata", timeout=30).json()
sig = meta["metadata"]["signature_def"]["signature_def"]["serving_default"]
assert sig["inputs"]["input"]["dtype"] == "DT_FLOAT", sig
assert [d["size"] for d in sig["inputs"]["input"]["tensor_shape"]["dim"]] == ["-1", "-1", "-1", "3"], sig
kmeta = requests.get(f"http://{HTTP}/v2/models/{NAME}", timeout=30).json()
assert kmeta["inputs"][0] == {"name": "input", "datatype": "FP32", "shape": [-1, -1, -1, 3]}, kmeta
assert requests.get(f"http://{HTTP}/v2/health/ready", timeout=30).json() == {"ready": True}
print("metadata ok", flush=True)

# Bad input: named in a 400, and the node keeps serving.
r = requests.post(f"http://{HTTP}/v1/models/{NAME}:predict", data="{not json", timeout=30)
assert r.status_code == 400 and "error" in r.json(), r.text
try:
    stub.Predict(grpc_request(x[..., :2]), timeout=60)
    raise AssertionError("two channels for a three-channel model were accepted")
except grpc.RpcError as e:
    assert e.code() == grpc.StatusCode.INVALID_ARGUMENT, e
    assert "[?, ?, 3]" in e.details(), e.details()
resp = stub.Predict(grpc_request(x), timeout=60)
close(tf.make_ndarray(resp.outputs["output"]), "bad-input")

# Google's own client: google-cloud-aiplatform's generated PredictionServiceClient, REST
# transport, pointed at the node (it appends ?$alt=json;enum-encoding=int to the URL).
try:
    from google.api import httpbody_pb2
    from google.api_core import exceptions as google_exceptions
    from google.api_core.client_options import ClientOptions
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import aiplatform_v1
    from google.protobuf import json_format, struct_pb2
except ImportError as e:
    print(f"google-aiplatform missing: {e}", flush=True)
    sys.exit(0)

client = aiplatform_v1.PredictionServiceClient(
    client_options=ClientOptions(api_endpoint=f"http://{HTTP}"),
    credentials=AnonymousCredentials(),
    transport="rest",
)
endpoint = "projects/p/locations/us-central1/endpoints/123"


def values(items):
    return [json_format.ParseDict(item, struct_pb2.Value()) for item in items]


def predictions(response):
    return json.loads(type(response).to_json(response))["predictions"]


# Bare [row][col][channel] lists, as numpy's tolist() of an image gives them.
r = client.predict(endpoint=endpoint, instances=values([t.tolist() for t in x]))
close(np.array(predictions(r), np.float32), "google-aiplatform-predict")

# Earth Engine's SERIALIZED_TF_TENSORS through the same client.
r = client.predict(endpoint=endpoint, instances=values([{"input": b64(t)} for t in x]))
close(np.stack([unb64(p) for p in predictions(r)]), "google-aiplatform-serialized")

# raw_predict: the same JSON, which the client sends wrapped as {"httpBody": {...}}.
raw = json.dumps({"instances": [t.tolist() for t in x]}).encode()
r = client.raw_predict(
    endpoint=endpoint,
    http_body=httpbody_pb2.HttpBody(content_type="application/json", data=raw),
)
close(np.array(json.loads(r.data)["predictions"], np.float32), "google-aiplatform-raw-predict")

# Bad requests are Google's BadRequest with the node's message, through both calls.
try:
    client.predict(endpoint=endpoint, instances=values([t[..., :2].tolist() for t in x]))
    raise AssertionError("two channels for a three-channel model were accepted")
except google_exceptions.BadRequest as e:
    assert e.code == 400 and "neither" in e.message and "[?, ?, 3]" in e.message, repr(e)
try:
    client.raw_predict(
        endpoint=endpoint,
        http_body=httpbody_pb2.HttpBody(content_type="application/json", data=b'{"instances": ['),
    )
    raise AssertionError("malformed JSON was accepted")
except google_exceptions.BadRequest as e:
    assert e.code == 400 and "malformed JSON" in e.message, repr(e)
print("google-aiplatform-errors ok", flush=True)
