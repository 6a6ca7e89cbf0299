//! Property tests: encode then decode is the identity for every dtype, random shapes and
//! every payload format; the TFRecord reader rejects every single-byte corruption.

use ee_tensor_proto::payload::{kserve_v2, nd_arrays, raw_json, serialized_tf_tensors, tf_serving};
use ee_tensor_proto::tfrecord::{Compression, TfRecordReader, TfRecordWriter};
use ee_tensor_proto::{tensor_proto, DataType, Instance, OutputSpec, Tensor, ALL_DATA_TYPES};
use proptest::prelude::*;

/// Values as JSON can carry them: NaNs canonical (JSON has one NaN), strings UTF-8.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Flavor {
    Binary,
    Json,
}

fn canonical_nans(t: Tensor) -> Tensor {
    match t {
        Tensor::F16(a) => Tensor::F16(a.mapv(|v| if v.is_nan() { half::f16::NAN } else { v })),
        Tensor::F32(a) => Tensor::F32(a.mapv(|v| if v.is_nan() { f32::NAN } else { v })),
        Tensor::F64(a) => Tensor::F64(a.mapv(|v| if v.is_nan() { f64::NAN } else { v })),
        other => other,
    }
}

/// Dimensions a flavor can carry: nested JSON lists cannot spell a zero dimension followed by
/// others (`[]` for shape `[0, 3]` reads back as `[0]`), so JSON shapes have no zeros.
fn dims(flavor: Flavor) -> std::ops::RangeInclusive<usize> {
    match flavor {
        Flavor::Binary => 0..=4,
        Flavor::Json => 1..=4,
    }
}

fn tensor_strategy(
    dtypes: Vec<DataType>,
    max_rank: usize,
    flavor: Flavor,
) -> impl Strategy<Value = Tensor> {
    (
        prop::sample::select(dtypes),
        prop::collection::vec(dims(flavor), 0..=max_rank),
    )
        .prop_flat_map(move |(dtype, shape)| values(dtype, shape, flavor))
}

/// Random values of `dtype` filling `shape`.
fn values(dtype: DataType, shape: Vec<usize>, flavor: Flavor) -> BoxedStrategy<Tensor> {
    let n: usize = shape.iter().product();
    match dtype.size() {
        Some(size) => prop::collection::vec(any::<u8>(), n * size)
            .prop_map(move |mut bytes| {
                if dtype == DataType::Bool {
                    bytes.iter_mut().for_each(|b| *b &= 1);
                }
                let t = Tensor::from_le_bytes(dtype, &shape, &bytes).unwrap();
                if flavor == Flavor::Json {
                    canonical_nans(t)
                } else {
                    t
                }
            })
            .boxed(),
        None => {
            let element = match flavor {
                Flavor::Binary => prop::collection::vec(any::<u8>(), 0..6).boxed(),
                Flavor::Json => "\\PC{0,5}".prop_map(String::into_bytes).boxed(),
            };
            prop::collection::vec(element, n)
                .prop_map(move |v| Tensor::from_strings(&shape, v).unwrap())
                .boxed()
        }
    }
}

/// 1-3 instances of 1-3 named tensors, the instances sharing names, dtypes and shapes (as a
/// batch must) but not values.
fn rows_strategy(
    dtypes: Vec<DataType>,
    max_rank: usize,
    flavor: Flavor,
) -> impl Strategy<Value = Vec<Instance>> {
    let column = (
        prop::sample::select(dtypes),
        prop::collection::vec(dims(flavor), 0..=max_rank),
    );
    (prop::collection::vec(column, 1..=3), 1usize..=3).prop_flat_map(move |(kinds, rows)| {
        let columns: Vec<_> = kinds
            .into_iter()
            .map(|(dtype, shape)| prop::collection::vec(values(dtype, shape, flavor), rows))
            .collect();
        columns.prop_map(move |columns| {
            (0..rows)
                .map(|r| {
                    columns
                        .iter()
                        .enumerate()
                        .map(|(i, c)| (format!("in{i}"), c[r].clone()))
                        .collect()
                })
                .collect::<Vec<Instance>>()
        })
    })
}

fn specs(rows: &[Instance]) -> Vec<OutputSpec> {
    rows[0]
        .iter()
        .map(|(n, t)| OutputSpec::new(n, t.dtype()))
        .collect()
}

fn same(a: &[Instance], b: &[Instance]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.bit_eq(y))
}

fn numeric() -> Vec<DataType> {
    ALL_DATA_TYPES
        .iter()
        .copied()
        .filter(|d| *d != DataType::String)
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn tensor_proto_round_trips(t in tensor_strategy(ALL_DATA_TYPES.to_vec(), 4, Flavor::Binary)) {
        let bytes = tensor_proto::serialize(&t);
        prop_assert_eq!(bytes.len(), tensor_proto::serialized_len(&t));
        prop_assert!(tensor_proto::deserialize(&bytes).unwrap().bit_eq(&t));
        prop_assert!(tensor_proto::from_proto(&tensor_proto::to_proto(&t)).unwrap().bit_eq(&t));
    }

    #[test]
    fn serialized_tf_tensors_round_trips(rows in rows_strategy(ALL_DATA_TYPES.to_vec(), 3, Flavor::Binary)) {
        let mut body = Vec::new();
        serialized_tf_tensors::encode_request(&rows, &mut body).unwrap();
        prop_assert_eq!(body.len(), serialized_tf_tensors::request_len(&rows));
        prop_assert!(same(&serialized_tf_tensors::decode_request(&body, &[]).unwrap(), &rows));
        body.clear();
        serialized_tf_tensors::encode_response(&rows, &mut body).unwrap();
        prop_assert!(same(&serialized_tf_tensors::decode_response(&body, &specs(&rows)).unwrap(), &rows));
    }

    #[test]
    fn tf_serving_json_round_trips(rows in rows_strategy(ALL_DATA_TYPES.to_vec(), 3, Flavor::Json), columnar in any::<bool>()) {
        let layout = if columnar { tf_serving::Layout::Columnar } else { tf_serving::Layout::Row };
        let mut body = Vec::new();
        tf_serving::encode_request(&rows, layout, None, &mut body).unwrap();
        prop_assert!(same(&tf_serving::decode_request(&body, &specs(&rows)).unwrap().instances, &rows));
        body.clear();
        tf_serving::encode_response(&rows, layout, &mut body).unwrap();
        prop_assert!(same(&tf_serving::decode_response(&body, &specs(&rows)).unwrap(), &rows));
    }

    #[test]
    fn raw_json_round_trips(rows in rows_strategy(numeric(), 3, Flavor::Json)) {
        let mut body = Vec::new();
        raw_json::encode_request(&rows, &mut body).unwrap();
        prop_assert!(same(&raw_json::decode_request(&body, &specs(&rows)).unwrap(), &rows));
        body.clear();
        raw_json::encode_response(&rows, &mut body).unwrap();
        prop_assert!(same(&raw_json::decode_response(&body, &specs(&rows)).unwrap(), &rows));
    }

    #[test]
    fn nd_arrays_answers_round_trip(t in tensor_strategy(numeric(), 0, Flavor::Json), h in 1usize..4, w in 1usize..4, c in 1usize..4) {
        let dtype = t.dtype();
        let n = h * w * c;
        let bytes: Vec<u8> = (0..n * dtype.size().unwrap()).map(|i| if dtype == DataType::Bool { (i % 2) as u8 } else { (i * 37 % 251) as u8 }).collect();
        let tile = canonical_nans(Tensor::from_le_bytes(dtype, &[h, w, c], &bytes).unwrap());
        let rows = vec![Instance::new().with("p", tile)];
        let mut body = Vec::new();
        nd_arrays::encode_response(&rows, &mut body).unwrap();
        prop_assert!(same(&nd_arrays::decode_response(&body, &OutputSpec::new("p", dtype)).unwrap(), &rows));
    }

    #[test]
    fn kserve_v2_round_trips(rows in rows_strategy(ALL_DATA_TYPES.to_vec(), 3, Flavor::Json), binary in any::<bool>()) {
        let batched = Instance::stack(&rows).unwrap();
        let mut body = Vec::new();
        let header = kserve_v2::encode_request(&batched, &[], binary, &mut body).unwrap();
        prop_assert!(kserve_v2::decode_request(&body, header).unwrap().inputs.bit_eq(&batched));
        body.clear();
        let header = kserve_v2::encode_response("m", None, None, &batched, binary, &mut body).unwrap();
        prop_assert!(kserve_v2::decode_response(&body, header, &specs(&rows)).unwrap().bit_eq(&batched));
    }

    #[test]
    fn tfrecord_rejects_every_single_byte_corruption(
        records in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..24), 1..4),
        flip in 1u8..=255,
    ) {
        let mut w = TfRecordWriter::new(Vec::new(), Compression::None);
        for r in &records {
            w.write_record(r).unwrap();
        }
        let file = w.finish().unwrap();
        for pos in 0..file.len() {
            let mut bad = file.clone();
            bad[pos] ^= flip;
            let result: Result<Vec<Vec<u8>>, _> = TfRecordReader::new(&bad[..]).collect();
            prop_assert!(result.is_err(), "corruption at byte {} of {} went unnoticed", pos, file.len());
        }
    }

    #[test]
    fn decoders_never_panic_on_garbage(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        let f32_spec = [OutputSpec::new("x", DataType::Float32)];
        let _ = tensor_proto::deserialize(&bytes);
        let _ = serialized_tf_tensors::decode_response(&bytes, &[]);
        let _ = raw_json::decode_response(&bytes, &f32_spec);
        let _ = tf_serving::decode_response(&bytes, &f32_spec);
        let _ = nd_arrays::decode_response(&bytes, &f32_spec[0]);
        let _ = kserve_v2::decode_response(&bytes, None, &[]);
        let _ = kserve_v2::decode_request(&bytes, Some(bytes.len() / 2));
        let _: Vec<_> = TfRecordReader::new(&bytes[..]).collect();
    }
}
