//! The REST routes: TF Serving (`/v1/models/...`), AI Platform and Vertex (`/v1/projects/...`)
//! and KServe v2 (`/v2/...`). Every answer other than a prediction carries a status a client
//! can act on, and 429s carry `Retry-After`. TF Serving and KServe errors are
//! `{"error": "..."}`, as those servers write them; errors on the AI Platform / Vertex routes
//! are Google's `{"error": {"code": 400, "message": "...", "status": "INVALID_ARGUMENT"}}`, which
//! Google's client libraries turn into their exception classes with our message.
//!
//! Vertex's `:rawPredict` takes the same JSON as `:predict`, sent as the body itself (curl,
//! `ee-predict-client`) and answered the same way. Google's generated REST client
//! (google-cloud-aiplatform's `PredictionServiceClient.raw_predict`) sends the request
//! message's JSON instead, `{"httpBody": {"contentType": "application/json", "data": BASE64}}`,
//! and reads the answer as an `HttpBody`'s JSON: such a request is unwrapped, and its answer
//! wrapped as `{"contentType": "application/json", "data": BASE64}`.

use std::sync::Arc;
use std::time::Instant;

use axum::body::{Body, Bytes};
use axum::http::{header, HeaderMap, HeaderValue, Method, Uri};
use axum::response::{IntoResponse, Response};
use ee_tensor_proto::payload::{kserve_v2, tf_serving};
use ee_tensor_proto::Instance;
use serde_json::json;

use crate::error::{Error, Result};
use crate::hosted;
use crate::signature::Signature;
use crate::state::Shared;

/// The routes this node answers, parsed from method and path.
#[derive(Debug, PartialEq, Eq)]
enum Route {
    TfStatus,
    TfMetadata,
    TfPredict,
    /// AI Platform / Vertex `:predict`, or Vertex `:rawPredict` (`raw`).
    Hosted {
        raw: bool,
    },
    KsServerMetadata,
    KsLive,
    KsReady,
    KsModelMetadata,
    KsModelReady,
    KsInfer,
}

/// Whether a route reads a request body and runs the model.
fn predicts(r: &Route) -> bool {
    matches!(r, Route::TfPredict | Route::Hosted { .. } | Route::KsInfer)
}

fn parse_route(method: &Method, path: &str, sig: &Signature) -> Result<Route> {
    let model = &sig.model_name;
    let not_found = || Error::NotFound(format!("no route {method} {path}"));
    let (base, verb) = match path.rsplit_once(':') {
        Some((b, v)) if !v.contains('/') => (b, Some(v)),
        _ => (path, None),
    };
    let segs: Vec<&str> = base.trim_matches('/').split('/').collect();
    let post = |route: Route| {
        if *method == Method::POST {
            Ok(route)
        } else {
            Err(Error::BadRequest(format!(
                "{path} takes POST, not {method}"
            )))
        }
    };
    let get = |route: Route| {
        if *method == Method::GET {
            Ok(route)
        } else {
            Err(Error::BadRequest(format!("{path} takes GET, not {method}")))
        }
    };
    match segs.as_slice() {
        ["v1", "models", name, rest @ ..] => {
            sig.check_model(name, None)?;
            let rest = match rest {
                ["versions", v, more @ ..] => {
                    sig.check_model(name, Some(v))?;
                    more
                }
                ["labels", l, ..] => {
                    return Err(Error::NotFound(format!(
                        "label {l:?} is not assigned; this node serves version 1 of {model:?} unlabelled"
                    )))
                }
                more => more,
            };
            match (rest, verb) {
                ([], Some("predict")) => post(Route::TfPredict),
                ([], Some(v)) => Err(Error::NotFound(format!(
                    ":{v} is not served; this node answers :predict"
                ))),
                ([], None) => get(Route::TfStatus),
                (["metadata"], None) => get(Route::TfMetadata),
                _ => Err(not_found()),
            }
        }
        ["v1", "projects", _, "models", name, rest @ ..] => {
            sig.check_model(name, None)?;
            match (rest, verb) {
                ([] | ["versions", _], Some("predict")) => post(Route::Hosted { raw: false }),
                _ => Err(not_found()),
            }
        }
        ["v1", "projects", _, "locations", _, "endpoints", _] => match verb {
            Some("predict") => post(Route::Hosted { raw: false }),
            Some("rawPredict") => post(Route::Hosted { raw: true }),
            _ => Err(not_found()),
        },
        ["v2"] if verb.is_none() => get(Route::KsServerMetadata),
        ["v2", "health", "live"] => get(Route::KsLive),
        ["v2", "health", "ready"] => get(Route::KsReady),
        ["v2", "models", name, rest @ ..] if verb.is_none() => {
            sig.check_model(name, None)?;
            let rest = match rest {
                ["versions", v, more @ ..] => {
                    sig.check_model(name, Some(v))?;
                    more
                }
                more => more,
            };
            match rest {
                [] => get(Route::KsModelMetadata),
                ["ready"] => get(Route::KsModelReady),
                ["infer"] => post(Route::KsInfer),
                _ => Err(not_found()),
            }
        }
        _ => Err(not_found()),
    }
}

/// The single handler behind every path.
pub(crate) async fn handle(
    node: Arc<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let id = node.next_id();
    let started = Instant::now();
    let path = uri.path().to_string();
    let mut instances = 0usize;
    let result = answer(&node, &method, &path, &headers, body, id, &mut instances).await;
    let response = match result {
        Ok(r) => r,
        Err(e) => {
            if matches!(
                e,
                Error::BadRequest(_) | Error::NotFound(_) | Error::TooLarge { .. }
            ) {
                node.batcher
                    .stats()
                    .bad
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            error_response(&e, hosted_path(&path))
        }
    };
    tracing::info!(
        request = id,
        method = %method,
        path = %path,
        status = response.status().as_u16(),
        instances,
        ms = started.elapsed().as_secs_f64() * 1e3,
        "request"
    );
    response
}

/// Whether a path is on the AI Platform / Vertex routes, whose errors are Google's.
fn hosted_path(path: &str) -> bool {
    path.trim_start_matches('/').starts_with("v1/projects/")
}

/// `{"error": message}` with the error's status, or Google's error document when `google`
/// (the AI Platform / Vertex routes); `Retry-After` for overload.
pub(crate) fn error_response(e: &Error, google: bool) -> Response {
    let mut r = if google {
        (e.google_http_status(), axum::Json(e.google_json())).into_response()
    } else {
        (e.http_status(), axum::Json(json!({"error": e.to_string()}))).into_response()
    };
    if let Error::Overloaded { retry_after, .. } = e {
        if let Ok(v) = HeaderValue::from_str(&retry_after.as_secs().max(1).to_string()) {
            r.headers_mut().insert(header::RETRY_AFTER, v);
        }
    }
    r
}

fn json_response(value: serde_json::Value) -> Response {
    axum::Json(value).into_response()
}

fn body_response(bytes: Vec<u8>) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], bytes).into_response()
}

async fn read_body(body: Body, headers: &HeaderMap, limit: usize) -> Result<Bytes> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if let Some(len) = declared {
        if len > limit as u64 {
            return Err(Error::TooLarge {
                size: format!("{len} bytes"),
                limit,
            });
        }
    }
    axum::body::to_bytes(body, limit).await.map_err(|e| {
        let text = format!("{e}");
        let source = std::error::Error::source(&e).map(|s| s.to_string());
        if text.contains("length limit") || source.is_some_and(|s| s.contains("length limit")) {
            Error::TooLarge {
                size: format!("more than {limit} bytes"),
                limit,
            }
        } else {
            Error::BadRequest(format!("reading the request body: {e}"))
        }
    })
}

#[allow(clippy::too_many_arguments)]
async fn answer(
    node: &Shared,
    method: &Method,
    path: &str,
    headers: &HeaderMap,
    body: Body,
    id: u64,
    instances: &mut usize,
) -> Result<Response> {
    let sig = node.batcher.signature();
    let route = parse_route(method, path, sig)?;
    if !predicts(&route) {
        return Ok(match route {
            Route::TfStatus => json_response(json!({"model_version_status": [{
                "version": "1", "state": "AVAILABLE",
                "status": {"error_code": "OK", "error_message": ""}
            }]})),
            Route::TfMetadata => json_response(sig.tf_metadata()),
            Route::KsServerMetadata => json_response(json!({
                "name": "ee-serve", "version": env!("CARGO_PKG_VERSION"),
                "extensions": ["binary_tensor_data"]
            })),
            Route::KsLive => json_response(json!({"live": true})),
            Route::KsReady | Route::KsModelReady => json_response(json!({"ready": true})),
            Route::KsModelMetadata => json_response(sig.kserve_metadata()),
            Route::TfPredict | Route::Hosted { .. } | Route::KsInfer => {
                unreachable!("predict routes")
            }
        });
    }
    let _admission = node.batcher.admit()?;
    let bytes = read_body(body, headers, node.config.max_body_bytes).await?;
    let specs = sig.input_specs();
    match route {
        Route::TfPredict => {
            let req = tf_serving::decode_request(&bytes, &specs)
                .map_err(|e| Error::BadRequest(e.to_string()))?;
            if let Some(s) = req.signature_name.as_deref() {
                if !s.is_empty() && s != "serving_default" {
                    return Err(Error::NotFound(format!(
                        "signature {s:?} not found; this node serves \"serving_default\""
                    )));
                }
            }
            *instances = req.instances.len();
            let rows = node.batcher.predict(req.instances, id).await?;
            let mut out = Vec::new();
            tf_serving::encode_response(&rows, req.layout, &mut out)
                .map_err(|e| Error::Model(e.to_string()))?;
            Ok(answered(node, body_response(out)))
        }
        Route::Hosted { raw } => {
            let (bytes, wrapped) = if raw {
                unwrap_http_body(bytes)?
            } else {
                (bytes, false)
            };
            let (rows, answer) = hosted::decode(&bytes, sig).map_err(Error::BadRequest)?;
            *instances = rows.len();
            let rows = node.batcher.predict(rows, id).await?;
            let mut out = hosted::encode(answer, &rows).map_err(Error::Model)?;
            if wrapped {
                out = wrap_http_body(&out);
            }
            Ok(answered(node, body_response(out)))
        }
        Route::KsInfer => {
            let header_length = headers
                .get(kserve_v2::HEADER_LENGTH_HEADER)
                .map(|v| {
                    v.to_str()
                        .ok()
                        .and_then(|v| v.parse::<usize>().ok())
                        .ok_or_else(|| {
                            Error::BadRequest(format!(
                                "{} is not a byte count",
                                kserve_v2::HEADER_LENGTH_HEADER
                            ))
                        })
                })
                .transpose()?;
            let req = kserve_v2::decode_request(&bytes, header_length)
                .map_err(|e| Error::BadRequest(e.to_string()))?;
            let rows = Instance::unstack(&req.inputs)
                .map_err(|e| Error::BadRequest(format!("inputs: {e}")))?;
            *instances = rows.len();
            let rows = node.batcher.predict(rows, id).await?;
            let batched = crate::signature::select_outputs(
                Instance::stack(&rows).map_err(|e| Error::Model(e.to_string()))?,
                &req.outputs,
            )?;
            let binary = req.outputs.iter().any(|(_, b)| *b);
            let mut out = Vec::new();
            let hl = kserve_v2::encode_response(
                &sig.model_name,
                Some("1"),
                None,
                &batched,
                binary,
                &mut out,
            )
            .map_err(|e| Error::Model(e.to_string()))?;
            let response = match hl {
                Some(h) => (
                    [
                        (header::CONTENT_TYPE, "application/octet-stream".to_string()),
                        (
                            header::HeaderName::from_static("inference-header-content-length"),
                            h.to_string(),
                        ),
                    ],
                    out,
                )
                    .into_response(),
                None => body_response(out),
            };
            Ok(answered(node, response))
        }
        _ => Err(Error::NotFound(format!("no route {method} {path}"))),
    }
}

/// A `:rawPredict` body: the `:predict` JSON itself, or Google's REST transcoding of the
/// request message, `{"httpBody": {"contentType": ..., "data": BASE64}}`, unwrapped (true when
/// it was).
fn unwrap_http_body(bytes: Bytes) -> Result<(Bytes, bool)> {
    let not_instances = match ee_tensor_proto::sniff_instances(&bytes) {
        Ok(_) => return Ok((bytes, false)),
        Err(e) => e,
    };
    let wrapper = serde_json::from_slice::<serde_json::Value>(&bytes)
        .ok()
        .and_then(|mut v| v.get_mut("httpBody").map(serde_json::Value::take));
    let Some(http_body) = wrapper else {
        return Err(Error::BadRequest(not_instances.to_string()));
    };
    if let Some(ct) = http_body.get("contentType") {
        let ct = ct.as_str().unwrap_or_default();
        if !ct.is_empty() && !ct.trim().starts_with("application/json") {
            return Err(Error::BadRequest(format!(
                "rawPredict httpBody.contentType is {ct:?}; this node takes application/json"
            )));
        }
    }
    let data = http_body
        .get("data")
        .and_then(serde_json::Value::as_str)
        .ok_or_else(|| {
            Error::BadRequest("rawPredict httpBody.data is missing or not a base64 string".into())
        })?;
    let raw =
        ee_tensor_proto::decode_base64(data.as_bytes(), &|| "rawPredict httpBody.data".into())
            .map_err(|e| Error::BadRequest(e.to_string()))?;
    Ok((Bytes::from(raw), true))
}

/// An answer as an `HttpBody` message's JSON, for a request that came wrapped in one.
fn wrap_http_body(answer: &[u8]) -> Vec<u8> {
    let mut out = br#"{"contentType":"application/json","data":""#.to_vec();
    ee_tensor_proto::encode_standard_into(answer, &mut out);
    out.extend_from_slice(b"\"}");
    out
}

fn answered(node: &Shared, r: Response) -> Response {
    node.batcher
        .stats()
        .answered
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::StatusCode;

    #[test]
    fn routes_parse_and_wrong_names_are_404() {
        let sig = Signature {
            model_name: "m".into(),
            inputs: Vec::new(),
            outputs: Vec::new(),
            batchable: true,
        };
        let p = |m: Method, path: &str| parse_route(&m, path, &sig);
        assert_eq!(
            p(Method::POST, "/v1/models/m:predict").unwrap(),
            Route::TfPredict
        );
        assert_eq!(
            p(Method::POST, "/v1/models/m/versions/1:predict").unwrap(),
            Route::TfPredict
        );
        assert_eq!(p(Method::GET, "/v1/models/m").unwrap(), Route::TfStatus);
        assert_eq!(
            p(Method::GET, "/v1/models/m/versions/1/metadata").unwrap(),
            Route::TfMetadata
        );
        assert_eq!(
            p(Method::POST, "/v1/projects/p/models/m:predict").unwrap(),
            Route::Hosted { raw: false }
        );
        assert_eq!(
            p(Method::POST, "/v1/projects/p/models/m/versions/v3:predict").unwrap(),
            Route::Hosted { raw: false }
        );
        assert_eq!(
            p(
                Method::POST,
                "/v1/projects/p/locations/us-central1/endpoints/123:predict"
            )
            .unwrap(),
            Route::Hosted { raw: false }
        );
        assert_eq!(
            p(
                Method::POST,
                "/v1/projects/p/locations/us-central1/endpoints/123:rawPredict"
            )
            .unwrap(),
            Route::Hosted { raw: true }
        );
        assert_eq!(p(Method::GET, "/v2/health/live").unwrap(), Route::KsLive);
        assert_eq!(
            p(Method::GET, "/v2/models/m/versions/1/ready").unwrap(),
            Route::KsModelReady
        );
        assert_eq!(
            p(Method::POST, "/v2/models/m/infer").unwrap(),
            Route::KsInfer
        );
        for (m, path, status) in [
            (
                Method::POST,
                "/v1/models/other:predict",
                StatusCode::NOT_FOUND,
            ),
            (
                Method::POST,
                "/v1/models/m/versions/2:predict",
                StatusCode::NOT_FOUND,
            ),
            (Method::POST, "/v1/models/m:classify", StatusCode::NOT_FOUND),
            (Method::GET, "/v1/models/m:predict", StatusCode::BAD_REQUEST),
            (
                Method::POST,
                "/v2/models/other/infer",
                StatusCode::NOT_FOUND,
            ),
            (Method::GET, "/nothing", StatusCode::NOT_FOUND),
        ] {
            let e = p(m, path).unwrap_err();
            assert_eq!(e.http_status(), status, "{path}: {e}");
        }
        assert!(p(Method::POST, "/v1/models/other:predict")
            .unwrap_err()
            .to_string()
            .contains("this node serves \"m\""));
    }
}
