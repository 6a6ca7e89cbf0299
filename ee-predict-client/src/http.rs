//! The HTTP transport (reqwest): AI Platform / Vertex `:predict`, TF Serving REST, KServe v2
//! REST (JSON and binary), or any URL, in the payload format configured.

use std::time::Duration;

use bytes::Bytes;
use ee_tensor_proto::payload::{kserve_v2, nd_arrays, raw_json, serialized_tf_tensors, tf_serving};
use ee_tensor_proto::{Instance, OutputSpec, PayloadFormat};
use reqwest::header::{HeaderMap, AUTHORIZATION, CONTENT_TYPE, RETRY_AFTER};
use reqwest::StatusCode;

use crate::auth::Secret;
use crate::endpoint::{check_url, display_url, UrlKind};
use crate::metadata::{self, Description, Protocol};
use crate::retry::{self, reqwest_failure, Failure};
use crate::transport::{check_count, Body, BoxFuture, Prepared, Reply, Transport};
use crate::{Error, Result};

/// Sends one payload format over HTTP POST.
pub struct HttpTransport {
    client: reqwest::Client,
    url: String,
    format: PayloadFormat,
    signature: Option<String>,
    outputs: Vec<OutputSpec>,
    /// Where the server describes the model, or why it cannot.
    metadata: std::result::Result<(Protocol, String), String>,
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
        let url = check_url("url", &url, UrlKind::Rest)?;
        Ok(HttpTransport {
            client,
            url,
            format,
            signature,
            outputs,
            metadata: Err("no metadata route was given to this transport".into()),
        })
    }

    /// Where the server describes the model (the protocol and URL), or why it cannot.
    pub(crate) fn with_metadata(
        mut self,
        route: std::result::Result<(Protocol, String), String>,
    ) -> Self {
        self.metadata = route;
        self
    }

    /// Adds the bearer token, marked sensitive so it never shows in debug output.
    fn authorize(
        &self,
        req: reqwest::RequestBuilder,
        token: Option<&Secret>,
    ) -> std::result::Result<reqwest::RequestBuilder, Failure> {
        let Some(t) = token else {
            return Ok(req);
        };
        let mut value = reqwest::header::HeaderValue::from_str(&format!("Bearer {}", t.expose()))
            .map_err(|_| {
            Failure::client("the bearer token holds characters a header cannot carry")
        })?;
        value.set_sensitive(true);
        Ok(req.header(AUTHORIZATION, value))
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

/// The failure for a non-success answer: the status and `Retry-After` go to the retry
/// policy, the body gives the server's message.
fn status_failure(status: StatusCode, headers: &HeaderMap, body: &[u8]) -> Failure {
    let retry_after = headers.get(RETRY_AFTER).and_then(|v| v.to_str().ok());
    retry::status_failure(status.as_u16(), retry_after, server_message(body))
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
                return Err(Failure::client(
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
            let req = self.authorize(req, token)?;
            let response = req.send().await.map_err(reqwest_failure)?;
            let status = response.status();
            let headers = response.headers().clone();
            let body = response.bytes().await.map_err(reqwest_failure)?;
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
                .map_err(retry::decode_failure)?;
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

    fn model_metadata<'a>(
        &'a self,
        token: Option<&'a Secret>,
        deadline: Duration,
    ) -> BoxFuture<'a, std::result::Result<Description, Failure>> {
        Box::pin(async move {
            let (protocol, url) = match &self.metadata {
                Ok(route) => route,
                Err(reason) => return Ok(Description::Unavailable(reason.clone())),
            };
            let req = self.authorize(self.client.get(url).timeout(deadline), token)?;
            let response = req.send().await.map_err(reqwest_failure)?;
            let status = response.status();
            let headers = response.headers().clone();
            let body = response.bytes().await.map_err(reqwest_failure)?;
            let shown = display_url(url);
            // No such route (or not implemented): this server does not describe models.
            if matches!(status.as_u16(), 404 | 405 | 501) {
                return Ok(Description::Unavailable(format!(
                    "GET {shown} answered {status}: {}",
                    server_message(&body)
                )));
            }
            if !status.is_success() {
                return Err(status_failure(status, &headers, &body));
            }
            let parsed = match protocol {
                Protocol::KServeV2 => metadata::parse_kserve(&body),
                Protocol::TfServing => metadata::parse_tf_serving(&body, self.signature.as_deref()),
            };
            Ok(match parsed {
                Ok(m) => Description::Model(m),
                Err(why) => Description::Unavailable(format!(
                    "GET {shown} did not answer a model metadata document: {why}"
                )),
            })
        })
    }
}
