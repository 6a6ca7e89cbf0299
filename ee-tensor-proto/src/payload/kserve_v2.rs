//! The Open Inference Protocol (KServe v2, Triton, MLServer) REST bodies: JSON tensors
//! (`{"name", "shape", "datatype", "data"}`) and the binary tensor extension, where the JSON
//! header is followed by raw little-endian tensor bytes and its length travels in the
//! `Inference-Header-Content-Length` HTTP header. `BYTES` elements are 4-byte little-endian
//! length prefixed in binary form. Tensors here carry their batch dimension.

use super::{Instance, OutputSpec};
use crate::json::{write_flat, write_str, Column, Reader, Style};
use crate::tensor::element_count;
use crate::{DataType, Error, Result, Tensor};

/// The format's name in errors.
pub const FORMAT: &str = "KSERVE_V2";

/// The HTTP header carrying the JSON header's length in binary bodies.
pub const HEADER_LENGTH_HEADER: &str = "Inference-Header-Content-Length";

fn write_shape(shape: &[usize], out: &mut Vec<u8>) {
    out.push(b'[');
    for (i, d) in shape.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(itoa::Buffer::new().format(*d).as_bytes());
    }
    out.push(b']');
}

/// Appends a tensor's raw contents as the binary extension and gRPC `raw_*_contents` carry
/// them: little-endian elements, or for `BYTES` each element as a 4-byte little-endian length
/// and its bytes.
pub fn write_raw_contents(t: &Tensor, out: &mut Vec<u8>) {
    binary_bytes(t, out)
}

/// Decodes raw contents (see [`write_raw_contents`]) of `dtype` and `shape`; `what` names the
/// tensor in errors.
pub fn tensor_from_raw_contents(
    dtype: DataType,
    shape: &[usize],
    bytes: &[u8],
    what: &str,
) -> Result<Tensor> {
    let n = element_count(shape)
        .ok_or_else(|| Error::payload(FORMAT, format!("{what}: shape {shape:?} overflows")))?;
    let result = if dtype == DataType::String {
        let mut values = Vec::with_capacity(n.min(bytes.len() / 4));
        let mut cur = bytes;
        for _ in 0..n {
            let Some((len, rest)) = cur.split_first_chunk::<4>() else {
                return Err(Error::payload(
                    FORMAT,
                    format!("{what}: BYTES data truncated"),
                ));
            };
            let len = u32::from_le_bytes(*len) as usize;
            if len > rest.len() {
                return Err(Error::payload(
                    FORMAT,
                    format!("{what}: BYTES element longer than the data"),
                ));
            }
            values.push(rest[..len].to_vec());
            cur = &rest[len..];
        }
        if !cur.is_empty() {
            return Err(Error::payload(
                FORMAT,
                format!("{what}: {} bytes left after {n} BYTES elements", cur.len()),
            ));
        }
        Tensor::from_strings(shape, values)
    } else {
        Tensor::from_le_bytes(dtype, shape, bytes)
    };
    result.map_err(|e| Error::payload(FORMAT, format!("{what}: {e}")))
}

fn binary_bytes(t: &Tensor, out: &mut Vec<u8>) {
    if let Tensor::String(a) = t {
        for s in a.iter() {
            out.extend_from_slice(&(s.len() as u32).to_le_bytes());
            out.extend_from_slice(s);
        }
    } else {
        t.write_le_bytes(out);
    }
}

fn binary_len(t: &Tensor) -> usize {
    match t {
        Tensor::String(a) => a.iter().map(|s| 4 + s.len()).sum(),
        _ => t.len() * t.dtype().size().unwrap_or(0),
    }
}

/// Writes a list of tensor objects; binary data (when `binary`) goes to `tail`.
fn write_tensors(
    tensors: &Instance,
    binary: bool,
    out: &mut Vec<u8>,
    tail: &mut Vec<u8>,
) -> Result<()> {
    out.push(b'[');
    for (i, (name, t)) in tensors.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(b"{\"name\":");
        write_str(out, name);
        out.extend_from_slice(b",\"shape\":");
        write_shape(t.shape(), out);
        out.extend_from_slice(b",\"datatype\":\"");
        out.extend_from_slice(t.dtype().kserve_name().as_bytes());
        out.push(b'"');
        if binary {
            out.extend_from_slice(b",\"parameters\":{\"binary_data_size\":");
            out.extend_from_slice(itoa::Buffer::new().format(binary_len(t)).as_bytes());
            out.push(b'}');
            binary_bytes(t, tail);
        } else {
            out.extend_from_slice(b",\"data\":");
            write_flat(t, out, Style::PLAIN)
                .map_err(|e| Error::payload(FORMAT, format!("tensor {name:?}: {e}")))?;
        }
        out.push(b'}');
    }
    out.push(b']');
    Ok(())
}

/// Appends an inference request for the (batched) `inputs`, asking for `outputs` by name
/// (all outputs when empty). With `binary`, tensor data follows the JSON header and the
/// header's length is returned for the `Inference-Header-Content-Length` header.
pub fn encode_request(
    inputs: &Instance,
    outputs: &[&str],
    binary: bool,
    out: &mut Vec<u8>,
) -> Result<Option<usize>> {
    let start = out.len();
    let mut tail = Vec::new();
    out.extend_from_slice(b"{\"inputs\":");
    write_tensors(inputs, binary, out, &mut tail)?;
    if !outputs.is_empty() {
        out.extend_from_slice(b",\"outputs\":[");
        for (i, name) in outputs.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(b"{\"name\":");
            write_str(out, name);
            if binary {
                out.extend_from_slice(b",\"parameters\":{\"binary_data\":true}");
            }
            out.push(b'}');
        }
        out.push(b']');
    }
    out.push(b'}');
    Ok(finish_binary(binary, start, out, tail))
}

fn finish_binary(binary: bool, start: usize, out: &mut Vec<u8>, tail: Vec<u8>) -> Option<usize> {
    if binary {
        let header = out.len() - start;
        out.extend_from_slice(&tail);
        Some(header)
    } else {
        None
    }
}

/// Appends an inference response with the (batched) `outputs`.
pub fn encode_response(
    model_name: &str,
    model_version: Option<&str>,
    id: Option<&str>,
    outputs: &Instance,
    binary: bool,
    out: &mut Vec<u8>,
) -> Result<Option<usize>> {
    let start = out.len();
    let mut tail = Vec::new();
    out.extend_from_slice(b"{\"model_name\":");
    write_str(out, model_name);
    if let Some(v) = model_version {
        out.extend_from_slice(b",\"model_version\":");
        write_str(out, v);
    }
    if let Some(id) = id {
        out.extend_from_slice(b",\"id\":");
        write_str(out, id);
    }
    out.extend_from_slice(b",\"outputs\":");
    write_tensors(outputs, binary, out, &mut tail)?;
    out.push(b'}');
    Ok(finish_binary(binary, start, out, tail))
}

/// One tensor object as read from the JSON header, before its data is decoded.
struct Entry {
    name: String,
    shape: Vec<usize>,
    dtype: DataType,
    data_at: Option<usize>,
    binary_size: Option<usize>,
}

fn read_parameters(
    r: &mut Reader<'_>,
    binary_size: &mut Option<usize>,
    binary_data: &mut bool,
) -> Result<()> {
    r.begin_object()?;
    let mut first = true;
    while let Some(key) = r.next_key(&mut first)? {
        match &*key {
            "binary_data_size" => {
                let crate::json::Scalar::Num(n) = r.scalar()? else {
                    return Err(r.error("binary_data_size must be a number"));
                };
                *binary_size = Some(
                    n.parse()
                        .map_err(|_| r.error("binary_data_size must be a non-negative integer"))?,
                );
            }
            "binary_data" => {
                *binary_data = matches!(r.scalar()?, crate::json::Scalar::Bool(true));
            }
            _ => r.skip_value()?,
        }
    }
    Ok(())
}

fn read_shape(r: &mut Reader<'_>) -> Result<Vec<usize>> {
    let mut dims = Vec::new();
    r.begin_array()?;
    let mut first = true;
    while r.next_item(&mut first)? {
        let crate::json::Scalar::Num(n) = r.scalar()? else {
            return Err(r.error("shape entries must be numbers"));
        };
        dims.push(n.parse::<usize>().map_err(|_| {
            r.error(format!(
                "shape entry {n} is not a non-negative integer (dynamic dims cannot be sent)"
            ))
        })?);
    }
    Ok(dims)
}

fn read_entry(r: &mut Reader<'_>, index: usize, what: &str) -> Result<Entry> {
    r.begin_object()?;
    let mut first = true;
    let (mut name, mut shape, mut dtype, mut data_at) = (None, None, None, None);
    let (mut binary_size, mut _binary_data) = (None, false);
    while let Some(key) = r.next_key(&mut first)? {
        match &*key {
            "name" => name = Some(r.string()?.into_owned()),
            "datatype" => {
                let text = r.string()?;
                dtype = Some(text.parse::<DataType>().map_err(|_| {
                    Error::payload(
                        FORMAT,
                        format!("{what} {index}: unsupported datatype {text:?}"),
                    )
                })?);
            }
            "shape" => shape = Some(read_shape(r)?),
            "data" => {
                data_at = Some(r.mark());
                r.skip_value()?;
            }
            "parameters" => read_parameters(r, &mut binary_size, &mut _binary_data)?,
            _ => r.skip_value()?,
        }
    }
    let name = name.unwrap_or_else(|| format!("#{index}"));
    let missing = |field: &str| Error::payload(FORMAT, format!("{what} {name:?} has no {field:?}"));
    Ok(Entry {
        shape: shape.ok_or_else(|| missing("shape"))?,
        dtype: dtype.ok_or_else(|| missing("datatype"))?,
        name,
        data_at,
        binary_size,
    })
}

/// Decodes one entry's data, from the JSON `data` member or from the binary tail.
fn entry_tensor(entry: &Entry, r: &mut Reader<'_>, tail: &mut &[u8], what: &str) -> Result<Tensor> {
    let name = &entry.name;
    element_count(&entry.shape).ok_or_else(|| {
        Error::payload(
            FORMAT,
            format!("{what} {name:?}: shape {:?} overflows", entry.shape),
        )
    })?;
    if let Some(size) = entry.binary_size {
        if size > tail.len() {
            return Err(Error::payload(
                FORMAT,
                format!(
                    "{what} {name:?}: binary_data_size {size} but only {} bytes remain",
                    tail.len()
                ),
            ));
        }
        let (bytes, rest) = tail.split_at(size);
        *tail = rest;
        return tensor_from_raw_contents(
            entry.dtype,
            &entry.shape,
            bytes,
            &format!("{what} {name:?}"),
        );
    }
    let at = entry.data_at.ok_or_else(|| {
        Error::payload(
            FORMAT,
            format!("{what} {name:?} has neither \"data\" nor binary_data_size"),
        )
    })?;
    let back = r.mark();
    r.reset(at);
    let mut column = Column::new(entry.dtype);
    r.nested(&mut column)?;
    r.reset(back);
    column
        .into_tensor(&entry.shape)
        .map_err(|e| Error::payload(FORMAT, format!("{what} {name:?}: {e}")))
}

/// Splits a body into its JSON header and binary tail.
fn split_body(body: &[u8], header_length: Option<usize>) -> Result<(&[u8], &[u8])> {
    match header_length {
        None => Ok((body, &[])),
        Some(n) if n <= body.len() => Ok(body.split_at(n)),
        Some(n) => Err(Error::payload(
            FORMAT,
            format!(
                "{HEADER_LENGTH_HEADER} is {n} but the body has {} bytes",
                body.len()
            ),
        )),
    }
}

/// A decoded body: its tensors and, for requests, the requested outputs.
struct Body {
    tensors: Vec<(Entry, Tensor)>,
    requested: Vec<(String, bool)>,
}

/// Reads the list of tensor objects under `key` and decodes them; other members are skipped.
fn decode_body(body: &[u8], header_length: Option<usize>, key: &str, what: &str) -> Result<Body> {
    let (header, mut tail) = split_body(body, header_length)?;
    let mut r = Reader::new(header);
    r.begin_object()?;
    let mut first = true;
    let mut entries = None;
    let mut requested = Vec::new();
    while let Some(k) = r.next_key(&mut first)? {
        if k == key {
            let mut list = Vec::new();
            r.begin_array()?;
            let mut first_item = true;
            while r.next_item(&mut first_item)? {
                list.push(read_entry(&mut r, list.len(), what)?);
            }
            entries = Some(list);
        } else if k == "outputs" {
            // The request's list of requested outputs.
            r.begin_array()?;
            let mut first_item = true;
            while r.next_item(&mut first_item)? {
                r.begin_object()?;
                let mut fk = true;
                let (mut name, mut binary, mut size) = (None, false, None);
                while let Some(f) = r.next_key(&mut fk)? {
                    match &*f {
                        "name" => name = Some(r.string()?.into_owned()),
                        "parameters" => read_parameters(&mut r, &mut size, &mut binary)?,
                        _ => r.skip_value()?,
                    }
                }
                requested.push((name.unwrap_or_default(), binary));
            }
        } else if k == "error" {
            return Err(Error::ServerError {
                message: super::read_error_message(&mut r)?,
            });
        } else {
            r.skip_value()?;
        }
    }
    r.finish()?;
    let entries =
        entries.ok_or_else(|| Error::payload(FORMAT, format!("the body has no {key:?} list")))?;
    let mut out = Vec::with_capacity(entries.len());
    for e in entries {
        let t = entry_tensor(&e, &mut r, &mut tail, what)?;
        out.push((e, t));
    }
    if !tail.is_empty() {
        return Err(Error::payload(
            FORMAT,
            format!("{} bytes of binary data after the last tensor", tail.len()),
        ));
    }
    Ok(Body {
        tensors: out,
        requested,
    })
}

/// A decoded inference request (the server side).
#[derive(Clone, Debug, PartialEq)]
pub struct Request {
    /// The (batched) input tensors, in order.
    pub inputs: Instance,
    /// Requested outputs by name, with whether each was asked for in binary form.
    pub outputs: Vec<(String, bool)>,
}

/// Decodes an inference request; `header_length` is the `Inference-Header-Content-Length`
/// value for binary bodies.
pub fn decode_request(body: &[u8], header_length: Option<usize>) -> Result<Request> {
    let body = decode_body(body, header_length, "inputs", "input")?;
    Ok(Request {
        inputs: body.tensors.into_iter().map(|(e, t)| (e.name, t)).collect(),
        outputs: body.requested,
    })
}

/// Decodes an inference response, checking each declared output's presence and datatype;
/// undeclared outputs are skipped (all are kept when `outputs` is empty).
pub fn decode_response(
    body: &[u8],
    header_length: Option<usize>,
    outputs: &[OutputSpec],
) -> Result<Instance> {
    let entries = decode_body(body, header_length, "outputs", "output")?.tensors;
    let seen: Vec<String> = entries.iter().map(|(e, _)| e.name.clone()).collect();
    let mut result = Instance::new();
    for (e, t) in entries {
        match super::lookup(outputs, &e.name) {
            Some(Some(expected)) if expected != e.dtype => {
                return Err(Error::DtypeMismatch {
                    context: format!("output {:?}", e.name),
                    expected,
                    found: e.dtype,
                })
            }
            Some(_) => result.push(e.name, t),
            None => {}
        }
    }
    super::check_complete(&result, &seen, outputs, FORMAT, "the response")?;
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inputs() -> Instance {
        Instance::new()
            .with(
                "x",
                Tensor::from_vec(&[2, 3], vec![1.0f32, 2.0, 3.0, 4.0, 5.0, f32::INFINITY]).unwrap(),
            )
            .with("ids", Tensor::from_vec(&[2], vec![-7i64, 1 << 60]).unwrap())
            .with("flag", Tensor::from_vec(&[2], vec![true, false]).unwrap())
            .with(
                "text",
                Tensor::from_strings(&[2], vec![b"ab".to_vec(), Vec::new()]).unwrap(),
            )
    }

    #[test]
    fn json_and_binary_requests_round_trip() {
        for binary in [false, true] {
            let mut body = Vec::new();
            let header = encode_request(&inputs(), &["y"], binary, &mut body).unwrap();
            assert_eq!(header.is_some(), binary);
            let req = decode_request(&body, header).unwrap();
            assert!(req.inputs.bit_eq(&inputs()), "binary={binary}");
            assert_eq!(req.outputs, vec![("y".to_string(), binary)]);
        }
    }

    #[test]
    fn responses_check_declared_outputs() {
        for binary in [false, true] {
            let mut body = Vec::new();
            let header =
                encode_response("m", Some("1"), None, &inputs(), binary, &mut body).unwrap();
            let specs = [OutputSpec::new("ids", DataType::Int64)];
            let got = decode_response(&body, header, &specs).unwrap();
            assert_eq!(got.len(), 1);
            let bad = [OutputSpec::new("ids", DataType::Int32)];
            assert!(decode_response(&body, header, &bad)
                .unwrap_err()
                .to_string()
                .contains("expected dtype int32, found int64"));
            let missing = [OutputSpec::new("zz", DataType::Int32)];
            let err = decode_response(&body, header, &missing)
                .unwrap_err()
                .to_string();
            assert!(
                err.contains("lacks \"zz\" (it has: x, ids, flag, text)"),
                "{err}"
            );
        }
    }

    #[test]
    fn data_before_datatype_and_nested_data_are_accepted() {
        let body =
            br#"{"outputs":[{"data":[[1,2],[3,4]],"name":"y","shape":[2,2],"datatype":"INT32"}]}"#;
        let got = decode_response(body, None, &[]).unwrap();
        assert_eq!(
            got.get("y")
                .unwrap()
                .array::<i32>()
                .unwrap()
                .as_slice()
                .unwrap(),
            &[1, 2, 3, 4]
        );
    }

    #[test]
    fn truncated_binary_is_an_error() {
        let mut body = Vec::new();
        let header = encode_request(&inputs(), &[], true, &mut body).unwrap();
        body.pop();
        assert!(decode_request(&body, header).is_err());
        assert!(decode_request(&body, Some(body.len() + 1)).is_err());
    }
}
