//! `Tensor` <-> `tensorflow.TensorProto`.
//!
//! Writing follows `tf.io.serialize_tensor`: `dtype`, `tensor_shape`, then little-endian
//! `tensor_content` (strings in `string_val`), byte for byte what TensorFlow writes. Reading
//! accepts `tensor_content` or any typed `*_val` field with TensorFlow's own fill rule: fewer
//! values than the shape holds repeat the last one (so a single value fills the shape), none
//! at all means zeros.

use bytes::Bytes;
use half::f16;
use prost::encoding::{encode_varint, encoded_len_varint};
use prost::Message;

use crate::proto::tensorflow::{tensor_shape_proto, TensorProto, TensorShapeProto};
use crate::tensor::{element_count, Element};
use crate::{DataType, Error, Result, Tensor};

/// Largest tensor, in bytes, that a decoder will materialise from a shape and a fill value.
/// Protects against a tiny message that claims an enormous shape.
pub const MAX_DECODED_TENSOR_BYTES: usize = 1 << 30;

const DTYPE_KEY: u8 = 1 << 3; // field 1, varint
const SHAPE_KEY: u8 = (2 << 3) | 2; // field 2, length-delimited
const DIM_KEY: u8 = (2 << 3) | 2; // TensorShapeProto.dim, field 2
const DIM_SIZE_KEY: u8 = 1 << 3; // Dim.size, field 1, varint
const CONTENT_KEY: u8 = (4 << 3) | 2; // field 4, length-delimited
const STRING_VAL_KEY: u8 = (8 << 3) | 2; // field 8, length-delimited

fn shape_body_len(shape: &[usize]) -> usize {
    shape
        .iter()
        .map(|&d| {
            let dim = if d == 0 {
                0
            } else {
                1 + encoded_len_varint(d as u64)
            };
            1 + encoded_len_varint(dim as u64) + dim
        })
        .sum()
}

/// Byte length of the serialized `TensorProto` of `tensor`.
pub fn serialized_len(tensor: &Tensor) -> usize {
    let shape = shape_body_len(tensor.shape());
    let head = 2 + 1 + encoded_len_varint(shape as u64) + shape;
    match tensor {
        Tensor::String(a) => {
            head + a
                .iter()
                .map(|s| 1 + encoded_len_varint(s.len() as u64) + s.len())
                .sum::<usize>()
        }
        _ => {
            let content = tensor.len() * tensor.dtype().size().unwrap_or(0);
            if content == 0 {
                head
            } else {
                head + 1 + encoded_len_varint(content as u64) + content
            }
        }
    }
}

/// Appends the serialized `TensorProto` of `tensor` to `out`, exactly as
/// `tf.io.serialize_tensor` writes it.
pub fn write_serialized(tensor: &Tensor, out: &mut Vec<u8>) {
    out.reserve(serialized_len(tensor));
    out.push(DTYPE_KEY);
    encode_varint(tensor.dtype().tf_code() as u64, out);
    let shape = tensor.shape();
    out.push(SHAPE_KEY);
    encode_varint(shape_body_len(shape) as u64, out);
    for &d in shape {
        out.push(DIM_KEY);
        if d == 0 {
            out.push(0);
        } else {
            encode_varint(1 + encoded_len_varint(d as u64) as u64, out);
            out.push(DIM_SIZE_KEY);
            encode_varint(d as u64, out);
        }
    }
    match tensor {
        Tensor::String(a) => {
            for s in a.iter() {
                out.push(STRING_VAL_KEY);
                encode_varint(s.len() as u64, out);
                out.extend_from_slice(s);
            }
        }
        _ => {
            let content = tensor.len() * tensor.dtype().size().unwrap_or(0);
            if content > 0 {
                out.push(CONTENT_KEY);
                encode_varint(content as u64, out);
                tensor.write_le_bytes(out);
            }
        }
    }
}

/// The serialized `TensorProto` of `tensor`.
pub fn serialize(tensor: &Tensor) -> Vec<u8> {
    let mut out = Vec::new();
    write_serialized(tensor, &mut out);
    out
}

/// The `TensorProto` message of `tensor` (for gRPC requests).
pub fn to_proto(tensor: &Tensor) -> TensorProto {
    let tensor_shape = Some(TensorShapeProto {
        dim: tensor
            .shape()
            .iter()
            .map(|&d| tensor_shape_proto::Dim {
                size: d as i64,
                name: String::new(),
            })
            .collect(),
        unknown_rank: false,
    });
    let mut proto = TensorProto {
        dtype: tensor.dtype().tf_code(),
        tensor_shape,
        ..Default::default()
    };
    match tensor {
        Tensor::String(a) => proto.string_val = a.iter().cloned().collect(),
        _ => proto.tensor_content = Bytes::from(tensor.to_le_bytes().unwrap_or_default()),
    }
    proto
}

/// Decodes a serialized `TensorProto`.
pub fn deserialize(bytes: &[u8]) -> Result<Tensor> {
    let proto = TensorProto::decode(bytes).map_err(|source| Error::Protobuf {
        message: "tensorflow.TensorProto",
        source,
    })?;
    from_proto(&proto)
}

/// Decodes a serialized `TensorProto` whose dtype must be `expected`; `context` names the
/// tensor in the error.
pub fn deserialize_expecting(bytes: &[u8], expected: DataType, context: &str) -> Result<Tensor> {
    let proto = TensorProto::decode(bytes).map_err(|source| Error::Protobuf {
        message: "tensorflow.TensorProto",
        source,
    })?;
    let found = DataType::from_tf_code(proto.dtype)?;
    if found != expected {
        return Err(Error::DtypeMismatch {
            context: context.to_string(),
            expected,
            found,
        });
    }
    from_proto(&proto)
}

/// Checks a proto shape and returns it as dimensions.
fn proto_shape(proto: &TensorProto) -> Result<Vec<usize>> {
    let Some(shape) = &proto.tensor_shape else {
        return Ok(Vec::new());
    };
    let dims: Vec<i64> = shape.dim.iter().map(|d| d.size).collect();
    if shape.unknown_rank {
        return Err(Error::InvalidShape {
            shape: dims,
            reason: "unknown rank".into(),
        });
    }
    if dims.iter().any(|&d| d < 0) {
        return Err(Error::InvalidShape {
            shape: dims,
            reason: "negative (unknown) dimension in a concrete tensor".into(),
        });
    }
    let out: Vec<usize> = dims.iter().map(|&d| d as usize).collect();
    if element_count(&out).is_none() {
        return Err(Error::InvalidShape {
            shape: dims,
            reason: "element count overflows".into(),
        });
    }
    Ok(out)
}

/// Expands a typed value field to `n` elements with TensorFlow's rule.
fn fill<T: Clone + Default>(
    values: &[T],
    n: usize,
    dtype: DataType,
    shape: &[usize],
    field: &'static str,
) -> Result<Vec<T>> {
    if values.len() > n {
        return Err(Error::ElementCount {
            dtype,
            shape: shape.to_vec(),
            field,
            expected: n,
            found: values.len(),
        });
    }
    let size = dtype.size().unwrap_or(1).max(1);
    if values.len() < n && n.saturating_mul(size) > MAX_DECODED_TENSOR_BYTES {
        return Err(Error::InvalidShape {
            shape: shape.iter().map(|&d| d as i64).collect(),
            reason: format!(
                "filling {n} elements from {} values exceeds the {MAX_DECODED_TENSOR_BYTES}-byte decode limit",
                values.len()
            ),
        });
    }
    let mut out = Vec::with_capacity(n);
    out.extend_from_slice(values);
    let last = values.last().cloned().unwrap_or_default();
    out.resize(n, last);
    Ok(out)
}

/// Converts integers carried in a wider field, refusing values out of range.
fn narrow<S: Copy + std::fmt::Display, T: TryFrom<S>>(
    values: &[S],
    dtype: DataType,
    field: &'static str,
) -> Result<Vec<T>> {
    values
        .iter()
        .map(|&v| {
            T::try_from(v).map_err(|_| {
                Error::payload(
                    "TensorProto",
                    format!("{field} value {v} does not fit dtype {dtype}"),
                )
            })
        })
        .collect()
}

/// Decodes a string tensor's `tensor_content` (TensorFlow's varint-length string list).
fn decode_string_list(content: &[u8], n: usize, shape: &[usize]) -> Result<Vec<Vec<u8>>> {
    let bad = |why: &str| {
        Error::payload(
            "TensorProto",
            format!("string tensor_content for shape {shape:?}: {why}"),
        )
    };
    let mut cursor = content;
    let mut lengths = Vec::with_capacity(n.min(content.len()));
    for _ in 0..n {
        let len = prost::encoding::decode_varint(&mut cursor).map_err(|_| bad("bad length"))?;
        lengths.push(usize::try_from(len).map_err(|_| bad("length overflows"))?);
    }
    let mut out = Vec::with_capacity(lengths.len());
    for len in lengths {
        if len > cursor.len() {
            return Err(bad("truncated"));
        }
        let (s, rest) = cursor.split_at(len);
        out.push(s.to_vec());
        cursor = rest;
    }
    if !cursor.is_empty() {
        return Err(bad("trailing bytes"));
    }
    Ok(out)
}

/// Converts a `TensorProto` message into a tensor.
pub fn from_proto(proto: &TensorProto) -> Result<Tensor> {
    let dtype = DataType::from_tf_code(proto.dtype)?;
    let shape = proto_shape(proto)?;
    let n = element_count(&shape).unwrap_or(usize::MAX);
    if !proto.tensor_content.is_empty() || (n == 0 && dtype != DataType::String) {
        if dtype == DataType::String {
            let values = decode_string_list(&proto.tensor_content, n, &shape)?;
            return Tensor::from_strings(&shape, values);
        }
        return Tensor::from_le_bytes(dtype, &shape, &proto.tensor_content);
    }
    fn typed<T: Element>(v: Vec<T>, shape: &[usize]) -> Result<Tensor> {
        Tensor::from_vec(shape, v)
    }
    let s = &shape;
    match dtype {
        DataType::Float32 => typed(fill(&proto.float_val, n, dtype, s, "float_val")?, s),
        DataType::Float64 => typed(fill(&proto.double_val, n, dtype, s, "double_val")?, s),
        DataType::Int32 => typed(fill(&proto.int_val, n, dtype, s, "int_val")?, s),
        DataType::Int64 => typed(fill(&proto.int64_val, n, dtype, s, "int64_val")?, s),
        DataType::Uint32 => typed(fill(&proto.uint32_val, n, dtype, s, "uint32_val")?, s),
        DataType::Uint64 => typed(fill(&proto.uint64_val, n, dtype, s, "uint64_val")?, s),
        DataType::Bool => typed(fill(&proto.bool_val, n, dtype, s, "bool_val")?, s),
        DataType::Int8 => {
            let v: Vec<i8> = narrow(&proto.int_val, dtype, "int_val")?;
            typed(fill(&v, n, dtype, s, "int_val")?, s)
        }
        DataType::Int16 => {
            let v: Vec<i16> = narrow(&proto.int_val, dtype, "int_val")?;
            typed(fill(&v, n, dtype, s, "int_val")?, s)
        }
        DataType::Uint8 => {
            let v: Vec<u8> = narrow(&proto.int_val, dtype, "int_val")?;
            typed(fill(&v, n, dtype, s, "int_val")?, s)
        }
        DataType::Uint16 => {
            let v: Vec<u16> = narrow(&proto.int_val, dtype, "int_val")?;
            typed(fill(&v, n, dtype, s, "int_val")?, s)
        }
        DataType::Float16 => {
            let bits: Vec<u16> = narrow(&proto.half_val, dtype, "half_val")?;
            let v: Vec<f16> = bits.into_iter().map(f16::from_bits).collect();
            typed(fill(&v, n, dtype, s, "half_val")?, s)
        }
        DataType::String => {
            let v = fill(&proto.string_val, n, dtype, s, "string_val")?;
            Tensor::from_strings(s, v)
        }
    }
}

/// Every element's dtype check in one place: `tensor` must have dtype `expected`.
pub fn expect_dtype(tensor: &Tensor, expected: DataType, context: &str) -> Result<()> {
    if tensor.dtype() == expected {
        Ok(())
    } else {
        Err(Error::DtypeMismatch {
            context: context.to_string(),
            expected,
            found: tensor.dtype(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(dtype: DataType) -> Tensor {
        let shape = [2, 3];
        match dtype {
            DataType::String => Tensor::from_strings(
                &shape,
                (0..6).map(|i| format!("s{i}").into_bytes()).collect(),
            )
            .unwrap(),
            _ => {
                let bytes: Vec<u8> = (0..6 * dtype.size().unwrap())
                    .map(|i| {
                        if dtype == DataType::Bool {
                            (i % 2) as u8
                        } else {
                            (i * 7 + 1) as u8
                        }
                    })
                    .collect();
                Tensor::from_le_bytes(dtype, &shape, &bytes).unwrap()
            }
        }
    }

    #[test]
    fn hand_writer_matches_prost_encoding() {
        for d in crate::ALL_DATA_TYPES {
            for t in [sample(d), Tensor::zeros(d, &[]), Tensor::zeros(d, &[0, 4])] {
                let ours = serialize(&t);
                assert_eq!(ours.len(), serialized_len(&t), "{d}");
                let theirs = to_proto(&t).encode_to_vec();
                assert_eq!(ours, theirs, "{d} {:?}", t.shape());
                assert!(deserialize(&ours).unwrap().bit_eq(&t), "{d}");
            }
        }
    }

    #[test]
    fn single_typed_value_fills_the_shape() {
        let proto = TensorProto {
            dtype: DataType::Float32.tf_code(),
            tensor_shape: Some(TensorShapeProto {
                dim: vec![
                    tensor_shape_proto::Dim {
                        size: 2,
                        name: String::new(),
                    },
                    tensor_shape_proto::Dim {
                        size: 2,
                        name: String::new(),
                    },
                ],
                unknown_rank: false,
            }),
            float_val: vec![5.0],
            ..Default::default()
        };
        let t = from_proto(&proto).unwrap();
        assert_eq!(
            t.array::<f32>()
                .unwrap()
                .iter()
                .copied()
                .collect::<Vec<_>>(),
            vec![5.0; 4]
        );
    }

    #[test]
    fn dtype_mismatch_names_both() {
        let bytes = serialize(&Tensor::zeros(DataType::Int32, &[2]));
        let err = deserialize_expecting(&bytes, DataType::Float32, "band B1").unwrap_err();
        assert_eq!(
            err.to_string(),
            "band B1: expected dtype float32, found int32"
        );
    }

    #[test]
    fn huge_claimed_shape_is_refused_without_allocating() {
        let proto = TensorProto {
            dtype: DataType::Float64.tf_code(),
            tensor_shape: Some(TensorShapeProto {
                dim: vec![tensor_shape_proto::Dim {
                    size: 1 << 40,
                    name: String::new(),
                }],
                unknown_rank: false,
            }),
            double_val: vec![1.0],
            ..Default::default()
        };
        assert!(from_proto(&proto)
            .unwrap_err()
            .to_string()
            .contains("decode limit"));
    }

    #[test]
    fn wrong_content_length_is_an_error() {
        let mut bytes = serialize(&Tensor::zeros(DataType::Float32, &[3]));
        let n = bytes.len();
        bytes[n - 13] = 11; // content length 12 -> 11
        bytes.pop();
        let err = deserialize(&bytes).unwrap_err().to_string();
        assert!(
            err.contains("needs 12") && err.contains("holds 11"),
            "{err}"
        );
    }
}
