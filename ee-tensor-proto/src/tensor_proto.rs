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
    if write_head(tensor, out) {
        tensor.write_le_bytes(out);
    }
}

/// Appends the serialized `TensorProto` of `tensor` up to its `tensor_content` bytes (for
/// strings: all of it) and says whether the content bytes are still to follow.
fn write_head(tensor: &Tensor, out: &mut Vec<u8>) -> bool {
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
            false
        }
        _ => {
            let content = tensor.len() * tensor.dtype().size().unwrap_or(0);
            if content > 0 {
                out.push(CONTENT_KEY);
                encode_varint(content as u64, out);
            }
            content > 0
        }
    }
}

/// Appends URL-safe unpadded base64 of the serialized `TensorProto` of `tensor` to `out`,
/// using `scratch`. The tensor's values are encoded from where they lie, not copied first:
/// the head is topped up with the first content bytes to a whole number of 3-byte groups,
/// so the two encodings join into the encoding of the whole.
pub(crate) fn write_serialized_url_safe_base64(
    tensor: &Tensor,
    scratch: &mut Vec<u8>,
    out: &mut Vec<u8>,
) {
    scratch.clear();
    match tensor.le_bytes() {
        Some(content) if !content.is_empty() => {
            write_head(tensor, scratch);
            let k = ((3 - scratch.len() % 3) % 3).min(content.len());
            scratch.extend_from_slice(&content[..k]);
            crate::b64::encode_url_safe_into(scratch, out);
            crate::b64::encode_url_safe_into(&content[k..], out);
        }
        _ => {
            write_serialized(tensor, scratch);
            crate::b64::encode_url_safe_into(scratch, out);
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

/// Reads a protobuf varint at `*pos` of `bytes`.
fn varint_at(bytes: &[u8], pos: &mut usize) -> Option<u64> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let b = *bytes.get(*pos)?;
        *pos += 1;
        value |= u64::from(b & 0x7f) << shift;
        if b < 0x80 {
            return Some(value);
        }
    }
    None
}

/// The header of a serialized `TensorProto` written the way `tf.io.serialize_tensor` (and
/// [`write_serialized`]) writes it: dtype, shape (dimensions with sizes only), then the key
/// and length of `tensor_content`. Returns the dtype, the shape and the content's offset and
/// length; `None` for anything else (other fields, other order, names on dimensions...).
fn plain_header(head: &[u8]) -> Option<(DataType, Vec<usize>, usize, usize)> {
    let mut pos = 0;
    if *head.first()? != DTYPE_KEY {
        return None;
    }
    pos += 1;
    let code = i32::try_from(varint_at(head, &mut pos)?).ok()?;
    let dtype = DataType::from_tf_code(code).ok()?;
    if *head.get(pos)? != SHAPE_KEY {
        return None;
    }
    pos += 1;
    let shape_len = usize::try_from(varint_at(head, &mut pos)?).ok()?;
    let shape_end = pos.checked_add(shape_len)?;
    let mut shape = Vec::new();
    while pos < shape_end {
        if *head.get(pos)? != DIM_KEY {
            return None;
        }
        pos += 1;
        let dim_len = usize::try_from(varint_at(head, &mut pos)?).ok()?;
        let dim_end = pos.checked_add(dim_len)?;
        let size = if dim_len == 0 {
            0
        } else {
            if *head.get(pos)? != DIM_SIZE_KEY {
                return None;
            }
            pos += 1;
            i64::try_from(varint_at(head, &mut pos)?).ok()?
        };
        if pos != dim_end || size < 0 {
            return None;
        }
        shape.push(usize::try_from(size).ok()?);
    }
    if pos != shape_end || *head.get(pos)? != CONTENT_KEY {
        return None;
    }
    pos += 1;
    let content_len = usize::try_from(varint_at(head, &mut pos)?).ok()?;
    Some((dtype, shape, pos, content_len))
}

/// The fast path for the URL-safe base64 of a large serialized `TensorProto` as
/// `tf.io.serialize_tensor` writes it (what `SERIALIZED_TF_TENSORS` carries): the header is
/// decoded from the first characters, then `tensor_content` is decoded from the base64 text
/// straight into the tensor's own buffer, with no intermediate copy of the bytes.
///
/// Returns `None` whenever the text is anything else: small, the standard alphabet, fields
/// other than dtype, shape and content, a content length that disagrees with the shape or
/// with the text's length, a dtype other than `expected`, invalid base64. The caller then
/// decodes the general way, which gives the same tensor or reports the error. Nothing is
/// allocated before the content length has been checked against the text's length.
pub(crate) fn deserialize_url_safe_base64(
    text: &[u8],
    expected: Option<DataType>,
) -> Option<Tensor> {
    if cfg!(not(target_endian = "little")) || text.len() < 256 {
        return None;
    }
    // Decoded length of the whole text: whole groups, then 0, 2 or 3 characters (or one
    // padded group) at the end.
    let pad = text.iter().rev().take_while(|&&b| b == b'=').count();
    if pad > 2 || (pad > 0 && !text.len().is_multiple_of(4)) {
        return None;
    }
    let chars = text.len() - pad;
    let total = chars / 4 * 3
        + match chars % 4 {
            0 => 0,
            2 => 1,
            3 => 2,
            _ => return None,
        };
    // The header, from the first (at most) 128 characters: whole groups, never the last one.
    let last = if text.len().is_multiple_of(4) {
        4
    } else {
        text.len() % 4
    };
    let head_chars = (text.len() - last).min(128) / 4 * 4;
    let mut head = [0u8; 96];
    let head_len = head_chars / 4 * 3;
    crate::b64::decode_url_safe_groups(&text[..head_chars], &mut head[..head_len])?;
    let (dtype, shape, offset, content_len) = plain_header(&head[..head_len])?;
    if expected.is_some_and(|e| e != dtype) || offset > head_len {
        return None;
    }
    let n = element_count(&shape)?;
    if content_len == 0
        || offset.checked_add(content_len)? != total
        || n.checked_mul(dtype.size()?)? != content_len
    {
        return None;
    }
    let fill = |bytes: &mut [u8]| -> Option<()> {
        let from_head = head_len - offset;
        bytes
            .get_mut(..from_head)?
            .copy_from_slice(&head[offset..head_len]);
        let body = &text[head_chars..text.len() - last];
        let body_end = from_head + body.len() / 4 * 3;
        crate::b64::decode_url_safe_groups(body, bytes.get_mut(from_head..body_end)?)?;
        let mut tail = [0u8; 3];
        let k = crate::b64::decode_url_safe_last_group(&text[text.len() - last..], &mut tail)?;
        bytes.get_mut(body_end..)?.copy_from_slice(tail.get(..k)?);
        Some(())
    };
    if matches!(dtype, DataType::Bool | DataType::String) {
        return None;
    }
    let mut tensor = Tensor::zeros(dtype, &shape);
    fill(tensor.le_bytes_mut()?)?;
    Some(tensor)
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

    /// The general path the fast one must agree with.
    fn general(text: &[u8]) -> Option<Tensor> {
        let bytes = crate::b64::decode_any(text, &|| "t".to_string()).ok()?;
        deserialize(&bytes).ok()
    }

    #[test]
    fn base64_fast_path_agrees_with_the_general_path() {
        for d in crate::ALL_DATA_TYPES {
            if matches!(d, DataType::String | DataType::Bool) {
                continue;
            }
            // Sizes whose serialized length leaves 0, 1 and 2 bytes in the last group, and
            // headers of different lengths.
            for shape in [
                vec![20, 30],
                vec![7, 11, 3],
                vec![1, 1000],
                vec![999],
                vec![3, 0, 500],
            ] {
                let n: usize = shape.iter().product();
                let size = d.size().unwrap();
                let bytes: Vec<u8> = (0..n * size).map(|i| (i * 31 + 7) as u8).collect();
                let t = Tensor::from_le_bytes(d, &shape, &bytes).unwrap();
                let proto = serialize(&t);
                let mut text = Vec::new();
                crate::b64::encode_url_safe_into(&proto, &mut text);
                let fast = deserialize_url_safe_base64(&text, Some(d));
                if n == 0 {
                    assert!(fast.is_none(), "{d} {shape:?}");
                    continue;
                }
                let fast = fast.unwrap_or_else(|| panic!("{d} {shape:?} took the slow path"));
                assert!(fast.bit_eq(&t), "{d} {shape:?}");
                // Padded: the same tensor.
                let mut padded = text.clone();
                while padded.len() % 4 != 0 {
                    padded.push(b'=');
                }
                let p = deserialize_url_safe_base64(&padded, None).unwrap();
                assert!(p.bit_eq(&t), "{d} {shape:?} padded");
                // Another dtype expected, the standard alphabet, a truncated text, a stray
                // character, trailing bits or a byte too many: never taken, and the general
                // path decides.
                let other = if d == DataType::Float32 {
                    DataType::Int32
                } else {
                    DataType::Float32
                };
                assert!(deserialize_url_safe_base64(&text, Some(other)).is_none());
                let mut standard = Vec::new();
                crate::b64::encode_standard_into(&proto, &mut standard);
                if standard.contains(&b'+') || standard.contains(&b'/') {
                    assert!(deserialize_url_safe_base64(&standard, None).is_none());
                }
                for cut in [1, 2, 3, 4, 5] {
                    let short = &text[..text.len() - cut];
                    let f = deserialize_url_safe_base64(short, None);
                    assert!(f.is_none(), "{d} {shape:?} cut {cut}");
                    assert!(general(short).is_none(), "{d} {shape:?} cut {cut}");
                }
                for at in [0, 3, 40, text.len() / 2, text.len() - 1] {
                    let mut bad = text.clone();
                    bad[at] = b'*';
                    assert!(deserialize_url_safe_base64(&bad, None).is_none(), "{at}");
                }
                let mut longer = proto.clone();
                longer.push(0);
                let mut lt = Vec::new();
                crate::b64::encode_url_safe_into(&longer, &mut lt);
                assert!(deserialize_url_safe_base64(&lt, None).is_none());
                assert!(general(&lt).is_none());
            }
        }
    }

    #[test]
    fn base64_of_head_and_content_joins_into_the_whole_encoding() {
        let mut scratch = Vec::new();
        for dtype in crate::ALL_DATA_TYPES {
            // Lengths that leave every remainder mod 3 after the head, and empty tensors.
            for shape in [
                vec![0usize],
                vec![1],
                vec![2],
                vec![3],
                vec![5, 7],
                vec![4, 4, 3],
            ] {
                let t = Tensor::zeros(dtype, &shape);
                let t = if dtype == DataType::String {
                    t
                } else {
                    // Distinct bytes, so a misplaced group would show.
                    let n = t.len();
                    let bytes: Vec<u8> = (0..n * dtype.size().unwrap_or(1))
                        .map(|i| (i * 31 + 7) as u8)
                        .collect();
                    Tensor::from_le_bytes(dtype, &shape, &bytes).unwrap_or(t)
                };
                let mut want = Vec::new();
                crate::b64::encode_url_safe_into(&serialize(&t), &mut want);
                let mut got = b"x".to_vec();
                write_serialized_url_safe_base64(&t, &mut scratch, &mut got);
                assert_eq!(&got[1..], &want[..], "{dtype} {shape:?}");
            }
        }
    }

    #[test]
    fn base64_fast_path_leaves_other_messages_to_the_general_path() {
        // A named dimension, a typed value field after the content, a lying content length.
        let t = Tensor::from_vec(&[300], (0..300).map(|v| v as f32).collect()).unwrap();
        let mut proto = to_proto(&t);
        proto.tensor_shape.as_mut().unwrap().dim[0].name = "x".into();
        let named = proto.encode_to_vec();
        let mut text = Vec::new();
        crate::b64::encode_url_safe_into(&named, &mut text);
        assert!(deserialize_url_safe_base64(&text, None).is_none());
        assert!(general(&text).unwrap().bit_eq(&t));
        let mut extra = serialize(&t);
        extra.extend_from_slice(&[0x2d, 0, 0, 0x80, 0x3f]); // float_val: 1.0
        text.clear();
        crate::b64::encode_url_safe_into(&extra, &mut text);
        assert!(deserialize_url_safe_base64(&text, None).is_none());
        let mut lying = serialize(&t);
        let n = lying.len();
        assert_eq!(lying[n - 1200 - 2], 0xb0);
        lying[n - 1200 - 2] = 0xb1; // content length 1200 -> 1201 (varint b0 09 -> b1 09)
        text.clear();
        crate::b64::encode_url_safe_into(&lying, &mut text);
        assert!(deserialize_url_safe_base64(&text, None).is_none());
        assert!(general(&text).is_none());
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
