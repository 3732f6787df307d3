//! `patto-gateway`: the one GraphQL endpoint of Patto, composed at runtime from the services'
//! protobuf contracts (see DESIGN.md, "Proto-first federation").
//!
//! - [`compose`]: descriptors → GraphQL schema, pure and tested from descriptor sets alone;
//! - [`convert`]: GraphQL values ↔ dynamic protobuf messages;
//! - [`transport`]: dynamic gRPC calls, one channel per service, retries, [`breaker`];
//! - [`request`]: per-request budget, metadata and batching of joins;
//! - [`discovery`]: reflection, embedded fallback, re-reflection and atomic swap;
//! - [`errors`]: gRPC status → GraphQL error codes;
//! - [`http`]: GraphQL over HTTP, GraphiQL, SDL, health, metrics, WebSocket subscriptions;
//!   every GraphQL request is authenticated, rate limited ([`ratelimit`]) and may be a persisted
//!   query ([`apq`]) before it runs.

pub mod apq;
pub mod breaker;
pub mod compose;
pub mod config;
pub mod convert;
pub mod discovery;
pub mod errors;
pub mod http;
pub mod metrics;
pub mod ratelimit;
pub mod request;
pub mod transport;
pub mod wire;

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

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
    /// `REDIS_URL` cannot be used.
    #[error("REDIS_URL: {0}")]
    Redis(#[from] redis::RedisError),
}

/// How long one Redis command may take before the request falls back to the in-process
/// equivalent: Redis is an optimisation shared by the replicas, never a reason to wait.
pub const REDIS_BUDGET: Duration = Duration::from_millis(1500);
/// After a Redis failure, how long every request skips Redis and uses the in-process fallback,
/// so that an unreachable Redis costs one slow request every few seconds, not each request.
pub const REDIS_BACKOFF: Duration = Duration::from_secs(5);

/// The Redis connection the gateway's replicas share (persisted queries, rate limits), with the
/// key prefix and a small breaker: while Redis fails, callers are told to fall back at once.
pub struct RedisLink {
    conn: redis::aio::ConnectionManager,
    prefix: String,
    skip_until: Mutex<Option<Instant>>,
    metrics: Arc<metrics::Metrics>,
}

impl std::fmt::Debug for RedisLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The connection info may hold a password: never print it.
        f.debug_struct("RedisLink")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl RedisLink {
    /// A link to the Redis at `url`. Connects lazily, so a gateway starts (and serves, with the
    /// in-process fallbacks) while Redis is still down; the connection manager reconnects.
    pub fn new(
        url: &str,
        prefix: &str,
        metrics: Arc<metrics::Metrics>,
    ) -> Result<Self, redis::RedisError> {
        let client = redis::Client::open(url)?;
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(REDIS_BUDGET))
            .set_response_timeout(Some(REDIS_BUDGET))
            // Few retries: a request must not wait through a long reconnect loop; the breaker
            // below and the next request's reconnect take over.
            .set_number_of_retries(1);
        let conn = redis::aio::ConnectionManager::new_lazy_with_config(client, config)?;
        Ok(Self {
            conn,
            prefix: prefix.to_owned(),
            skip_until: Mutex::new(None),
            metrics,
        })
    }

    /// `suffix` under the configured prefix (`PATTO_REDIS_PREFIX`).
    pub fn key(&self, suffix: &str) -> String {
        format!("{}{suffix}", self.prefix)
    }

    /// Runs one Redis interaction within [`REDIS_BUDGET`]. `None` when Redis is unavailable (it
    /// failed, timed out, or failed less than [`REDIS_BACKOFF`] ago): the caller falls back.
    /// `what` names the use in the warning.
    pub async fn run<T, F, Fut>(&self, what: &'static str, f: F) -> Option<T>
    where
        F: FnOnce(redis::aio::ConnectionManager) -> Fut,
        Fut: Future<Output = redis::RedisResult<T>>,
    {
        if lock(&self.skip_until).is_some_and(|until| Instant::now() < until) {
            return None;
        }
        let error = match tokio::time::timeout(REDIS_BUDGET, f(self.conn.clone())).await {
            Ok(Ok(value)) => {
                *lock(&self.skip_until) = None;
                return Some(value);
            }
            Ok(Err(e)) => e.to_string(),
            Err(_) => format!("no answer within {REDIS_BUDGET:?}"),
        };
        self.metrics.redis_error();
        let mut skip = lock(&self.skip_until);
        // One warning per outage window, not one per request.
        if skip.is_none_or(|until| Instant::now() >= until) {
            tracing::warn!(%error, purpose = what, backoff = ?REDIS_BACKOFF, "Redis unavailable: using the in-process fallback");
        }
        *skip = Some(Instant::now() + REDIS_BACKOFF);
        None
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
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
    let metrics = Arc::new(metrics::Metrics::default());
    let redis = match &config.redis_url {
        Some(url) => {
            let link = Arc::new(RedisLink::new(url, &config.redis_prefix, metrics.clone())?);
            // Say early whether Redis answers; serving does not wait for it.
            let probe = link.clone();
            tokio::spawn(async move {
                let pong = probe
                    .run("startup probe", |mut c| async move {
                        redis::cmd("PING").query_async::<String>(&mut c).await
                    })
                    .await;
                if pong.is_some() {
                    tracing::info!("Redis reachable: persisted queries and rate limits are shared");
                }
            });
            Some(link)
        }
        None => None,
    };
    let state = http::AppState {
        schema: handle,
        backends,
        operation_timeout: config.operation_timeout,
        introspection: config.introspection,
        metrics: metrics.clone(),
        authenticator: config.authenticator.clone(),
        persisted: Arc::new(apq::PersistedQueries::new(
            config.allowlist.clone(),
            redis.clone(),
            config.apq_ttl,
            metrics.clone(),
        )),
        limiter: Arc::new(ratelimit::RateLimiter::new(
            ratelimit::Limits {
                per_principal: config.rate_limit_per_minute,
                per_comune: config.rate_limit_comune_per_minute,
            },
            redis,
            metrics,
        )),
        trust_forwarded_for: config.trust_forwarded_for,
    };
    tracing::info!(addr = %listener.local_addr().map(|a| a.to_string()).unwrap_or_default(), "gateway serving");
    let grace = config.shutdown_grace;
    let (signalled_tx, signalled_rx) = tokio::sync::oneshot::channel::<()>();
    // The peer address is the anonymous caller's rate-limit key.
    let app = http::router(state).into_make_service_with_connect_info::<std::net::SocketAddr>();
    // Responses go out as soon as they are written (no Nagle delay on small answers).
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        let _ = tcp.set_nodelay(true);
    });
    let server = axum::serve(listener, app).with_graceful_shutdown(async move {
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
