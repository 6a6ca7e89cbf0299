//! Fuzzing of every decoder that reads bytes from outside: serialized `TensorProto`s, the
//! TFRecord reader (plain and gzip), and the request and response bodies of every HTTP
//! payload format (SERIALIZED_TF_TENSORS, RAW_JSON, ND_ARRAYS, TF Serving JSON row and
//! columnar, KServe v2 JSON and binary).
//!
//! Inputs are valid encodings mutated by proptest (bit flips, truncation, inserted and deleted
//! bytes, overwritten 8-byte words such as forged length fields) plus random bytes. Each
//! decoder must return (`Ok` or `Err`, never a panic), and a counting global allocator checks
//! that decoding `n` bytes allocates at most a fixed multiple of `n` plus a constant (plus, for
//! an `Ok` answer, the size of what it decoded: TensorFlow's fill rule lets a few bytes
//! describe a large constant tensor, bounded by `MAX_DECODED_TENSOR_BYTES`). Forged length
//! fields of 2^60 are checked to fail fast and small.

use std::time::{Duration, Instant};

use ee_fuzzkit::{allocated_by, apply, config, fuzzed, mutation, Counting};
use ee_tensor_proto::payload::{kserve_v2, nd_arrays, raw_json, serialized_tf_tensors, tf_serving};
use ee_tensor_proto::proto::tensorflow::TensorProto;
use ee_tensor_proto::tfrecord::{open_reader, Compression, TfRecordReader, TfRecordWriter};
use ee_tensor_proto::{tensor_proto, DataType, Instance, OutputSpec, Tensor};
use proptest::prelude::*;

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Allocation allowed for decoding `input_len` bytes into something of `decoded` bytes.
fn allowed(input_len: usize, decoded: usize) -> usize {
    16 * input_len + 4 * decoded + (256 << 10)
}

fn tensor_bytes(t: &Tensor) -> usize {
    t.len() * t.dtype().size().unwrap_or(32).max(1)
}

fn instances_bytes(v: &[Instance]) -> usize {
    v.iter().map(instance_bytes).sum()
}

fn instance_bytes(i: &Instance) -> usize {
    i.iter().map(|(_, t)| tensor_bytes(t)).sum()
}

// ---- valid encodings ----

fn sample_tensors() -> Vec<Tensor> {
    vec![
        Tensor::from_vec(&[2, 3, 2], (0..12).map(|i| i as f32 * 0.5 - 2.0).collect()).unwrap(),
        Tensor::from_vec(&[4], vec![1i64, -2, 1 << 40, 7]).unwrap(),
        Tensor::from_vec(&[3, 1], vec![1u8, 200, 0]).unwrap(),
        Tensor::from_vec(&[2, 2], vec![1.5f64, f64::NAN, -0.0, 1e300]).unwrap(),
        Tensor::from_vec(&[2], vec![true, false]).unwrap(),
        Tensor::from_strings(&[2], vec![b"ab".to_vec(), vec![0, 255, 7]]).unwrap(),
        Tensor::from_vec(&[0, 3], Vec::<i32>::new()).unwrap(),
    ]
}

fn tensor_proto_seeds() -> Vec<Vec<u8>> {
    let mut seeds: Vec<Vec<u8>> = sample_tensors()
        .iter()
        .map(tensor_proto::serialize)
        .collect();
    // Typed value fields with the fill rule, as TensorFlow writes small constants.
    use prost::Message;
    let typed = TensorProto {
        dtype: DataType::Float32.tf_code(),
        tensor_shape: Some(ee_tensor_proto::proto::tensorflow::TensorShapeProto {
            dim: vec![
                ee_tensor_proto::proto::tensorflow::tensor_shape_proto::Dim {
                    size: 5,
                    name: String::new(),
                },
            ],
            unknown_rank: false,
        }),
        float_val: vec![1.0, 2.0],
        ..Default::default()
    };
    seeds.push(typed.encode_to_vec());
    seeds
}

fn outputs() -> Vec<OutputSpec> {
    vec![
        OutputSpec::new("a", DataType::Float32),
        OutputSpec::new("b", DataType::Int64),
    ]
}

fn batch() -> Vec<Instance> {
    (0..2)
        .map(|k| {
            Instance::new()
                .with(
                    "a",
                    Tensor::from_vec(&[2, 2, 1], vec![k as f32, 1.5, -2.25, 1e-3]).unwrap(),
                )
                .with("b", Tensor::from_vec(&[3], vec![k as i64, -4, 9]).unwrap())
        })
        .collect()
}

fn batched() -> Instance {
    Instance::stack(&batch()).unwrap()
}

// ---- TensorProto ----

fn check_tensor_proto(bytes: &[u8]) {
    let (result, used) = allocated_by(|| tensor_proto::deserialize(bytes));
    let decoded = result.as_ref().map(tensor_bytes).unwrap_or(0);
    assert!(
        used <= allowed(bytes.len(), decoded),
        "decoding {} bytes allocated {used} bytes (decoded {decoded}): {bytes:?}",
        bytes.len()
    );
    for dtype in [DataType::Float32, DataType::String] {
        let _ = tensor_proto::deserialize_expecting(bytes, dtype, "fuzz");
    }
}

proptest! {
    #![proptest_config(config(20000))]
    #[test]
    fn tensor_proto_decoding_never_panics_nor_balloons(bytes in fuzzed(tensor_proto_seeds())) {
        check_tensor_proto(&bytes);
    }
}

#[test]
fn forged_tensor_proto_sizes_fail_fast_and_small() {
    use ee_tensor_proto::proto::tensorflow::{tensor_shape_proto::Dim, TensorShapeProto};
    use prost::Message;
    let dims = |sizes: &[i64]| {
        Some(TensorShapeProto {
            dim: sizes
                .iter()
                .map(|&size| Dim {
                    size,
                    name: String::new(),
                })
                .collect(),
            unknown_rank: false,
        })
    };
    let forged = [
        // One value filled out to 2^60 elements.
        TensorProto {
            dtype: DataType::Float32.tf_code(),
            tensor_shape: dims(&[1 << 60]),
            float_val: vec![1.0],
            ..Default::default()
        },
        // Element count overflowing usize.
        TensorProto {
            dtype: DataType::Float64.tf_code(),
            tensor_shape: dims(&[1 << 40, 1 << 40]),
            double_val: vec![1.0],
            ..Default::default()
        },
        // A string tensor of 2^60 elements from one value.
        TensorProto {
            dtype: DataType::String.tf_code(),
            tensor_shape: dims(&[1 << 60]),
            string_val: vec![b"x".to_vec()],
            ..Default::default()
        },
        // A string tensor_content whose first length varint says 2^60.
        TensorProto {
            dtype: DataType::String.tf_code(),
            tensor_shape: dims(&[2]),
            tensor_content: {
                let mut c = Vec::new();
                prost::encoding::encode_varint(1 << 60, &mut c);
                c.extend_from_slice(b"abc");
                c.into()
            },
            ..Default::default()
        },
        // 2^60 string elements claimed by the shape, a few bytes of content.
        TensorProto {
            dtype: DataType::String.tf_code(),
            tensor_shape: dims(&[1 << 60]),
            tensor_content: vec![1, b'a', 1, b'b'].into(),
            ..Default::default()
        },
        // tensor_content shorter than the shape says.
        TensorProto {
            dtype: DataType::Float32.tf_code(),
            tensor_shape: dims(&[1 << 50]),
            tensor_content: vec![0; 16].into(),
            ..Default::default()
        },
    ];
    for proto in forged {
        let bytes = proto.encode_to_vec();
        let start = Instant::now();
        let (result, used) = allocated_by(|| tensor_proto::deserialize(&bytes));
        assert!(result.is_err(), "{proto:?} decoded");
        assert!(
            used < 1 << 20 && start.elapsed() < Duration::from_secs(1),
            "{proto:?}: {used} bytes allocated, {:?}",
            start.elapsed()
        );
    }
}

// ---- TFRecord ----

fn tfrecord_file(compression: Compression) -> Vec<u8> {
    let mut w = TfRecordWriter::new(Vec::new(), compression);
    for r in [&b"first record"[..], &[], &[7u8; 300][..], b"last"] {
        w.write_record(r).unwrap();
    }
    w.finish().unwrap()
}

/// Reads every record (at most 64) of `bytes`, plain and through gzip detection.
fn check_tfrecord(bytes: &[u8]) {
    let (_, used) = allocated_by(|| {
        let mut reader = TfRecordReader::new(bytes);
        let mut data = Vec::new();
        for _ in 0..64 {
            match reader.read_record(&mut data) {
                Ok(true) => {}
                Ok(false) | Err(_) => break,
            }
        }
    });
    assert!(
        used <= allowed(bytes.len(), 0),
        "reading {} bytes of TFRecords allocated {used}",
        bytes.len()
    );
    // Gzip: the decompressed stream may legitimately be larger than the input; count records
    // and cap the bytes read.
    if let Ok((reader, _)) = open_reader(bytes) {
        let mut total = 0usize;
        for record in reader.take(64) {
            match record {
                Ok(r) => {
                    total += r.len();
                    if total > 16 << 20 {
                        break;
                    }
                }
                Err(_) => break,
            }
        }
    }
}

proptest! {
    #![proptest_config(config(5000))]
    #[test]
    fn tfrecord_reading_never_panics_nor_balloons(
        bytes in fuzzed(vec![tfrecord_file(Compression::None), tfrecord_file(Compression::Gzip)])
    ) {
        check_tfrecord(&bytes);
    }
}

#[test]
fn forged_tfrecord_length_fails_fast_and_small() {
    for len in [1u64 << 60, u64::MAX, 1 << 33] {
        let head = len.to_le_bytes();
        let mut file = head.to_vec();
        file.extend_from_slice(&ee_tensor_proto::tfrecord::masked_crc32c(&head).to_le_bytes());
        file.extend_from_slice(b"only a few bytes follow");
        let start = Instant::now();
        let (result, used) = allocated_by(|| {
            let mut data = Vec::new();
            TfRecordReader::new(&file[..]).read_record(&mut data)
        });
        let err = result.expect_err("a forged length is an error").to_string();
        assert!(err.contains("truncated"), "{err}");
        assert!(
            used < 1 << 20 && start.elapsed() < Duration::from_secs(1),
            "length {len}: {used} bytes allocated"
        );
    }
    // The same through gzip.
    let gz = gzip_store(&{
        let head = (1u64 << 60).to_le_bytes();
        let mut f = head.to_vec();
        f.extend_from_slice(&ee_tensor_proto::tfrecord::masked_crc32c(&head).to_le_bytes());
        f.extend_from_slice(&[0; 100]);
        f
    });
    let (reader, compression) = open_reader(&gz[..]).unwrap();
    assert_eq!(compression, Compression::Gzip);
    let mut records = reader;
    assert!(matches!(records.next(), Some(Err(_))));
}

/// A gzip member holding `data` in stored (uncompressed) deflate blocks.
fn gzip_store(data: &[u8]) -> Vec<u8> {
    let mut out = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255];
    let chunks: Vec<&[u8]> = if data.is_empty() {
        vec![&[]]
    } else {
        data.chunks(65535).collect()
    };
    for (i, c) in chunks.iter().enumerate() {
        out.push(u8::from(i + 1 == chunks.len()));
        let len = c.len() as u16;
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&(!len).to_le_bytes());
        out.extend_from_slice(c);
    }
    out.extend_from_slice(&crc32(data).to_le_bytes());
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    out
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= b as u32;
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

// ---- payload bodies ----

fn payload_seeds() -> Vec<(&'static str, Vec<u8>, Option<usize>)> {
    let b = batch();
    let mut seeds = Vec::new();
    let mut push = |name, f: &dyn Fn(&mut Vec<u8>) -> Option<usize>| {
        let mut out = Vec::new();
        let h = f(&mut out);
        seeds.push((name, out, h));
    };
    push("stt-req", &|o| {
        serialized_tf_tensors::encode_request(&b, o).unwrap();
        None
    });
    push("stt-resp", &|o| {
        serialized_tf_tensors::encode_response(&b, o).unwrap();
        None
    });
    push("raw-req", &|o| {
        raw_json::encode_request(&b, o).unwrap();
        None
    });
    push("raw-resp", &|o| {
        raw_json::encode_response(&b, o).unwrap();
        None
    });
    let single: Vec<Instance> = b
        .iter()
        .map(|i| Instance::new().with("a", i.get("a").unwrap().clone()))
        .collect();
    push("nd-req", &|o| {
        nd_arrays::encode_request(&single, o).unwrap();
        None
    });
    push("nd-resp", &|o| {
        nd_arrays::encode_response(&single, o).unwrap();
        None
    });
    for layout in [tf_serving::Layout::Row, tf_serving::Layout::Columnar] {
        push("tfs-req", &|o| {
            tf_serving::encode_request(&b, layout, Some("serving_default"), o).unwrap();
            None
        });
        push("tfs-resp", &|o| {
            tf_serving::encode_response(&b, layout, o).unwrap();
            None
        });
    }
    let stacked = batched();
    for binary in [false, true] {
        push("kserve-req", &|o| {
            kserve_v2::encode_request(&stacked, &["a", "b"], binary, o).unwrap()
        });
        push("kserve-resp", &|o| {
            kserve_v2::encode_response("m", Some("1"), Some("id"), &stacked, binary, o).unwrap()
        });
    }
    seeds
}

/// Runs every payload decoder on `body` (with `header` as the KServe binary header length),
/// checking allocation per decoder.
fn check_payload(body: &[u8], header: Option<usize>) {
    let outs = outputs();
    let one = OutputSpec::new("a", DataType::Float32);
    let n = body.len();
    let check = |what: &str, (decoded, used): (usize, usize)| {
        assert!(
            used <= allowed(n, decoded),
            "{what}: decoding {n} bytes allocated {used} (decoded {decoded}): {:?}",
            String::from_utf8_lossy(body)
        );
    };
    let size = |r: ee_tensor_proto::Result<Vec<Instance>>| r.map_or(0, |v| instances_bytes(&v));
    check(
        "SERIALIZED_TF_TENSORS request",
        allocated_by(|| size(serialized_tf_tensors::decode_request(body, &outs))),
    );
    check(
        "SERIALIZED_TF_TENSORS response",
        allocated_by(|| size(serialized_tf_tensors::decode_response(body, &outs))),
    );
    check(
        "RAW_JSON request",
        allocated_by(|| size(raw_json::decode_request(body, &outs))),
    );
    check(
        "RAW_JSON response",
        allocated_by(|| size(raw_json::decode_response(body, &outs))),
    );
    check(
        "ND_ARRAYS request",
        allocated_by(|| size(nd_arrays::decode_request(body, &one))),
    );
    check(
        "ND_ARRAYS response",
        allocated_by(|| size(nd_arrays::decode_response(body, &one))),
    );
    check(
        "TF Serving request",
        allocated_by(|| {
            tf_serving::decode_request(body, &outs).map_or(0, |r| {
                let dbg = format!("{r:?}");
                dbg.len()
            })
        }),
    );
    check(
        "TF Serving response",
        allocated_by(|| size(tf_serving::decode_response(body, &outs))),
    );
    for h in [None, header] {
        check(
            "KServe v2 request",
            allocated_by(|| {
                kserve_v2::decode_request(body, h).map_or(0, |r| instance_bytes(&r.inputs))
            }),
        );
        check(
            "KServe v2 response",
            allocated_by(|| {
                kserve_v2::decode_response(body, h, &outs).map_or(0, |r| instance_bytes(&r))
            }),
        );
    }
}

fn payload_strategy() -> impl Strategy<Value = (Vec<u8>, Option<usize>)> {
    let seeds = payload_seeds();
    let n = seeds.len();
    prop_oneof![
        7 => (0..n, prop::collection::vec(mutation(), 1..6), prop_oneof![Just(0usize), 0usize..4096, Just(usize::MAX), Just(1 << 60)])
            .prop_map(move |(s, m, dh)| {
                let (_, body, h) = &seeds[s];
                // Mostly the true header length, sometimes a forged one.
                let header = h.map(|h| if dh == 0 { h } else { dh });
                (apply(body.clone(), &m), header.or(Some(dh)))
            }),
        1 => (prop::collection::vec(any::<u8>(), 0..512), any::<Option<usize>>()),
    ]
}

proptest! {
    #![proptest_config(config(8000))]
    #[test]
    fn payload_decoding_never_panics_nor_balloons((body, header) in payload_strategy()) {
        check_payload(&body, header);
    }
}

#[test]
fn unmutated_payloads_decode() {
    // The seeds themselves are valid: the fuzzing starts from real encodings.
    let outs = outputs();
    for (name, body, header) in payload_seeds() {
        let ok = match name {
            "stt-req" => serialized_tf_tensors::decode_request(&body, &outs).is_ok(),
            "stt-resp" => serialized_tf_tensors::decode_response(&body, &outs).is_ok(),
            "raw-req" => raw_json::decode_request(&body, &outs).is_ok(),
            "raw-resp" => raw_json::decode_response(&body, &outs).is_ok(),
            "nd-req" => {
                nd_arrays::decode_request(&body, &OutputSpec::new("a", DataType::Float32)).is_ok()
            }
            "nd-resp" => {
                nd_arrays::decode_response(&body, &OutputSpec::new("a", DataType::Float32)).is_ok()
            }
            "tfs-req" => tf_serving::decode_request(&body, &outs).is_ok(),
            "tfs-resp" => tf_serving::decode_response(&body, &outs).is_ok(),
            "kserve-req" => kserve_v2::decode_request(&body, header).is_ok(),
            "kserve-resp" => kserve_v2::decode_response(&body, header, &outs).is_ok(),
            _ => unreachable!(),
        };
        assert!(
            ok,
            "{name} seed does not decode: {}",
            String::from_utf8_lossy(&body)
        );
    }
}

#[test]
fn forged_sizes_in_payloads_fail_fast_and_small() {
    let bodies: Vec<(Vec<u8>, Option<usize>)> = vec![
        // KServe binary: a header claiming 2^60 bytes of data.
        (
            br#"{"outputs":[{"name":"a","shape":[1152921504606846976],"datatype":"FP32","parameters":{"binary_data_size":4611686018427387904}}]}"#
                .to_vec(),
            Some(126),
        ),
        // KServe binary: a shape whose product overflows.
        (
            br#"{"outputs":[{"name":"a","shape":[4294967296,4294967296,16],"datatype":"FP32","parameters":{"binary_data_size":16}}]}"#
                .to_vec(),
            None,
        ),
        // KServe JSON: a huge shape with three values.
        (
            br#"{"outputs":[{"name":"a","shape":[1152921504606846976],"datatype":"FP32","data":[1,2,3]}]}"#
                .to_vec(),
            None,
        ),
        // A header length past the body.
        (br#"{"outputs":[]}"#.to_vec(), Some(usize::MAX)),
        // Deep nesting.
        (
            [&b"{\"predictions\": "[..], &[b'['; 100_000]].concat(),
            None,
        ),
    ];
    for (body, header) in bodies {
        let start = Instant::now();
        let ((), used) = allocated_by(|| check_payload(&body, header));
        assert!(
            used < 64 * body.len() + (8 << 20) && start.elapsed() < Duration::from_secs(5),
            "{}: {used} bytes, {:?}",
            String::from_utf8_lossy(&body[..body.len().min(200)]),
            start.elapsed()
        );
    }
    // The first two must be errors, not tensors.
    let outs = outputs();
    assert!(kserve_v2::decode_response(
        br#"{"outputs":[{"name":"a","shape":[1152921504606846976],"datatype":"FP32","parameters":{"binary_data_size":16}}]}"#,
        Some(113),
        &outs
    )
    .is_err());
}

#[test]
fn kserve_raw_contents_with_forged_shapes_fail_fast_and_small() {
    // gRPC `raw_output_contents`: the shape comes from the message, the bytes from elsewhere.
    let bytes = [1u8, 0, 0, 0, b'a', 0xff, 0xff, 0xff, 0x7f, b'b'];
    let shapes: [&[usize]; 4] = [&[1 << 60], &[usize::MAX, 2], &[1 << 32, 1 << 32], &[3]];
    for dtype in [
        DataType::Float32,
        DataType::String,
        DataType::Int64,
        DataType::Bool,
    ] {
        for shape in shapes {
            let start = Instant::now();
            let (result, used) = allocated_by(|| {
                kserve_v2::tensor_from_raw_contents(dtype, shape, &bytes, "fuzz").map(|t| t.len())
            });
            assert!(result.is_err(), "{dtype} {shape:?} decoded");
            assert!(
                used < 1 << 20 && start.elapsed() < Duration::from_secs(1),
                "{dtype} {shape:?}: {used} bytes"
            );
        }
    }
}

proptest! {
    #![proptest_config(config(3000))]
    #[test]
    fn kserve_raw_contents_never_panic(
        dtype in prop::sample::select(ee_tensor_proto::ALL_DATA_TYPES.to_vec()),
        shape in prop::collection::vec(prop_oneof![0usize..5, Just(1usize << 40)], 0..4),
        bytes in prop::collection::vec(any::<u8>(), 0..64),
    ) {
        let (result, used) = allocated_by(|| {
            kserve_v2::tensor_from_raw_contents(dtype, &shape, &bytes, "fuzz").map(|t| tensor_bytes(&t))
        });
        let decoded = result.unwrap_or(0);
        prop_assert!(used <= allowed(bytes.len(), decoded), "{dtype} {shape:?}: {used} bytes");
    }
}
