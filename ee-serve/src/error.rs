//! The node's error type, and how each error is answered over REST (status and
//! `{"error": ...}`, or Google's `{"error": {"code", "message", "status"}}` on the AI Platform /
//! Vertex routes) and gRPC (a status code).

use std::net::SocketAddr;
use std::time::Duration;

use axum::http::StatusCode;

/// Everything that can go wrong starting the node or answering a request.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request is malformed or does not fit the model (JSON, names, dtypes, shapes,
    /// base64): 400 / INVALID_ARGUMENT.
    #[error("{0}")]
    BadRequest(String),
    /// No such route, model or version: 404 / NOT_FOUND.
    #[error("{0}")]
    NotFound(String),
    /// A REST body over the configured limit: 413 (400 INVALID_ARGUMENT on the AI Platform /
    /// Vertex routes); RESOURCE_EXHAUSTED would be wrong (a retry cannot help). A gRPC message
    /// over the limit never gets here: tonic's decoder refuses it with OUT_OF_RANGE.
    #[error("the request body ({size}) is over this node's limit of {limit} bytes (--max-body-bytes); send fewer or smaller tiles")]
    TooLarge {
        /// What was known of the size ("12345678 bytes" or "more than ...").
        size: String,
        /// The limit.
        limit: usize,
    },
    /// Too many requests admitted already: 429 / RESOURCE_EXHAUSTED, with `Retry-After`.
    #[error("the node is busy ({limit} requests already admitted); retry after {} s", retry_after.as_secs())]
    Overloaded {
        /// The admission limit that was reached.
        limit: usize,
        /// How long the client should wait.
        retry_after: Duration,
    },
    /// The model failed on inputs it accepted: 500 / INTERNAL.
    #[error("the model failed: {0}")]
    Model(String),
    /// The node stopped while the request waited: 503 / UNAVAILABLE.
    #[error("the node is shutting down")]
    ShuttingDown,
    /// A listening address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Loading the model.
    #[error(transparent)]
    Load(#[from] ee_runtime::Error),
    /// A server task failed.
    #[error("the {what} server failed: {message}")]
    Server {
        /// Which server (HTTP or gRPC).
        what: &'static str,
        /// What happened.
        message: String,
    },
}

/// Shorthand for results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// The HTTP status this error is answered with.
    pub fn http_status(&self) -> StatusCode {
        match self {
            Error::BadRequest(_) => StatusCode::BAD_REQUEST,
            Error::NotFound(_) => StatusCode::NOT_FOUND,
            Error::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Error::Overloaded { .. } => StatusCode::TOO_MANY_REQUESTS,
            Error::ShuttingDown => StatusCode::SERVICE_UNAVAILABLE,
            Error::Model(_) | Error::Bind { .. } | Error::Load(_) | Error::Server { .. } => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
        }
    }

    /// The HTTP status on the AI Platform / Vertex routes: as [`Error::http_status`], except
    /// that a body over the limit is a 400 (Vertex answers an oversized payload with 400
    /// INVALID_ARGUMENT, and a retry cannot help).
    pub fn google_http_status(&self) -> StatusCode {
        match self {
            Error::TooLarge { .. } => StatusCode::BAD_REQUEST,
            other => other.http_status(),
        }
    }

    /// Google's JSON error document for the AI Platform / Vertex routes,
    /// `{"error": {"code": 400, "message": "...", "status": "INVALID_ARGUMENT"}}`, with the
    /// canonical `google.rpc.Code` name of [`Error::google_http_status`]: what Google's client
    /// libraries (google-api-core's `from_http_response`) read the message and class from.
    pub fn google_json(&self) -> serde_json::Value {
        let code = self.google_http_status();
        serde_json::json!({"error": {
            "code": code.as_u16(),
            "message": self.to_string(),
            "status": google_rpc_status(code),
        }})
    }

    #[cfg(feature = "grpc")]
    /// The gRPC status this error is answered with; an overload carries `retry-after`
    /// (seconds) in its metadata.
    pub fn grpc_status(&self) -> tonic::Status {
        let message = self.to_string();
        match self {
            Error::BadRequest(_) | Error::TooLarge { .. } => {
                tonic::Status::invalid_argument(message)
            }
            Error::NotFound(_) => tonic::Status::not_found(message),
            Error::Overloaded { retry_after, .. } => {
                let mut s = tonic::Status::resource_exhausted(message);
                if let Ok(v) = retry_after.as_secs().max(1).to_string().parse() {
                    s.metadata_mut().insert("retry-after", v);
                }
                s
            }
            Error::ShuttingDown => tonic::Status::unavailable(message),
            _ => tonic::Status::internal(message),
        }
    }
}

/// The canonical `google.rpc.Code` name Google's APIs pair with an HTTP status (the mapping
/// of `google/rpc/code.proto`).
pub(crate) fn google_rpc_status(code: StatusCode) -> &'static str {
    match code.as_u16() {
        200 => "OK",
        400 => "INVALID_ARGUMENT",
        401 => "UNAUTHENTICATED",
        403 => "PERMISSION_DENIED",
        404 => "NOT_FOUND",
        409 => "ABORTED",
        416 => "OUT_OF_RANGE",
        429 => "RESOURCE_EXHAUSTED",
        499 => "CANCELLED",
        501 => "UNIMPLEMENTED",
        503 => "UNAVAILABLE",
        504 => "DEADLINE_EXCEEDED",
        500 => "INTERNAL",
        _ if code.is_client_error() => "FAILED_PRECONDITION",
        _ => "UNKNOWN",
    }
}

/// Classifies a runtime error: inputs the model cannot take are the client's fault.
pub(crate) fn from_run(e: ee_runtime::Error) -> Error {
    match e {
        ee_runtime::Error::Input { message, .. } => Error::BadRequest(message),
        other => Error::Model(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(feature = "grpc")]
    #[test]
    fn grpc_statuses_tell_overload_and_bad_requests() {
        let overloaded = Error::Overloaded {
            limit: 4,
            retry_after: Duration::from_secs(2),
        };
        let s = overloaded.grpc_status();
        assert_eq!(s.code(), tonic::Code::ResourceExhausted);
        assert_eq!(s.metadata().get("retry-after").unwrap(), "2");
        assert_eq!(
            Error::BadRequest("x".into()).grpc_status().code(),
            tonic::Code::InvalidArgument
        );
    }

    #[test]
    fn hosted_errors_carry_googles_code_names() {
        let cases: [(Error, u16, &str); 6] = [
            (Error::BadRequest("x".into()), 400, "INVALID_ARGUMENT"),
            (Error::NotFound("x".into()), 404, "NOT_FOUND"),
            (
                Error::TooLarge {
                    size: "5 bytes".into(),
                    limit: 4,
                },
                400,
                "INVALID_ARGUMENT",
            ),
            (
                Error::Overloaded {
                    limit: 4,
                    retry_after: Duration::from_secs(2),
                },
                429,
                "RESOURCE_EXHAUSTED",
            ),
            (Error::ShuttingDown, 503, "UNAVAILABLE"),
            (Error::Model("x".into()), 500, "INTERNAL"),
        ];
        for (e, code, status) in cases {
            let v = e.google_json();
            assert_eq!(v["error"]["code"], code, "{e}");
            assert_eq!(v["error"]["status"], status, "{e}");
            assert_eq!(v["error"]["message"], e.to_string());
        }
        assert_eq!(
            google_rpc_status(StatusCode::GATEWAY_TIMEOUT),
            "DEADLINE_EXCEEDED"
        );
    }

    #[test]
    fn each_error_has_the_status_a_client_can_act_on() {
        let overloaded = Error::Overloaded {
            limit: 4,
            retry_after: Duration::from_secs(2),
        };
        assert_eq!(overloaded.http_status(), StatusCode::TOO_MANY_REQUESTS);
        let big = Error::TooLarge {
            size: "5 bytes".into(),
            limit: 4,
        };
        assert_eq!(big.http_status(), StatusCode::PAYLOAD_TOO_LARGE);
        assert!(big.to_string().contains("limit of 4 bytes"));
        assert_eq!(
            from_run(ee_runtime::Error::Input {
                path: "m.onnx".into(),
                message: "rank".into()
            })
            .http_status(),
            StatusCode::BAD_REQUEST
        );
    }
}
