//! The HTTP face: GraphQL over HTTP as its specification describes it, GraphiQL, the SDL, health,
//! metrics, and subscriptions over WebSocket (graphql-transport-ws).
//!
//! Media types and status codes (GraphQL over HTTP):
//! - POST needs `Content-Type: application/json` (else 415) and a JSON body (else 400);
//! - GET carries `query`, `variables`, `operationName` in the URL and may only run queries
//!   (a mutation over GET is 405, so a link or a crawler cannot change state);
//! - `Accept: application/graphql-response+json` gets that media type, with 400 when the request
//!   could not be executed at all (parse or validation errors) and 200 otherwise, partial results
//!   included; `application/json` (or no Accept) gets 200 with `application/json`; anything else 406.
//! - the header `x-patto-debug: calls` adds `extensions.backendCalls` to the response.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_graphql::http::{ALL_WEBSOCKET_PROTOCOLS, GraphiQLSource};
use async_graphql_axum::{GraphQLProtocol, GraphQLWebSocket};
use axum::Router;
use axum::extract::{FromRequestParts, Query, State, WebSocketUpgrade};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::discovery::SchemaHandle;
use crate::metrics::Metrics;
use crate::request::{RequestCtx, execute};
use crate::transport::Backends;

/// The media type of GraphQL responses the specification prefers.
pub const GRAPHQL_RESPONSE: &str = "application/graphql-response+json";
/// Largest request body accepted (a GraphQL document with its variables).
pub const MAX_BODY_BYTES: usize = 1024 * 1024;
/// Most aliases one document may use: aliases multiply work without deepening the document.
pub const MAX_ALIASES: usize = 200;

/// Header that asks for the backend call count.
pub const DEBUG_HEADER: &str = "x-patto-debug";
/// Request headers forwarded to every backend call. Trace headers are not among them: each
/// backend call carries its own span's context instead, injected by the transport.
const FORWARDED: [&str; 3] = ["authorization", "x-request-id", "x-pdnd-purpose-id"];

/// What the handlers share.
#[derive(Clone)]
pub struct AppState {
    /// The live schema.
    pub schema: Arc<SchemaHandle>,
    /// The backends (for metrics).
    pub backends: Backends,
    /// Time budget of one operation.
    pub operation_timeout: Duration,
    /// Whether introspection is allowed.
    pub introspection: bool,
    /// Counters.
    pub metrics: Arc<Metrics>,
}

/// The gateway's routes.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(graphiql))
        .route("/graphql", get(graphql_get).post(graphql_post))
        .route("/schema.graphql", get(sdl))
        .route("/health/live", get(|| async { "ok" }))
        .route("/health/ready", get(ready))
        .route("/metrics", get(metrics))
        .with_state(state)
}

async fn graphiql() -> Html<String> {
    Html(
        GraphiQLSource::build()
            .endpoint("/graphql")
            .subscription_endpoint("/graphql")
            .finish(),
    )
}

async fn sdl(State(state): State<AppState>) -> Response {
    match state.schema.get() {
        Some(c) if state.introspection => (
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            c.sdl(),
        )
            .into_response(),
        Some(_) => (StatusCode::NOT_FOUND, "introspection is disabled").into_response(),
        None => (StatusCode::SERVICE_UNAVAILABLE, "no schema composed yet").into_response(),
    }
}

async fn ready(State(state): State<AppState>) -> Response {
    match state.schema.get() {
        Some(c) => {
            let services: serde_json::Map<String, serde_json::Value> = c
                .services
                .iter()
                .map(|(s, o)| (s.clone(), format!("{o:?}").to_lowercase().into()))
                .collect();
            axum::Json(serde_json::json!({"ready": true, "contracts": services})).into_response()
        }
        None => (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(serde_json::json!({"ready": false})),
        )
            .into_response(),
    }
}

async fn metrics(State(state): State<AppState>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(&state.backends),
    )
        .into_response()
}

/// Which media type the client accepts for the response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Accept {
    GraphqlResponse,
    Json,
}

fn negotiate(headers: &HeaderMap) -> Option<Accept> {
    let Some(accept) = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()) else {
        return Some(Accept::Json);
    };
    let types: Vec<&str> = accept
        .split(',')
        .map(|t| t.split(';').next().unwrap_or("").trim())
        .collect();
    if types.contains(&GRAPHQL_RESPONSE) {
        Some(Accept::GraphqlResponse)
    } else if types
        .iter()
        .any(|t| matches!(*t, "application/json" | "application/*" | "*/*"))
    {
        Some(Accept::Json)
    } else {
        None
    }
}

fn problem(status: StatusCode, message: &str) -> Response {
    let body = serde_json::json!({"errors": [{"message": message}]});
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

#[derive(Debug, Deserialize)]
struct GetParams {
    query: Option<String>,
    variables: Option<String>,
    #[serde(rename = "operationName")]
    operation_name: Option<String>,
}

async fn graphql_get(
    State(state): State<AppState>,
    headers: HeaderMap,
    request: axum::extract::Request,
) -> Response {
    if headers
        .get(header::UPGRADE)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"websocket"))
    {
        return websocket(state, request).await;
    }
    let Ok(Query(params)) = Query::<GetParams>::try_from_uri(request.uri()) else {
        return problem(StatusCode::BAD_REQUEST, "malformed query string");
    };
    let Some(query) = params.query.filter(|q| !q.trim().is_empty()) else {
        return problem(
            StatusCode::BAD_REQUEST,
            "a GET request needs a `query` parameter",
        );
    };
    let variables = match params
        .variables
        .as_deref()
        .map(serde_json::from_str::<serde_json::Value>)
    {
        None => None,
        Some(Ok(v)) => Some(v),
        Some(Err(_)) => {
            return problem(StatusCode::BAD_REQUEST, "`variables` must be a JSON object");
        }
    };
    if is_mutation(&query, params.operation_name.as_deref()) {
        let mut r = problem(
            StatusCode::METHOD_NOT_ALLOWED,
            "mutations must be sent with POST",
        );
        r.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("POST"));
        return r;
    }
    let mut body = serde_json::json!({"query": query});
    if let Some(v) = variables {
        body["variables"] = v;
    }
    if let Some(op) = params.operation_name {
        body["operationName"] = op.into();
    }
    run(state, &headers, body).await
}

async fn graphql_post(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Response {
    // Too large: refused from the declared length, before reading a byte of the body; a body
    // without a declared length is cut off at the limit.
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    let too_large = || {
        problem(
            StatusCode::PAYLOAD_TOO_LARGE,
            &format!("the body exceeds {MAX_BODY_BYTES} bytes"),
        )
    };
    if declared.is_some_and(|n| n > MAX_BODY_BYTES) {
        return too_large();
    }
    let Ok(body) = axum::body::to_bytes(body, MAX_BODY_BYTES).await else {
        return too_large();
    };
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if content_type.split(';').next().map(str::trim) != Some("application/json") {
        return problem(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "send the request as `Content-Type: application/json`",
        );
    }
    let Ok(json) = serde_json::from_slice::<serde_json::Value>(&body) else {
        return problem(StatusCode::BAD_REQUEST, "the body is not valid JSON");
    };
    run(state, &headers, json).await
}

/// Aliases in a document, fragments included; `None` when it does not parse (validation reports it).
fn alias_count(query: &str) -> Option<usize> {
    use async_graphql::parser::types::{Selection, SelectionSet};
    fn count(set: &SelectionSet) -> usize {
        set.items
            .iter()
            .map(|s| match &s.node {
                Selection::Field(f) => {
                    usize::from(f.node.alias.is_some()) + count(&f.node.selection_set.node)
                }
                Selection::InlineFragment(i) => count(&i.node.selection_set.node),
                Selection::FragmentSpread(_) => 0,
            })
            .sum()
    }
    let doc = async_graphql::parser::parse_query(query).ok()?;
    let operations: usize = doc
        .operations
        .iter()
        .map(|(_, op)| count(&op.node.selection_set.node))
        .sum();
    let fragments: usize = doc
        .fragments
        .values()
        .map(|f| count(&f.node.selection_set.node))
        .sum();
    Some(operations + fragments)
}

/// A request refused before execution, as a GraphQL error with `code`.
fn refused(accept: Accept, code: &str, message: &str) -> Response {
    let body = serde_json::json!({"errors": [{"message": message, "extensions": {"code": code}}]});
    let (status, media) = match accept {
        Accept::GraphqlResponse => (StatusCode::BAD_REQUEST, GRAPHQL_RESPONSE),
        Accept::Json => (StatusCode::OK, "application/json"),
    };
    (status, [(header::CONTENT_TYPE, media)], body.to_string()).into_response()
}

fn is_mutation(query: &str, operation: Option<&str>) -> bool {
    use async_graphql::parser::types::{DocumentOperations, OperationType};
    let Ok(doc) = async_graphql::parser::parse_query(query) else {
        return false;
    };
    let kind = match (&doc.operations, operation) {
        (DocumentOperations::Single(op), _) => Some(op.node.ty),
        (DocumentOperations::Multiple(ops), Some(name)) => ops.get(name).map(|o| o.node.ty),
        (DocumentOperations::Multiple(ops), None) if ops.len() == 1 => {
            ops.values().next().map(|o| o.node.ty)
        }
        _ => None,
    };
    matches!(kind, Some(OperationType::Mutation))
}

async fn run(state: AppState, headers: &HeaderMap, body: serde_json::Value) -> Response {
    let Some(accept) = negotiate(headers) else {
        return problem(
            StatusCode::NOT_ACCEPTABLE,
            "accept application/graphql-response+json or application/json",
        );
    };
    let request: async_graphql::Request = match serde_json::from_value(body) {
        Ok(r) => r,
        Err(e) => {
            return problem(
                StatusCode::BAD_REQUEST,
                &format!("not a GraphQL request: {e}"),
            );
        }
    };
    if let Some(n) = alias_count(&request.query).filter(|n| *n > MAX_ALIASES) {
        return refused(
            accept,
            "ALIAS_LIMIT",
            &format!("the document uses {n} aliases; at most {MAX_ALIASES} are allowed"),
        );
    }
    let Some(composition) = state.schema.get() else {
        return problem(
            StatusCode::SERVICE_UNAVAILABLE,
            "the schema is not composed yet",
        );
    };
    let request = if state.introspection {
        request
    } else {
        request.disable_introspection()
    };
    let metadata: Vec<(String, String)> = FORWARDED
        .iter()
        .filter_map(|h| {
            headers
                .get(*h)
                .and_then(|v| v.to_str().ok())
                .map(|v| ((*h).to_owned(), v.to_owned()))
        })
        .collect();
    let started = Instant::now();
    let ctx = RequestCtx::new(Some(started + state.operation_timeout), metadata);
    // A hard stop a little after the budget, in case something ignores its deadline.
    // One trace per operation, continuing the caller's trace context if it sent one.
    let span = tracing::info_span!(
        "graphql.operation",
        otel.name = "graphql",
        otel.kind = "server"
    );
    let _ = span.set_parent(patto_service_kit::observe::extract_context(headers));
    let outcome = tokio::time::timeout(
        state.operation_timeout + Duration::from_secs(1),
        tracing::Instrument::instrument(execute(&composition.schema, request, ctx.clone()), span),
    )
    .await;
    let mut response = match outcome {
        Ok(r) => r,
        Err(_) => {
            let err = async_graphql::ServerError::new("the operation ran out of time", None);
            let mut r = async_graphql::Response::from_errors(vec![err]);
            r.errors[0]
                .extensions
                .get_or_insert_with(Default::default)
                .set("code", "TIMEOUT");
            r
        }
    };
    let (calls, per_service) = ctx.calls();
    state
        .metrics
        .observe(started.elapsed(), calls, response.errors.is_empty());
    if headers
        .get(DEBUG_HEADER)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("calls"))
    {
        let per: serde_json::Map<String, serde_json::Value> = per_service
            .into_iter()
            .map(|(k, v)| (k, v.into()))
            .collect();
        if let Ok(v) =
            async_graphql::Value::from_json(serde_json::json!({"total": calls, "perService": per}))
        {
            response = response.extension("backendCalls", v);
        }
    }
    let request_error = matches!(response.data, async_graphql::Value::Null)
        && !response.errors.is_empty()
        && response.errors.iter().all(|e| e.path.is_empty());
    let (status, media) = match accept {
        Accept::GraphqlResponse if request_error => (StatusCode::BAD_REQUEST, GRAPHQL_RESPONSE),
        Accept::GraphqlResponse => (StatusCode::OK, GRAPHQL_RESPONSE),
        Accept::Json => (StatusCode::OK, "application/json"),
    };
    let body = serde_json::to_vec(&response)
        .unwrap_or_else(|_| b"{\"errors\":[{\"message\":\"unserialisable response\"}]}".to_vec());
    (status, [(header::CONTENT_TYPE, media)], body).into_response()
}

async fn websocket(state: AppState, request: axum::extract::Request) -> Response {
    let Some(composition) = state.schema.get() else {
        return problem(
            StatusCode::SERVICE_UNAVAILABLE,
            "the schema is not composed yet",
        );
    };
    let (mut parts, _) = request.into_parts();
    if parts.method != Method::GET {
        return problem(StatusCode::METHOD_NOT_ALLOWED, "WebSocket upgrades use GET");
    }
    let protocol = match GraphQLProtocol::from_request_parts(&mut parts, &()).await {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };
    let upgrade = match WebSocketUpgrade::from_request_parts(&mut parts, &()).await {
        Ok(u) => u,
        Err(e) => return e.into_response(),
    };
    let schema = composition.schema.clone();
    upgrade
        .protocols(ALL_WEBSOCKET_PROTOCOLS)
        .on_upgrade(move |socket| GraphQLWebSocket::new(socket, schema, protocol).serve())
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_negotiation() {
        let h = |v: &str| {
            let mut m = HeaderMap::new();
            m.insert(header::ACCEPT, HeaderValue::from_str(v).unwrap());
            negotiate(&m)
        };
        assert_eq!(negotiate(&HeaderMap::new()), Some(Accept::Json));
        assert_eq!(
            h("application/graphql-response+json, application/json;q=0.9"),
            Some(Accept::GraphqlResponse)
        );
        assert_eq!(h("application/json"), Some(Accept::Json));
        assert_eq!(h("*/*"), Some(Accept::Json));
        assert_eq!(h("text/html"), None);
    }

    #[test]
    fn mutations_are_recognised() {
        assert!(is_mutation("mutation { a }", None));
        assert!(!is_mutation("{ a }", None));
        assert!(is_mutation("query A { a } mutation B { b }", Some("B")));
        assert!(!is_mutation("query A { a } mutation B { b }", Some("A")));
    }
}
