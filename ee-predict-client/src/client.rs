//! `PredictClient`: sends batches with retries (exponential backoff with jitter, honouring
//! `Retry-After`), a per-request deadline and a total budget, under adaptive concurrency, with
//! tokens from the auth provider, counting everything in metrics. Which failures are retried,
//! and how far, is decided in [`crate::retry`]; the loop here acts on those decisions.

use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ee_tensor_proto::{Instance, OutputSpec};

use crate::auth::{AuthConfig, Secret, TokenProvider};
use crate::backoff::{Backoff, BackoffConfig, FastRandom};
use crate::concurrency::AdaptiveConcurrency;
use crate::endpoint::{Endpoint, PredictorConfig};
#[cfg(feature = "grpc")]
use crate::grpc::{GrpcModel, GrpcTransport};
use crate::http::HttpTransport;
use crate::metadata::{self, Description, InputDescription, ModelCheck};
use crate::metrics::{Metrics, MetricsSnapshot};
use crate::retry::{Decision, Failure, Fatal, Limit};
use crate::transport::{BoxFuture, Transport};
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
    /// How long the server may stay unreachable (connection refused, DNS failure, connect
    /// timeout, TLS handshake failure) before the request, and so the job, fails naming the
    /// URL; always within `total_budget`. Also bounds each attempt's connect. Default 30 s.
    pub connect_timeout: Duration,
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
            connect_timeout: Duration::from_secs(30),
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
            .connect_timeout(attempt_connect_timeout(&config))
            .build()
            .map_err(|e| Error::Config(format!("building the HTTP client: {e}")))?;
        let url = predictor.url()?;
        let transport: Arc<dyn Transport> = if predictor.format.is_grpc() {
            grpc_transport(predictor, url, outputs, attempt_connect_timeout(&config))?
        } else {
            let signature = match &predictor.endpoint {
                Endpoint::TfServing { signature, .. } => signature.clone(),
                _ => None,
            };
            Arc::new(
                HttpTransport::new(http.clone(), url, predictor.format, signature, outputs)?
                    .with_metadata(predictor.metadata_url()),
            )
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
        if prepared.size > self.config.max_payload_bytes {
            return Err(Error::TileTooLarge {
                tile: tile_list(labels),
                bytes: prepared.size,
                budget: self.config.max_payload_bytes,
                suggestion: "; plan batches with PredictClient::plan".into(),
            });
        }
        let (prepared, deadline) = (&prepared, self.config.request_timeout);
        let subject = format!("tiles {}", tile_list(labels));
        self.with_retries(&subject, true, |token: Option<Secret>| {
            self.metrics.sent(prepared.size, self.limiter.in_flight());
            Box::pin(async move {
                let reply = self
                    .transport
                    .send(prepared, token.as_ref(), deadline)
                    .await?;
                self.metrics
                    .received(reply.bytes_received, reply.decode_time);
                Ok(reply.instances)
            })
        })
        .await
    }

    /// Asks the server, once (with the usual retries), to describe the model, and checks
    /// each input the job would send against it: its name, its dtype and its shape per
    /// instance (dimensions the model leaves free, `-1`, match anything). Call it before the
    /// first tile is read, so that a job that cannot work fails at once rather than on the
    /// first request.
    ///
    /// A server that cannot describe the model (AI Platform, Vertex AI, a plain URL, TF
    /// Serving over gRPC, the serialized-tensor formats, a 404 on the metadata route) gives
    /// [`ModelCheck::NotDescribed`], not an error. A mismatch is [`Error::ModelInputs`],
    /// naming the input, both dtypes and the `inputTypeOverride` that would fix it.
    pub async fn check_inputs(&self, inputs: &[InputDescription]) -> Result<ModelCheck> {
        let deadline = self.config.request_timeout;
        let description = self
            .with_retries("the model's metadata", false, |token: Option<Secret>| {
                Box::pin(async move {
                    self.transport
                        .model_metadata(token.as_ref(), deadline)
                        .await
                })
            })
            .await?;
        let model = match description {
            Description::Unavailable(reason) => return Ok(ModelCheck::NotDescribed { reason }),
            Description::Model(m) => m,
        };
        let problems = metadata::compare(&model, inputs);
        if problems.is_empty() {
            Ok(ModelCheck::Matches {
                inputs: model.inputs,
            })
        } else {
            Err(Error::ModelInputs {
                url: self.transport.describe(),
                problems,
            })
        }
    }

    /// Runs `attempt` until it succeeds or the retry policy says stop. `subject` names what
    /// was asked in errors; `counted` requests count in the metrics' requests.
    async fn with_retries<'a, T>(
        &'a self,
        subject: &str,
        counted: bool,
        mut attempt: impl FnMut(Option<Secret>) -> BoxFuture<'a, std::result::Result<T, Failure>>,
    ) -> Result<T> {
        let url = self.transport.describe();
        let n = self.requests.fetch_add(1, Ordering::Relaxed);
        let rng = match self.config.jitter_seed {
            Some(seed) => FastRandom::seeded(seed.wrapping_add(n)),
            None => FastRandom::new(),
        };
        let mut backoff = Backoff::new(self.config.backoff.clone(), Box::new(rng));
        let budget = self.config.total_budget;
        let start = Instant::now();
        let (mut attempts, mut bounded) = (0u32, 0u32);
        // When the server was first found unreachable in the current run of such failures.
        let mut unreachable_since: Option<Instant> = None;
        let done = |latency: Option<Duration>| {
            if counted {
                self.metrics.done(latency);
            }
        };
        loop {
            attempts += 1;
            let permit = self.limiter.acquire().await;
            let token = self.auth.token().await?;
            let sent_at = Instant::now();
            let failure = match attempt(token).await {
                Ok(value) => {
                    permit.success();
                    done(Some(sent_at.elapsed()));
                    return Ok(value);
                }
                Err(f) => f,
            };
            let (overload, limit, retry_after) = match failure.decision {
                Decision::Fatal(kind) => {
                    drop(permit);
                    done(None);
                    if kind == Fatal::Unauthenticated {
                        self.auth.invalidate().await;
                    }
                    let Failure { cause, message, .. } = failure;
                    tracing::warn!(url = %url, %cause, subject, "request refused: {message}");
                    let tiles = subject.to_string();
                    return Err(match kind {
                        Fatal::Answer => Error::Answer {
                            url,
                            tiles,
                            message,
                        },
                        Fatal::Client => Error::Config(format!(
                            "{url}: the request for {tiles} could not be sent: {message}"
                        )),
                        Fatal::Unauthenticated | Fatal::PermissionDenied | Fatal::Rejected => {
                            Error::Rejected {
                                url,
                                status: cause.to_string(),
                                tiles,
                                message,
                            }
                        }
                    });
                }
                Decision::Retry {
                    overload,
                    limit,
                    retry_after,
                } => (overload, limit, retry_after),
            };
            if overload {
                permit.overload();
            }
            drop(permit);
            self.metrics.retry(&failure.cause.label());
            let exhausted = |last: String| Error::Exhausted {
                url: url.clone(),
                tiles: subject.to_string(),
                attempts,
                elapsed: start.elapsed(),
                last,
            };
            if limit == Limit::Count {
                bounded += 1;
                if bounded > self.config.max_bounded_retries {
                    done(None);
                    return Err(exhausted(format!(
                        "{failure} ({bounded} times; retried at most {})",
                        self.config.max_bounded_retries
                    )));
                }
            }
            let down_since = if limit == Limit::Connect {
                Some(*unreachable_since.get_or_insert(sent_at))
            } else {
                unreachable_since = None;
                None
            };
            // A server may ask for any wait; more than the whole budget is the whole budget.
            let asked = retry_after.map(|d| d.min(budget));
            let wait = backoff.next_wait().max(asked.unwrap_or_default());
            if let Some(since) = down_since {
                let down = since.elapsed();
                if down.saturating_add(wait) > self.config.connect_timeout {
                    done(None);
                    return Err(Error::Unreachable {
                        url,
                        tiles: subject.to_string(),
                        attempts,
                        elapsed: down,
                        connect_timeout: self.config.connect_timeout,
                        last: failure.to_string(),
                    });
                }
            }
            let elapsed = start.elapsed();
            if elapsed.saturating_add(wait) > budget {
                done(None);
                let left = budget.saturating_sub(elapsed);
                return Err(exhausted(match retry_after {
                    Some(ra) if asked.is_some_and(|a| a >= wait) => format!(
                        "{failure} (the server asked to wait {}s (Retry-After), more than the {left:?} left of the retry budget of {budget:?})",
                        ra.as_secs()
                    ),
                    _ => format!("{failure} (retry budget of {budget:?} spent)"),
                }));
            }
            tracing::debug!(url = %url, cause = %failure.cause, attempt = attempts, wait_ms = wait.as_millis() as u64, "retrying: {}", failure.message);
            tokio::time::sleep(wait).await;
        }
    }
}

/// The connect timeout of one attempt: the client's `connect_timeout`, within the attempt's
/// deadline, and not so short that a healthy server cannot answer a SYN.
fn attempt_connect_timeout(config: &ClientConfig) -> Duration {
    config
        .connect_timeout
        .min(config.request_timeout)
        .max(Duration::from_millis(100))
}

/// The gRPC transport for `predictor` (TF Serving PredictionService or KServe
/// GRPCInferenceService).
#[cfg(feature = "grpc")]
fn grpc_transport(
    predictor: &PredictorConfig,
    url: String,
    outputs: Vec<OutputSpec>,
    connect_timeout: Duration,
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
    Ok(Arc::new(
        GrpcTransport::new(url, predictor.format, model, outputs)?
            .with_connect_timeout(connect_timeout),
    ))
}

/// Without the `grpc` feature a gRPC payload format is a configuration error.
#[cfg(not(feature = "grpc"))]
fn grpc_transport(
    predictor: &PredictorConfig,
    _url: String,
    _outputs: Vec<OutputSpec>,
    _connect_timeout: Duration,
) -> Result<Arc<dyn Transport>> {
    Err(Error::Config(format!(
        "payload format {:?} needs gRPC, but ee-predict-client was built without its `grpc` feature",
        predictor.format
    )))
}
