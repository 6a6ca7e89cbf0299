//! One attempt at one request: the `Transport` trait the HTTP and gRPC transports implement,
//! and how an attempt can fail (retryable or not).

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use ee_tensor_proto::Instance;

use crate::auth::Secret;

/// A boxed, sendable future.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A request encoded once and sent on every attempt.
pub struct Prepared {
    /// Bytes of the body (for gRPC, of the encoded message).
    pub size: usize,
    /// Number of instances it carries.
    pub instances: usize,
    pub(crate) body: Body,
}

pub(crate) enum Body {
    Http {
        bytes: bytes::Bytes,
        content_type: &'static str,
        header_length: Option<usize>,
    },
    #[cfg(feature = "grpc")]
    TfPredict(ee_tensor_proto::proto::tensorflow::serving::PredictRequest),
    #[cfg(feature = "grpc")]
    KServeInfer(ee_tensor_proto::proto::inference::ModelInferRequest),
}

/// A decoded answer.
pub struct Reply {
    /// One instance of outputs per instance sent.
    pub instances: Vec<Instance>,
    /// Response bytes received.
    pub bytes_received: usize,
    /// Time spent decoding the answer.
    pub decode_time: std::time::Duration,
}

/// Why an attempt failed.
#[derive(Clone, Debug, PartialEq)]
pub enum Failure {
    /// Worth another try: overload, a gateway error, a dropped connection, a timeout, a garbled
    /// answer. `cause` labels it in metrics (`429`, `reset`...); `overload` says whether it
    /// signals node pressure (lower the concurrency).
    Retry {
        /// Label for metrics and messages.
        cause: String,
        /// The server asked for this wait (`Retry-After`).
        retry_after: Option<Duration>,
        /// Signals node pressure.
        overload: bool,
        /// Bounded kinds (500s, garbled answers) are retried only a few times.
        bounded: bool,
        /// Details.
        message: String,
    },
    /// Not worth retrying (400, 401, 403, 404, a wrong answer shape...).
    Fatal {
        /// Status (HTTP code or gRPC code name), or `answer` for an unusable answer.
        status: String,
        /// The server's message, or what did not fit.
        message: String,
    },
}

impl Failure {
    pub(crate) fn retry(cause: impl Into<String>, message: impl Into<String>) -> Self {
        Failure::Retry {
            cause: cause.into(),
            retry_after: None,
            overload: false,
            bounded: false,
            message: message.into(),
        }
    }

    pub(crate) fn bounded(cause: impl Into<String>, message: impl Into<String>) -> Self {
        Failure::Retry {
            cause: cause.into(),
            retry_after: None,
            overload: false,
            bounded: true,
            message: message.into(),
        }
    }

    pub(crate) fn overload(
        cause: impl Into<String>,
        retry_after: Option<Duration>,
        message: impl Into<String>,
    ) -> Self {
        Failure::Retry {
            cause: cause.into(),
            retry_after,
            overload: true,
            bounded: false,
            message: message.into(),
        }
    }

    pub(crate) fn fatal(status: impl Into<String>, message: impl Into<String>) -> Self {
        Failure::Fatal {
            status: status.into(),
            message: message.into(),
        }
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Retry { cause, message, .. } => write!(f, "{cause}: {message}"),
            Failure::Fatal { status, message } => write!(f, "{status}: {message}"),
        }
    }
}

/// Sends prepared requests to one endpoint.
pub trait Transport: Send + Sync {
    /// Encodes a batch once.
    fn prepare(&self, batch: &[Instance]) -> crate::Result<Prepared>;
    /// The byte size [`Transport::prepare`] gives `batch`; transports that can compute it
    /// without encoding (request planning sizes many tiles) override this.
    fn encoded_size(&self, batch: &[Instance]) -> crate::Result<usize> {
        Ok(self.prepare(batch)?.size)
    }
    /// One attempt, with a deadline and an optional bearer token.
    fn send<'a>(
        &'a self,
        request: &'a Prepared,
        token: Option<&'a Secret>,
        deadline: Duration,
    ) -> BoxFuture<'a, Result<Reply, Failure>>;
    /// The endpoint, without credentials, for messages.
    fn describe(&self) -> String;
}

/// Checks that an answer has one row per instance sent.
pub(crate) fn check_count(rows: Vec<Instance>, sent: usize) -> Result<Vec<Instance>, Failure> {
    if rows.len() == sent {
        Ok(rows)
    } else {
        Err(Failure::fatal(
            "answer",
            format!(
                "{sent} instances were sent but {} predictions came back",
                rows.len()
            ),
        ))
    }
}
