//! The AI Platform / Vertex `:predict` (and Vertex `:rawPredict`) route. Its body is always
//! `{"instances": [...]}`, and Earth Engine sends one of several payload formats there; the
//! first instance tells which ([`ee_tensor_proto::sniff_instances`]):
//!
//! | first instance | format | answer |
//! |---|---|---|
//! | a string, or an object whose first value is a string | `SERIALIZED_TF_TENSORS` | base64 TensorProtos |
//! | an object whose first value is a list of strings | `RAW_JSON` | plain numbers |
//! | a bare list | `ND_ARRAYS` (channel-first) or `[row][col][channel]` | lists in the same layout |
//! | an object of numbers, lists of numbers or `{"b64"}` | plain numeric instances | TF Serving rows |
//!
//! A bare rank-3 list is read the way the model's single input takes it: channel-first
//! `[channel][row][col]` as Earth Engine's `ND_ARRAYS` sends it, or `[row][col][channel]` as
//! Vertex's TensorFlow containers take `numpy.tolist()` of an image. The input's fixed
//! dimensions decide; when both readings fit them it is a 400 naming both, and when the
//! input fixes no dimension at all the list is read channel-first, as `ND_ARRAYS` says.

use ee_tensor_proto::payload::{nd_arrays, raw_json, serialized_tf_tensors, tf_serving};
use ee_tensor_proto::{sniff_instances, Instance, PayloadFormat, Tensor};

use crate::signature::{dims_text, Port, Signature};

/// How the answer is written: the way the request came.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Answer {
    /// Base64 TensorProtos per output.
    SerializedTfTensors,
    /// Numbers as JSON strings.
    RawJson,
    /// Bare lists, rank-3 outputs channel-first (`ND_ARRAYS`).
    ChannelFirst,
    /// TF Serving rows (plain numbers, `[row][col][channel]`).
    Rows,
}

/// How one bare rank-3 list is read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Reading {
    /// `[channel][row][col]`: transposed to the model's `[row][col][channel]`.
    ChannelFirst,
    /// `[row][col][channel]`: taken as it is.
    ChannelLast,
}

impl std::fmt::Display for Reading {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Reading::ChannelFirst => "channel-first [channel][row][col] (ND_ARRAYS)",
            Reading::ChannelLast => "[row][col][channel]",
        })
    }
}

/// Decodes the instances of a hosted request, and tells how to answer it.
pub(crate) fn decode(body: &[u8], sig: &Signature) -> Result<(Vec<Instance>, Answer), String> {
    let e = |e: ee_tensor_proto::Error| e.to_string();
    let inputs = sig.input_specs();
    match sniff_instances(body).map_err(e)? {
        // TensorProtos carry their dtype; a single-input model takes any name, so nothing is
        // filtered out here and the signature check names what is wrong.
        PayloadFormat::SerializedTfTensors => {
            let specs = if inputs.len() == 1 { &[][..] } else { &inputs };
            serialized_tf_tensors::decode_request(body, specs)
                .map(|rows| (rows, Answer::SerializedTfTensors))
                .map_err(e)
        }
        PayloadFormat::RawJson => raw_json::decode_request(body, &inputs)
            .map(|rows| (rows, Answer::RawJson))
            .map_err(e),
        PayloadFormat::NdArrays => bare_lists(body, sig),
        _ => tf_serving::decode_request(body, &inputs)
            .map(|r| (r.instances, Answer::Rows))
            .map_err(e),
    }
}

/// Bare-list instances of a single-input model, each rank-3 list read the way the input's
/// shape says (see the module's notes).
fn bare_lists(body: &[u8], sig: &Signature) -> Result<(Vec<Instance>, Answer), String> {
    let [port] = sig.inputs.as_slice() else {
        return Err(format!(
            "bare-list instances (ND_ARRAYS) are unnamed, but this model has {} inputs; send objects naming them",
            sig.inputs.len()
        ));
    };
    // TF Serving's row reader keeps each bare list's axes as sent.
    let rows = tf_serving::decode_request(body, &sig.input_specs())
        .map_err(|e| e.to_string())?
        .instances;
    let mut first: Option<(usize, Reading)> = None;
    let mut out = Vec::with_capacity(rows.len());
    for (i, row) in rows.into_iter().enumerate() {
        let mut entries = row.into_entries();
        let (name, t) = match (entries.pop(), entries.is_empty()) {
            (Some(entry), true) => entry,
            _ => return Err(format!("instance {i} is not one bare list")),
        };
        let t = match reading(i, &t, port)? {
            None => t,
            Some(r) => {
                match first {
                    None => first = Some((i, r)),
                    Some((j, earlier)) if earlier != r => {
                        return Err(format!(
                            "instance {i} reads as {r} but instance {j} as {earlier}; send every instance in one layout"
                        ))
                    }
                    Some(_) => {}
                }
                match r {
                    Reading::ChannelFirst => t.permute(&[1, 2, 0]).map_err(|e| e.to_string())?,
                    Reading::ChannelLast => t,
                }
            }
        };
        out.push(Instance::new().with(name, t));
    }
    let answer = match first {
        Some((_, Reading::ChannelLast)) => Answer::Rows,
        _ => Answer::ChannelFirst,
    };
    Ok((out, answer))
}

/// How instance `i`'s bare list is read: `None` when it is not rank 3 (taken as it is).
fn reading(i: usize, t: &Tensor, port: &Port) -> Result<Option<Reading>, String> {
    let &[a, b, c] = t.shape() else {
        return Ok(None);
    };
    if port.dims.len() != 3 || port.dims.iter().all(Option::is_none) {
        // The input cannot tell (or takes no image): ND_ARRAYS's own reading, and the
        // signature check names any mismatch.
        return Ok(Some(Reading::ChannelFirst));
    }
    let fits = |shape: [usize; 3]| {
        shape
            .iter()
            .zip(&port.dims)
            .all(|(&n, d)| d.is_none_or(|v| v == n))
    };
    let input = format!("input {:?} ({})", port.name, dims_text(&port.dims));
    match (fits([a, b, c]), fits([b, c, a])) {
        (true, false) => Ok(Some(Reading::ChannelLast)),
        (false, true) => Ok(Some(Reading::ChannelFirst)),
        (true, true) => Err(format!(
            "instance {i}: the bare list of shape [{a}, {b}, {c}] is ambiguous: it fits {input} both as {} (shape [{a}, {b}, {c}]) and as {} (shape [{b}, {c}, {a}]); send it named, {{\"{}\": [...]}}, to have it read as [row][col][channel]",
            Reading::ChannelLast,
            Reading::ChannelFirst,
            port.name
        )),
        (false, false) => Err(format!(
            "instance {i}: the bare list of shape [{a}, {b}, {c}] fits {input} neither as {} (shape [{a}, {b}, {c}]) nor as {} (shape [{b}, {c}, {a}])",
            Reading::ChannelLast,
            Reading::ChannelFirst
        )),
    }
}

/// Encodes the predictions the way the request's clients read them.
pub(crate) fn encode(answer: Answer, predictions: &[Instance]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    match answer {
        Answer::SerializedTfTensors => {
            serialized_tf_tensors::encode_response(predictions, &mut out)
        }
        Answer::RawJson => raw_json::encode_response(predictions, &mut out),
        Answer::ChannelFirst => nd_arrays::encode_response(predictions, &mut out),
        Answer::Rows => tf_serving::encode_response(predictions, tf_serving::Layout::Row, &mut out),
    }
    .map_err(|e| e.to_string())?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ee_tensor_proto::DataType;

    fn port(dims: &[Option<usize>]) -> Port {
        Port {
            name: "x".into(),
            dtype: DataType::Float32,
            dims: dims.to_vec(),
        }
    }

    fn list(shape: &[usize]) -> Tensor {
        Tensor::zeros(DataType::Float32, shape)
    }

    #[test]
    fn the_input_shape_decides_how_a_bare_list_is_read() {
        let rgb = port(&[None, None, Some(3)]);
        assert_eq!(
            reading(0, &list(&[4, 5, 3]), &rgb),
            Ok(Some(Reading::ChannelLast))
        );
        assert_eq!(
            reading(0, &list(&[3, 4, 5]), &rgb),
            Ok(Some(Reading::ChannelFirst))
        );
        let e = reading(2, &list(&[3, 4, 3]), &rgb).unwrap_err();
        assert!(
            e.contains("instance 2") && e.contains("ambiguous") && e.contains("[4, 3, 3]"),
            "{e}"
        );
        let e = reading(0, &list(&[4, 5, 2]), &rgb).unwrap_err();
        assert!(e.contains("neither") && e.contains("[?, ?, 3]"), "{e}");
        // Fixed rows and columns decide too.
        let square = port(&[Some(8), Some(8), None]);
        assert_eq!(
            reading(0, &list(&[2, 8, 8]), &square),
            Ok(Some(Reading::ChannelFirst))
        );
        assert_eq!(
            reading(0, &list(&[8, 8, 2]), &square),
            Ok(Some(Reading::ChannelLast))
        );
        // An input that fixes nothing cannot tell: ND_ARRAYS's channel-first reading.
        let free = port(&[None, None, None]);
        assert_eq!(
            reading(0, &list(&[4, 5, 3]), &free),
            Ok(Some(Reading::ChannelFirst))
        );
        // Lists that are not rank 3 are taken as they are.
        assert_eq!(reading(0, &list(&[4]), &rgb), Ok(None));
    }
}
