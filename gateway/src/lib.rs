//! `patto-gateway`: the one GraphQL endpoint of Patto.
//!
//! This first gateway serves the platform's own root entity `Municipality` (the 82 comuni) and the
//! health of every backend; the schema composed from the services' contracts replaces its
//! business part as the gateway grows. It answers `/graphql` (GET and POST), GraphiQL at `/`,
//! `/health/live` and `/health/ready` (ready when every backend reports SERVING).

pub mod backends;
pub mod breaker;
pub mod compose;
pub mod convert;
pub mod errors;
pub mod request;
pub mod schema;
pub mod transport;

use std::future::Future;
use std::sync::Arc;

use async_graphql::http::GraphiQLSource;
use async_graphql_axum::GraphQL;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse};
use axum::routing::get;

pub use backends::{Backend, Backends};

/// Builds the HTTP app over `backends`.
pub fn app(backends: Arc<Backends>) -> Router {
    let schema = schema::build(backends.clone());
    Router::new()
        .route("/", get(graphiql))
        .route_service("/graphql", GraphQL::new(schema))
        .route("/health/live", get(|| async { "ok" }))
        .route("/health/ready", get(ready))
        .with_state(backends)
}

async fn graphiql() -> Html<String> {
    Html(GraphiQLSource::build().endpoint("/graphql").finish())
}

async fn ready(State(backends): State<Arc<Backends>>) -> impl IntoResponse {
    let statuses = backends.statuses().await;
    let all_serving = statuses.iter().all(|s| s.serving);
    let body = serde_json::json!({
        "ready": all_serving,
        "backends": statuses.iter().map(|s| serde_json::json!({"name": s.name, "status": s.status})).collect::<Vec<_>>(),
    });
    let code = if all_serving {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, axum::Json(body))
}

/// Serves the gateway on `listener` until `shutdown` completes, letting in-flight requests finish.
pub async fn serve(
    backends: Arc<Backends>,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, app(backends))
        .with_graceful_shutdown(shutdown)
        .await
}
