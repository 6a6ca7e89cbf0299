"""Makes the demo's sample scene, trains its water-segmentation model, and writes the small
ONNX models the tests use. Deterministic (fixed seeds); run from the repository root:

    python3 -m venv target/py && target/py/bin/pip install -r xtask/python-requirements.txt onnx
    target/py/bin/python ee-model/demo/make_demo.py

Outputs (committed):
  ee-model/demo/scene.tif        512 x 512 x 4 uint16 "Sentinel-2 like" reflectance x 10000
                                  (bands B2 blue, B3 green, B4 red, B8 NIR), EPSG:32633, 10 m,
                                  made from procedural terrain: lakes, a river, fields, forest,
                                  bare soil; written with gdal_translate.
  ee-model/demo/water.onnx       3x3 conv (4 -> 8) + ReLU + 1x1 conv (8 -> 1) + sigmoid, NHWC
                                  float32 input of raw reflectance, output "water" probability,
                                  trained here with numpy (Adam, cross-entropy) on the scene's
                                  own water mask plus noise.
  ee-model/tests/models/conv_r2.onnx     two 3x3 convs (receptive radius 2), 3 -> 2 channels, NHWC
  ee-model/tests/models/conv_r2_nchw.onnx  the same network with NCHW input and output
  ee-model/tests/models/classifier.onnx  per-tile mean then 1x1 conv: [N,H,W,3] -> [N,1,1,2]
  ee-model/tests/models/identity.onnx    output = input, [N,H,W,C]
All models have symbolic N, H, W.
"""

import os
import subprocess
import tempfile

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEMO = os.path.join(ROOT, "ee-model", "demo")
MODELS = os.path.join(ROOT, "ee-model", "tests", "models")
SIZE = 512
rng = np.random.default_rng(20261121)


def smooth_noise(size, scales, seed):
    """Sum of bilinearly upsampled random grids: cheap fractal noise in [0, 1]."""
    r = np.random.default_rng(seed)
    out = np.zeros((size, size))
    for cells, weight in scales:
        grid = r.random((cells + 1, cells + 1))
        ys = np.linspace(0, cells, size, endpoint=False)
        y0 = np.floor(ys).astype(int)
        fy = (ys - y0)[:, None]
        fx = (ys - y0)[None, :]
        g00 = grid[y0][:, y0]
        g01 = grid[y0][:, y0 + 1]
        g10 = grid[y0 + 1][:, y0]
        g11 = grid[y0 + 1][:, y0 + 1]
        fy3, fx3 = fy * fy * (3 - 2 * fy), fx * fx * (3 - 2 * fx)
        out += weight * ((g00 * (1 - fx3) + g01 * fx3) * (1 - fy3) + (g10 * (1 - fx3) + g11 * fx3) * fy3)
    out -= out.min()
    return out / out.max()


def make_scene():
    elevation = smooth_noise(SIZE, [(3, 1.0), (7, 0.5), (17, 0.25), (41, 0.12)], 1)
    yy, xx = np.mgrid[0:SIZE, 0:SIZE]
    # A meandering river carved into the terrain.
    river_x = SIZE * 0.35 + 40 * np.sin(yy / 47.0) + 18 * np.sin(yy / 13.0)
    river = np.exp(-((xx - river_x) ** 2) / (2 * 5.0 ** 2))
    elevation = elevation - 0.45 * river
    water = elevation < 0.28
    moisture = smooth_noise(SIZE, [(5, 1.0), (19, 0.4)], 2)
    fields = (np.sin(xx / 9.0 + 0.3 * np.sin(yy / 30.0)) > 0) ^ (np.sin(yy / 11.0) > 0.2)
    forest = (~water) & (moisture > 0.55)
    crops = (~water) & (~forest) & (moisture > 0.35)
    soil = (~water) & (~forest) & (~crops)
    texture = smooth_noise(SIZE, [(61, 1.0), (127, 0.6)], 3) - 0.5
    depth = np.clip((0.28 - elevation) * 4, 0, 1)
    # Reflectance (0..1) of B2, B3, B4, B8 per class, with texture and noise.
    refl = np.zeros((4, SIZE, SIZE))
    classes = [
        (water, [0.06, 0.07, 0.04, 0.02], [0.02, 0.01, 0.0, -0.01]),
        (forest, [0.03, 0.06, 0.03, 0.38], [0.0, 0.01, 0.0, 0.06]),
        (crops, [0.05, 0.09, 0.06, 0.30], [0.01, 0.03, 0.03, 0.12]),
        (soil, [0.12, 0.15, 0.19, 0.25], [0.02, 0.02, 0.03, 0.03]),
    ]
    for mask, base, var in classes:
        for b in range(4):
            v = base[b] + var[b] * (fields * 2 - 1) * (mask is crops) + 0.5 * var[b] * texture
            if mask is water:
                v = base[b] + var[b] * depth + 0.01 * texture
            refl[b][mask] = v[mask] if np.ndim(v) else v
    refl += rng.normal(0, 0.004, refl.shape)
    scene = np.clip(refl * 10000, 1, 10000).astype(np.uint16)
    return scene, water


def write_geotiff(scene, path):
    with tempfile.TemporaryDirectory() as tmp:
        raw = os.path.join(tmp, "scene.raw")
        scene.astype("<u2").tofile(raw)
        names = ["B2", "B3", "B4", "B8"]
        bands = "".join(
            f"""<VRTRasterBand dataType="UInt16" band="{i + 1}" subClass="VRTRawRasterBand">
  <Description>{n}</Description>
  <SourceFilename relativeToVRT="1">scene.raw</SourceFilename>
  <ImageOffset>{i * SIZE * SIZE * 2}</ImageOffset><PixelOffset>2</PixelOffset><LineOffset>{SIZE * 2}</LineOffset>
  <ByteOrder>LSB</ByteOrder>
</VRTRasterBand>"""
            for i, n in enumerate(names)
        )
        vrt = os.path.join(tmp, "scene.vrt")
        with open(vrt, "w") as f:
            f.write(f'<VRTDataset rasterXSize="{SIZE}" rasterYSize="{SIZE}"><SRS>EPSG:32633</SRS>'
                    f"<GeoTransform>500000, 10, 0, 5000000, 0, -10</GeoTransform>{bands}</VRTDataset>")
        subprocess.run(["gdal_translate", "-q", "-co", "TILED=YES", "-co", "COMPRESS=DEFLATE", "-co", "PREDICTOR=2",
                        vrt, path], check=True)
        aux = path + ".aux.xml"
        if os.path.exists(aux):
            os.remove(aux)


def patches3x3(x):
    """(C, H, W) -> (H*W, 9*C) zero-padded 3x3 neighbourhoods, ordered (dy, dx, c)."""
    c, h, w = x.shape
    p = np.pad(x, ((0, 0), (1, 1), (1, 1)))
    cols = [p[:, dy:dy + h, dx:dx + w] for dy in range(3) for dx in range(3)]
    return np.stack(cols, 0).transpose(2, 3, 0, 1).reshape(h * w, 9 * c)


def train(scene, water):
    x = scene.astype(np.float32) * 1e-4
    feats = patches3x3(x)
    labels = water.reshape(-1).astype(np.float32)
    # Label noise, so the model has to generalise rather than memorise.
    flip = rng.random(labels.shape) < 0.02
    labels = np.where(flip, 1 - labels, labels)
    idx = rng.choice(len(labels), 60000, replace=False)
    X, y = feats[idx], labels[idx]
    W1 = rng.normal(0, 0.5, (36, 8)).astype(np.float32)
    b1 = np.zeros(8, np.float32)
    W2 = rng.normal(0, 0.5, (8, 1)).astype(np.float32)
    b2 = np.zeros(1, np.float32)
    params = [W1, b1, W2, b2]
    m = [np.zeros_like(p) for p in params]
    v = [np.zeros_like(p) for p in params]
    lr, b1m, b2m = 0.03, 0.9, 0.999
    for step in range(1, 1501):
        batch = rng.choice(len(y), 4096, replace=False)
        xb, yb = X[batch], y[batch]
        h_pre = xb @ W1 + b1
        h = np.maximum(h_pre, 0)
        logit = (h @ W2 + b2)[:, 0]
        p = 1 / (1 + np.exp(-logit))
        g_logit = (p - yb)[:, None] / len(yb)
        grads = [None, None, h.T @ g_logit, g_logit.sum(0)]
        g_h = g_logit @ W2.T * (h_pre > 0)
        grads[0], grads[1] = xb.T @ g_h, g_h.sum(0)
        for i, (p_, g) in enumerate(zip(params, grads)):
            m[i] = b1m * m[i] + (1 - b1m) * g
            v[i] = b2m * v[i] + (1 - b2m) * g * g
            p_ -= lr * (m[i] / (1 - b1m ** step)) / (np.sqrt(v[i] / (1 - b2m ** step)) + 1e-8)
    h = np.maximum(feats @ W1 + b1, 0)
    pred = (1 / (1 + np.exp(-(h @ W2 + b2)[:, 0]))) > 0.5
    acc = (pred == water.reshape(-1)).mean()
    print(f"water model: pixel accuracy {acc:.4f} on the scene ({water.mean():.1%} water)")
    # Conv weights: OIHW from the (dy, dx, c) patch order.
    conv1 = W1.T.reshape(8, 3, 3, 4).transpose(0, 3, 1, 2)
    conv2 = W2.T.reshape(1, 8, 1, 1)
    return conv1, b1, conv2, b2


def nhwc_model(name, in_ch, out_ch, body_nodes, inits, out_hw=("H", "W"), output="output", doc=""):
    inp = helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", "H", "W", in_ch])
    out = helper.make_tensor_value_info(output, TensorProto.FLOAT, ["N", out_hw[0], out_hw[1], out_ch])
    nodes = [helper.make_node("Transpose", ["input"], ["nchw"], perm=[0, 3, 1, 2])] + body_nodes + [
        helper.make_node("Transpose", ["body_out"], [output], perm=[0, 2, 3, 1])]
    graph = helper.make_graph(nodes, name, [inp], [out], initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="ee-model make_demo.py")
    model.ir_version = 8
    model.doc_string = doc
    onnx.checker.check_model(model)
    return model


def t(name, arr):
    return numpy_helper.from_array(np.asarray(arr, np.float32), name)


def main():
    os.makedirs(MODELS, exist_ok=True)
    scene, water = make_scene()
    write_geotiff(scene, os.path.join(DEMO, "scene.tif"))
    conv1, b1, conv2, b2 = train(scene, water)
    model = nhwc_model("water", 4, 1, [
        helper.make_node("Mul", ["nchw", "scale"], ["scaled"]),
        helper.make_node("Conv", ["scaled", "w1", "b1"], ["h"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["h"], ["hr"]),
        helper.make_node("Conv", ["hr", "w2", "b2"], ["logit"]),
        helper.make_node("Sigmoid", ["logit"], ["body_out"]),
    ], [t("scale", 1e-4), t("w1", conv1), t("b1", b1), t("w2", conv2), t("b2", b2)], output="water",
        doc="Water probability from B2, B3, B4, B8 reflectance x 10000; receptive radius 1.")
    onnx.save(model, os.path.join(DEMO, "water.onnx"))

    r = np.random.default_rng(7)
    conv_weights = [t("w1", r.normal(0, 0.3, (4, 3, 3, 3))), t("b1", r.normal(0, 0.1, 4)),
                    t("w2", r.normal(0, 0.3, (2, 4, 3, 3))), t("b2", r.normal(0, 0.1, 2))]
    conv = nhwc_model("conv_r2", 3, 2, [
        helper.make_node("Conv", ["nchw", "w1", "b1"], ["h"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["h"], ["hr"]),
        helper.make_node("Conv", ["hr", "w2", "b2"], ["body_out"], pads=[1, 1, 1, 1]),
    ], conv_weights, doc="Two 3x3 convolutions: receptive radius 2.")
    onnx.save(conv, os.path.join(MODELS, "conv_r2.onnx"))

    # The same network taking and giving NCHW tensors, for the NCHW layout option.
    inp = helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, "H", "W"])
    out = helper.make_tensor_value_info("output", TensorProto.FLOAT, ["N", 2, "H", "W"])
    nchw = helper.make_model(helper.make_graph([
        helper.make_node("Conv", ["input", "w1", "b1"], ["h"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["h"], ["hr"]),
        helper.make_node("Conv", ["hr", "w2", "b2"], ["output"], pads=[1, 1, 1, 1]),
    ], "conv_r2_nchw", [inp], [out], initializer=conv_weights), opset_imports=[helper.make_opsetid("", 13)],
        producer_name="ee-model make_demo.py")
    nchw.ir_version = 8
    onnx.checker.check_model(nchw)
    onnx.save(nchw, os.path.join(MODELS, "conv_r2_nchw.onnx"))

    clf = nhwc_model("classifier", 3, 2, [
        helper.make_node("ReduceMean", ["nchw"], ["mean"], axes=[2, 3], keepdims=1),
        helper.make_node("Conv", ["mean", "w", "b"], ["body_out"]),
    ], [t("w", r.normal(0, 1.0, (2, 3, 1, 1))), t("b", [0.5, -0.5])], out_hw=(1, 1),
        doc="One prediction per tile: mean of each band, then a 1x1 conv.")
    onnx.save(clf, os.path.join(MODELS, "classifier.onnx"))

    inp = helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", "H", "W", "C"])
    out = helper.make_tensor_value_info("output", TensorProto.FLOAT, ["N", "H", "W", "C"])
    ident = helper.make_model(helper.make_graph([helper.make_node("Identity", ["input"], ["output"])], "identity", [inp], [out]),
                              opset_imports=[helper.make_opsetid("", 13)], producer_name="ee-model make_demo.py")
    ident.ir_version = 8
    onnx.save(ident, os.path.join(MODELS, "identity.onnx"))
    print("wrote scene.tif, water.onnx and the test models")


if __name__ == "__main__":
    main()
