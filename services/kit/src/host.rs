//! Hosting a service over gRPC: health, reflection (v1 and v1alpha, for grpcurl and grpcio tools
//! alike), the authentication hook, and graceful shutdown.
//!
//! Shutdown order, on the signal: health turns NOT_SERVING (so load balancers stop sending), the
//! listener closes, in-flight calls drain, and after the grace period whatever still runs (long
//! watch streams) is dropped so the process exits in bounded time.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::net::TcpListener;
use tonic::body::Body;
use tonic::server::NamedService;
use tonic::service::Routes;
use tonic_health::ServingStatus;

use crate::auth::{Anonymous, AuthLayer, Authenticator};
use crate::observe::{Metrics, ObserveLayer};

/// Why a service could not be hosted.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}. Set GRPC_ADDR to a free address.")]
    Bind {
        /// Address asked for.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// The reflection service could not be built from the descriptor set.
    #[error("reflection: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    /// The gRPC server failed.
    #[error("gRPC server: {0}")]
    Transport(#[from] tonic::transport::Error),
}

/// A set of gRPC services to host together, with the names health and reflection announce.
pub struct GrpcApp {
    routes: Routes,
    services: Vec<&'static str>,
    authenticator: Arc<dyn Authenticator>,
    descriptors: &'static [u8],
    metrics: Arc<Metrics>,
}

impl Default for GrpcApp {
    fn default() -> Self {
        Self::new()
    }
}

impl GrpcApp {
    /// An app with no service yet, authenticating every caller as anonymous.
    pub fn new() -> Self {
        Self {
            routes: Routes::default(),
            services: Vec::new(),
            authenticator: Arc::new(Anonymous),
            descriptors: patto_proto::FILE_DESCRIPTOR_SET,
            metrics: Arc::new(Metrics::default()),
        }
    }

    /// Adds a generated tonic server.
    pub fn add_service<S>(mut self, svc: S) -> Self
    where
        S: tower::Service<http::Request<Body>, Error = Infallible>
            + NamedService
            + Clone
            + Send
            + Sync
            + 'static,
        S::Response: axum::response::IntoResponse,
        S::Future: Send + 'static,
    {
        self.services.push(S::NAME);
        self.routes = self.routes.add_service(svc);
        self
    }

    /// Replaces the authenticator run on every call.
    pub fn with_authenticator(mut self, authenticator: Arc<dyn Authenticator>) -> Self {
        self.authenticator = authenticator;
        self
    }

    /// Replaces the descriptor set served through reflection (by default the contracts compiled
    /// into `patto-proto`): lets a test play a service that deployed a newer contract.
    pub fn with_descriptors(mut self, encoded_file_descriptor_set: &'static [u8]) -> Self {
        self.descriptors = encoded_file_descriptor_set;
        self
    }

    /// The counters served at `/metrics`.
    pub fn metrics(&self) -> Arc<Metrics> {
        self.metrics.clone()
    }

    /// Fully-qualified names of the hosted services.
    pub fn service_names(&self) -> &[&'static str] {
        &self.services
    }
}

/// Tells long-running handlers (watch streams) that the server is draining. The kit puts one into
/// every request's extensions.
#[derive(Debug, Clone)]
pub struct Draining(tokio::sync::watch::Receiver<bool>);

impl Draining {
    /// The handle the kit attached to `request`, if it was served by the kit.
    pub fn of<T>(request: &tonic::Request<T>) -> Option<Self> {
        request.extensions().get::<Self>().cloned()
    }

    /// A handle over a drain flag, for code that hosts streams outside the kit (tests).
    pub fn from_receiver(rx: tokio::sync::watch::Receiver<bool>) -> Self {
        Self(rx)
    }

    /// Completes once the server drains (or is gone).
    pub async fn wait(&mut self) {
        let _ = self.0.wait_for(|draining| *draining).await;
    }
}

/// Binds `addr`, failing with a message that names the address.
pub async fn bind(addr: SocketAddr) -> Result<TcpListener, HostError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| HostError::Bind { addr, source })
}

/// Serves `app` on `listener` until `shutdown` completes, then drains for at most `grace`.
pub async fn serve(
    app: GrpcApp,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
    grace: Duration,
) -> Result<(), HostError> {
    let (reporter, health) = tonic_health::server::health_reporter();
    for name in &app.services {
        reporter
            .set_service_status(*name, ServingStatus::Serving)
            .await;
    }
    reporter
        .set_service_status("", ServingStatus::Serving)
        .await;

    let mut announced: Vec<&str> = app.services.clone();
    announced.extend([
        "grpc.health.v1.Health",
        "grpc.reflection.v1.ServerReflection",
        "grpc.reflection.v1alpha.ServerReflection",
    ]);
    let descriptors = app.descriptors;
    let reflection = || {
        announced.iter().fold(
            tonic_reflection::server::Builder::configure()
                .register_encoded_file_descriptor_set(descriptors)
                .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET),
            |b, name| b.with_service_name(*name),
        )
    };
    let metrics = app.metrics.clone();
    // Prometheus scrapes `/metrics` over HTTP/1.1 on the gRPC port itself: no second port.
    let router = app
        .routes
        .add_service(health)
        .add_service(reflection().build_v1()?)
        .add_service(reflection().build_v1alpha()?)
        .into_axum_router()
        .route(
            "/metrics",
            axum::routing::get(move || {
                let metrics = metrics.clone();
                async move {
                    (
                        [(http::header::CONTENT_TYPE, "text/plain; version=0.0.4")],
                        metrics.render(),
                    )
                }
            }),
        );
    let routes = Routes::from(router);

    let (fired_tx, fired_rx) = tokio::sync::oneshot::channel::<()>();
    let (drain_tx, drain_rx) = tokio::sync::watch::channel(false);
    let services = app.services.clone();
    let signal = async move {
        shutdown.await;
        tracing::info!("shutdown requested: health NOT_SERVING, draining in-flight calls");
        for name in services.iter().copied().chain([""]) {
            reporter
                .set_service_status(name, ServingStatus::NotServing)
                .await;
        }
        let _ = drain_tx.send(true);
        let _ = fired_tx.send(());
    };

    // Without TCP_NODELAY a response written as headers, data and trailers meets the peer's
    // delayed ACK and waits ~40 ms (Nagle); `make bench` shows it at once.
    let incoming = tokio_stream::StreamExt::map(
        tokio_stream::wrappers::TcpListenerStream::new(listener),
        |conn| {
            conn.inspect(|s| {
                let _ = s.set_nodelay(true);
            })
        },
    );
    let server = tonic::transport::Server::builder()
        .accept_http1(true)
        .layer(NameUnimplementedLayer {
            ours: Arc::new(app.services),
        })
        .layer(ObserveLayer(app.metrics.clone()))
        .layer(AuthLayer(app.authenticator))
        .layer(tower_http::add_extension::AddExtensionLayer::new(Draining(
            drain_rx,
        )))
        .add_routes(routes)
        .serve_with_incoming_shutdown(incoming, signal);

    let deadline = async move {
        match fired_rx.await {
            Ok(()) => tokio::time::sleep(grace).await,
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        result = server => result.map_err(HostError::from),
        () = deadline => {
            tracing::warn!(?grace, "grace period over: dropping calls still in flight");
            Ok(())
        }
    }
}

/// Completes on SIGTERM or ctrl-c: the process-level shutdown signal.
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
        () = ctrl_c => {},
        () = term => {},
    }
}

/// Gives UNIMPLEMENTED answers a message naming the RPC, so a caller knows which call is missing
/// (tonic's generated stubs say only "Not yet implemented", unknown paths say nothing).
#[derive(Clone)]
struct NameUnimplementedLayer {
    ours: Arc<Vec<&'static str>>,
}

impl<S> tower::Layer<S> for NameUnimplementedLayer {
    type Service = NameUnimplemented<S>;
    fn layer(&self, inner: S) -> Self::Service {
        NameUnimplemented {
            inner,
            ours: self.ours.clone(),
        }
    }
}

#[derive(Clone)]
struct NameUnimplemented<S> {
    inner: S,
    ours: Arc<Vec<&'static str>>,
}

impl<S, B> tower::Service<http::Request<B>> for NameUnimplemented<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<Body>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = futures::future::BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let path = req.uri().path().trim_start_matches('/').to_owned();
        let ours = self.ours.clone();
        let fut = self.inner.call(req);
        Box::pin(async move {
            let mut response = fut.await?;
            let unimplemented = response
                .headers()
                .get("grpc-status")
                .is_some_and(|v| v.as_bytes() == b"12");
            let generic = response.headers().get("grpc-message").is_none_or(|m| {
                m.is_empty()
                    || m.as_bytes() == b"Not%20yet%20implemented"
                    || m.as_bytes() == b"Not yet implemented"
            });
            if unimplemented && generic {
                let service = path.split('/').next().unwrap_or_default();
                let message = if ours.contains(&service) {
                    format!("{path} is not implemented yet by this service")
                } else {
                    format!("{path}: this server does not host {service}")
                };
                let encoded = percent_encode(&message);
                if let Ok(value) = http::HeaderValue::from_str(&encoded) {
                    response.headers_mut().insert("grpc-message", value);
                }
            }
            Ok(response)
        })
    }
}

/// Percent-encodes a grpc-message as the gRPC HTTP/2 spec asks (bytes outside 0x20–0x7E and `%`).
fn percent_encode(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    for b in message.bytes() {
        if (0x20..=0x7e).contains(&b) && b != b'%' {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
