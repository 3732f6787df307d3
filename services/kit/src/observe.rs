//! What every gRPC call leaves behind: a span continuing the caller's W3C trace context (so one
//! trace runs from the gateway through the services down to their SQL), and Prometheus counters
//! and latency by RPC and status code, served at `/metrics` on the service's own port.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use opentelemetry::propagation::{Extractor, Injector};
use sea_orm::DatabaseConnection;
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// Reads W3C trace headers from an HTTP/2 header map (gRPC metadata).
pub struct HeaderExtractor<'a>(pub &'a http::HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }
    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(http::HeaderName::as_str).collect()
    }
}

/// Writes W3C trace headers into an HTTP/2 header map (gRPC metadata).
pub struct HeaderInjector<'a>(pub &'a mut http::HeaderMap);

impl Injector for HeaderInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(k), Ok(v)) = (
            http::HeaderName::from_bytes(key.as_bytes()),
            http::HeaderValue::from_str(&value),
        ) {
            self.0.insert(k, v);
        }
    }
}

/// The trace context a request carries (empty when it carries none).
pub fn extract_context(headers: &http::HeaderMap) -> opentelemetry::Context {
    opentelemetry::global::get_text_map_propagator(|p| p.extract(&HeaderExtractor(headers)))
}

/// Adds the current span's trace context to outgoing headers.
pub fn inject_current(headers: &mut http::HeaderMap) {
    let cx = tracing::Span::current().context();
    opentelemetry::global::get_text_map_propagator(|p| {
        p.inject_context(&cx, &mut HeaderInjector(headers))
    });
}

/// Latency buckets, in seconds.
const BUCKETS: [f64; 11] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0,
];

#[derive(Default)]
struct Rpc {
    by_code: BTreeMap<String, u64>,
    buckets: [u64; BUCKETS.len()],
    sum: f64,
    count: u64,
}

/// The counters of one service process.
#[derive(Default)]
pub struct Metrics {
    rpcs: Mutex<BTreeMap<String, Rpc>>,
    databases: Mutex<Vec<(String, DatabaseConnection)>>,
}

impl Metrics {
    fn record(&self, rpc: &str, code: &str, took: Duration) {
        let mut rpcs = self
            .rpcs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let r = rpcs.entry(rpc.to_owned()).or_default();
        *r.by_code.entry(code.to_owned()).or_default() += 1;
        let secs = took.as_secs_f64();
        for (i, b) in BUCKETS.iter().enumerate() {
            if secs <= *b {
                r.buckets[i] += 1;
            }
        }
        r.sum += secs;
        r.count += 1;
    }

    /// Reports the connection pool of `db` as the pool of `service`.
    pub fn watch_database(&self, service: &str, db: DatabaseConnection) {
        self.databases
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push((service.to_owned(), db));
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::from(
            "# HELP patto_grpc_requests_total gRPC calls served, by RPC and status code.\n# TYPE patto_grpc_requests_total counter\n",
        );
        let rpcs = self
            .rpcs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for (rpc, r) in rpcs.iter() {
            for (code, n) in &r.by_code {
                out.push_str(&format!(
                    "patto_grpc_requests_total{{rpc=\"{rpc}\",code=\"{code}\"}} {n}\n"
                ));
            }
        }
        out.push_str("# HELP patto_grpc_request_seconds Time to answer a gRPC call.\n# TYPE patto_grpc_request_seconds histogram\n");
        for (rpc, r) in rpcs.iter() {
            for (i, b) in BUCKETS.iter().enumerate() {
                out.push_str(&format!(
                    "patto_grpc_request_seconds_bucket{{rpc=\"{rpc}\",le=\"{b}\"}} {}\n",
                    r.buckets[i]
                ));
            }
            out.push_str(&format!(
                "patto_grpc_request_seconds_bucket{{rpc=\"{rpc}\",le=\"+Inf\"}} {}\n",
                r.count
            ));
            out.push_str(&format!(
                "patto_grpc_request_seconds_sum{{rpc=\"{rpc}\"}} {}\n",
                r.sum
            ));
            out.push_str(&format!(
                "patto_grpc_request_seconds_count{{rpc=\"{rpc}\"}} {}\n",
                r.count
            ));
        }
        drop(rpcs);
        out.push_str("# HELP patto_db_pool_connections Database connections, by state.\n# TYPE patto_db_pool_connections gauge\n");
        for (service, db) in self
            .databases
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
        {
            // The backend is checked first: the pool accessors panic on the other backend.
            let (size, idle) = match db.get_database_backend() {
                sea_orm::DatabaseBackend::Postgres => {
                    let p = db.get_postgres_connection_pool();
                    (p.size(), p.num_idle() as u32)
                }
                sea_orm::DatabaseBackend::Sqlite => {
                    let p = db.get_sqlite_connection_pool();
                    (p.size(), p.num_idle() as u32)
                }
                _ => continue,
            };
            out.push_str(&format!(
                "patto_db_pool_connections{{service=\"{service}\",state=\"idle\"}} {idle}\n"
            ));
            out.push_str(&format!(
                "patto_db_pool_connections{{service=\"{service}\",state=\"in_use\"}} {}\n",
                size.saturating_sub(idle)
            ));
        }
        out
    }
}

/// Tower layer that traces and counts every gRPC call.
#[derive(Clone)]
pub struct ObserveLayer(pub Arc<Metrics>);

impl<S> tower::Layer<S> for ObserveLayer {
    type Service = Observe<S>;
    fn layer(&self, inner: S) -> Self::Service {
        Observe {
            inner,
            metrics: self.0.clone(),
        }
    }
}

/// The service produced by [`ObserveLayer`].
#[derive(Clone)]
pub struct Observe<S> {
    inner: S,
    metrics: Arc<Metrics>,
}

impl<S, B> tower::Service<http::Request<B>> for Observe<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<tonic::body::Body>>,
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
        // Only gRPC paths (`package.Service/Method`) are calls; `/metrics` is not.
        if !path.contains('/') {
            return Box::pin(self.inner.call(req));
        }
        let (service, method) = path.split_once('/').unwrap_or((&path, ""));
        let span = tracing::info_span!(
            "grpc.server",
            otel.name = %path,
            otel.kind = "server",
            rpc.system = "grpc",
            rpc.service = %service,
            rpc.method = %method,
            rpc.grpc.status_code = tracing::field::Empty,
        );
        let _ = span.set_parent(extract_context(req.headers()));
        let metrics = self.metrics.clone();
        let started = Instant::now();
        let fut = {
            let _enter = span.enter();
            self.inner.call(req)
        };
        Box::pin(
            async move {
                let result = fut.await;
                // Errors travel in the headers (trailers-only); a success in the trailers.
                let code = match &result {
                    Ok(r) => r
                        .headers()
                        .get("grpc-status")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("0")
                        .to_owned(),
                    Err(_) => "2".to_owned(),
                };
                tracing::Span::current().record("rpc.grpc.status_code", code.as_str());
                metrics.record(&path, code_name(&code), started.elapsed());
                result
            }
            .instrument(span),
        )
    }
}

fn code_name(code: &str) -> &'static str {
    match code.parse::<i32>().map(tonic::Code::from) {
        Ok(tonic::Code::Ok) => "OK",
        Ok(tonic::Code::InvalidArgument) => "INVALID_ARGUMENT",
        Ok(tonic::Code::NotFound) => "NOT_FOUND",
        Ok(tonic::Code::AlreadyExists) => "ALREADY_EXISTS",
        Ok(tonic::Code::PermissionDenied) => "PERMISSION_DENIED",
        Ok(tonic::Code::Unauthenticated) => "UNAUTHENTICATED",
        Ok(tonic::Code::FailedPrecondition) => "FAILED_PRECONDITION",
        Ok(tonic::Code::Unavailable) => "UNAVAILABLE",
        Ok(tonic::Code::DeadlineExceeded) => "DEADLINE_EXCEEDED",
        Ok(tonic::Code::Unimplemented) => "UNIMPLEMENTED",
        Ok(tonic::Code::Internal) => "INTERNAL",
        Ok(tonic::Code::Cancelled) => "CANCELLED",
        Ok(tonic::Code::ResourceExhausted) => "RESOURCE_EXHAUSTED",
        _ => "UNKNOWN",
    }
}
