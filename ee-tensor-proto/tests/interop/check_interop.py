#!/usr/bin/env python3
"""Verify files written by ee-tensor-proto against the REAL TensorFlow / protobuf.

Usage: check_interop.py DIR

Reads DIR/manifest.json (schema: ee-tensor-proto/tests/fixtures/README.md; any
section may be missing or empty; file paths are relative to DIR) and checks
every entry:

  tensors            TensorProto.FromString + tf.make_ndarray, and tf.io.parse_tensor
  examples           example_pb2.Example + tf.io.parse_single_example (VarLen + FixedLen)
  sequence_examples  example_pb2.SequenceExample + tf.io.parse_single_sequence_example
  tfrecords          tf.data.TFRecordDataset(path, compression_type=...)
  payloads           SERIALIZED_TF_TENSORS, TF_SERVING_ROW, TF_SERVING_COLUMNAR,
                     KSERVE_V2_JSON, KSERVE_V2_BINARY

Prints one line per failure ("FAIL <file>: <what differed>"), then exactly
"interop: N passed, M failed"; exits 1 if M > 0 or N == 0.

Only needs the packages of xtask/python-requirements.txt.
"""

import base64
import json
import os
import re
import sys
import warnings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
warnings.filterwarnings("ignore")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from tensorflow.core.example import example_pb2  # noqa: E402
from tensorflow.core.framework import tensor_pb2  # noqa: E402

tf.get_logger().setLevel("ERROR")

DTYPES = ("float16", "float32", "float64", "int8", "int16", "int32", "int64",
          "uint8", "uint16", "uint32", "uint64", "bool", "string")
FLOATS = ("float16", "float32", "float64")
KSERVE_DT = {"float16": "FP16", "float32": "FP32", "float64": "FP64", "int8": "INT8",
             "int16": "INT16", "int32": "INT32", "int64": "INT64", "uint8": "UINT8",
             "uint16": "UINT16", "uint32": "UINT32", "uint64": "UINT64", "bool": "BOOL",
             "string": "BYTES"}
MAX_ERRORS_PER_ENTRY = 8


class Bad(Exception):
    """A structural problem that stops checking one entry."""


# --------------------------------------------------------------------------
# expected values from the manifest
# --------------------------------------------------------------------------

def std_b64decode(s, what):
    if not isinstance(s, str):
        raise Bad(f"manifest: {what} is not a string")
    try:
        return base64.b64decode(s, validate=True)
    except Exception as e:  # noqa: BLE001
        raise Bad(f"manifest: {what} is not valid standard base64: {e}")


class Tensor:
    """Expected tensor: dtype name, shape tuple, numpy array (object array of bytes for strings)."""

    def __init__(self, dtype, shape, arr):
        self.dtype, self.shape, self.arr = dtype, shape, arr

    @classmethod
    def from_json(cls, t, what="tensor"):
        if not isinstance(t, dict):
            raise Bad(f"manifest: {what} is not an object")
        dt = t.get("dtype")
        if dt not in DTYPES:
            raise Bad(f"manifest: {what}.dtype {dt!r} is not one of {', '.join(DTYPES)}")
        shape = t.get("shape")
        if not isinstance(shape, list) or not all(isinstance(d, int) and not isinstance(d, bool)
                                                  and d >= 0 for d in shape):
            raise Bad(f"manifest: {what}.shape {shape!r} is not a list of non-negative ints")
        n = int(np.prod(shape, dtype=np.int64))
        if dt == "string":
            strs = t.get("strings_b64")
            if not isinstance(strs, list):
                raise Bad(f"manifest: {what} (string) has no strings_b64 list")
            vals = [std_b64decode(s, f"{what}.strings_b64[{i}]") for i, s in enumerate(strs)]
            if len(vals) != n:
                raise Bad(f"manifest: {what} has {len(vals)} strings for shape {shape}")
            arr = obj_array(vals, shape)
        else:
            raw = std_b64decode(t.get("data_b64"), f"{what}.data_b64")
            npdt = np_dtype(dt)
            if len(raw) != n * npdt.itemsize:
                raise Bad(f"manifest: {what}.data_b64 has {len(raw)} bytes, shape {shape} "
                          f"{dt} needs {n * npdt.itemsize}")
            if dt == "bool" and any(b > 1 for b in raw):
                raise Bad(f"manifest: {what}.data_b64 bool bytes must be 0 or 1")
            arr = np.frombuffer(raw, dtype=npdt.newbyteorder("<")).astype(npdt).reshape(shape)
        return cls(dt, tuple(shape), arr)

    def raw(self):
        """little-endian element bytes (numeric/bool)."""
        return le_bytes(self.arr)


def np_dtype(name):
    if name == "string":
        return np.dtype(object)
    if name == "bool":
        return np.dtype(np.bool_)
    return np.dtype(name)


def obj_array(values, shape):
    arr = np.empty(len(values), dtype=object)
    arr[:] = list(values)
    return arr.reshape(shape)


def le_bytes(arr):
    arr = np.ascontiguousarray(arr)
    return arr.astype(arr.dtype.newbyteorder("<"), copy=False).tobytes()


def dtype_of(arr):
    if arr.dtype == object or arr.dtype.kind in ("S", "U"):
        return "string"
    if arr.dtype == np.bool_:
        return "bool"
    return str(arr.dtype)


def fmt_elem(dt, raw_or_val):
    if dt == "string":
        return repr(raw_or_val)
    a = np.frombuffer(raw_or_val, dtype=np_dtype(dt).newbyteorder("<"))[0]
    return f"{a!r} (0x{raw_or_val[::-1].hex()})"


def compare_array(what, actual, exp):
    """Compare an actual numpy array with the expected Tensor (dtype, shape, exact bytes)."""
    actual = np.asarray(actual) if not isinstance(actual, np.ndarray) else actual
    dt = dtype_of(actual)
    if dt != exp.dtype:
        return [f"{what}: dtype {dt}, expected {exp.dtype}"]
    if tuple(actual.shape) != exp.shape:
        return [f"{what}: shape {list(actual.shape)}, expected {list(exp.shape)}"]
    if dt == "string":
        got = [x if isinstance(x, bytes) else str(x).encode() for x in actual.reshape(-1)]
        want = list(exp.arr.reshape(-1))
        for i, (g, w) in enumerate(zip(got, want)):
            if g != w:
                return [f"{what}: element {i} is {g!r}, expected {w!r}"]
        return []
    got, want = le_bytes(actual), exp.raw()
    if got == want:
        return []
    size = actual.dtype.itemsize
    for i in range(0, len(want), size):
        if got[i:i + size] != want[i:i + size]:
            return [f"{what}: element {i // size} is {fmt_elem(dt, got[i:i + size])}, "
                    f"expected {fmt_elem(dt, want[i:i + size])}"]
    return [f"{what}: bytes differ"]


# --------------------------------------------------------------------------
# tensors
# --------------------------------------------------------------------------

def check_tensor_bytes(data, exp, prefix=""):
    errs = []
    tf_dtype = tf.as_dtype(exp.dtype)
    try:
        proto = tensor_pb2.TensorProto.FromString(data)
    except Exception as e:  # noqa: BLE001
        return [f"{prefix}TensorProto.FromString failed: {e}"]
    if proto.dtype != tf_dtype.as_datatype_enum:
        from tensorflow.core.framework import types_pb2
        got = types_pb2.DataType.Name(proto.dtype) if proto.dtype in types_pb2.DataType.values() \
            else str(proto.dtype)
        errs.append(f"{prefix}TensorProto.dtype is {got}, expected "
                    f"{types_pb2.DataType.Name(tf_dtype.as_datatype_enum)}")
    if proto.tensor_shape.unknown_rank:
        errs.append(f"{prefix}tensor_shape.unknown_rank is set")
    dims = [d.size for d in proto.tensor_shape.dim]
    if dims != list(exp.shape):
        errs.append(f"{prefix}tensor_shape {dims}, expected {list(exp.shape)}")
    if errs:
        return errs
    try:
        errs += compare_array(f"{prefix}tf.make_ndarray", tf.make_ndarray(proto), exp)
    except Exception as e:  # noqa: BLE001
        errs.append(f"{prefix}tf.make_ndarray failed: {one_line(e)}")
    try:
        t = tf.io.parse_tensor(data, out_type=tf_dtype)
        arr = t.numpy()
        if exp.dtype == "string":
            arr = obj_array(np.asarray(arr, dtype=object).reshape(-1), t.shape.as_list())
        errs += compare_array(f"{prefix}tf.io.parse_tensor", np.asarray(arr), exp)
    except Exception as e:  # noqa: BLE001
        errs.append(f"{prefix}tf.io.parse_tensor failed: {one_line(e)}")
    return errs


def check_tensor_entry(d, e):
    exp = Tensor.from_json(e.get("tensor"), "tensor")
    return check_tensor_bytes(read(d, e), exp)


# --------------------------------------------------------------------------
# examples
# --------------------------------------------------------------------------

KINDS = {"float_list": tf.float32, "int64_list": tf.int64, "bytes_list": tf.string}


class Feature:
    def __init__(self, f, what):
        if not isinstance(f, dict) or f.get("kind") not in KINDS:
            raise Bad(f"manifest: {what}.kind must be one of {', '.join(KINDS)}")
        self.kind = f["kind"]
        if self.kind == "bytes_list":
            strs = f.get("strings_b64")
            if not isinstance(strs, list):
                raise Bad(f"manifest: {what} has no strings_b64 list")
            self.values = [std_b64decode(s, f"{what}.strings_b64[{i}]") for i, s in enumerate(strs)]
        else:
            raw = std_b64decode(f.get("data_b64"), f"{what}.data_b64")
            dt = "<f4" if self.kind == "float_list" else "<i8"
            if len(raw) % np.dtype(dt).itemsize:
                raise Bad(f"manifest: {what}.data_b64 length {len(raw)} is not a multiple of "
                          f"{np.dtype(dt).itemsize}")
            self.values = np.frombuffer(raw, dtype=dt)

    def __len__(self):
        return len(self.values)

    def compare(self, what, got):
        """got: list of bytes, or numpy array of float32/int64."""
        if self.kind == "bytes_list":
            got = [bytes(x) for x in got]
            if got != self.values:
                return [f"{what}: bytes_list {short(got)}, expected {short(self.values)}"]
            return []
        dt = "<f4" if self.kind == "float_list" else "<i8"
        g = np.asarray(got).astype(dt)
        if len(g) != len(self.values):
            return [f"{what}: {len(g)} values, expected {len(self.values)}"]
        if g.tobytes() != self.values.tobytes():
            for i, (a, b) in enumerate(zip(g, self.values)):
                if a.tobytes() != b.tobytes():
                    return [f"{what}: value {i} is {a!r} (0x{a.tobytes()[::-1].hex()}), "
                            f"expected {b!r} (0x{b.tobytes()[::-1].hex()})"]
        return []


def short(v, n=4):
    s = repr(v[:n])
    return s[:-1] + f", ... ({len(v)} total)]" if len(v) > n else s


def proto_feature_values(pf, kind):
    if kind == "float_list":
        return np.array(pf.float_list.value, dtype=np.float32)
    if kind == "int64_list":
        return np.array(pf.int64_list.value, dtype=np.int64)
    return list(pf.bytes_list.value)


def compare_proto_feature(what, pf, want):
    kind = pf.WhichOneof("kind")
    if kind is None and len(want) == 0:
        return []  # no list at all: TF reads it as an empty list of any type
    if kind != want.kind:
        return [f"{what}: kind {kind}, expected {want.kind}"]
    return want.compare(what, proto_feature_values(pf, kind))


def parse_features(spec, what):
    if not isinstance(spec, dict):
        raise Bad(f"manifest: {what} is not an object")
    return {k: Feature(v, f"{what}.{k}") for k, v in spec.items()}


def compare_feature_map(what, proto_map, want):
    errs = []
    got_keys = set(proto_map.keys())
    for k in sorted(got_keys - set(want)):
        errs.append(f"{what}: unexpected feature {k!r}")
    for k in sorted(set(want) - got_keys):
        errs.append(f"{what}: missing feature {k!r}")
    for k in sorted(got_keys & set(want)):
        errs += compare_proto_feature(f"{what}[{k!r}]", proto_map[k], want[k])
    return errs


def check_example_entry(d, e):
    want = parse_features(e.get("features", {}), "features")
    data = read(d, e)
    try:
        ex = example_pb2.Example.FromString(data)
    except Exception as ex_err:  # noqa: BLE001
        return [f"example_pb2.Example.FromString failed: {ex_err}"]
    errs = compare_feature_map("Example.features", ex.features.feature, want)
    # TF's own (C++) parser: VarLenFeature for everything, FixedLenFeature where non-empty.
    try:
        if want:
            spec = {k: tf.io.VarLenFeature(KINDS[f.kind]) for k, f in want.items()}
            parsed = tf.io.parse_single_example(data, spec)
            for k, f in want.items():
                errs += f.compare(f"parse_single_example VarLen[{k!r}]", parsed[k].values.numpy())
            spec = {k: tf.io.FixedLenFeature([len(f)], KINDS[f.kind]) for k, f in want.items() if len(f)}
            if spec:
                parsed = tf.io.parse_single_example(data, spec)
                for k in spec:
                    errs += want[k].compare(f"parse_single_example FixedLen[{k!r}]", parsed[k].numpy())
        else:
            parsed = tf.io.parse_single_example(data, {"__absent__": tf.io.VarLenFeature(tf.float32)})
            if parsed["__absent__"].values.shape[0] != 0:
                errs.append("parse_single_example found values in an empty Example")
    except Exception as ex_err:  # noqa: BLE001
        errs.append(f"tf.io.parse_single_example failed: {one_line(ex_err)}")
    return errs


def check_sequence_example_entry(d, e):
    ctx = parse_features(e.get("context", {}), "context")
    fls_json = e.get("feature_lists", {})
    if not isinstance(fls_json, dict):
        raise Bad("manifest: feature_lists is not an object")
    fls = {}
    for k, lst in fls_json.items():
        if not isinstance(lst, list):
            raise Bad(f"manifest: feature_lists.{k} is not a list")
        fls[k] = [Feature(f, f"feature_lists.{k}[{i}]") for i, f in enumerate(lst)]
    data = read(d, e)
    try:
        sx = example_pb2.SequenceExample.FromString(data)
    except Exception as ex_err:  # noqa: BLE001
        return [f"example_pb2.SequenceExample.FromString failed: {ex_err}"]
    errs = compare_feature_map("SequenceExample.context", sx.context.feature, ctx)
    got_fl = sx.feature_lists.feature_list
    for k in sorted(set(got_fl.keys()) - set(fls)):
        errs.append(f"SequenceExample.feature_lists: unexpected list {k!r}")
    for k in sorted(set(fls) - set(got_fl.keys())):
        errs.append(f"SequenceExample.feature_lists: missing list {k!r}")
    for k in sorted(set(fls) & set(got_fl.keys())):
        got = got_fl[k].feature
        if len(got) != len(fls[k]):
            errs.append(f"feature_lists[{k!r}]: {len(got)} steps, expected {len(fls[k])}")
            continue
        for i, (g, w) in enumerate(zip(got, fls[k])):
            errs += compare_proto_feature(f"feature_lists[{k!r}][{i}]", g, w)
    # TF's C++ parser
    try:
        cspec = {k: tf.io.VarLenFeature(KINDS[f.kind]) for k, f in ctx.items()}
        sspec = {}
        for k, lst in fls.items():
            kinds = {f.kind for f in lst}
            if len(kinds) == 1:
                sspec[k] = tf.io.VarLenFeature(KINDS[kinds.pop()])
        if not cspec and not sspec:
            cspec = {"__absent__": tf.io.VarLenFeature(tf.float32)}
        c, s = tf.io.parse_single_sequence_example(data, context_features=cspec,
                                                   sequence_features=sspec)
        for k, f in ctx.items():
            errs += f.compare(f"parse_single_sequence_example context[{k!r}]", c[k].values.numpy())
        for k in sspec:
            sp = s[k]
            idx = sp.indices.numpy()
            vals = sp.values.numpy()
            steps = int(sp.dense_shape.numpy()[0])
            if steps != len(fls[k]):
                errs.append(f"parse_single_sequence_example [{k!r}]: {steps} steps, "
                            f"expected {len(fls[k])}")
                continue
            for i, f in enumerate(fls[k]):
                errs += f.compare(f"parse_single_sequence_example [{k!r}][{i}]",
                                  vals[idx[:, 0] == i] if len(vals) else vals)
    except Exception as ex_err:  # noqa: BLE001
        errs.append(f"tf.io.parse_single_sequence_example failed: {one_line(ex_err)}")
    return errs


# --------------------------------------------------------------------------
# TFRecords
# --------------------------------------------------------------------------

def check_tfrecord_entry(d, e):
    comp = e.get("compression", "")
    if comp not in ("", "GZIP", "ZLIB"):
        raise Bad(f"manifest: compression {comp!r} is not \"\", \"GZIP\" or \"ZLIB\"")
    recs = e.get("records_b64")
    if not isinstance(recs, list):
        raise Bad("manifest: records_b64 is not a list")
    want = [std_b64decode(r, f"records_b64[{i}]") for i, r in enumerate(recs)]
    path = os.path.join(d, e["file"])
    raw = read(d, e)
    errs = []
    if comp == "GZIP" and raw[:2] != b"\x1f\x8b":
        errs.append("compression GZIP but the file does not start with the gzip magic 1f 8b")
    try:
        got = [r.numpy() for r in tf.data.TFRecordDataset(path, compression_type=comp)]
    except Exception as ex_err:  # noqa: BLE001
        return errs + [f"tf.data.TFRecordDataset failed: {one_line(ex_err)}"]
    if len(got) != len(want):
        errs.append(f"TFRecordDataset read {len(got)} records, expected {len(want)}")
    for i, (g, w) in enumerate(zip(got, want)):
        if g != w:
            errs.append(f"record {i}: {len(g)} bytes, expected {len(w)} bytes"
                        + ("" if len(g) != len(w) else " (content differs)"))
    return errs


# --------------------------------------------------------------------------
# payloads
# --------------------------------------------------------------------------

B64_RE = {
    "urlsafe_unpadded": re.compile(r"[A-Za-z0-9_-]*"),
    "urlsafe_padded": re.compile(r"[A-Za-z0-9_-]*={0,2}"),
    "standard_padded": re.compile(r"[A-Za-z0-9+/]*={0,2}"),
    "any": re.compile(r"[A-Za-z0-9+/_-]*={0,2}"),
}


def decode_b64_style(s, style):
    """Decode s, which must be written in `style`; raises ValueError with the reason."""
    if not isinstance(s, str):
        raise ValueError(f"expected a base64 string, got {type(s).__name__}")
    if not B64_RE[style].fullmatch(s):
        bad = sorted(set(re.sub(r"[A-Za-z0-9]", "", s)))
        raise ValueError(f"not {style} base64 (non-alphanumeric characters used: {''.join(bad)!r})")
    body = s.rstrip("=")
    if len(body) % 4 == 1:
        raise ValueError("impossible base64 length")
    if style in ("urlsafe_padded", "standard_padded") and len(s) % 4:
        raise ValueError(f"{style} base64 but length {len(s)} is not a multiple of 4")
    body = body.replace("-", "+").replace("_", "/")
    return base64.b64decode(body + "=" * (-len(body) % 4), validate=True)


def check_stt(data, e, insts):
    request = e["kind"] == "request"
    style = e.get("b64") or ("urlsafe_unpadded" if request else "any")
    if style not in B64_RE:
        raise Bad(f"manifest: b64 {style!r} is not one of {', '.join(B64_RE)}")
    obj = json_loads(data)
    key = "instances" if request else "predictions"
    lst = get_list(obj, key)
    errs = []
    if len(lst) != len(insts):
        return [f"{key}: {len(lst)} elements, expected {len(insts)}"]
    for i, (row, want) in enumerate(zip(lst, insts)):
        if e.get("single_output") and not request:
            if len(want) != 1:
                raise Bad("manifest: single_output entry must have exactly one tensor per instance")
            pairs = [(next(iter(want)), row, f"{key}[{i}]")]
        else:
            if not isinstance(row, dict):
                errs.append(f"{key}[{i}]: expected an object of named tensors, got {type(row).__name__}")
                continue
            errs += key_diff(f"{key}[{i}]", row, want)
            pairs = [(k, row[k], f"{key}[{i}].{k}") for k in want if k in row]
        for name, s, what in pairs:
            try:
                raw = decode_b64_style(s, style)
            except ValueError as ex_err:
                errs.append(f"{what}: {ex_err}")
                continue
            errs += check_tensor_bytes(raw, want[name], prefix=f"{what}: ")
    return errs


def scalar_mismatch(v, x, dt, strings):
    """None if JSON scalar v encodes expected numpy scalar x of dtype dt, else a reason."""
    if dt == "string":
        if strings == "tfs" and isinstance(v, dict):
            if set(v) != {"b64"}:
                return f"string object {v!r} must be {{\"b64\": ...}}"
            try:
                got = base64.b64decode(v["b64"], validate=True)
            except Exception as ex_err:  # noqa: BLE001
                return f"b64 value is not standard padded base64: {ex_err}"
        elif isinstance(v, str):
            got = v.encode("utf-8", "surrogatepass")
        else:
            return f"expected a string, got {json.dumps(v)}"
        return None if got == x else f"{got!r} != expected {x!r}"
    if dt == "bool":
        if not isinstance(v, bool):
            return f"expected true/false, got {json.dumps(v)}"
        return None if v == bool(x) else f"{json.dumps(v)} != expected {json.dumps(bool(x))}"
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return f"expected a number, got {json.dumps(v)}"
    if dt in FLOATS:
        with np.errstate(all="ignore"):
            got = np.array(v, dtype=np.float64).astype(dt)
        if np.isnan(x):
            return None if np.isnan(got) else f"{v!r} != expected NaN"
        if got.tobytes() == np.asarray(x, dtype=dt).tobytes():
            return None
        return f"{v!r} (as {dt}: {got!r}) != expected {x!r}"
    if isinstance(v, float):
        return f"expected an integer for {dt}, got {v!r}"
    return None if v == int(x) else f"{v} != expected {int(x)}"


def compare_json_value(what, v, arr, dt, strings, errs):
    """Nested-list JSON value v against numpy array arr."""
    if len(errs) >= MAX_ERRORS_PER_ENTRY:
        return
    if arr.ndim == 0:
        why = scalar_mismatch(v, arr[()], dt, strings)
        if why:
            errs.append(f"{what}: {why}")
        return
    if not isinstance(v, list):
        errs.append(f"{what}: expected a list of {arr.shape[0]} (shape {list(arr.shape)}), "
                    f"got {json.dumps(v)[:60]}")
        return
    if len(v) != arr.shape[0]:
        errs.append(f"{what}: list of {len(v)}, expected {arr.shape[0]} (shape {list(arr.shape)})")
        return
    for i, (vi, ai) in enumerate(zip(v, arr)):
        compare_json_value(f"{what}[{i}]", vi, np.asarray(ai, dtype=arr.dtype), dt, strings, errs)


def is_value_not_map(v):
    return not isinstance(v, dict) or set(v) == {"b64"}


def check_tfs(data, e, insts):
    request = e["kind"] == "request"
    row = e["format"] == "TF_SERVING_ROW"
    key = {(True, True): "instances", (True, False): "predictions",
           (False, True): "inputs", (False, False): "outputs"}[(row, request)]
    obj = json_loads(data)
    if not isinstance(obj, dict) or key not in obj:
        return [f"top-level object has no {key!r}"]
    names = list(insts[0]) if insts else []
    # TF Serving accepts bare values for a request with a single input; responses
    # follow the manifest's single_output flag.
    bare_ok = request and len(names) == 1
    bare_required = bool(e.get("single_output")) and not request
    if bare_required and len(names) != 1:
        raise Bad("manifest: single_output entry must have exactly one tensor per instance")
    errs = []

    def named(what, v):
        """-> dict name -> value, or None after recording an error."""
        if is_value_not_map(v):
            if bare_required or bare_ok:
                return {names[0]: v}
            errs.append(f"{what}: expected an object of named tensors, got {json.dumps(v)[:60]}")
            return None
        if bare_required:
            errs.append(f"{what}: single_output response must hold bare values, got an object")
            return None
        errs.extend(key_diff(what, v, dict.fromkeys(names)))
        return v

    if row:
        lst = obj[key]
        if not isinstance(lst, list):
            return [f"{key} is not a list"]
        if len(lst) != len(insts):
            return [f"{key}: {len(lst)} rows, expected {len(insts)}"]
        for i, (r, want) in enumerate(zip(lst, insts)):
            if set(want) != set(names):
                raise Bad("manifest: instances do not all have the same tensor names")
            got = named(f"{key}[{i}]", r)
            if got is None:
                continue
            for k, t in want.items():
                if k in got:
                    compare_json_value(f"{key}[{i}].{k}" if not bare_required else f"{key}[{i}]",
                                       got[k], t.arr, t.dtype, "tfs", errs)
    else:
        if not insts:
            return []
        got = named(key, obj[key])
        if got is not None:
            for k in names:
                ts = [inst[k] for inst in insts]
                if len({(t.dtype, t.shape) for t in ts}) != 1:
                    raise Bad(f"manifest: instances disagree on dtype/shape of {k!r}")
                stacked = np.stack([t.arr for t in ts])
                if k in got:
                    compare_json_value(f"{key}.{k}" if not bare_required else key,
                                       got[k], stacked, ts[0].dtype, "tfs", errs)
    return errs


def flatten_json(v, out):
    if isinstance(v, list):
        for x in v:
            flatten_json(x, out)
    else:
        out.append(v)
    return out


def kserve_raw(t):
    if t.dtype == "string":
        return b"".join(len(s).to_bytes(4, "little") + s for s in t.arr.reshape(-1))
    return t.raw()


def check_kserve(data, e, insts):
    request = e["kind"] == "request"
    binary = e["format"] == "KSERVE_V2_BINARY"
    if len(insts) != 1:
        raise Bad(f"manifest: KServe payloads need exactly one element in instances, got {len(insts)}")
    want = insts[0]
    dtn = e.get("datatype_names") or {}
    errs = []
    if binary:
        hl = e.get("header_length")
        if not isinstance(hl, int) or isinstance(hl, bool) or not 0 < hl <= len(data):
            raise Bad(f"manifest: header_length {hl!r} is missing or outside 1..{len(data)}")
        header, rest = data[:hl], data[hl:]
    else:
        header, rest = data, b""
    obj = json_loads(header)
    key = "inputs" if request else "outputs"
    lst = get_list(obj, key)
    seen = set()
    off = 0
    for i, t in enumerate(lst):
        what = f"{key}[{i}]"
        if not isinstance(t, dict):
            errs.append(f"{what}: not an object")
            continue
        name = t.get("name")
        what = f"{key}[{i}] ({name})"
        if name not in want:
            errs.append(f"{what}: unexpected tensor name {name!r}")
            continue
        if name in seen:
            errs.append(f"{what}: duplicate tensor name")
        seen.add(name)
        exp = want[name]
        want_dt = dtn.get(name) or KSERVE_DT[exp.dtype]
        if t.get("datatype") != want_dt:
            errs.append(f"{what}: datatype {t.get('datatype')!r}, expected {want_dt!r}")
        if t.get("shape") != list(exp.shape):
            errs.append(f"{what}: shape {t.get('shape')!r}, expected {list(exp.shape)}")
        params = t.get("parameters") or {}
        if not isinstance(params, dict):
            errs.append(f"{what}: parameters is not an object")
            params = {}
        size = params.get("binary_data_size")
        if size is not None:
            if not binary:
                errs.append(f"{what}: binary_data_size in a KSERVE_V2_JSON payload")
                continue
            if "data" in t:
                errs.append(f"{what}: has both data and parameters.binary_data_size")
            if not isinstance(size, int) or isinstance(size, bool) or size < 0:
                errs.append(f"{what}: binary_data_size {size!r} is not a non-negative int")
                continue
            chunk = rest[off:off + size]
            off += size
            raw = kserve_raw(exp)
            if len(chunk) < size:
                errs.append(f"{what}: binary_data_size {size} runs past the end of the body")
            elif chunk != raw:
                if len(chunk) != len(raw):
                    errs.append(f"{what}: binary_data_size {size}, expected {len(raw)}")
                else:
                    errs.append(f"{what}: binary data differs from the expected "
                                f"{'length-prefixed BYTES' if exp.dtype == 'string' else 'little-endian elements'}")
            continue
        if "data" not in t:
            errs.append(f"{what}: neither data nor parameters.binary_data_size")
            continue
        flat = flatten_json(t["data"], []) if isinstance(t["data"], list) else [t["data"]]
        n = exp.arr.size
        if len(flat) != n:
            errs.append(f"{what}: data has {len(flat)} elements, expected {n}")
            continue
        for j, (v, x) in enumerate(zip(flat, exp.arr.reshape(-1))):
            why = scalar_mismatch(v, x, exp.dtype, "kserve")
            if why:
                errs.append(f"{what}: data[{j}]: {why}")
                break
    for name in sorted(set(want) - seen):
        errs.append(f"{key}: missing tensor {name!r}")
    if binary and off != len(rest):
        errs.append(f"body has {len(rest)} bytes after the JSON header, "
                    f"binary_data_size values add up to {off}")
    return errs


def check_payload_entry(d, e):
    fmt = e.get("format")
    if e.get("kind") not in ("request", "response"):
        raise Bad(f"manifest: kind {e.get('kind')!r} is not \"request\" or \"response\"")
    insts_json = e.get("instances")
    if not isinstance(insts_json, list):
        raise Bad("manifest: instances is not a list")
    insts = []
    for i, inst in enumerate(insts_json):
        if not isinstance(inst, dict):
            raise Bad(f"manifest: instances[{i}] is not an object")
        insts.append({k: Tensor.from_json(v, f"instances[{i}].{k}") for k, v in inst.items()})
    data = read(d, e)
    if fmt == "SERIALIZED_TF_TENSORS":
        return check_stt(data, e, insts)
    if fmt in ("TF_SERVING_ROW", "TF_SERVING_COLUMNAR"):
        return check_tfs(data, e, insts)
    if fmt in ("KSERVE_V2_JSON", "KSERVE_V2_BINARY"):
        return check_kserve(data, e, insts)
    raise Bad(f"manifest: unknown format {fmt!r}")


# --------------------------------------------------------------------------
# driver
# --------------------------------------------------------------------------

def one_line(ex):
    s = str(ex).strip().splitlines()
    s = s[0] if s else type(ex).__name__
    return f"{type(ex).__name__}: {s[:200]}"


def read(d, e):
    f = e.get("file")
    if not isinstance(f, str) or not f:
        raise Bad("manifest: entry has no file")
    path = os.path.join(d, f)
    try:
        with open(path, "rb") as fh:
            return fh.read()
    except OSError as ex_err:
        raise Bad(f"cannot read: {ex_err.strerror}")


def json_loads(data):
    try:
        return json.loads(data.decode("utf-8"))  # accepts NaN / Infinity / -Infinity
    except Exception as ex_err:  # noqa: BLE001
        raise Bad(f"not valid JSON: {one_line(ex_err)}")


def get_list(obj, key):
    if not isinstance(obj, dict):
        raise Bad("top-level JSON value is not an object")
    v = obj.get(key)
    if not isinstance(v, list):
        raise Bad(f"top-level object has no {key!r} list")
    return v


def key_diff(what, got, want):
    errs = [f"{what}: unexpected key {k!r}" for k in got if k not in want]
    errs += [f"{what}: missing key {k!r}" for k in want if k not in got]
    return errs


SECTIONS = (
    ("tensors", check_tensor_entry),
    ("examples", check_example_entry),
    ("sequence_examples", check_sequence_example_entry),
    ("tfrecords", check_tfrecord_entry),
    ("payloads", check_payload_entry),
)


def main(argv):
    if len(argv) != 2:
        print("usage: check_interop.py DIR", file=sys.stderr)
        return 2
    d = argv[1]
    passed = failed = 0
    try:
        with open(os.path.join(d, "manifest.json"), "rb") as fh:
            manifest = json.loads(fh.read().decode("utf-8"))
        if not isinstance(manifest, dict):
            raise ValueError("top level is not an object")
    except Exception as ex_err:  # noqa: BLE001
        print(f"FAIL manifest.json: {one_line(ex_err)}")
        print("interop: 0 passed, 1 failed")
        return 1
    for section, fn in SECTIONS:
        entries = manifest.get(section) or []
        if not isinstance(entries, list):
            print(f"FAIL manifest.json: {section} is not a list")
            failed += 1
            continue
        for i, e in enumerate(entries):
            name = e.get("file") if isinstance(e, dict) else None
            label = name or f"{section}[{i}]"
            try:
                if not isinstance(e, dict):
                    raise Bad("manifest: entry is not an object")
                errs = fn(d, e)
            except Bad as ex_err:
                errs = [str(ex_err)]
            except Exception as ex_err:  # noqa: BLE001
                errs = [f"checker error: {one_line(ex_err)}"]
            if errs:
                failed += 1
                for msg in errs[:MAX_ERRORS_PER_ENTRY]:
                    print(f"FAIL {label}: {msg}")
                if len(errs) > MAX_ERRORS_PER_ENTRY:
                    print(f"FAIL {label}: ... and {len(errs) - MAX_ERRORS_PER_ENTRY} more")
            else:
                passed += 1
    print(f"interop: {passed} passed, {failed} failed")
    return 1 if failed or not passed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
