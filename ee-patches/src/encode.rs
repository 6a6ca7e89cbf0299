//! A `tf.train.Example` encoder that writes straight from pixel buffers: no intermediate
//! `Vec<f32>` per feature and no hash map, features in the order given. The bytes are the
//! protobuf encoding `prost` (and TensorFlow) would produce for the same message with packed
//! repeated fields.

/// One feature's values.
#[derive(Clone, Copy, Debug)]
pub(crate) enum FeatureData<'a> {
    /// A `float_list`: the chunks concatenated.
    Float(&'a [&'a [f32]]),
    /// An `int64_list`.
    Int64(&'a [i64]),
}

fn varint_len(mut v: u64) -> usize {
    let mut n = 1;
    while v >= 0x80 {
        v >>= 7;
        n += 1;
    }
    n
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Length of a length-delimited field (tag + length + payload) of `payload` bytes.
fn field_len(payload: usize) -> usize {
    1 + varint_len(payload as u64) + payload
}

impl FeatureData<'_> {
    /// Bytes of the packed values.
    fn packed_len(&self) -> usize {
        match self {
            FeatureData::Float(chunks) => 4 * chunks.iter().map(|c| c.len()).sum::<usize>(),
            FeatureData::Int64(v) => v.iter().map(|&x| varint_len(x as u64)).sum(),
        }
    }
}

/// Appends the encoded `Example` with `features` (in this order) to `out`.
pub(crate) fn encode_example(out: &mut Vec<u8>, features: &[(&str, FeatureData<'_>)]) {
    // Sizes, inside out: list -> Feature -> map entry -> Features -> Example.
    let sizes: Vec<(usize, usize, usize, usize)> = features
        .iter()
        .map(|(name, data)| {
            let packed = data.packed_len();
            // field 1 of FloatList / Int64List; an empty packed field is left out, as
            // protobuf encoders do.
            let list = if packed == 0 { 0 } else { field_len(packed) };
            let feature = field_len(list); // field 2 or 3 of Feature
            let entry = field_len(name.len()) + field_len(feature); // key 1, value 2
            (packed, list, feature, entry)
        })
        .collect();
    let features_len: usize = sizes.iter().map(|s| field_len(s.3)).sum();
    out.reserve(field_len(features_len));
    out.push(0x0a); // Example.features = 1
    put_varint(out, features_len as u64);
    for ((name, data), (packed, list, feature, entry)) in features.iter().zip(sizes) {
        out.push(0x0a); // Features.feature = 1 (map entry)
        put_varint(out, entry as u64);
        out.push(0x0a); // key = 1
        put_varint(out, name.len() as u64);
        out.extend_from_slice(name.as_bytes());
        out.push(0x12); // value = 2
        put_varint(out, feature as u64);
        out.push(match data {
            FeatureData::Float(_) => 0x12, // Feature.float_list = 2
            FeatureData::Int64(_) => 0x1a, // Feature.int64_list = 3
        });
        put_varint(out, list as u64);
        if packed == 0 {
            continue;
        }
        out.push(0x0a); // value = 1, packed
        put_varint(out, packed as u64);
        match data {
            FeatureData::Float(chunks) => {
                for chunk in chunks.iter() {
                    for v in chunk.iter() {
                        out.extend_from_slice(&v.to_le_bytes());
                    }
                }
            }
            FeatureData::Int64(values) => {
                for &v in values.iter() {
                    put_varint(out, v as u64);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ee_tensor_proto::example::{example, feature, float_feature, int64_feature};
    use ee_tensor_proto::proto::tensorflow::Example;
    use prost::Message;

    #[test]
    fn equals_prost_for_every_kind_and_size() {
        let long: Vec<f32> = (0..300).map(|i| i as f32 * 0.25 - 7.0).collect();
        let ints = vec![0i64, 1, -1, 127, 128, i64::MAX, i64::MIN, 300];
        let a = [&long[..100], &long[100..], &[][..]];
        let mut ours = Vec::new();
        encode_example(
            &mut ours,
            &[
                ("B1", FeatureData::Float(&a)),
                ("label", FeatureData::Int64(&ints)),
                ("empty", FeatureData::Float(&[])),
                ("x".repeat(200).as_str(), FeatureData::Float(&[&long[..1]])),
            ],
        );
        let decoded = Example::decode(&ours[..]).unwrap();
        let expected = example([
            ("B1".to_string(), float_feature(long.clone())),
            ("label".to_string(), int64_feature(ints.clone())),
            ("empty".to_string(), float_feature(Vec::new())),
            ("x".repeat(200), float_feature(vec![long[0]])),
        ]);
        assert_eq!(decoded, expected);
        // Same length as prost's own encoding of the message (field for field the same
        // wire format; prost writes map entries in its own order).
        assert_eq!(ours.len(), expected.encoded_len());
        assert!(feature(&decoded, "B1").is_some());
    }
}
