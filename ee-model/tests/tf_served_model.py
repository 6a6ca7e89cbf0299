"""Serves a TensorFlow model prepared by Earth Engine's own `earthengine model prepare` on the
AI Platform predict route, for ee-model's HTTP end-to-end test.

    python tf_served_model.py WORKDIR INPUT.raw HEIGHT WIDTH

Builds a small Keras convolution model (two 3x3 convolutions, receptive radius 2, fixed
weights), exports it (`model.export`), prepares it with `earthengine model prepare` (inputs and
outputs become batches of URL-safe base64 TensorProtos), writes the whole-image prediction of
INPUT.raw (float32, HEIGHT x WIDTH x 3) to WORKDIR/reference.raw, then answers
POST /v1/projects/p/models/m/versions/v1:predict with the prepared model, printing nothing and
writing its port to WORKDIR/port once listening and logging "instances bytes" per request to
WORKDIR/requests.log.
"""

import base64
import json
import os
import subprocess
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from tensorflow.python.tools import saved_model_utils  # noqa: E402


def main():
    workdir, raw, h, w = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    rng = np.random.default_rng(11)
    inp = tf.keras.Input(shape=(None, None, 3), name="x")
    c1 = tf.keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="c1")
    c2 = tf.keras.layers.Conv2D(2, 3, padding="same", name="c2")
    model = tf.keras.Model(inp, c2(c1(inp)))
    c1.set_weights([rng.normal(0, 0.3, (3, 3, 3, 4)).astype("float32"), rng.normal(0, 0.1, 4).astype("float32")])
    c2.set_weights([rng.normal(0, 0.3, (3, 3, 4, 2)).astype("float32"), rng.normal(0, 0.1, 2).astype("float32")])
    src, prepared = os.path.join(workdir, "src"), os.path.join(workdir, "prepared")
    model.export(src, verbose=False)
    sig = saved_model_utils.get_meta_graph_def(src, "serve").signature_def["serving_default"]
    in_name = next(iter(sig.inputs.values())).name
    out_name = next(iter(sig.outputs.values())).name
    earthengine = os.path.join(os.path.dirname(sys.executable), "earthengine")
    subprocess.run([earthengine, "model", "prepare", "--source_dir", src, "--dest_dir", prepared,
                    "--input", json.dumps({in_name: "B"}), "--output", json.dumps({out_name: "out"})],
                   check=True, stdout=subprocess.DEVNULL)
    image = np.fromfile(raw, dtype="<f4").reshape(h, w, 3)
    model(image[None]).numpy()[0].astype("<f4").tofile(os.path.join(workdir, "reference.raw"))

    serve = tf.saved_model.load(prepared).signatures["serving_default"]

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_POST(self):
            if self.path != "/v1/projects/p/models/m/versions/v1:predict":
                self.send_error(404, "no model at " + self.path)
                return
            raw = self.rfile.read(int(self.headers["Content-Length"]))
            body = json.loads(raw)
            strings = [inst["B"].encode() for inst in body["instances"]]
            with open(os.path.join(workdir, "requests.log"), "a") as log:
                log.write(f"{len(strings)} {len(raw)}\n")
            out = serve(B=tf.constant(strings))["out"].numpy()
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
    main()
