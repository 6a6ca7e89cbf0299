//! Interop with the real TensorFlow, TF Serving and Triton clients, in both directions.
//!
//! Reading: the fixtures under `tests/fixtures/` were made by TensorFlow itself
//! (`tf.io.serialize_tensor`, `tf.make_tensor_proto`, `tf.train.Example`,
//! `tf.io.TFRecordWriter`) and by `tritonclient` (see `make_fixtures.py`); we decode each and
//! compare with the values the manifest records, and re-encode tensors byte for byte.
//!
//! Writing: we encode the same values ourselves into a directory with a manifest of the same
//! schema, and `tests/interop/check_interop.py` decodes it with TensorFlow's own protobuf
//! classes, `tf.io.parse_tensor` and `tf.data.TFRecordDataset`. That step runs when a Python
//! with TensorFlow is given in `EE_INTEROP_PYTHON` (`cargo xtask test` sets it up and also
//! sets `EE_REQUIRE_INTEROP=1`, which makes a missing Python a failure).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use ee_tensor_proto::example::{bytes_feature, float_feature, int64_feature};
use ee_tensor_proto::payload::{kserve_v2, serialized_tf_tensors, tf_serving};
use ee_tensor_proto::proto::tensorflow::{feature, Example, Feature, SequenceExample};
use ee_tensor_proto::tfrecord::{open_reader, Compression, TfRecordWriter};
use ee_tensor_proto::{tensor_proto, DataType, Instance, OutputSpec, Tensor};
use prost::Message;
use serde_json::{json, Value};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn manifest() -> Value {
    let text = std::fs::read_to_string(fixtures().join("manifest.json")).expect("manifest.json");
    serde_json::from_str(&text).expect("manifest parses")
}

fn b64(v: &Value) -> Vec<u8> {
    B64.decode(v.as_str().expect("base64 string"))
        .expect("valid base64")
}

fn tensor_of(v: &Value) -> Tensor {
    let dtype: DataType = v["dtype"].as_str().unwrap().parse().unwrap();
    let shape: Vec<usize> = v["shape"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_u64().unwrap() as usize)
        .collect();
    if dtype == DataType::String {
        let values = v["strings_b64"]
            .as_array()
            .unwrap()
            .iter()
            .map(b64)
            .collect();
        Tensor::from_strings(&shape, values).unwrap()
    } else {
        Tensor::from_le_bytes(dtype, &shape, &b64(&v["data_b64"])).unwrap()
    }
}

fn tensor_json(t: &Tensor) -> Value {
    let shape: Vec<usize> = t.shape().to_vec();
    match t.strings() {
        Some(a) => {
            json!({"dtype": "string", "shape": shape, "strings_b64": a.iter().map(|s| B64.encode(s)).collect::<Vec<_>>()})
        }
        None => {
            json!({"dtype": t.dtype().name(), "shape": shape, "data_b64": B64.encode(t.to_le_bytes().unwrap())})
        }
    }
}

fn instances_of(v: &Value) -> Vec<Instance> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|row| {
            row.as_object()
                .unwrap()
                .iter()
                .map(|(n, t)| (n.clone(), tensor_of(t)))
                .collect()
        })
        .collect()
}

fn instances_json(rows: &[Instance]) -> Value {
    Value::Array(
        rows.iter()
            .map(|r| {
                Value::Object(
                    r.iter()
                        .map(|(n, t)| (n.to_string(), tensor_json(t)))
                        .collect(),
                )
            })
            .collect(),
    )
}

fn specs_of(rows: &[Instance]) -> Vec<OutputSpec> {
    rows[0]
        .iter()
        .map(|(n, t)| OutputSpec::new(n, t.dtype()))
        .collect()
}

/// Row-by-row equality, by name (JSON object order is not significant), NaN-safe.
fn same_rows(got: &[Instance], want: &[Instance]) -> bool {
    got.len() == want.len()
        && got.iter().zip(want).all(|(a, b)| {
            a.len() == b.len() && b.iter().all(|(n, t)| a.get(n).is_some_and(|x| x.bit_eq(t)))
        })
}

fn feature_json(f: &Feature) -> Value {
    match f.kind.as_ref().expect("feature kind") {
        feature::Kind::FloatList(l) => {
            json!({"kind": "float_list", "data_b64": B64.encode(bytemuck_f32(&l.value))})
        }
        feature::Kind::Int64List(l) => {
            json!({"kind": "int64_list", "data_b64": B64.encode(l.value.iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<u8>>())})
        }
        feature::Kind::BytesList(l) => {
            json!({"kind": "bytes_list", "strings_b64": l.value.iter().map(|s| B64.encode(s)).collect::<Vec<_>>()})
        }
    }
}

fn bytemuck_f32(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn features_json(map: &std::collections::HashMap<String, Feature>) -> Value {
    let sorted: BTreeMap<_, _> = map
        .iter()
        .map(|(k, f)| (k.clone(), feature_json(f)))
        .collect();
    json!(sorted)
}

#[test]
fn tensorflow_tensors_decode_and_reencode_byte_for_byte() {
    let m = manifest();
    let entries = m["tensors"].as_array().unwrap();
    assert!(entries.len() >= 60, "expected many tensor fixtures");
    let mut reencoded = 0;
    for e in entries {
        let file = e["file"].as_str().unwrap();
        let bytes = std::fs::read(fixtures().join(file)).unwrap();
        let want = tensor_of(&e["tensor"]);
        let got = tensor_proto::deserialize(&bytes).unwrap_or_else(|err| panic!("{file}: {err}"));
        assert!(
            got.bit_eq(&want),
            "{file}: decoded {got:?}, manifest says {want:?}"
        );
        let strict = tensor_proto::deserialize_expecting(&bytes, want.dtype(), file).unwrap();
        assert!(strict.bit_eq(&want));
        // tf.io.serialize_tensor output must be exactly what we write.
        if file.starts_with("tensor/ser_") {
            assert_eq!(
                tensor_proto::serialize(&got),
                bytes,
                "{file}: our bytes differ from TensorFlow's"
            );
            reencoded += 1;
        }
    }
    assert!(
        reencoded >= 50,
        "only {reencoded} serialize_tensor fixtures"
    );
}

#[test]
fn tensorflow_examples_decode() {
    let m = manifest();
    for e in m["examples"].as_array().unwrap() {
        let file = e["file"].as_str().unwrap();
        let ex = Example::decode(&std::fs::read(fixtures().join(file)).unwrap()[..]).unwrap();
        let features = ex.features.map(|f| f.feature).unwrap_or_default();
        assert_eq!(features_json(&features), e["features"], "{file}");
    }
    for e in m["sequence_examples"].as_array().unwrap() {
        let file = e["file"].as_str().unwrap();
        let ex =
            SequenceExample::decode(&std::fs::read(fixtures().join(file)).unwrap()[..]).unwrap();
        let context = ex.context.map(|f| f.feature).unwrap_or_default();
        assert_eq!(features_json(&context), e["context"], "{file}");
        let lists: BTreeMap<String, Value> = ex
            .feature_lists
            .map(|l| l.feature_list)
            .unwrap_or_default()
            .into_iter()
            .map(|(k, l)| {
                (
                    k,
                    Value::Array(l.feature.iter().map(feature_json).collect()),
                )
            })
            .collect();
        assert_eq!(json!(lists), e["feature_lists"], "{file}");
    }
}

#[test]
fn tensorflow_tfrecords_read() {
    let m = manifest();
    for e in m["tfrecords"].as_array().unwrap() {
        let file = e["file"].as_str().unwrap();
        let bytes = std::fs::read(fixtures().join(file)).unwrap();
        let (reader, compression) = open_reader(&bytes[..]).unwrap();
        let want_gzip = e["compression"] == "GZIP";
        assert_eq!(compression == Compression::Gzip, want_gzip, "{file}");
        let got: Vec<Vec<u8>> = reader
            .collect::<Result<_, _>>()
            .unwrap_or_else(|err| panic!("{file}: {err}"));
        let want: Vec<Vec<u8>> = e["records_b64"]
            .as_array()
            .unwrap()
            .iter()
            .map(b64)
            .collect();
        assert_eq!(got, want, "{file}");
    }
}

#[test]
fn real_client_payloads_decode() {
    let m = manifest();
    let mut seen = BTreeMap::new();
    for p in m["payloads"].as_array().unwrap() {
        let file = p["file"].as_str().unwrap();
        let body = std::fs::read(fixtures().join(file)).unwrap();
        let want = instances_of(&p["instances"]);
        let specs = specs_of(&want);
        let format = p["format"].as_str().unwrap();
        let request = p["kind"] == "request";
        let got: Vec<Instance> = match (format, request) {
            ("SERIALIZED_TF_TENSORS", true) => {
                serialized_tf_tensors::decode_request(&body, &[]).unwrap()
            }
            ("SERIALIZED_TF_TENSORS", false) => {
                serialized_tf_tensors::decode_response(&body, &specs).unwrap()
            }
            ("TF_SERVING_ROW" | "TF_SERVING_COLUMNAR", true) => {
                tf_serving::decode_request(&body, &specs).unwrap().instances
            }
            ("TF_SERVING_ROW" | "TF_SERVING_COLUMNAR", false) => {
                tf_serving::decode_response(&body, &specs).unwrap()
            }
            ("KSERVE_V2_JSON" | "KSERVE_V2_BINARY", _) => {
                let header = p["header_length"].as_u64().map(|n| n as usize);
                vec![if request {
                    kserve_v2::decode_request(&body, header).unwrap().inputs
                } else {
                    kserve_v2::decode_response(&body, header, &specs).unwrap()
                }]
            }
            other => panic!("{file}: unexpected payload kind {other:?}"),
        };
        assert!(
            same_rows(&got, &want),
            "{file}: decoded\n{got:?}\nmanifest says\n{want:?}"
        );
        *seen.entry(format).or_insert(0) += 1;
    }
    assert_eq!(seen.len(), 5, "formats covered: {seen:?}");
}

/// Writes our own encodings of the fixture values into `dir` with a manifest of the fixture
/// schema.
fn write_our_encodings(dir: &Path) {
    let m = manifest();
    for sub in ["tensor", "example", "records", "payload"] {
        std::fs::create_dir_all(dir.join(sub)).unwrap();
    }
    let mut tensors = Vec::new();
    for (i, e) in m["tensors"].as_array().unwrap().iter().enumerate() {
        let t = tensor_of(&e["tensor"]);
        let file = format!("tensor/t{i}.pb");
        std::fs::write(dir.join(&file), tensor_proto::serialize(&t)).unwrap();
        tensors.push(json!({"file": file, "note": "ee-tensor-proto", "tensor": tensor_json(&t)}));
    }

    let rows: Vec<Instance> = vec![
        Instance::new()
            .with(
                "B1",
                Tensor::from_vec(
                    &[3, 2, 1],
                    vec![0.5f32, -1.0, f32::NAN, 2.0, 3.0, f32::INFINITY],
                )
                .unwrap(),
            )
            .with(
                "B2",
                Tensor::from_vec(&[3, 2, 2], (0..12i32).map(|v| v - 6).collect()).unwrap(),
            ),
        Instance::new()
            .with("B1", Tensor::from_vec(&[3, 2, 1], vec![1.0f32; 6]).unwrap())
            .with(
                "B2",
                Tensor::from_vec(&[3, 2, 2], (0..12).collect()).unwrap(),
            ),
    ];
    let mut payloads = Vec::new();
    let mut body = Vec::new();
    serialized_tf_tensors::encode_request(&rows, &mut body).unwrap();
    std::fs::write(dir.join("payload/stt_request.json"), &body).unwrap();
    payloads.push(json!({"file": "payload/stt_request.json", "format": "SERIALIZED_TF_TENSORS", "kind": "request", "instances": instances_json(&rows), "single_output": false}));
    let single: Vec<Instance> = rows
        .iter()
        .map(|r| Instance::new().with("output", r.get("B1").unwrap().clone()))
        .collect();
    body.clear();
    serialized_tf_tensors::encode_response(&single, &mut body).unwrap();
    std::fs::write(dir.join("payload/stt_response.json"), &body).unwrap();
    payloads.push(json!({"file": "payload/stt_response.json", "format": "SERIALIZED_TF_TENSORS", "kind": "response", "instances": instances_json(&single), "single_output": true}));

    let tfs_rows: Vec<Instance> = rows
        .iter()
        .map(|r| {
            r.clone().with(
                "img",
                Tensor::from_strings(&[], vec![vec![0, 0xff, b'x']]).unwrap(),
            )
        })
        .collect();
    for (layout, name, format) in [
        (
            tf_serving::Layout::Row,
            "tfs_row_request.json",
            "TF_SERVING_ROW",
        ),
        (
            tf_serving::Layout::Columnar,
            "tfs_columnar_request.json",
            "TF_SERVING_COLUMNAR",
        ),
    ] {
        body.clear();
        tf_serving::encode_request(&tfs_rows, layout, Some("serving_default"), &mut body).unwrap();
        std::fs::write(dir.join("payload").join(name), &body).unwrap();
        payloads.push(json!({"file": format!("payload/{name}"), "format": format, "kind": "request", "instances": instances_json(&tfs_rows), "single_output": false}));
    }
    body.clear();
    tf_serving::encode_response(&single, tf_serving::Layout::Row, &mut body).unwrap();
    std::fs::write(dir.join("payload/tfs_row_response.json"), &body).unwrap();
    payloads.push(json!({"file": "payload/tfs_row_response.json", "format": "TF_SERVING_ROW", "kind": "response", "instances": instances_json(&single), "single_output": true}));

    let batched = Instance::stack(&rows)
        .unwrap()
        .with("flags", Tensor::from_vec(&[2], vec![true, false]).unwrap())
        .with(
            "text",
            Tensor::from_strings(&[2], vec![b"abc".to_vec(), b"".to_vec()]).unwrap(),
        )
        .with(
            "half",
            Tensor::from_vec(
                &[2],
                vec![half::f16::from_f32(1.5), half::f16::NEG_INFINITY],
            )
            .unwrap(),
        );
    for (binary, name, format) in [
        (false, "kserve_request.json", "KSERVE_V2_JSON"),
        (true, "kserve_request.bin", "KSERVE_V2_BINARY"),
    ] {
        let mut b = Vec::new();
        let mut inputs = batched.clone();
        if !binary {
            // JSON cannot carry NaN/Infinity portably; send finite floats.
            inputs.push(
                "B1",
                Tensor::from_vec(&[2, 3, 2, 1], (0..12).map(|v| v as f32 * 0.25).collect())
                    .unwrap(),
            );
            inputs.take("half");
        }
        let header = kserve_v2::encode_request(&inputs, &["y"], binary, &mut b).unwrap();
        std::fs::write(dir.join("payload").join(name), &b).unwrap();
        let mut entry = json!({"file": format!("payload/{name}"), "format": format, "kind": "request", "instances": instances_json(&[inputs]), "single_output": false});
        if let Some(h) = header {
            entry["header_length"] = json!(h);
        }
        payloads.push(entry);
    }

    let ex = ee_tensor_proto::example::example([
        ("B1", float_feature(vec![0.5, -1.25, f32::NAN])),
        ("label", int64_feature(vec![7, -1, i64::MAX])),
        ("id", bytes_feature(vec![b"tile-0".to_vec(), vec![0, 255]])),
        ("empty", float_feature(Vec::new())),
    ]);
    std::fs::write(dir.join("example/ours.pb"), ex.encode_to_vec()).unwrap();
    let examples = vec![
        json!({"file": "example/ours.pb", "features": features_json(&ex.features.clone().unwrap().feature)}),
    ];

    let records: Vec<Vec<u8>> = vec![
        ex.encode_to_vec(),
        Vec::new(),
        vec![42u8; 70_000],
        b"last".to_vec(),
    ];
    let mut tfrecords = Vec::new();
    for (compression, name, label) in [
        (Compression::None, "records/ours.tfrecord", ""),
        (Compression::Gzip, "records/ours.tfrecord.gz", "GZIP"),
    ] {
        let mut w = TfRecordWriter::new(Vec::new(), compression);
        for r in &records {
            w.write_record(r).unwrap();
        }
        std::fs::write(dir.join(name), w.finish().unwrap()).unwrap();
        tfrecords.push(json!({"file": name, "compression": label, "records_b64": records.iter().map(|r| B64.encode(r)).collect::<Vec<_>>()}));
    }

    let out = json!({"tensors": tensors, "examples": examples, "sequence_examples": [], "tfrecords": tfrecords, "payloads": payloads});
    std::fs::write(
        dir.join("manifest.json"),
        serde_json::to_vec_pretty(&out).unwrap(),
    )
    .unwrap();
}

#[test]
fn tensorflow_reads_what_we_write() {
    let dir = match std::env::var_os("EE_INTEROP_OUT") {
        Some(d) => PathBuf::from(d).join("ee-tensor-proto"),
        None => {
            std::env::temp_dir().join(format!("ee-tensor-proto-interop-{}", std::process::id()))
        }
    };
    let _ = std::fs::remove_dir_all(&dir);
    write_our_encodings(&dir);
    // Our encodings are written above either way; only the TensorFlow side is skipped.
    let Some(python) = ee_fuzzkit::interop_python() else {
        return;
    };
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop/check_interop.py");
    for target in [dir.as_path(), fixtures().as_path()] {
        let out = Command::new(&python)
            .arg(&script)
            .arg(target)
            .output()
            .expect("run check_interop.py");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        println!("{text}");
        assert!(
            out.status.success(),
            "TensorFlow rejected {}:\n{text}",
            target.display()
        );
        assert!(text.contains(" passed, 0 failed"), "{text}");
    }
}
