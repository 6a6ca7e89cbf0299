"""The pipeline a Python user would write to run a served model over a raster, tile by tile,
the way Earth Engine's ee.Model.predictImage does: rasterio windows with overlap margins,
numpy, tf.io.serialize_tensor (the TensorProto bytes Earth Engine's SERIALIZED_TF_TENSORS
carries), URL-safe unpadded base64, requests with a thread pool and a bounded number of tiles
in flight, margins cropped off each answer, the cores written with rasterio.

`cargo xtask bench` runs it and `ee-model predict` against the same `ee-model serve` process
(identity model) on the same raster and compares CPU and wall time.

    pipeline.py make PATH SIZE          a SIZE x SIZE x 4 float32 tiled GeoTIFF (uncompressed)
    pipeline.py predict --url http://ADDR --model NAME --input IN --output OUT
                        [--tile 256] [--overlap 8] [--workers 8]
    pipeline.py check INPUT OUTPUT...   every OUTPUT's pixels equal INPUT's (identity model)

`predict` prints `pipeline: import_cpu_s=.. total_cpu_s=.. wall_s=.. tiles=..` at the end
(import_cpu_s: CPU spent starting Python and importing numpy, rasterio, requests, TensorFlow).
"""

import argparse
import base64
import json
import sys
import threading
import time
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait

import numpy as np
import rasterio
from rasterio.windows import Window


def make(path, size):
    profile = dict(
        driver="GTiff", width=size, height=size, count=4, dtype="float32", tiled=True,
        blockxsize=256, blockysize=256, crs="EPSG:32633",
        transform=rasterio.transform.from_origin(500000.0, 5000000.0, 10.0, 10.0),
    )
    with rasterio.open(path, "w", **profile) as dst:
        x = np.arange(size, dtype=np.float32)
        for y0 in range(0, size, 256):
            y = np.arange(y0, min(y0 + 256, size), dtype=np.float32)[:, None]
            block = np.stack(
                [np.sin(x * 0.01 * (b + 1) + y * 0.003) * 100.0 + b for b in range(4)]
            ).astype(np.float32)
            dst.write(block, window=Window(0, y0, size, block.shape[1]))


def check(input_path, outputs):
    with rasterio.open(input_path) as src:
        want = src.read()
    for out in outputs:
        with rasterio.open(out) as o:
            got = o.read()
        if got.shape != want.shape or not np.array_equal(got, want):
            bad = "shape %s vs %s" % (got.shape, want.shape) if got.shape != want.shape else (
                "%d pixels differ" % int((got != want).sum()))
            sys.exit("check: %s does not equal %s (%s)" % (out, input_path, bad))
        print("check: %s equals %s (%d x %d x %d)" % (out, input_path, *want.shape[::-1]))


def predict(args):
    import requests
    import tensorflow as tf

    # CPU of the process so far: the interpreter's start and every import, TensorFlow's included.
    import_cpu = time.process_time()
    wall0 = time.perf_counter()
    url = f"{args.url}/v1/projects/p/models/{args.model}:predict"
    tile, half = args.tile, args.overlap // 2
    local = threading.local()

    def session():
        if not hasattr(local, "s"):
            local.s = requests.Session()
        return local.s

    def call(arr):
        """One tile (H, W, C float32) to the model and back, through TensorProto + base64."""
        proto = tf.io.serialize_tensor(arr).numpy()
        body = json.dumps(
            {"instances": [{"input": base64.urlsafe_b64encode(proto).rstrip(b"=").decode()}]}
        )
        r = session().post(url, data=body, headers={"Content-Type": "application/json"})
        r.raise_for_status()
        text = r.json()["predictions"][0]
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        return tf.io.parse_tensor(raw, tf.float32).numpy()

    with rasterio.open(args.input) as src:
        profile = src.profile.copy()
        profile.update(tiled=True, blockxsize=256, blockysize=256, compress=None)
        height, width = src.height, src.width
        with rasterio.open(args.output, "w", **profile) as dst:
            in_flight = {}
            n = 0

            def write(done):
                for f in done:
                    x0, y0, w, h = in_flight.pop(f)
                    out = f.result()[half:half + h, half:half + w, :]
                    dst.write(np.moveaxis(out, -1, 0), window=Window(x0, y0, w, h))

            with ThreadPoolExecutor(max_workers=args.workers) as pool:
                for y0 in range(0, height, tile):
                    for x0 in range(0, width, tile):
                        h, w = min(tile, height - y0), min(tile, width - x0)
                        # The core plus margins, padded with 0 where it runs off the raster.
                        rx0, ry0 = x0 - half, y0 - half
                        cx0, cy0 = max(rx0, 0), max(ry0, 0)
                        cx1 = min(x0 + tile + args.overlap - half, width)
                        cy1 = min(y0 + tile + args.overlap - half, height)
                        data = src.read(window=Window(cx0, cy0, cx1 - cx0, cy1 - cy0))
                        size = tile + args.overlap
                        data = np.pad(
                            data,
                            ((0, 0), (cy0 - ry0, size - (cy1 - ry0)), (cx0 - rx0, size - (cx1 - rx0))),
                        )
                        arr = np.ascontiguousarray(np.moveaxis(data, 0, -1))
                        in_flight[pool.submit(call, arr)] = (x0, y0, w, h)
                        n += 1
                        if len(in_flight) >= 2 * args.workers:
                            done, _ = wait(list(in_flight), return_when=FIRST_COMPLETED)
                            write(done)
                write(list(in_flight))
    print(
        "pipeline: import_cpu_s=%.3f total_cpu_s=%.3f wall_s=%.3f tiles=%d"
        % (import_cpu, time.process_time(), time.perf_counter() - wall0, n),
        flush=True,
    )


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("make")
    m.add_argument("path")
    m.add_argument("size", type=int)
    c = sub.add_parser("check")
    c.add_argument("input")
    c.add_argument("outputs", nargs="+")
    r = sub.add_parser("predict")
    r.add_argument("--url", required=True)
    r.add_argument("--model", required=True)
    r.add_argument("--input", required=True)
    r.add_argument("--output", required=True)
    r.add_argument("--tile", type=int, default=256)
    r.add_argument("--overlap", type=int, default=8)
    r.add_argument("--workers", type=int, default=8)
    a = p.parse_args()
    if a.cmd == "make":
        make(a.path, a.size)
    elif a.cmd == "check":
        check(a.input, a.outputs)
    else:
        predict(a)


if __name__ == "__main__":
    main()
