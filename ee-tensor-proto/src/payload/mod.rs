//! Request and response bodies of every payload format, as pure functions between tensors
//! and bytes. Encoders append to a caller-owned buffer so it can be reused across requests.
//!
//! An [`Instance`] is one row of a batch: named tensors without the batch dimension. JSON
//! formats carry no dtypes, so decoders take [`OutputSpec`]s naming the expected outputs and
//! their types; formats that carry dtypes check them against the specs.

pub mod kserve_v2;
pub mod nd_arrays;
pub mod raw_json;
pub mod serialized_tf_tensors;
pub mod tf_serving;

use std::fmt;
use std::str::FromStr;

use crate::json::Reader;
use crate::{DataType, Error, Result, Tensor};

/// Name given to the single output of a model that answers with bare (unnamed) values when
/// no output was declared.
pub const DEFAULT_OUTPUT_NAME: &str = "output";

/// Name of the single string input of a `GRPC_TF_EXAMPLES` `PredictRequest`: the tensor of
/// serialized tf.train.Examples (one per instance, one feature per model input) that Earth
/// Engine's client sends and a TF Serving model exported with a parsing signature takes.
/// Clients send it under this name, servers look for it.
pub const EXAMPLES_INPUT: &str = "input";

/// One row of a batch: named tensors, in order, without the batch dimension.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Instance {
    entries: Vec<(String, Tensor)>,
}

impl Instance {
    /// An empty instance.
    pub fn new() -> Self {
        Self::default()
    }

    /// This instance with one more named tensor.
    pub fn with(mut self, name: impl Into<String>, tensor: Tensor) -> Self {
        self.push(name, tensor);
        self
    }

    /// Adds a named tensor, replacing one of the same name.
    pub fn push(&mut self, name: impl Into<String>, tensor: Tensor) {
        let name = name.into();
        match self.entries.iter_mut().find(|(n, _)| *n == name) {
            Some(slot) => slot.1 = tensor,
            None => self.entries.push((name, tensor)),
        }
    }

    /// The tensor named `name`.
    pub fn get(&self, name: &str) -> Option<&Tensor> {
        self.entries.iter().find(|(n, _)| n == name).map(|(_, t)| t)
    }

    /// Removes and returns the tensor named `name`.
    pub fn take(&mut self, name: &str) -> Option<Tensor> {
        let i = self.entries.iter().position(|(n, _)| n == name)?;
        Some(self.entries.remove(i).1)
    }

    /// Names and tensors, in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Tensor)> {
        self.entries.iter().map(|(n, t)| (n.as_str(), t))
    }

    /// The names, in order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().map(|(n, _)| n.as_str())
    }

    /// Number of tensors.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when the instance holds no tensor.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The named tensors, in order.
    pub fn into_entries(self) -> Vec<(String, Tensor)> {
        self.entries
    }

    /// Bitwise equality of every tensor (NaN equals the same NaN).
    pub fn bit_eq(&self, other: &Instance) -> bool {
        self.len() == other.len()
            && self
                .entries
                .iter()
                .zip(&other.entries)
                .all(|((a, x), (b, y))| a == b && x.bit_eq(y))
    }

    /// Stacks instances with the same names, dtypes and shapes into one batched instance.
    pub fn stack(instances: &[Instance]) -> Result<Instance> {
        let first = instances
            .first()
            .ok_or_else(|| Error::payload("batch", "a batch needs at least one instance"))?;
        let mut out = Instance::new();
        for (name, _) in first.iter() {
            let parts = instances
                .iter()
                .enumerate()
                .map(|(i, inst)| {
                    inst.get(name).ok_or_else(|| {
                        Error::payload("batch", format!("instance {i} has no tensor {name:?}"))
                    })
                })
                .collect::<Result<Vec<_>>>()?;
            out.push(name, Tensor::stack(&parts)?);
        }
        Ok(out)
    }

    /// Splits a batched instance along every tensor's leading axis.
    pub fn unstack(batched: &Instance) -> Result<Vec<Instance>> {
        let mut rows: Option<Vec<Instance>> = None;
        for (name, t) in batched.iter() {
            let parts = t.unstack()?;
            let rows = rows.get_or_insert_with(|| vec![Instance::new(); parts.len()]);
            if rows.len() != parts.len() {
                return Err(Error::payload(
                    "batch",
                    format!(
                        "tensor {name:?} has batch size {} but an earlier one has {}",
                        parts.len(),
                        rows.len()
                    ),
                ));
            }
            for (row, part) in rows.iter_mut().zip(parts) {
                row.push(name, part);
            }
        }
        Ok(rows.unwrap_or_default())
    }
}

impl FromIterator<(String, Tensor)> for Instance {
    fn from_iter<I: IntoIterator<Item = (String, Tensor)>>(iter: I) -> Self {
        let mut out = Instance::new();
        for (n, t) in iter {
            out.push(n, t);
        }
        out
    }
}

/// An expected output (or input, on the server side): its name and element type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutputSpec {
    /// Tensor name in the payload.
    pub name: String,
    /// Element type.
    pub dtype: DataType,
}

impl OutputSpec {
    /// A spec of `name` and `dtype`.
    pub fn new(name: impl Into<String>, dtype: DataType) -> Self {
        OutputSpec {
            name: name.into(),
            dtype,
        }
    }
}

/// The payload formats of SPEC section 1, by their Earth Engine names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PayloadFormat {
    /// `{"instances": [{band: urlsafe-base64(TensorProto)}]}` (the hosted default).
    SerializedTfTensors,
    /// `{"instances": [{name: nested list of numbers as strings}]}`.
    RawJson,
    /// `{"instances": [channel-first nested list]}`.
    NdArrays,
    /// gRPC `PredictRequest` with one batched TensorProto per band.
    GrpcTfTensors,
    /// gRPC `PredictRequest` with one string tensor of serialized TensorProtos per band.
    GrpcSerializedTfTensors,
    /// gRPC `PredictRequest` with one string tensor `input` of serialized tf.train.Examples.
    GrpcTfExamples,
    /// TF Serving REST JSON (row or columnar) with `{"b64"}` binaries.
    TfServingJson,
    /// Open Inference Protocol v2 JSON.
    KServeV2Json,
    /// Open Inference Protocol v2 with the binary tensor extension.
    KServeV2Binary,
    /// Open Inference Protocol v2 gRPC `ModelInfer` with raw contents.
    KServeV2Grpc,
}

impl PayloadFormat {
    /// Every format.
    pub const ALL: [PayloadFormat; 10] = [
        PayloadFormat::SerializedTfTensors,
        PayloadFormat::RawJson,
        PayloadFormat::NdArrays,
        PayloadFormat::GrpcTfTensors,
        PayloadFormat::GrpcSerializedTfTensors,
        PayloadFormat::GrpcTfExamples,
        PayloadFormat::TfServingJson,
        PayloadFormat::KServeV2Json,
        PayloadFormat::KServeV2Binary,
        PayloadFormat::KServeV2Grpc,
    ];

    /// The canonical name (`SERIALIZED_TF_TENSORS`...).
    pub fn name(self) -> &'static str {
        match self {
            PayloadFormat::SerializedTfTensors => "SERIALIZED_TF_TENSORS",
            PayloadFormat::RawJson => "RAW_JSON",
            PayloadFormat::NdArrays => "ND_ARRAYS",
            PayloadFormat::GrpcTfTensors => "GRPC_TF_TENSORS",
            PayloadFormat::GrpcSerializedTfTensors => "GRPC_SERIALIZED_TF_TENSORS",
            PayloadFormat::GrpcTfExamples => "GRPC_TF_EXAMPLES",
            PayloadFormat::TfServingJson => "TF_SERVING_JSON",
            PayloadFormat::KServeV2Json => "KSERVE_V2_JSON",
            PayloadFormat::KServeV2Binary => "KSERVE_V2_BINARY",
            PayloadFormat::KServeV2Grpc => "KSERVE_V2_GRPC",
        }
    }

    /// True for the formats carried over gRPC.
    pub fn is_grpc(self) -> bool {
        matches!(
            self,
            PayloadFormat::GrpcTfTensors
                | PayloadFormat::GrpcSerializedTfTensors
                | PayloadFormat::GrpcTfExamples
                | PayloadFormat::KServeV2Grpc
        )
    }
}

impl fmt::Display for PayloadFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for PayloadFormat {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let upper = s.trim().to_ascii_uppercase().replace('-', "_");
        if upper == "GRPC_SERIALIZED_TF_EXAMPLES" {
            return Ok(PayloadFormat::GrpcTfExamples);
        }
        PayloadFormat::ALL
            .into_iter()
            .find(|f| f.name() == upper)
            .ok_or_else(|| {
                let known: Vec<_> = PayloadFormat::ALL.iter().map(|f| f.name()).collect();
                Error::payload(
                    "format name",
                    format!("unknown payload format {s:?}; known: {}", known.join(", ")),
                )
            })
    }
}

/// What a decoder knows about one named value while reading it.
pub(crate) struct Slot<'s> {
    /// The expected dtype, when the caller declared it.
    pub dtype: Option<DataType>,
    /// Human context for errors ("prediction 3, output 'x'").
    pub context: &'s str,
}

/// Reads one named value of a body. Returns the tensor.
pub(crate) type ValueReader<'f> = dyn FnMut(&mut Reader<'_>, Slot<'_>) -> Result<Tensor> + 'f;

/// Finds the spec for `name`: `Some(None)` when no spec was given (accept anything),
/// `Some(Some(dtype))` when declared, `None` when specs exist and this name is not among them.
pub(crate) fn lookup(specs: &[OutputSpec], name: &str) -> Option<Option<DataType>> {
    if specs.is_empty() {
        return Some(None);
    }
    specs.iter().find(|s| s.name == name).map(|s| Some(s.dtype))
}

/// Decodes a list of rows (`instances` / `predictions`): each row is either an object of named
/// values or, for a single-tensor model, a bare value. `is_bare` tells from the first byte of a
/// row (and a peek at an object's first key) whether it is a bare value.
pub(crate) fn read_rows(
    r: &mut Reader<'_>,
    format: &'static str,
    what: &str,
    specs: &[OutputSpec],
    is_bare: &dyn Fn(&mut Reader<'_>) -> Result<bool>,
    read_value: &mut ValueReader<'_>,
) -> Result<Vec<Instance>> {
    let mut rows = Vec::new();
    r.begin_array()?;
    let mut first = true;
    while r.next_item(&mut first)? {
        let index = rows.len();
        let mut row = Instance::new();
        if is_bare(r)? {
            let (name, dtype) = single_spec(specs, format, what)?;
            let context = format!("{what} {index}");
            let t = read_value(
                r,
                Slot {
                    dtype,
                    context: &context,
                },
            )?;
            row.push(name, t);
        } else {
            r.begin_object()?;
            let mut first_key = true;
            let mut seen = Vec::new();
            while let Some(key) = r.next_key(&mut first_key)? {
                seen.push(key.to_string());
                match lookup(specs, &key) {
                    Some(dtype) => {
                        let context = format!("{what} {index}, {key:?}");
                        let t = read_value(
                            r,
                            Slot {
                                dtype,
                                context: &context,
                            },
                        )?;
                        row.push(key.into_owned(), t);
                    }
                    None => r.skip_value()?,
                }
            }
            check_complete(&row, &seen, specs, format, &format!("{what} {index}"))?;
        }
        rows.push(row);
    }
    Ok(rows)
}

/// The one output a bare (unnamed) value maps to.
pub(crate) fn single_spec(
    specs: &[OutputSpec],
    format: &'static str,
    what: &str,
) -> Result<(String, Option<DataType>)> {
    match specs {
        [] => Ok((DEFAULT_OUTPUT_NAME.to_string(), None)),
        [one] => Ok((one.name.clone(), Some(one.dtype))),
        many => Err(Error::payload(
            format,
            format!(
                "{what} is a single unnamed value but {} named values were expected ({})",
                many.len(),
                many.iter()
                    .map(|s| s.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )),
    }
}

/// Checks that every declared name is present in `row`; `seen` lists every name the body had.
pub(crate) fn check_complete(
    row: &Instance,
    seen: &[String],
    specs: &[OutputSpec],
    format: &'static str,
    what: &str,
) -> Result<()> {
    for spec in specs {
        if row.get(&spec.name).is_none() {
            return Err(Error::payload(
                format,
                format!(
                    "{what} lacks {:?} (it has: {})",
                    spec.name,
                    if seen.is_empty() {
                        "nothing".to_string()
                    } else {
                        seen.join(", ")
                    }
                ),
            ));
        }
    }
    Ok(())
}

/// Reads `{"error": ...}`'s message when a body carries one.
pub(crate) fn read_error_message(r: &mut Reader<'_>) -> Result<String> {
    Ok(match r.peek()? {
        b'"' => r.string()?.into_owned(),
        _ => {
            // Structured errors ({"code":..,"message":..}): keep the message if there is one.
            let mut message = String::new();
            r.begin_object()?;
            let mut first = true;
            while let Some(key) = r.next_key(&mut first)? {
                if key == "message" && r.peek()? == b'"' {
                    message = r.string()?.into_owned();
                } else {
                    r.skip_value()?;
                }
            }
            message
        }
    })
}

/// Writes the rows of a request or response: `[{"name": value, ...}, ...]`, or bare values
/// when `bare` is set (every row must then hold exactly one tensor).
pub(crate) fn write_rows(
    rows: &[Instance],
    bare: bool,
    out: &mut Vec<u8>,
    write_value: &mut dyn FnMut(&Tensor, &mut Vec<u8>) -> Result<()>,
) -> Result<()> {
    out.push(b'[');
    for (i, row) in rows.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        if bare {
            let (_, t) = row
                .iter()
                .next()
                .ok_or_else(|| Error::payload("JSON", format!("row {i} holds no tensor")))?;
            write_value(t, out)?;
        } else {
            out.push(b'{');
            for (j, (name, t)) in row.iter().enumerate() {
                if j > 0 {
                    out.push(b',');
                }
                crate::json::write_str(out, name);
                out.push(b':');
                write_value(t, out)?;
            }
            out.push(b'}');
        }
    }
    out.push(b']');
    Ok(())
}

/// Decodes a JSON body whose rows sit under `list_key` (`instances` or `predictions`); an
/// `error` member is returned as [`Error::ServerError`]; other members are ignored.
pub(crate) fn decode_rows_body(
    body: &[u8],
    format: &'static str,
    list_key: &str,
    specs: &[OutputSpec],
    is_bare: &dyn Fn(&mut Reader<'_>) -> Result<bool>,
    read_value: &mut ValueReader<'_>,
) -> Result<Vec<Instance>> {
    let mut r = Reader::new(body);
    r.begin_object()?;
    let mut rows = None;
    let mut first = true;
    let what = if list_key == "predictions" {
        "prediction"
    } else {
        "instance"
    };
    while let Some(key) = r.next_key(&mut first)? {
        if key == list_key {
            rows = Some(read_rows(&mut r, format, what, specs, is_bare, read_value)?);
        } else if key == "error" {
            return Err(Error::ServerError {
                message: read_error_message(&mut r)?,
            });
        } else {
            r.skip_value()?;
        }
    }
    r.finish()?;
    rows.ok_or_else(|| Error::payload(format, format!("the body has no {list_key:?} list")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_names_parse() {
        for f in PayloadFormat::ALL {
            assert_eq!(f.name().parse::<PayloadFormat>().unwrap(), f);
        }
        assert_eq!(
            "GRPC_SERIALIZED_TF_EXAMPLES"
                .parse::<PayloadFormat>()
                .unwrap(),
            PayloadFormat::GrpcTfExamples
        );
        let err = "JSONISH".parse::<PayloadFormat>().unwrap_err().to_string();
        assert!(err.contains("unknown payload format \"JSONISH\""), "{err}");
    }

    #[test]
    fn instances_stack_and_unstack() {
        let a = Instance::new().with("x", Tensor::zeros(DataType::Float32, &[2, 2]));
        let b = Instance::new().with("x", Tensor::zeros(DataType::Float32, &[2, 2]));
        let s = Instance::stack(&[a.clone(), b]).unwrap();
        assert_eq!(s.get("x").unwrap().shape(), &[2, 2, 2]);
        assert_eq!(Instance::unstack(&s).unwrap()[0], a);
    }
}
