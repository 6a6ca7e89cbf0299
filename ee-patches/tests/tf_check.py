"""TensorFlow's side of ee-patches' interop tests, run once per test with a list of jobs.

usage: tf_check.py JOBS.json RESULTS.json

Each job is one of:
  {"op": "parse", "files": [...], "compression": "GZIP" | "",
   "features": [[name, [dims...], "float32" | "int64"], ...], "out": PATH}
      Reads the files with tf.data.TFRecordDataset and parses every record with
      tf.io.parse_single_example and FixedLenFeature of exactly those shapes (a record of any
      other size fails). Writes every value, record after record, feature after feature in the
      order given, to PATH (float32 features as little-endian float32, int64 as int64) and
      reports the number of records.
  {"op": "write", "file": PATH, "compression": "GZIP" | "", "records": N,
   "features": [[name, length, "float32" | "int64"], ...], "values": PATH}
      Builds N tf.train.Example protos from the raw little-endian values in `values` (record
      after record, feature after feature) and writes them with tf.io.TFRecordWriter.
Results: a list with, per job, {"records": N} or {"error": "..."}.
"""

import json
import sys

import numpy as np
import tensorflow as tf

DTYPES = {"float32": (tf.float32, np.float32), "int64": (tf.int64, np.int64)}


def parse(job):
    spec = {
        name: tf.io.FixedLenFeature(shape=dims, dtype=DTYPES[dtype][0])
        for name, dims, dtype in job["features"]
    }
    dataset = tf.data.TFRecordDataset(job["files"], compression_type=job["compression"])
    count = 0
    with open(job["out"], "wb") as out:
        for record in dataset:
            parsed = tf.io.parse_single_example(record, spec)
            for name, _, dtype in job["features"]:
                out.write(parsed[name].numpy().astype(DTYPES[dtype][1]).astype("<" + np.dtype(DTYPES[dtype][1]).str[1:]).tobytes())
            count += 1
    return {"records": count}


def write(job):
    raw = open(job["values"], "rb").read()
    offset = 0
    options = tf.io.TFRecordOptions(compression_type=job["compression"])
    with tf.io.TFRecordWriter(job["file"], options) as writer:
        for _ in range(job["records"]):
            feature = {}
            for name, length, dtype in job["features"]:
                np_type = np.dtype(DTYPES[dtype][1]).newbyteorder("<")
                size = length * np_type.itemsize
                values = np.frombuffer(raw[offset:offset + size], dtype=np_type)
                offset += size
                if dtype == "float32":
                    feature[name] = tf.train.Feature(float_list=tf.train.FloatList(value=values.tolist()))
                else:
                    feature[name] = tf.train.Feature(int64_list=tf.train.Int64List(value=values.tolist()))
            example = tf.train.Example(features=tf.train.Features(feature=feature))
            writer.write(example.SerializeToString())
    if offset != len(raw):
        raise ValueError(f"{len(raw) - offset} bytes of values left over")
    return {"records": job["records"]}


def main():
    jobs = json.load(open(sys.argv[1]))
    results = []
    for job in jobs:
        try:
            results.append(parse(job) if job["op"] == "parse" else write(job))
        except Exception as e:  # reported per job, so one failure does not hide the others
            results.append({"error": f"{type(e).__name__}: {e}"})
    json.dump(results, open(sys.argv[2], "w"))


if __name__ == "__main__":
    main()
