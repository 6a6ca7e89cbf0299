//! Starting and stopping a node: bind the listeners (TCP_NODELAY on every accepted
//! connection: without it a gRPC client with one request in flight waits on Nagle's
//! algorithm), serve REST and gRPC over one batcher, and on shutdown stop accepting, finish
//! the requests in flight, and report what was served.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::serve::ListenerExt;
use ee_runtime::LocalModel;
#[cfg(feature = "grpc")]
use ee_tensor_proto::proto::inference::grpc_inference_service_server::GrpcInferenceServiceServer;
#[cfg(feature = "grpc")]
use ee_tensor_proto::proto::tensorflow::serving::prediction_service_server::PredictionServiceServer;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::batcher::{Batcher, StatsSnapshot};
use crate::config::ServeConfig;
use crate::error::{Error, Result};
#[cfg(feature = "grpc")]
use crate::grpc::{Admit, Services};
use crate::signature::Signature;
use crate::state::Shared;

/// A running node. Dropping it does not stop it; call [`Node::shutdown`].
pub struct Node {
    shared: Arc<Shared>,
    http_addr: Option<SocketAddr>,
    grpc_addr: Option<SocketAddr>,
    stop: watch::Sender<bool>,
    tasks: Vec<(&'static str, JoinHandle<std::result::Result<(), String>>)>,
}

async fn bind(addr: SocketAddr) -> Result<(TcpListener, SocketAddr)> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| Error::Bind { addr, source })?;
    let local = listener
        .local_addr()
        .map_err(|source| Error::Bind { addr, source })?;
    Ok((listener, local))
}

impl Node {
    /// Serves `model` as `config` says, on the current tokio runtime. Ports 0 pick free
    /// ports; [`Node::http_addr`] and [`Node::grpc_addr`] tell which.
    pub async fn start(model: LocalModel, config: ServeConfig) -> Result<Node> {
        if config.http.is_none() && config.grpc.is_none() {
            return Err(Error::Server {
                what: "node",
                message: "neither an HTTP nor a gRPC address was given".into(),
            });
        }
        #[cfg(not(feature = "grpc"))]
        if config.grpc.is_some() {
            return Err(Error::Server {
                what: "node",
                message:
                    "a gRPC address was given, but ee-serve was built without its `grpc` feature"
                        .into(),
            });
        }
        let signature = Signature::of(&model, &config.model_name);
        let batcher = Batcher::start(
            Arc::new(model),
            signature,
            config.max_batch,
            config.max_concurrency,
            config.max_queue,
            config.retry_after,
        );
        let shared = Arc::new(Shared::new(batcher, config.clone()));
        let (stop, stopped) = watch::channel(false);
        let mut tasks = Vec::new();
        let mut http_addr = None;
        #[allow(unused_mut)]
        let mut grpc_addr = None;
        if let Some(addr) = config.http {
            let (listener, local) = bind(addr).await?;
            http_addr = Some(local);
            let node = shared.clone();
            let app = axum::Router::new().fallback(
                move |method, uri, headers, body: axum::body::Body| {
                    crate::rest::handle(node.clone(), method, uri, headers, body)
                },
            );
            let listener = listener.tap_io(|tcp| {
                let _ = tcp.set_nodelay(true);
            });
            let mut stopped = stopped.clone();
            tasks.push((
                "HTTP",
                tokio::spawn(async move {
                    axum::serve(listener, app)
                        .with_graceful_shutdown(async move {
                            let _ = stopped.wait_for(|s| *s).await;
                        })
                        .await
                        .map_err(|e| e.to_string())
                }),
            ));
        }
        #[cfg(feature = "grpc")]
        if let Some(addr) = config.grpc {
            let (listener, local) = bind(addr).await?;
            grpc_addr = Some(local);
            let services = Services {
                node: shared.clone(),
            };
            let limit = config.max_body_bytes;
            // Admission wraps each server, so a call is admitted before its body is decoded.
            let predict = Admit::new(
                PredictionServiceServer::new(services.clone())
                    .max_decoding_message_size(limit)
                    .max_encoding_message_size(usize::MAX),
                shared.clone(),
            );
            let infer = Admit::new(
                GrpcInferenceServiceServer::new(services)
                    .max_decoding_message_size(limit)
                    .max_encoding_message_size(usize::MAX),
                shared.clone(),
            );
            let incoming =
                tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
            let mut stopped = stopped.clone();
            tasks.push((
                "gRPC",
                tokio::spawn(async move {
                    tonic::transport::Server::builder()
                        .initial_stream_window_size(Some(4 << 20))
                        .initial_connection_window_size(Some(16 << 20))
                        .add_service(predict)
                        .add_service(infer)
                        .serve_with_incoming_shutdown(incoming, async move {
                            let _ = stopped.wait_for(|s| *s).await;
                        })
                        .await
                        .map_err(|e| e.to_string())
                }),
            ));
        }
        tracing::info!(
            model = %shared.batcher.signature().model_name,
            http = ?http_addr,
            grpc = ?grpc_addr,
            batchable = shared.batcher.signature().batchable,
            max_batch = config.max_batch,
            max_concurrency = config.max_concurrency,
            max_queue = config.max_queue,
            "serving"
        );
        Ok(Node {
            shared,
            http_addr,
            grpc_addr,
            stop,
            tasks,
        })
    }

    /// Where REST is served.
    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.http_addr
    }

    /// Where gRPC is served.
    pub fn grpc_addr(&self) -> Option<SocketAddr> {
        self.grpc_addr
    }

    /// The served signature.
    pub fn signature(&self) -> &Signature {
        self.shared.batcher.signature()
    }

    /// What the node has done so far.
    pub fn stats(&self) -> StatsSnapshot {
        self.shared.batcher.stats().snapshot()
    }

    /// Stops accepting connections, lets the requests in flight finish, and returns the
    /// final counters.
    pub async fn shutdown(self) -> Result<StatsSnapshot> {
        let _ = self.stop.send(true);
        for (what, task) in self.tasks {
            match task.await {
                Ok(Ok(())) => {}
                Ok(Err(message)) => return Err(Error::Server { what, message }),
                Err(e) => {
                    return Err(Error::Server {
                        what,
                        message: e.to_string(),
                    })
                }
            }
        }
        Ok(self.shared.batcher.stats().snapshot())
    }

    /// Serves until SIGTERM or Ctrl-C, then shuts down gracefully.
    pub async fn run_until_signal(self) -> Result<StatsSnapshot> {
        shutdown_signal().await;
        tracing::info!("shutting down: finishing the requests in flight");
        self.shutdown().await
    }
}

/// Resolves on SIGTERM or SIGINT (Ctrl-C).
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}
