//! `RAW_JSON`: `{"instances": [{name: nested list}, ...]}` with every number sent as a JSON
//! string (`"12.345"`), as Earth Engine sends it to PyTorch and AutoML models. Answers
//! (`{"predictions": [...]}`) may carry numbers or numeric strings.

use super::{decode_rows_body, write_rows, Instance, OutputSpec, Slot};
use crate::json::{read_tensor, write_tensor, Reader, Style};
use crate::{Error, Result, Tensor};

/// The format's name in errors.
pub const FORMAT: &str = "RAW_JSON";

/// Appends `{"instances": [{name: nested list of quoted numbers}, ...]}` to `out`.
pub fn encode_request(instances: &[Instance], out: &mut Vec<u8>) -> Result<()> {
    out.extend_from_slice(b"{\"instances\":");
    write_rows(instances, false, out, &mut |t, out| {
        write_tensor(t, out, Style::RAW_JSON)
    })?;
    out.push(b'}');
    Ok(())
}

/// Appends `{"predictions": [...]}` with plain numbers: bare values when every prediction
/// holds one tensor.
pub fn encode_response(predictions: &[Instance], out: &mut Vec<u8>) -> Result<()> {
    let bare = !predictions.is_empty() && predictions.iter().all(|p| p.len() == 1);
    out.extend_from_slice(b"{\"predictions\":");
    write_rows(predictions, bare, out, &mut |t, out| {
        write_tensor(t, out, Style::PLAIN)
    })?;
    out.push(b'}');
    Ok(())
}

pub(crate) fn read_json_value(
    r: &mut Reader<'_>,
    slot: Slot<'_>,
    format: &'static str,
) -> Result<Tensor> {
    let dtype = slot.dtype.ok_or_else(|| {
        Error::payload(
            format,
            format!(
                "{}: JSON carries no dtype, so the value must be declared with its type",
                slot.context
            ),
        )
    })?;
    read_tensor(r, dtype).map_err(|e| match e {
        Error::Json { offset, message } => Error::Json {
            offset,
            message: format!("{}: {message}", slot.context),
        },
        other => other,
    })
}

fn is_bare(r: &mut Reader<'_>) -> Result<bool> {
    Ok(r.peek()? != b'{')
}

/// Decodes `{"predictions": [...]}` against the declared outputs.
pub fn decode_response(body: &[u8], outputs: &[OutputSpec]) -> Result<Vec<Instance>> {
    decode_rows_body(
        body,
        FORMAT,
        "predictions",
        outputs,
        &is_bare,
        &mut |r, slot| read_json_value(r, slot, FORMAT),
    )
}

/// Decodes `{"instances": [...]}` against the declared inputs (the server side).
pub fn decode_request(body: &[u8], inputs: &[OutputSpec]) -> Result<Vec<Instance>> {
    decode_rows_body(
        body,
        FORMAT,
        "instances",
        inputs,
        &is_bare,
        &mut |r, slot| read_json_value(r, slot, FORMAT),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::DataType;

    #[test]
    fn numbers_travel_as_strings() {
        let t = Tensor::from_vec(&[1, 2], vec![12.345f32, -1.0]).unwrap();
        let mut body = Vec::new();
        encode_request(&[Instance::new().with("x", t.clone())], &mut body).unwrap();
        assert_eq!(body, br#"{"instances":[{"x":[["12.345","-1.0"]]}]}"#);
        let back = decode_request(&body, &[OutputSpec::new("x", DataType::Float32)]).unwrap();
        assert_eq!(back[0].get("x").unwrap(), &t);
    }

    #[test]
    fn undeclared_dtype_is_an_error() {
        let err = decode_response(br#"{"predictions": [[1, 2]]}"#, &[]).unwrap_err();
        assert!(err.to_string().contains("must be declared"), "{err}");
        let ok = decode_response(
            br#"{"predictions": [[1, 2]]}"#,
            &[OutputSpec::new("p", DataType::Int64)],
        )
        .unwrap();
        assert_eq!(ok[0].get("p").unwrap().shape(), &[2]);
    }
}
