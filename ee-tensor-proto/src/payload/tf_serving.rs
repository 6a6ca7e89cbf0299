//! TF Serving's REST predict API: row format (`{"instances": [...]}`) and columnar format
//! (`{"inputs": ...}`), binary strings as `{"b64": "<standard base64>"}`, and the `NaN`,
//! `Infinity`, `-Infinity` tokens TF Serving writes for non-finite floats. Answers are
//! `{"predictions": [...]}` (row) or `{"outputs": ...}` (columnar).

use super::{check_complete, lookup, single_spec, write_rows, Instance, OutputSpec, Slot};
use crate::json::{write_str, write_tensor, Reader, Style};
use crate::payload::raw_json::read_json_value;
use crate::{Error, Result, Tensor};

/// The format's name in errors.
pub const FORMAT: &str = "TF_SERVING_JSON";

/// Row or columnar layout.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Layout {
    /// `instances` / `predictions`: one object per batch row.
    #[default]
    Row,
    /// `inputs` / `outputs`: one batched value per name.
    Columnar,
}

fn open(out: &mut Vec<u8>, signature_name: Option<&str>) {
    out.push(b'{');
    if let Some(sig) = signature_name {
        out.extend_from_slice(b"\"signature_name\":");
        write_str(out, sig);
        out.push(b',');
    }
}

fn write_columns(key: &str, rows: &[Instance], bare: bool, out: &mut Vec<u8>) -> Result<()> {
    let batched = Instance::stack(rows)?;
    write_str(out, key);
    out.push(b':');
    if bare {
        let (_, t) = batched
            .iter()
            .next()
            .ok_or_else(|| Error::payload(FORMAT, "no tensor to send"))?;
        write_tensor(t, out, Style::TF_SERVING)?;
    } else {
        out.push(b'{');
        for (j, (name, t)) in batched.iter().enumerate() {
            if j > 0 {
                out.push(b',');
            }
            write_str(out, name);
            out.push(b':');
            write_tensor(t, out, Style::TF_SERVING)?;
        }
        out.push(b'}');
    }
    Ok(())
}

/// Appends a predict request in `layout`, with `signature_name` when given.
pub fn encode_request(
    instances: &[Instance],
    layout: Layout,
    signature_name: Option<&str>,
    out: &mut Vec<u8>,
) -> Result<()> {
    open(out, signature_name);
    match layout {
        Layout::Row => {
            out.extend_from_slice(b"\"instances\":");
            write_rows(instances, false, out, &mut |t, out| {
                write_tensor(t, out, Style::TF_SERVING)
            })?;
        }
        Layout::Columnar => write_columns("inputs", instances, false, out)?,
    }
    out.push(b'}');
    Ok(())
}

/// Appends a predict response in `layout`; a model with one output answers bare values, as
/// TF Serving does.
pub fn encode_response(predictions: &[Instance], layout: Layout, out: &mut Vec<u8>) -> Result<()> {
    let bare = !predictions.is_empty() && predictions.iter().all(|p| p.len() == 1);
    out.push(b'{');
    match layout {
        Layout::Row => {
            out.extend_from_slice(b"\"predictions\":");
            write_rows(predictions, bare, out, &mut |t, out| {
                write_tensor(t, out, Style::TF_SERVING)
            })?;
        }
        Layout::Columnar => write_columns("outputs", predictions, bare, out)?,
    }
    out.push(b'}');
    Ok(())
}

/// True when the value at the reader is a bare value rather than an object of named values:
/// anything but an object, or an object that is a `{"b64": ...}` binary.
fn is_bare(r: &mut Reader<'_>) -> Result<bool> {
    if r.peek()? != b'{' {
        return Ok(true);
    }
    let mark = r.mark();
    r.begin_object()?;
    let mut first = true;
    let key = r.next_key(&mut first)?;
    r.reset(mark);
    Ok(key.as_deref() == Some("b64"))
}

fn read_value(r: &mut Reader<'_>, slot: Slot<'_>) -> Result<Tensor> {
    read_json_value(r, slot, FORMAT)
}

/// Reads a columnar value (`inputs` / `outputs`) and splits it into rows.
fn read_columns(r: &mut Reader<'_>, specs: &[OutputSpec], what: &str) -> Result<Vec<Instance>> {
    let mut batched = Instance::new();
    let mut seen = Vec::new();
    if is_bare(r)? {
        let (name, dtype) = single_spec(specs, FORMAT, what)?;
        let t = read_value(
            r,
            Slot {
                dtype,
                context: what,
            },
        )?;
        batched.push(name, t);
    } else {
        r.begin_object()?;
        let mut first = true;
        while let Some(key) = r.next_key(&mut first)? {
            seen.push(key.to_string());
            match lookup(specs, &key) {
                Some(dtype) => {
                    let context = format!("{what} {key:?}");
                    let t = read_value(
                        r,
                        Slot {
                            dtype,
                            context: &context,
                        },
                    )?;
                    batched.push(key.into_owned(), t);
                }
                None => r.skip_value()?,
            }
        }
        check_complete(&batched, &seen, specs, FORMAT, what)?;
    }
    Instance::unstack(&batched).map_err(|e| Error::payload(FORMAT, format!("{what}: {e}")))
}

/// A decoded request: the signature asked for and the rows.
#[derive(Clone, Debug, PartialEq)]
pub struct Request {
    /// `signature_name`, when the request named one.
    pub signature_name: Option<String>,
    /// One instance per batch row.
    pub instances: Vec<Instance>,
    /// The layout the request came in, which its answer should use too.
    pub layout: Layout,
}

/// Decodes a request in either layout against the declared inputs (the server side).
pub fn decode_request(body: &[u8], inputs: &[OutputSpec]) -> Result<Request> {
    let mut r = Reader::new(body);
    r.begin_object()?;
    let mut first = true;
    let mut signature_name = None;
    let mut instances = None;
    let mut layout = Layout::Row;
    while let Some(key) = r.next_key(&mut first)? {
        match &*key {
            "signature_name" => signature_name = Some(r.string()?.into_owned()),
            "instances" => {
                layout = Layout::Row;
                instances = Some(super::read_rows(
                    &mut r,
                    FORMAT,
                    "instance",
                    inputs,
                    &is_bare,
                    &mut read_value,
                )?)
            }
            "inputs" => {
                layout = Layout::Columnar;
                instances = Some(read_columns(&mut r, inputs, "inputs")?)
            }
            _ => r.skip_value()?,
        }
    }
    r.finish()?;
    let instances = instances.ok_or_else(|| {
        Error::payload(
            FORMAT,
            "the request has neither \"instances\" nor \"inputs\"",
        )
    })?;
    Ok(Request {
        signature_name,
        instances,
        layout,
    })
}

/// Decodes a response in either layout against the declared outputs.
pub fn decode_response(body: &[u8], outputs: &[OutputSpec]) -> Result<Vec<Instance>> {
    let mut r = Reader::new(body);
    r.begin_object()?;
    let mut first = true;
    let mut rows = None;
    while let Some(key) = r.next_key(&mut first)? {
        match &*key {
            "predictions" => {
                rows = Some(super::read_rows(
                    &mut r,
                    FORMAT,
                    "prediction",
                    outputs,
                    &is_bare,
                    &mut read_value,
                )?)
            }
            "outputs" => rows = Some(read_columns(&mut r, outputs, "outputs")?),
            "error" => {
                return Err(Error::ServerError {
                    message: super::read_error_message(&mut r)?,
                })
            }
            _ => r.skip_value()?,
        }
    }
    r.finish()?;
    rows.ok_or_else(|| {
        Error::payload(
            FORMAT,
            "the response has neither \"predictions\" nor \"outputs\"",
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::DataType;

    fn inst(v: f32) -> Instance {
        Instance::new()
            .with("x", Tensor::from_vec(&[2], vec![v, f32::NAN]).unwrap())
            .with(
                "img",
                Tensor::from_strings(&[], vec![vec![0xff, 0, v as u8]]).unwrap(),
            )
    }

    fn specs() -> Vec<OutputSpec> {
        vec![
            OutputSpec::new("x", DataType::Float32),
            OutputSpec::new("img", DataType::String),
        ]
    }

    #[test]
    fn both_layouts_round_trip() {
        let rows = vec![inst(1.0), inst(2.0)];
        for layout in [Layout::Row, Layout::Columnar] {
            let mut body = Vec::new();
            encode_request(&rows, layout, Some("serving_default"), &mut body).unwrap();
            let req = decode_request(&body, &specs()).unwrap();
            assert_eq!(req.signature_name.as_deref(), Some("serving_default"));
            assert!(
                req.instances.iter().zip(&rows).all(|(a, b)| a.bit_eq(b)),
                "{layout:?}"
            );
            let mut resp = Vec::new();
            encode_response(&rows, layout, &mut resp).unwrap();
            let back = decode_response(&resp, &specs()).unwrap();
            assert!(
                back.iter().zip(&rows).all(|(a, b)| a.bit_eq(b)),
                "{layout:?}"
            );
        }
    }

    #[test]
    fn single_output_bare_values_and_b64() {
        let body = br#"{"predictions": [{"b64": "AAE="}, {"b64": "AgM="}]}"#;
        let rows = decode_response(body, &[OutputSpec::new("s", DataType::String)]).unwrap();
        assert_eq!(
            rows[1]
                .get("s")
                .unwrap()
                .strings()
                .unwrap()
                .iter()
                .next()
                .unwrap(),
            &vec![2, 3]
        );
        let body = br#"{"outputs": [[1.5, NaN], [Infinity, -Infinity]]}"#;
        let rows = decode_response(body, &[OutputSpec::new("y", DataType::Float64)]).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(
            rows[1]
                .get("y")
                .unwrap()
                .array::<f64>()
                .unwrap()
                .as_slice()
                .unwrap(),
            &[f64::INFINITY, f64::NEG_INFINITY]
        );
    }
}
