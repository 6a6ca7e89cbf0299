//! The AI Platform / Vertex `:predict` route. Its body is always `{"instances": [...]}`, and
//! Earth Engine sends one of several payload formats there; the first instance tells which:
//!
//! | first instance | format | answer |
//! |---|---|---|
//! | a string, or an object whose first value is a string | `SERIALIZED_TF_TENSORS` | base64 TensorProtos |
//! | an object whose first value is a list of strings | `RAW_JSON` | plain numbers |
//! | a bare list | `ND_ARRAYS` (channel-first) | channel-first lists |
//! | an object of numbers, lists of numbers or `{"b64"}` | plain numeric instances | TF Serving rows |

use ee_tensor_proto::payload::{nd_arrays, raw_json, serialized_tf_tensors, tf_serving};
use ee_tensor_proto::{Instance, OutputSpec};

/// A payload format the hosted route recognises.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HostedFormat {
    /// Base64 TensorProtos per named input.
    SerializedTfTensors,
    /// Numbers as JSON strings.
    RawJson,
    /// Bare channel-first lists.
    NdArrays,
    /// Plain JSON numbers (TF Serving's row format).
    Numeric,
}

/// Tells the format from the first instance, without parsing the body.
pub fn sniff(body: &[u8]) -> Result<HostedFormat, String> {
    let mut p = Peek { body, at: 0 };
    p.skip_ws();
    p.expect(b'{')?;
    loop {
        p.skip_ws();
        let key = p.string()?;
        p.skip_ws();
        p.expect(b':')?;
        p.skip_ws();
        if key == b"instances" {
            break;
        }
        p.skip_value()?;
        p.skip_ws();
        if p.next() != Some(b',') {
            return Err("the body has no \"instances\"".into());
        }
    }
    p.expect(b'[')?;
    p.skip_ws();
    match p.peek() {
        Some(b'"') => return Ok(HostedFormat::SerializedTfTensors),
        Some(b'[') => return Ok(HostedFormat::NdArrays),
        Some(b'{') => {}
        Some(b']') => return Err("\"instances\" is empty".into()),
        _ => return Ok(HostedFormat::Numeric),
    }
    p.at += 1;
    p.skip_ws();
    if p.peek() == Some(b'}') {
        return Err("the first instance is an empty object".into());
    }
    let _ = p.string()?;
    p.skip_ws();
    p.expect(b':')?;
    p.skip_ws();
    match p.peek() {
        Some(b'"') => Ok(HostedFormat::SerializedTfTensors),
        Some(b'[') => {
            while matches!(p.peek(), Some(b'[' | b' ' | b'\t' | b'\n' | b'\r')) {
                p.at += 1;
            }
            Ok(if p.peek() == Some(b'"') {
                HostedFormat::RawJson
            } else {
                HostedFormat::Numeric
            })
        }
        _ => Ok(HostedFormat::Numeric),
    }
}

/// Decodes the instances of a request in `format`.
pub fn decode(
    format: HostedFormat,
    body: &[u8],
    inputs: &[OutputSpec],
) -> Result<Vec<Instance>, String> {
    let e = |e: ee_tensor_proto::Error| e.to_string();
    match format {
        // TensorProtos carry their dtype; a single-input model takes any name, so nothing is
        // filtered out here and the signature check names what is wrong.
        HostedFormat::SerializedTfTensors => {
            let specs = if inputs.len() == 1 { &[][..] } else { inputs };
            serialized_tf_tensors::decode_request(body, specs).map_err(e)
        }
        HostedFormat::RawJson => raw_json::decode_request(body, inputs).map_err(e),
        HostedFormat::NdArrays => match inputs {
            [one] => nd_arrays::decode_request(body, one).map_err(e),
            _ => Err(format!(
                "ND_ARRAYS instances are unnamed, but this model has {} inputs",
                inputs.len()
            )),
        },
        HostedFormat::Numeric => tf_serving::decode_request(body, inputs)
            .map(|r| r.instances)
            .map_err(e),
    }
}

/// Encodes the predictions the way `format`'s clients read them.
pub fn encode(format: HostedFormat, predictions: &[Instance]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    match format {
        HostedFormat::SerializedTfTensors => {
            serialized_tf_tensors::encode_response(predictions, &mut out)
        }
        HostedFormat::RawJson => raw_json::encode_response(predictions, &mut out),
        HostedFormat::NdArrays => nd_arrays::encode_response(predictions, &mut out),
        HostedFormat::Numeric => {
            tf_serving::encode_response(predictions, tf_serving::Layout::Row, &mut out)
        }
    }
    .map_err(|e| e.to_string())?;
    Ok(out)
}

struct Peek<'a> {
    body: &'a [u8],
    at: usize,
}

impl<'a> Peek<'a> {
    fn peek(&self) -> Option<u8> {
        self.body.get(self.at).copied()
    }

    fn next(&mut self) -> Option<u8> {
        let c = self.peek();
        self.at += 1;
        c
    }

    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.at += 1;
        }
    }

    fn expect(&mut self, c: u8) -> Result<(), String> {
        match self.next() {
            Some(found) if found == c => Ok(()),
            Some(found) => Err(format!(
                "malformed JSON at byte {}: expected {:?}, found {:?}",
                self.at - 1,
                c as char,
                found as char
            )),
            None => Err("the body ends early".into()),
        }
    }

    /// A string's raw bytes (escapes left as they are).
    fn string(&mut self) -> Result<&'a [u8], String> {
        self.expect(b'"')?;
        let start = self.at;
        loop {
            match self.next() {
                Some(b'\\') => self.at += 1,
                Some(b'"') => return Ok(&self.body[start..self.at - 1]),
                Some(_) => {}
                None => return Err("the body ends inside a string".into()),
            }
        }
    }

    /// Skips one value of any kind (strings, nesting).
    fn skip_value(&mut self) -> Result<(), String> {
        match self.peek() {
            Some(b'"') => self.string().map(|_| ()),
            Some(b'[' | b'{') => {
                let mut depth = 0usize;
                loop {
                    match self.peek() {
                        Some(b'"') => {
                            self.string()?;
                        }
                        Some(b'[' | b'{') => {
                            depth += 1;
                            self.at += 1;
                        }
                        Some(b']' | b'}') => {
                            depth = depth.saturating_sub(1);
                            self.at += 1;
                            if depth == 0 {
                                return Ok(());
                            }
                        }
                        Some(_) => self.at += 1,
                        None => return Err("the body ends early".into()),
                    }
                }
            }
            _ => {
                while !matches!(self.peek(), Some(b',' | b'}' | b']') | None) {
                    self.at += 1;
                }
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use HostedFormat::*;

    #[test]
    fn the_first_instance_tells_the_format() {
        let cases: [(&str, HostedFormat); 8] = [
            (r#"{"instances": ["CAES"]}"#, SerializedTfTensors),
            (
                r#"{"instances": [{"B1": "CAES", "B2": "x"}]}"#,
                SerializedTfTensors,
            ),
            (r#"{"instances":[{"a":[["1.5","2"]]}]}"#, RawJson),
            (r#"{"instances":[[[[1,2]]]]}"#, NdArrays),
            (r#"{"instances":[{"a":[[1.5,2]]}]}"#, Numeric),
            (r#"{"instances":[{"a":{"b64":"AAAA"}}]}"#, Numeric),
            (r#"{"instances":[3.5]}"#, Numeric),
            (
                r#"{"parameters": {"k": [1, "x", {"y": "]"}]}, "instances": [{"a": 1}]}"#,
                Numeric,
            ),
        ];
        for (body, expected) in cases {
            assert_eq!(sniff(body.as_bytes()), Ok(expected), "{body}");
        }
        for bad in [
            "",
            "[]",
            r#"{"inputs": []}"#,
            r#"{"instances": []}"#,
            r#"{"instances": [{}]}"#,
            r#"{"instances": [{"a"#,
        ] {
            assert!(sniff(bad.as_bytes()).is_err(), "{bad}");
        }
    }
}
