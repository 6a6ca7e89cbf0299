//! One attempt at one request: the `Transport` trait the HTTP and gRPC transports implement.
//! How an attempt can fail, and what the client does about it, is [`crate::retry`]'s.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use ee_tensor_proto::Instance;

use crate::auth::Secret;
use crate::metadata::Description;
use crate::retry::Failure;

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
    /// One attempt at asking the server to describe the model (its inputs' names, dtypes and
    /// shapes). Transports whose server cannot describe it say why (the default).
    fn model_metadata<'a>(
        &'a self,
        token: Option<&'a Secret>,
        deadline: Duration,
    ) -> BoxFuture<'a, Result<Description, Failure>> {
        let _ = (token, deadline);
        Box::pin(async {
            Ok(Description::Unavailable(
                "this transport cannot ask the server to describe the model".into(),
            ))
        })
    }
}

/// Checks that an answer has one row per instance sent.
pub(crate) fn check_count(rows: Vec<Instance>, sent: usize) -> Result<Vec<Instance>, Failure> {
    if rows.len() == sent {
        Ok(rows)
    } else {
        Err(Failure::answer(format!(
            "{sent} instances were sent but {} predictions came back",
            rows.len()
        )))
    }
}
