//! `SERIALIZED_TF_TENSORS`, Earth Engine's hosted default: each instance maps band names to
//! the URL-safe base64 (written unpadded) of a serialized `TensorProto`, inside
//! `{"instances": [...]}`; answers come as `{"predictions": [...]}`, bare strings for a
//! single-output model, objects otherwise. Readers accept either base64 alphabet, padded or not.

use super::{decode_rows_body, write_rows, Instance, OutputSpec, Slot};
use crate::json::Reader;
use crate::{b64, tensor_proto, Result, Tensor};

/// The format's name in errors.
pub const FORMAT: &str = "SERIALIZED_TF_TENSORS";

fn write_tensor(t: &Tensor, scratch: &mut Vec<u8>, out: &mut Vec<u8>) -> Result<()> {
    out.push(b'"');
    tensor_proto::write_serialized_url_safe_base64(t, scratch, out);
    out.push(b'"');
    Ok(())
}

fn write_body(key: &str, rows: &[Instance], bare: bool, out: &mut Vec<u8>) -> Result<()> {
    // The request's exact length, plus room for a key longer than "instances" (a bare
    // response is shorter still): one allocation for the whole body.
    out.reserve(request_len(rows) + key.len());
    out.extend_from_slice(b"{\"");
    out.extend_from_slice(key.as_bytes());
    out.extend_from_slice(b"\":");
    let mut scratch = Vec::new();
    write_rows(rows, bare, out, &mut |t, out| {
        write_tensor(t, &mut scratch, out)
    })?;
    out.push(b'}');
    Ok(())
}

/// Appends `{"instances": [{band: "<base64>", ...}, ...]}` to `out`.
pub fn encode_request(instances: &[Instance], out: &mut Vec<u8>) -> Result<()> {
    write_body("instances", instances, false, out)
}

/// Appends `{"predictions": [...]}`: bare strings when every prediction holds exactly one
/// tensor (a single-output model), objects otherwise.
pub fn encode_response(predictions: &[Instance], out: &mut Vec<u8>) -> Result<()> {
    let bare = !predictions.is_empty() && predictions.iter().all(|p| p.len() == 1);
    write_body("predictions", predictions, bare, out)
}

/// The exact byte length [`encode_request`] writes for `instances`, computed from the
/// tensors' serialized sizes without encoding anything: what request batching measures,
/// and what the encoder reserves.
pub fn request_len(instances: &[Instance]) -> usize {
    let mut name = Vec::new();
    let rows = instances.iter().fold(0usize, |sum, row| {
        let entries = row.iter().fold(0usize, |sum, (n, t)| {
            name.clear();
            crate::json::write_str(&mut name, n);
            let proto = tensor_proto::serialized_len(t);
            let text = base64::encoded_len(proto, false).unwrap_or(usize::MAX);
            // "name":"<base64>"
            sum.saturating_add(name.len() + 1 + 2).saturating_add(text)
        });
        // {entries, comma-separated}
        sum.saturating_add(2 + row.len().saturating_sub(1))
            .saturating_add(entries)
    });
    // {"instances":[rows, comma-separated]}
    rows.saturating_add("{\"instances\":[]}".len() + instances.len().saturating_sub(1))
}

fn is_bare(r: &mut Reader<'_>) -> Result<bool> {
    Ok(r.peek()? == b'"')
}

fn read_value(r: &mut Reader<'_>, slot: Slot<'_>) -> Result<Tensor> {
    let text = r.string()?;
    if let Some(t) = tensor_proto::deserialize_url_safe_base64(text.as_bytes(), slot.dtype) {
        return Ok(t);
    }
    let bytes = b64::decode_any(text.as_bytes(), &|| slot.context.to_string())?;
    match slot.dtype {
        Some(dtype) => tensor_proto::deserialize_expecting(&bytes, dtype, slot.context),
        None => tensor_proto::deserialize(&bytes),
    }
    .map_err(|e| match e {
        crate::Error::Protobuf { message, source } => crate::Error::payload(
            FORMAT,
            format!("{}: malformed {message}: {source}", slot.context),
        ),
        other => other,
    })
}

/// Decodes `{"instances": [...]}` (the server side). Names not in `inputs` are skipped; an
/// empty `inputs` accepts every name with the dtype each TensorProto declares.
pub fn decode_request(body: &[u8], inputs: &[OutputSpec]) -> Result<Vec<Instance>> {
    decode_rows_body(body, FORMAT, "instances", inputs, &is_bare, &mut read_value)
}

/// Decodes `{"predictions": [...]}`. Each declared output must be present with its dtype;
/// undeclared outputs are skipped; an empty `outputs` accepts everything.
pub fn decode_response(body: &[u8], outputs: &[OutputSpec]) -> Result<Vec<Instance>> {
    decode_rows_body(
        body,
        FORMAT,
        "predictions",
        outputs,
        &is_bare,
        &mut read_value,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::DataType;

    fn tile(v: f32) -> Tensor {
        Tensor::from_vec(&[2, 2, 1], vec![v, v + 1.0, v + 2.0, v + 3.0]).unwrap()
    }

    #[test]
    fn request_round_trips_and_is_unpadded_url_safe() {
        let instances = vec![
            Instance::new().with("B1", tile(0.0)).with("B2", tile(10.0)),
            Instance::new()
                .with("B1", tile(20.0))
                .with("B2", tile(30.0)),
        ];
        let mut body = Vec::new();
        encode_request(&instances, &mut body).unwrap();
        assert_eq!(body.len(), request_len(&instances));
        let text = std::str::from_utf8(&body).unwrap();
        assert!(text.starts_with("{\"instances\":[{\"B1\":\""));
        assert!(!text.contains('=') && !text.contains('+') && !text.contains('/'));
        let back = decode_request(&body, &[]).unwrap();
        assert_eq!(back, instances);
    }

    #[test]
    fn request_len_is_exact() {
        let strings = Tensor::from_strings(&[2], vec![b"ab".to_vec(), vec![0xff; 300]]).unwrap();
        let big = Tensor::from_vec(&[30, 40, 3], vec![1.5f64; 3600]).unwrap();
        let cases = vec![
            vec![],
            vec![Instance::new()],
            vec![Instance::new().with("B1", tile(0.0))],
            vec![
                Instance::new()
                    .with("B1", tile(0.0))
                    .with("é \"q\"\n", big.clone()),
                Instance::new()
                    .with("B1", strings)
                    .with("x", Tensor::zeros(DataType::Int8, &[0])),
                Instance::new().with("", Tensor::zeros(DataType::Bool, &[])),
            ],
        ];
        for rows in cases {
            let mut body = Vec::new();
            encode_request(&rows, &mut body).unwrap();
            assert_eq!(request_len(&rows), body.len(), "{rows:?}");
        }
    }

    #[test]
    fn single_output_answers_are_bare_strings() {
        let preds = vec![Instance::new().with("out", tile(1.0))];
        let mut body = Vec::new();
        encode_response(&preds, &mut body).unwrap();
        assert!(body.starts_with(b"{\"predictions\":[\""));
        let back = decode_response(&body, &[OutputSpec::new("out", DataType::Float32)]).unwrap();
        assert_eq!(back, preds);
        let err = decode_response(&body, &[OutputSpec::new("out", DataType::Int32)]).unwrap_err();
        assert!(
            err.to_string()
                .contains("expected dtype int32, found float32"),
            "{err}"
        );
    }

    #[test]
    fn missing_outputs_and_server_errors_are_reported() {
        let mut body = Vec::new();
        encode_response(
            &[Instance::new().with("a", tile(0.0)).with("b", tile(0.0))],
            &mut body,
        )
        .unwrap();
        let err = decode_response(&body, &[OutputSpec::new("c", DataType::Float32)]).unwrap_err();
        assert!(
            err.to_string()
                .contains("prediction 0 lacks \"c\" (it has: a, b)"),
            "{err}"
        );
        let err =
            decode_response(br#"{"error": "Prediction failed: bad shape"}"#, &[]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "server answered with an error: Prediction failed: bad shape"
        );
    }
}
