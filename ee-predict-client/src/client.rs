//! `PredictClient`: sends batches with retries (exponential backoff with jitter, honouring
//! `Retry-After`), a per-request deadline and a total budget, under adaptive concurrency, with
//! tokens from the auth provider, counting everything in metrics.

use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ee_tensor_proto::{Instance, OutputSpec};

use crate::auth::{AuthConfig, TokenProvider};
use crate::backoff::{Backoff, BackoffConfig, FastRandom};
use crate::concurrency::AdaptiveConcurrency;
use crate::endpoint::{Endpoint, PredictorConfig};
#[cfg(feature = "grpc")]
use crate::grpc::{GrpcModel, GrpcTransport};
use crate::http::HttpTransport;
use crate::metrics::{Metrics, MetricsSnapshot};
use crate::transport::{Failure, Transport};
use crate::{batch, Error, Result};

/// How the client sends.
#[derive(Clone, Debug, PartialEq)]
pub struct ClientConfig {
    /// Largest request body, bytes. Default 1,500,000.
    pub max_payload_bytes: usize,
    /// Expected answer bytes / request bytes (>= 1), so answers fit the budget too. Default 1.
    pub output_multiplier: f64,
    /// Most requests in flight. Default 16.
    pub max_concurrency: usize,
    /// Requests in flight at the start. Default 4.
    pub initial_concurrency: usize,
    /// Deadline of one attempt. Default 60 s.
    pub request_timeout: Duration,
    /// Time allowed for one request including all its retries. Default 15 min.
    pub total_budget: Duration,
    /// Retries allowed for 500s and garbled answers (other retryable failures are retried
    /// until the budget runs out). Default 4.
    pub max_bounded_retries: u32,
    /// Backoff between attempts.
    pub backoff: BackoffConfig,
    /// Seed for the backoff jitter, for reproducible runs; random when `None`.
    pub jitter_seed: Option<u64>,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            max_payload_bytes: 1_500_000,
            output_multiplier: 1.0,
            max_concurrency: 16,
            initial_concurrency: 4,
            request_timeout: Duration::from_secs(60),
            total_budget: Duration::from_secs(15 * 60),
            max_bounded_retries: 4,
            backoff: BackoffConfig::default(),
            jitter_seed: None,
        }
    }
}

/// Sends prediction requests to one endpoint.
pub struct PredictClient {
    transport: Arc<dyn Transport>,
    auth: TokenProvider,
    config: ClientConfig,
    limiter: Arc<AdaptiveConcurrency>,
    metrics: Arc<Metrics>,
    requests: AtomicU64,
}

/// Names a batch's tiles for messages: the first few and a count.
fn tile_list(labels: &[String]) -> String {
    const SHOWN: usize = 8;
    if labels.len() <= SHOWN {
        labels.join(", ")
    } else {
        format!(
            "{} and {} more",
            labels[..SHOWN].join(", "),
            labels.len() - SHOWN
        )
    }
}

impl PredictClient {
    /// A client for `predictor`, decoding `outputs` (empty: whatever the answer holds, for
    /// formats that carry types).
    pub fn new(
        predictor: &PredictorConfig,
        outputs: Vec<OutputSpec>,
        auth: AuthConfig,
        config: ClientConfig,
    ) -> Result<Self> {
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(64)
            .tcp_nodelay(true)
            .build()
            .map_err(|e| Error::Config(format!("building the HTTP client: {e}")))?;
        let url = predictor.url()?;
        let transport: Arc<dyn Transport> = if predictor.format.is_grpc() {
            grpc_transport(predictor, url, outputs)?
        } else {
            let signature = match &predictor.endpoint {
                Endpoint::TfServing { signature, .. } => signature.clone(),
                _ => None,
            };
            Arc::new(HttpTransport::new(
                http.clone(),
                url,
                predictor.format,
                signature,
                outputs,
            )?)
        };
        let auth = TokenProvider::with_http_client(auth, http)?;
        Self::with_transport(transport, auth, config)
    }

    /// A client over any transport.
    pub fn with_transport(
        transport: Arc<dyn Transport>,
        auth: TokenProvider,
        config: ClientConfig,
    ) -> Result<Self> {
        if config.max_payload_bytes == 0 {
            return Err(Error::Config("max_payload_bytes must be positive".into()));
        }
        let limiter = AdaptiveConcurrency::new(config.max_concurrency, config.initial_concurrency);
        Ok(PredictClient {
            transport,
            auth,
            config,
            limiter,
            metrics: Arc::new(Metrics::default()),
            requests: AtomicU64::new(0),
        })
    }

    /// The endpoint, without credentials.
    pub fn describe(&self) -> String {
        self.transport.describe()
    }

    /// The configuration.
    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    /// Splits instances into batches within the payload budget (see [`batch::plan_batches`]).
    pub fn plan(&self, instances: &[Instance], labels: &[String]) -> Result<Vec<Range<usize>>> {
        batch::plan_batches(
            self.transport.as_ref(),
            instances,
            labels,
            self.config.max_payload_bytes,
            self.config.output_multiplier,
        )
    }

    /// Bytes of the encoded request for `batch` (the actual body, as it would be sent).
    pub fn encoded_size(&self, batch: &[Instance]) -> Result<usize> {
        self.transport.encoded_size(batch)
    }

    /// The counters so far.
    pub fn metrics(&self) -> MetricsSnapshot {
        self.metrics.snapshot(self.limiter.limit())
    }

    /// The current concurrency limit.
    pub fn concurrency_limit(&self) -> f64 {
        self.limiter.limit()
    }

    /// Sends one batch until it is answered or fails for good; `labels` name its tiles in
    /// errors. Returns one instance of outputs per instance sent, in order.
    pub async fn predict(&self, batch: &[Instance], labels: &[String]) -> Result<Vec<Instance>> {
        let encode_start = Instant::now();
        let prepared = self.transport.prepare(batch)?;
        self.metrics.encoded(encode_start.elapsed());
        let url = self.transport.describe();
        if prepared.size > self.config.max_payload_bytes {
            return Err(Error::TileTooLarge {
                tile: tile_list(labels),
                bytes: prepared.size,
                budget: self.config.max_payload_bytes,
                suggestion: "; plan batches with PredictClient::plan".into(),
            });
        }
        let n = self.requests.fetch_add(1, Ordering::Relaxed);
        let rng = match self.config.jitter_seed {
            Some(seed) => FastRandom::seeded(seed.wrapping_add(n)),
            None => FastRandom::new(),
        };
        let mut backoff = Backoff::new(self.config.backoff.clone(), Box::new(rng));
        let start = Instant::now();
        let (mut attempts, mut bounded) = (0u32, 0u32);
        loop {
            attempts += 1;
            let permit = self.limiter.acquire().await;
            let token = self.auth.token().await?;
            self.metrics.sent(prepared.size, self.limiter.in_flight());
            let sent_at = Instant::now();
            let result = self
                .transport
                .send(&prepared, token.as_ref(), self.config.request_timeout)
                .await;
            let failure = match result {
                Ok(reply) => {
                    permit.success();
                    self.metrics
                        .received(reply.bytes_received, reply.decode_time);
                    self.metrics.done(Some(sent_at.elapsed()));
                    return Ok(reply.instances);
                }
                Err(f) => f,
            };
            match failure {
                Failure::Fatal { status, message } => {
                    drop(permit);
                    self.metrics.done(None);
                    if status.starts_with("401") || status == "Unauthenticated" {
                        self.auth.invalidate().await;
                    }
                    tracing::warn!(url = %url, %status, tiles = %tile_list(labels), "request refused: {message}");
                    return Err(if status == "answer" || status == "error in answer" {
                        Error::Answer {
                            url,
                            tiles: tile_list(labels),
                            message,
                        }
                    } else {
                        Error::Rejected {
                            url,
                            status,
                            tiles: tile_list(labels),
                            message,
                        }
                    });
                }
                Failure::Retry {
                    ref cause,
                    retry_after,
                    overload,
                    bounded: is_bounded,
                    ref message,
                } => {
                    if overload {
                        permit.overload();
                    }
                    drop(permit);
                    self.metrics.retry(cause);
                    let exhausted = |last: String| Error::Exhausted {
                        url: url.clone(),
                        tiles: tile_list(labels),
                        attempts,
                        elapsed: start.elapsed(),
                        last,
                    };
                    if is_bounded {
                        bounded += 1;
                        if bounded > self.config.max_bounded_retries {
                            self.metrics.done(None);
                            return Err(exhausted(format!(
                                "{failure} ({bounded} times; retried at most {})",
                                self.config.max_bounded_retries
                            )));
                        }
                    }
                    let wait = backoff.next_wait().max(retry_after.unwrap_or_default());
                    if start.elapsed() + wait > self.config.total_budget {
                        self.metrics.done(None);
                        return Err(exhausted(format!(
                            "{failure} (retry budget of {:?} spent)",
                            self.config.total_budget
                        )));
                    }
                    tracing::debug!(url = %url, cause = %cause, attempt = attempts, wait_ms = wait.as_millis() as u64, "retrying: {message}");
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }
}

/// The gRPC transport for `predictor` (TF Serving PredictionService or KServe
/// GRPCInferenceService).
#[cfg(feature = "grpc")]
fn grpc_transport(
    predictor: &PredictorConfig,
    url: String,
    outputs: Vec<OutputSpec>,
) -> Result<Arc<dyn Transport>> {
    let model = match &predictor.endpoint {
        Endpoint::TfServing {
            model,
            version,
            signature,
            ..
        } => GrpcModel::TfServing {
            name: model.clone(),
            version: version.clone(),
            signature: signature.clone(),
        },
        Endpoint::KServeV2 { model, version, .. } => GrpcModel::KServe {
            name: model.clone(),
            version: version.clone(),
        },
        other => {
            return Err(Error::Config(format!(
                "gRPC payload formats need a TF Serving or KServe endpoint, not {other:?}"
            )))
        }
    };
    Ok(Arc::new(GrpcTransport::new(
        url,
        predictor.format,
        model,
        outputs,
    )?))
}

/// Without the `grpc` feature a gRPC payload format is a configuration error.
#[cfg(not(feature = "grpc"))]
fn grpc_transport(
    predictor: &PredictorConfig,
    _url: String,
    _outputs: Vec<OutputSpec>,
) -> Result<Arc<dyn Transport>> {
    Err(Error::Config(format!(
        "payload format {:?} needs gRPC, but ee-predict-client was built without its `grpc` feature",
        predictor.format
    )))
}
