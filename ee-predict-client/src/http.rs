//! The HTTP transport (reqwest): AI Platform / Vertex `:predict`, TF Serving REST, KServe v2
//! REST (JSON and binary), or any URL, in the payload format configured.

use std::time::Duration;

use bytes::Bytes;
use ee_tensor_proto::payload::{kserve_v2, nd_arrays, raw_json, serialized_tf_tensors, tf_serving};
use ee_tensor_proto::{Instance, OutputSpec, PayloadFormat};
use reqwest::header::{HeaderMap, AUTHORIZATION, CONTENT_TYPE, RETRY_AFTER};
use reqwest::StatusCode;

use crate::auth::Secret;
use crate::endpoint::display_url;
use crate::transport::{check_count, Body, BoxFuture, Failure, Prepared, Reply, Transport};
use crate::{Error, Result};

/// Sends one payload format over HTTP POST.
pub struct HttpTransport {
    client: reqwest::Client,
    url: String,
    format: PayloadFormat,
    signature: Option<String>,
    outputs: Vec<OutputSpec>,
}

/// Largest part of an error body quoted in messages.
const QUOTE_LIMIT: usize = 600;

impl HttpTransport {
    /// A transport POSTing `format` bodies to `url`, decoding `outputs`.
    pub fn new(
        client: reqwest::Client,
        url: String,
        format: PayloadFormat,
        signature: Option<String>,
        outputs: Vec<OutputSpec>,
    ) -> Result<Self> {
        if format.is_grpc() {
            return Err(Error::Config(format!("{format} is a gRPC format")));
        }
        if format == PayloadFormat::NdArrays && outputs.len() != 1 {
            return Err(Error::Config(format!(
                "ND_ARRAYS answers carry no names, so exactly one output must be declared, not {}",
                outputs.len()
            )));
        }
        reqwest::Url::parse(&url)
            .map_err(|e| Error::Config(format!("invalid URL {}: {e}", display_url(&url))))?;
        Ok(HttpTransport {
            client,
            url,
            format,
            signature,
            outputs,
        })
    }

    fn decode(
        &self,
        body: &[u8],
        header_length: Option<usize>,
        sent: usize,
    ) -> std::result::Result<Vec<Instance>, ee_tensor_proto::Error> {
        match self.format {
            PayloadFormat::SerializedTfTensors => {
                serialized_tf_tensors::decode_response(body, &self.outputs)
            }
            PayloadFormat::RawJson => raw_json::decode_response(body, &self.outputs),
            PayloadFormat::NdArrays => nd_arrays::decode_response(body, &self.outputs[0]),
            PayloadFormat::TfServingJson => tf_serving::decode_response(body, &self.outputs),
            _ => {
                let batched = kserve_v2::decode_response(body, header_length, &self.outputs)?;
                if batched.is_empty() && sent > 0 {
                    return Ok(Vec::new());
                }
                Instance::unstack(&batched)
            }
        }
    }
}

/// Parses `Retry-After` (delay seconds or an HTTP date).
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let v = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = v.parse::<f64>() {
        return (secs.is_finite() && secs >= 0.0)
            .then(|| Duration::from_secs_f64(secs.min(3600.0)));
    }
    let when = httpdate(v)?;
    Some(
        when.duration_since(std::time::SystemTime::now())
            .unwrap_or_default(),
    )
}

/// Parses an IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`).
fn httpdate(s: &str) -> Option<std::time::SystemTime> {
    let parts: Vec<&str> = s.split_whitespace().collect();
    let [_, day, month, year, time, "GMT"] = parts.as_slice() else {
        return None;
    };
    let month = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ]
    .iter()
    .position(|m| m == month)? as i64
        + 1;
    let (day, year): (i64, i64) = (day.parse().ok()?, year.parse().ok()?);
    let hms: Vec<i64> = time
        .split(':')
        .map(|p| p.parse().ok())
        .collect::<Option<_>>()?;
    let [h, mi, se] = hms.as_slice() else {
        return None;
    };
    // Days from civil (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146097 + doe - 719468;
    let secs = days * 86400 + h * 3600 + mi * 60 + se;
    u64::try_from(secs)
        .ok()
        .map(|s| std::time::UNIX_EPOCH + Duration::from_secs(s))
}

/// The server's message from an error body: `{"error": "..."}` / `{"error": {"message": ...}}`
/// or the text itself, shortened.
fn server_message(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let from_json = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| {
            let e = v.get("error")?;
            Some(match e {
                serde_json::Value::String(s) => s.clone(),
                other => other
                    .get("message")
                    .and_then(|m| m.as_str())
                    .map(str::to_string)
                    .unwrap_or_else(|| other.to_string()),
            })
        });
    let mut m = from_json.unwrap_or_else(|| text.trim().to_string());
    if m.is_empty() {
        m = "(empty body)".into();
    }
    if m.len() > QUOTE_LIMIT {
        let mut cut = QUOTE_LIMIT;
        while !m.is_char_boundary(cut) {
            cut -= 1;
        }
        m.truncate(cut);
        m.push_str("...");
    }
    m
}

/// Classifies a non-success status.
pub(crate) fn status_failure(status: StatusCode, headers: &HeaderMap, body: &[u8]) -> Failure {
    let message = server_message(body);
    let code = status.as_u16();
    match code {
        429 | 503 => Failure::overload(code.to_string(), retry_after(headers), message),
        502 | 504 => Failure::Retry {
            cause: code.to_string(),
            retry_after: retry_after(headers),
            overload: code == 504,
            bounded: false,
            message,
        },
        500..=599 => Failure::bounded(code.to_string(), message),
        408 => Failure::overload("timeout", retry_after(headers), message),
        _ => Failure::fatal(
            format!("{code} {}", status.canonical_reason().unwrap_or(""))
                .trim()
                .to_string(),
            message,
        ),
    }
}

fn transport_failure(e: &reqwest::Error) -> Failure {
    let detail = {
        use std::error::Error as _;
        let mut s = e.to_string();
        let mut src = e.source();
        while let Some(inner) = src {
            s.push_str(": ");
            s.push_str(&inner.to_string());
            src = inner.source();
        }
        s
    };
    if e.is_timeout() {
        Failure::overload("timeout", None, detail)
    } else if e.is_body() || e.is_decode() {
        Failure::bounded("truncated answer", detail)
    } else {
        Failure::retry("reset", detail)
    }
}

impl Transport for HttpTransport {
    fn prepare(&self, batch: &[Instance]) -> Result<Prepared> {
        let mut out = Vec::new();
        let mut header_length = None;
        let content_type = match self.format {
            PayloadFormat::SerializedTfTensors => {
                serialized_tf_tensors::encode_request(batch, &mut out)?;
                "application/json"
            }
            PayloadFormat::RawJson => {
                raw_json::encode_request(batch, &mut out)?;
                "application/json"
            }
            PayloadFormat::NdArrays => {
                nd_arrays::encode_request(batch, &mut out)?;
                "application/json"
            }
            PayloadFormat::TfServingJson => {
                tf_serving::encode_request(
                    batch,
                    tf_serving::Layout::Row,
                    self.signature.as_deref(),
                    &mut out,
                )?;
                "application/json"
            }
            PayloadFormat::KServeV2Json | PayloadFormat::KServeV2Binary => {
                let stacked = Instance::stack(batch)?;
                let names: Vec<&str> = self.outputs.iter().map(|o| o.name.as_str()).collect();
                let binary = self.format == PayloadFormat::KServeV2Binary;
                header_length = kserve_v2::encode_request(&stacked, &names, binary, &mut out)?;
                if binary {
                    "application/octet-stream"
                } else {
                    "application/json"
                }
            }
            other => return Err(Error::Config(format!("{other} is not an HTTP format"))),
        };
        Ok(Prepared {
            size: out.len(),
            instances: batch.len(),
            body: Body::Http {
                bytes: Bytes::from(out),
                content_type,
                header_length,
            },
        })
    }

    fn encoded_size(&self, batch: &[Instance]) -> Result<usize> {
        match self.format {
            // Exact, from the tensors' sizes: no base64 of megabytes to count its bytes.
            PayloadFormat::SerializedTfTensors => Ok(serialized_tf_tensors::request_len(batch)),
            _ => Ok(self.prepare(batch)?.size),
        }
    }

    fn send<'a>(
        &'a self,
        request: &'a Prepared,
        token: Option<&'a Secret>,
        deadline: Duration,
    ) -> BoxFuture<'a, std::result::Result<Reply, Failure>> {
        Box::pin(async move {
            // Without the grpc feature HTTP bodies are the only kind.
            #[allow(irrefutable_let_patterns)]
            let Body::Http {
                bytes,
                content_type,
                header_length,
            } = &request.body
            else {
                return Err(Failure::fatal(
                    "client",
                    "an HTTP transport was handed a gRPC request",
                ));
            };
            let mut req = self
                .client
                .post(&self.url)
                .timeout(deadline)
                .header(CONTENT_TYPE, *content_type)
                .body(bytes.clone());
            if let Some(h) = header_length {
                req = req.header(kserve_v2::HEADER_LENGTH_HEADER, h.to_string());
            }
            if let Some(t) = token {
                let mut value =
                    reqwest::header::HeaderValue::from_str(&format!("Bearer {}", t.expose()))
                        .map_err(|_| {
                            Failure::fatal(
                                "client",
                                "the bearer token holds characters a header cannot carry",
                            )
                        })?;
                value.set_sensitive(true);
                req = req.header(AUTHORIZATION, value);
            }
            let response = req.send().await.map_err(|e| transport_failure(&e))?;
            let status = response.status();
            let headers = response.headers().clone();
            let body = response.bytes().await.map_err(|e| transport_failure(&e))?;
            if !status.is_success() {
                return Err(status_failure(status, &headers, &body));
            }
            let header_length = headers
                .get(kserve_v2::HEADER_LENGTH_HEADER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<usize>().ok());
            let decode_start = std::time::Instant::now();
            let rows = self
                .decode(&body, header_length, request.instances)
                .map_err(|e| match e {
                    ee_tensor_proto::Error::ServerError { message } => {
                        Failure::fatal("error in answer", message)
                    }
                    ee_tensor_proto::Error::DtypeMismatch { .. } => {
                        Failure::fatal("answer", e.to_string())
                    }
                    ee_tensor_proto::Error::Payload { .. } if !is_garbled(&e) => {
                        Failure::fatal("answer", e.to_string())
                    }
                    other => Failure::bounded("malformed answer", other.to_string()),
                })?;
            Ok(Reply {
                instances: check_count(rows, request.instances)?,
                bytes_received: body.len(),
                decode_time: decode_start.elapsed(),
            })
        })
    }

    fn describe(&self) -> String {
        display_url(&self.url)
    }
}

/// True for payload errors that come from damaged bytes rather than a wrong model answer.
fn is_garbled(e: &ee_tensor_proto::Error) -> bool {
    let text = e.to_string();
    [
        "truncated",
        "bytes remain",
        "binary_data_size",
        "has no",
        "malformed",
    ]
    .iter()
    .any(|k| text.contains(k))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_in_seconds_and_dates() {
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, "2".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_secs(2)));
        assert_eq!(
            httpdate("Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(std::time::UNIX_EPOCH + Duration::from_secs(784111777))
        );
        h.insert(
            RETRY_AFTER,
            "Sun, 06 Nov 1994 08:49:37 GMT".parse().unwrap(),
        );
        assert_eq!(retry_after(&h), Some(Duration::ZERO));
    }

    #[test]
    fn statuses_are_classified() {
        let h = HeaderMap::new();
        assert!(matches!(
            status_failure(StatusCode::TOO_MANY_REQUESTS, &h, b""),
            Failure::Retry { overload: true, .. }
        ));
        assert!(matches!(
            status_failure(StatusCode::INTERNAL_SERVER_ERROR, &h, b""),
            Failure::Retry { bounded: true, .. }
        ));
        let f = status_failure(
            StatusCode::BAD_REQUEST,
            &h,
            br#"{"error": "Input to reshape is a tensor with 12 values"}"#,
        );
        assert_eq!(
            f,
            Failure::fatal(
                "400 Bad Request",
                "Input to reshape is a tensor with 12 values"
            )
        );
        assert!(matches!(
            status_failure(StatusCode::NOT_FOUND, &h, b"no such model"),
            Failure::Fatal { .. }
        ));
    }
}
