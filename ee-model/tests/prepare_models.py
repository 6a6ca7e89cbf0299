"""TensorFlow side of ee-model's `prepare` test (ee-model/tests/prepare.rs).

    python prepare_models.py WORKDIR EE_MODEL INPUT.raw HEIGHT WIDTH

1. Builds three SavedModels under WORKDIR with TensorFlow:
   keras/   a Keras 3 model written by `model.export()` (input "x", float32 [-1, -1, -1, 3];
            two 3x3 convolutions to 2 channels, receptive radius 2, fixed weights);
   tf1/     a TF1 graph (tf.compat.v1 placeholders, `saved_model.Builder`): inputs "x" float32
            [-1, -1, -1, 3] and "w" int32 [-1, -1, -1, 1], outputs "score" float32 and "label"
            int64, a resource variable;
   dtypes/  a TF1 graph with one placeholder per dtype Earth Engine carries, each output the
            identity of its input (and one unused variable: Earth Engine's prepare fails on a
            SavedModel without a checkpoint, ours does not).
2. Prepares each twice: with Earth Engine's own `earthengine model prepare` (the command class
   of earthengine-api, in a second Python process: it switches TensorFlow to v1 behaviour)
   into ee_*/, and with `EE_MODEL prepare` (ours, no TensorFlow) into ours_*/, using signature
   keys for the Keras model and graph tensor names for the others.
3. Loads both with `tf.saved_model.load` and checks that ours has exactly one signature,
   `serving_default`, with the same string inputs and outputs as Earth Engine's, and that both
   give byte-identical base64 strings for the same base64 inputs over several tile shapes and
   batch sizes (the Keras outputs also equal the Keras model's own prediction); then loads ours
   as TF Serving does (`tf.compat.v1.saved_model.load` into a Session, tensors run by their
   signature names) and checks the same strings come out.
4. Writes the counts to WORKDIR/report.json, the Keras model's whole-image prediction of
   INPUT.raw (float32, HEIGHT x WIDTH x 3) to WORKDIR/reference.raw, then serves the two
   prepared Keras models on the AI Platform predict route,
   POST /v1/projects/p/models/{ours,ee}/versions/v1:predict (input "B", output "out"), writing
   its port to WORKDIR/port once listening and "model instances bytes same|different" per
   request to WORKDIR/requests.log, where the last word says whether the other prepared model
   gives the same strings for the same request.

Any mismatch raises, so the process exits before writing the port, with the reason on stderr.
"""

import base64
import json
import os
import subprocess
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"

DTYPES = ["float32", "float64", "int32", "uint8", "int16", "int8", "string", "int64", "bool",
          "uint16", "float16", "uint32", "uint64"]


def ee_prepare(jobs_file):
    """Runs Earth Engine's `model prepare` command for each job (its CLI class, in process)."""
    import argparse

    from ee.cli import commands

    for job in json.load(open(jobs_file)):
        args = argparse.Namespace(source_dir=job["source"], dest_dir=job["dest"], input=job["input"],
                                  output=job["output"], tag=None, variables=None)
        # Each job in a fresh default graph, as in its own `earthengine` process.
        commands.tf.reset_default_graph()
        commands.PrepareModelCommand(argparse.ArgumentParser()).run(args, None)


def build_keras(path):
    import numpy as np
    import tensorflow as tf

    rng = np.random.default_rng(11)
    inp = tf.keras.Input(shape=(None, None, 3), name="x")
    c1 = tf.keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="c1")
    c2 = tf.keras.layers.Conv2D(2, 3, padding="same", name="c2")
    model = tf.keras.Model(inp, c2(c1(inp)))
    c1.set_weights([rng.normal(0, 0.3, (3, 3, 3, 4)).astype("float32"), rng.normal(0, 0.1, 4).astype("float32")])
    c2.set_weights([rng.normal(0, 0.3, (3, 3, 4, 2)).astype("float32"), rng.normal(0, 0.1, 2).astype("float32")])
    model.export(path, verbose=False)
    return model


def build_tf1(path):
    import numpy as np
    import tensorflow as tf

    v1 = tf.compat.v1
    graph = tf.Graph()
    with graph.as_default():
        x = v1.placeholder(tf.float32, [None, None, None, 3], name="x")
        w = v1.placeholder(tf.int32, [None, None, None, 1], name="w")
        kernel = v1.get_variable("kernel", initializer=np.linspace(-1, 1, 6, dtype="float32").reshape(1, 1, 3, 2),
                                 use_resource=True)
        logits = tf.nn.conv2d(x, kernel, 1, "SAME")
        score = tf.identity(tf.sigmoid(logits) * tf.cast(w, tf.float32), name="score")
        label = tf.identity(tf.argmax(logits, axis=-1), name="label")
        with v1.Session(graph=graph) as sess:
            sess.run(v1.global_variables_initializer())
            builder = v1.saved_model.Builder(path)
            sig = v1.saved_model.predict_signature_def({"x": x, "w": w}, {"score": score, "label": label})
            builder.add_meta_graph_and_variables(sess, ["serve"], signature_def_map={"serving_default": sig})
            builder.save()


def build_dtypes(path):
    import tensorflow as tf

    v1 = tf.compat.v1
    graph = tf.Graph()
    with graph.as_default():
        ins, outs = {}, {}
        for name in DTYPES:
            p = v1.placeholder(tf.as_dtype(name), [None, None, None], name=f"p_{name}")
            ins[name], outs[name] = p, tf.identity(p, name=f"o_{name}")
        # Earth Engine's prepare fails on a SavedModel without a checkpoint: give it one.
        v1.get_variable("unused", initializer=0.0, use_resource=True)
        with v1.Session(graph=graph) as sess:
            sess.run(v1.global_variables_initializer())
            builder = v1.saved_model.Builder(path)
            sig = v1.saved_model.predict_signature_def(ins, outs)
            builder.add_meta_graph_and_variables(sess, ["serve"], signature_def_map={"serving_default": sig})
            builder.save()


def random_tensor(rng, dtype, shape):
    import numpy as np

    if dtype == "string":
        return np.array([rng.bytes(int(rng.integers(0, 6))) for _ in range(int(np.prod(shape)))],
                        dtype=object).reshape(shape)
    if dtype == "bool":
        return rng.integers(0, 2, size=shape).astype(bool)
    if dtype.startswith("float"):
        return rng.normal(0, 10, size=shape).astype(dtype)
    info = np.iinfo(dtype)
    return rng.integers(info.min, info.max, size=shape, dtype=dtype, endpoint=True)


def main():
    workdir, ee_model, raw, h, w = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
    import numpy as np
    import tensorflow as tf

    def path(name):
        return os.path.join(workdir, name)

    keras_model = build_keras(path("keras"))
    build_tf1(path("tf1"))
    build_dtypes(path("dtypes"))
    from tensorflow.python.tools import saved_model_utils

    # Earth Engine's prepare needs the signature's real tensor names (serving_default_x:0,
    # StatefulPartitionedCall_1:0); ours takes the signature keys as well.

    keras_sig = saved_model_utils.get_meta_graph_def(path("keras"), "serve").signature_def["serving_default"]
    keras_in = next(iter(keras_sig.inputs.values())).name
    keras_out = next(iter(keras_sig.outputs.values())).name
    dtype_in = ",".join(f"p_{d}:0" for d in DTYPES)
    dtype_out = ",".join(f"o_{d}:0" for d in DTYPES)
    jobs = [
        # (model, Earth Engine's --input/--output, ours)
        ("keras", json.dumps({keras_in: "B"}), json.dumps({keras_out: "out"}),
         json.dumps({"x": "B"}), json.dumps({"output_0": "out"})),
        ("tf1", "x:0,w:0", "score:0,label:0", "x:0,w:0", "score:0,label:0"),
        ("dtypes", dtype_in, dtype_out, dtype_in, dtype_out),
    ]
    with open(path("ee_jobs.json"), "w") as f:
        json.dump([{"source": path(m), "dest": path(f"ee_{m}"), "input": i, "output": o}
                   for m, i, o, _, _ in jobs], f)
    earth_engine = subprocess.Popen([sys.executable, __file__, "--ee-prepare", path("ee_jobs.json")],
                                    stdout=subprocess.DEVNULL)
    for m, _, _, i, o in jobs:
        subprocess.run([ee_model, "prepare", "--source-dir", path(m), "--dest-dir", path(f"ours_{m}"),
                        "--input", i, "--output", o], check=True, stdout=subprocess.DEVNULL)
    if earth_engine.wait() != 0:
        raise SystemExit("earthengine model prepare failed")

    def b64(t):
        return base64.urlsafe_b64encode(tf.io.serialize_tensor(t).numpy()).rstrip(b"=")

    rng = np.random.default_rng(3)
    report = {"comparisons": 0, "instances": 0, "session_checks": 0, "signatures": {}}
    loaded = {}
    for m, *_ in jobs:
        ours, theirs = tf.saved_model.load(path(f"ours_{m}")), tf.saved_model.load(path(f"ee_{m}"))
        loaded[m] = (ours, theirs)
        assert list(ours.signatures.keys()) == ["serving_default"], list(ours.signatures.keys())
        a, b = ours.signatures["serving_default"], theirs.signatures["serving_default"]
        assert a.structured_input_signature == b.structured_input_signature, (
            a.structured_input_signature, b.structured_input_signature)
        for spec in a.structured_input_signature[1].values():
            assert spec.dtype == tf.string and spec.shape.as_list() == [None], spec
        assert sorted(a.structured_outputs) == sorted(b.structured_outputs)
        report["signatures"][m] = {"inputs": sorted(a.structured_input_signature[1]),
                                   "outputs": sorted(a.structured_outputs)}

    def compare(m, feeds, check=None):
        ours, theirs = loaded[m]
        got = {k: v.numpy() for k, v in ours.signatures["serving_default"](**feeds).items()}
        want = {k: v.numpy() for k, v in theirs.signatures["serving_default"](**feeds).items()}
        assert got.keys() == want.keys(), (got.keys(), want.keys())
        for k in got:
            assert got[k].tolist() == want[k].tolist(), f"{m}/{k}: ours and Earth Engine's differ"
            for s in got[k].tolist():
                assert b"=" not in s and b"+" not in s and b"/" not in s, f"{m}/{k}: not URL-safe unpadded"
            report["comparisons"] += 1
            report["instances"] += len(got[k])
        if check:
            check(got)
        return got

    shapes = [(1, 1, 1), (1, 8, 8), (2, 5, 7), (4, 16, 16), (7, 3, 9)]
    session_feeds = {}
    for n, th, tw in shapes:
        x = rng.normal(size=(n, th, tw, 3)).astype("float32")

        def keras_check(got, x=x):
            direct = keras_model(x).numpy()
            decoded = np.stack([tf.io.parse_tensor(base64.urlsafe_b64decode(s + b"=" * (-len(s) % 4)), tf.float32)
                                for s in got["out"]])
            assert np.allclose(decoded, direct, atol=1e-5), "Keras: prepared output differs from the model's own"

        feeds = {"B": tf.constant([b64(x[i]) for i in range(n)])}
        session_feeds.setdefault("keras", (feeds, compare("keras", feeds, keras_check)))
        wt = rng.integers(0, 4, size=(n, th, tw, 1)).astype("int32")
        feeds = {"x": tf.constant([b64(x[i]) for i in range(n)]), "w": tf.constant([b64(wt[i]) for i in range(n)])}
        session_feeds.setdefault("tf1", (feeds, compare("tf1", feeds)))
        feeds = {}
        for d in DTYPES:
            t = random_tensor(rng, d, (n, th, tw))
            feeds[f"p_{d}"] = tf.constant([b64(tf.constant(t[i], dtype=tf.as_dtype(d))) for i in range(n)])
        compare("dtypes", feeds)
    # Padded base64 and the standard TensorProto typed-value form are read too.
    x = np.arange(12, dtype="float32").reshape(1, 2, 2, 3)
    proto = tf.make_tensor_proto(x[0]).SerializeToString()
    compare("keras", {"B": tf.constant([base64.urlsafe_b64encode(proto)])})
    typed = tf.make_tensor_proto(np.float32(1.5), shape=[2, 2, 3]).SerializeToString()  # float_val fill
    compare("keras", {"B": tf.constant([base64.urlsafe_b64encode(typed).rstrip(b"=")])})

    # The TF Serving way: a TF1 session over the graph, tensors run by their signature names.
    v1 = tf.compat.v1
    for m, (feeds, want) in session_feeds.items():
        with tf.Graph().as_default(), v1.Session() as sess:
            meta = v1.saved_model.load(sess, ["serve"], path(f"ours_{m}"))
            sig = meta.signature_def["serving_default"]
            got = sess.run({k: v.name for k, v in sig.outputs.items()},
                           {sig.inputs[k].name: v.numpy() for k, v in feeds.items()})
            for k in want:
                assert got[k].tolist() == want[k].tolist(), f"{m}/{k}: session output differs"
            report["session_checks"] += 1

    with open(path("report.json"), "w") as f:
        json.dump(report, f)
    image = np.fromfile(raw, dtype="<f4").reshape(h, w, 3)
    keras_model(image[None]).numpy()[0].astype("<f4").tofile(path("reference.raw"))
    serve(workdir, {"ours": loaded["keras"][0].signatures["serving_default"],
                    "ee": loaded["keras"][1].signatures["serving_default"]})


def serve(workdir, models):
    import tensorflow as tf

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_POST(self):
            name = self.path.removeprefix("/v1/projects/p/models/").removesuffix("/versions/v1:predict")
            if name not in models:
                self.send_error(404, "no model at " + self.path)
                return
            raw = self.rfile.read(int(self.headers["Content-Length"]))
            strings = [inst["B"].encode() for inst in json.loads(raw)["instances"]]
            batch = tf.constant(strings)
            out = models[name](B=batch)["out"].numpy()
            # The other prepared model on the very same request: identical strings expected.
            other = models["ee" if name == "ours" else "ours"](B=batch)["out"].numpy()
            same = "same" if out.tolist() == other.tolist() else "different"
            with open(os.path.join(workdir, "requests.log"), "a") as log:
                log.write(f"{name} {len(strings)} {len(raw)} {same}\n")
            answer = json.dumps({"predictions": [o.decode() for o in out]}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    with open(os.path.join(workdir, "port.tmp"), "w") as f:
        f.write(str(server.server_address[1]))
    os.rename(os.path.join(workdir, "port.tmp"), os.path.join(workdir, "port"))
    server.serve_forever()


if __name__ == "__main__":
    if sys.argv[1] == "--ee-prepare":
        ee_prepare(sys.argv[2])
    else:
        main()
