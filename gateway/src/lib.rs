//! `patto-gateway`: the one GraphQL endpoint of Patto, composed at runtime from the services'
//! protobuf contracts (see DESIGN.md, "Proto-first federation").
//!
//! - [`compose`]: descriptors → GraphQL schema, pure and tested from descriptor sets alone;
//! - [`convert`]: GraphQL values ↔ dynamic protobuf messages;
//! - [`transport`]: dynamic gRPC calls, one channel per service, retries, [`breaker`];
//! - [`request`]: per-request budget, metadata and batching of joins;
//! - [`discovery`]: reflection, embedded fallback, re-reflection and atomic swap;
//! - [`errors`]: gRPC status → GraphQL error codes;
//! - [`http`]: GraphQL over HTTP, GraphiQL, SDL, health, metrics, WebSocket subscriptions.

pub mod breaker;
pub mod compose;
pub mod config;
pub mod convert;
pub mod discovery;
pub mod errors;
pub mod http;
pub mod metrics;
pub mod request;
pub mod transport;

use std::future::Future;
use std::sync::Arc;

pub use config::GatewayConfig;
use discovery::SchemaHandle;
use transport::{Backend, Backends, Invoker};

/// Why the gateway stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// A backend URL is malformed.
    #[error(transparent)]
    Backend(#[from] transport::BackendError),
    /// The first composition failed.
    #[error("the services' contracts do not compose: {0}")]
    Compose(#[from] compose::ComposeError),
    /// The HTTP server failed.
    #[error("HTTP server: {0}")]
    Http(#[from] std::io::Error),
}

/// The backends of a configuration.
pub fn backends(config: &GatewayConfig) -> Result<Backends, GatewayError> {
    let list = config
        .backends
        .iter()
        .map(|(n, u)| Backend::new(n, u))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Backends(Arc::new(list)))
}

/// The SDL composed from the contracts compiled into the gateway, as `make schema` writes it.
pub fn embedded_sdl() -> Result<String, compose::ComposeError> {
    let pool = discovery::embedded_pool();
    let sources: Vec<compose::Source> = patto_service_kit::config::SERVICES
        .iter()
        .map(|s| compose::Source {
            service: s.name.into(),
            pool: pool.clone(),
            origin: compose::Origin::Embedded,
        })
        .collect();
    Ok(compose::compose(&sources, Arc::new(Backends::default()))?.sdl())
}

/// Composes the schema, then serves HTTP on `listener` until `shutdown` completes, re-reading the
/// services' contracts in the background.
pub async fn run(
    config: GatewayConfig,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), GatewayError> {
    let backends = backends(&config)?;
    let invoker: Arc<dyn Invoker> = Arc::new(backends.clone());
    let handle = Arc::new(SchemaHandle::default());
    handle
        .refresh(&backends, invoker, config.reflect_timeout)
        .await?;

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = move || {
        let mut rx = stop_rx.clone();
        async move {
            let _ = rx.wait_for(|s| *s).await;
        }
    };
    let refresher = tokio::spawn(discovery::keep_fresh(
        handle.clone(),
        backends.clone(),
        config.reflect_interval,
        config.reflect_timeout,
        stopped(),
    ));
    let state = http::AppState {
        schema: handle,
        backends,
        operation_timeout: config.operation_timeout,
        introspection: config.introspection,
        metrics: Arc::new(metrics::Metrics::default()),
    };
    tracing::info!(addr = %listener.local_addr().map(|a| a.to_string()).unwrap_or_default(), "gateway serving");
    let grace = config.shutdown_grace;
    let (signalled_tx, signalled_rx) = tokio::sync::oneshot::channel::<()>();
    let server = axum::serve(listener, http::router(state)).with_graceful_shutdown(async move {
        shutdown.await;
        tracing::info!("shutdown requested: draining in-flight requests");
        let _ = stop_tx.send(true);
        let _ = signalled_tx.send(());
    });
    // Draining is bounded: open subscriptions must not hold the process past its grace period.
    let deadline = async move {
        match signalled_rx.await {
            Ok(()) => tokio::time::sleep(grace).await,
            Err(_) => std::future::pending::<()>().await,
        }
    };
    let served = tokio::select! {
        result = server => result,
        () = deadline => {
            tracing::warn!(?grace, "grace period over: dropping requests still in flight");
            Ok(())
        }
    };
    let _ = refresher.await;
    served.map_err(GatewayError::from)
}
