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
//!
//! Before anything runs, every GraphQL request (POST, GET, and each WebSocket subscription):
//! 1. is authenticated by the configured [`Authenticator`]: credentials that cannot be verified get
//!    401 with `WWW-Authenticate: Bearer error="invalid_token"` and the code `UNAUTHENTICATED`; the
//!    [`Principal`] goes into the request data, where resolvers read it with
//!    `ctx.data_opt::<Principal>()`. A WebSocket takes its credentials from the upgrade request or
//!    from the `connection_init` payload (`{"Authorization": "Bearer …"}`);
//! 2. is counted against the caller's and its comune's rate limits ([`crate::ratelimit`]): over a
//!    limit it gets 429 with `Retry-After` and the code `RATE_LIMITED`;
//! 3. may be a persisted query, and in allow-list mode must be an allowed one ([`crate::apq`]).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_graphql::http::{ALL_WEBSOCKET_PROTOCOLS, GraphiQLSource};
use async_graphql_axum::{GraphQLProtocol, GraphQLWebSocket};
use axum::Router;
use axum::extract::{ConnectInfo, FromRequestParts, Query, State, WebSocketUpgrade};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use futures::StreamExt;
use futures::stream::BoxStream;
use patto_service_kit::Principal;
use patto_service_kit::auth::Authenticator;
use serde::Deserialize;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::apq::{PersistedQueries, Refusal};
use crate::discovery::SchemaHandle;
use crate::errors::{RATE_LIMITED, UNAUTHENTICATED};
use crate::metrics::Metrics;
use crate::ratelimit::{Limited, RateLimiter, client_ip};
use crate::request::{Executed, RequestCtx, execute};
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
    /// Who the caller is, from the request headers.
    pub authenticator: Arc<dyn Authenticator>,
    /// Persisted queries and the allow-list.
    pub persisted: Arc<PersistedQueries>,
    /// Rate limits per caller and per comune.
    pub limiter: Arc<RateLimiter>,
    /// Whether anonymous callers are keyed by `X-Forwarded-For` (`PATTO_TRUST_FORWARDED_FOR`).
    pub trust_forwarded_for: bool,
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

/// The media type of a response to these headers, for refusals made before negotiation matters.
fn media_for(headers: &HeaderMap) -> &'static str {
    match negotiate(headers) {
        Some(Accept::GraphqlResponse) => GRAPHQL_RESPONSE,
        _ => "application/json",
    }
}

/// A GraphQL error body with `extensions` (holding at least `code`).
fn error_body(message: &str, extensions: serde_json::Value) -> String {
    serde_json::json!({"errors": [{"message": message, "extensions": extensions}]}).to_string()
}

/// Who is calling, or the response refusing credentials that cannot be verified. Only the
/// authenticator's message for UNAUTHENTICATED and PERMISSION_DENIED reaches the client; any
/// other failure (say, the identity provider's keys cannot be fetched) is logged and answered
/// with a fixed message.
async fn authenticate(state: &AppState, headers: &HeaderMap) -> Result<Principal, Response> {
    let status = match state.authenticator.authenticate(headers).await {
        Ok(principal) => return Ok(principal),
        Err(status) => status,
    };
    state.metrics.unauthenticated();
    let media = media_for(headers);
    let (http, code, message) = auth_failure(&status);
    let mut response = (
        http,
        [(header::CONTENT_TYPE, media)],
        error_body(&message, serde_json::json!({"code": code})),
    )
        .into_response();
    if http == StatusCode::UNAUTHORIZED {
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer error=\"invalid_token\""),
        );
    }
    Err(response)
}

/// HTTP status, `extensions.code` and message for an authenticator's refusal.
fn auth_failure(status: &tonic::Status) -> (StatusCode, &'static str, String) {
    match status.code() {
        tonic::Code::Unauthenticated => (
            StatusCode::UNAUTHORIZED,
            UNAUTHENTICATED,
            status.message().to_owned(),
        ),
        tonic::Code::PermissionDenied => (
            StatusCode::FORBIDDEN,
            "FORBIDDEN",
            status.message().to_owned(),
        ),
        tonic::Code::Unavailable | tonic::Code::DeadlineExceeded => {
            tracing::warn!(?status, "authenticator unavailable");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "SERVICE_UNAVAILABLE",
                "the credentials cannot be checked right now; retry later".to_owned(),
            )
        }
        _ => {
            tracing::error!(?status, "authenticator failed");
            (
                StatusCode::UNAUTHORIZED,
                UNAUTHENTICATED,
                "the credentials could not be verified".to_owned(),
            )
        }
    }
}

/// The 429 answer to a request over a rate limit.
fn rate_limited(headers: &HeaderMap, limited: &Limited) -> Response {
    let retry = limited.retry_after_secs();
    let body = error_body(
        &limited.message(),
        serde_json::json!({
            "code": RATE_LIMITED,
            "limit": limited.scope.name(),
            "limitPerMinute": limited.limit,
            "retryAfterSeconds": retry,
        }),
    );
    (
        StatusCode::TOO_MANY_REQUESTS,
        [
            (header::CONTENT_TYPE, media_for(headers).to_owned()),
            (header::RETRY_AFTER, retry.to_string()),
        ],
        body,
    )
        .into_response()
}

/// Authenticates a request and counts it against the rate limits: the caller, or the refusal.
async fn admit(
    state: &AppState,
    headers: &HeaderMap,
    peer: Option<SocketAddr>,
) -> Result<Principal, Response> {
    let principal = authenticate(state, headers).await?;
    let client = client_ip(peer, headers, state.trust_forwarded_for);
    match state.limiter.check(&principal, client).await {
        Ok(()) => Ok(principal),
        Err(limited) => Err(rate_limited(headers, &limited)),
    }
}

fn peer_of(request: &axum::extract::Request) -> Option<SocketAddr> {
    request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0)
}

#[derive(Debug, Deserialize)]
struct GetParams {
    query: Option<String>,
    variables: Option<String>,
    #[serde(rename = "operationName")]
    operation_name: Option<String>,
    /// JSON, as APQ clients send `{"persistedQuery": …}` over GET.
    extensions: Option<String>,
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
    let principal = match admit(&state, &headers, peer_of(&request)).await {
        Ok(p) => p,
        Err(refused) => return refused,
    };
    let Ok(Query(params)) = Query::<GetParams>::try_from_uri(request.uri()) else {
        return problem(StatusCode::BAD_REQUEST, "malformed query string");
    };
    let query = params.query.filter(|q| !q.trim().is_empty());
    let extensions = match params
        .extensions
        .as_deref()
        .map(serde_json::from_str::<serde_json::Value>)
    {
        None => None,
        Some(Ok(v)) if v.is_object() => Some(v),
        Some(_) => {
            return problem(
                StatusCode::BAD_REQUEST,
                "`extensions` must be a JSON object",
            );
        }
    };
    if query.is_none() && extensions.is_none() {
        return problem(
            StatusCode::BAD_REQUEST,
            "a GET request needs a `query` parameter (or a persisted query in `extensions`)",
        );
    }
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
    let mut body = serde_json::Map::new();
    if let Some(q) = query {
        body.insert("query".into(), q.into());
    }
    if let Some(v) = variables {
        body.insert("variables".into(), v);
    }
    if let Some(op) = params.operation_name {
        body.insert("operationName".into(), op.into());
    }
    if let Some(e) = extensions {
        body.insert("extensions".into(), e);
    }
    run(state, &headers, body.into(), principal, true).await
}

async fn graphql_post(State(state): State<AppState>, request: axum::extract::Request) -> Response {
    let peer = peer_of(&request);
    let (parts, body) = request.into_parts();
    let headers = parts.headers;
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
    // Authenticated and counted before the body is read, so refusals cost no upload.
    let principal = match admit(&state, &headers, peer).await {
        Ok(p) => p,
        Err(refused) => return refused,
    };
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
    run(state, &headers, json, principal, false).await
}

/// Aliases in a document, fragments included.
fn alias_count(doc: &async_graphql::parser::types::ExecutableDocument) -> usize {
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
    operations + fragments
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
    // From the cache of parsed documents, where execution finds it again.
    let Some(doc) = crate::request::document(query) else {
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

/// The answer to a request refused by the persisted-query layer.
fn persisted_refusal(accept: Accept, refusal: &Refusal) -> Response {
    let media = match accept {
        Accept::GraphqlResponse => GRAPHQL_RESPONSE,
        Accept::Json => "application/json",
    };
    (
        refusal.status(),
        [(header::CONTENT_TYPE, media)],
        error_body(
            &refusal.message(),
            serde_json::json!({"code": refusal.code()}),
        ),
    )
        .into_response()
}

/// The request headers forwarded to the backends.
fn forwarded(headers: &HeaderMap) -> Vec<(String, String)> {
    FORWARDED
        .iter()
        .filter_map(|h| {
            headers
                .get(*h)
                .and_then(|v| v.to_str().ok())
                .map(|v| ((*h).to_owned(), v.to_owned()))
        })
        .collect()
}

async fn run(
    state: AppState,
    headers: &HeaderMap,
    mut body: serde_json::Value,
    principal: Principal,
    via_get: bool,
) -> Response {
    let Some(accept) = negotiate(headers) else {
        return problem(
            StatusCode::NOT_ACCEPTABLE,
            "accept application/graphql-response+json or application/json",
        );
    };
    let resolved = {
        let query = body.get("query").and_then(serde_json::Value::as_str);
        let persisted = body.get("extensions").and_then(|e| e.get("persistedQuery"));
        state.persisted.resolve(query, persisted).await
    };
    match resolved {
        Ok(None) => {}
        Ok(Some(text)) => {
            if let Some(obj) = body.as_object_mut() {
                obj.insert("query".into(), text.as_ref().into());
            }
        }
        Err(refusal) => return persisted_refusal(accept, &refusal),
    }
    // Checked on the document that would run, which a persisted query only now revealed.
    if via_get
        && is_mutation(
            body.get("query")
                .and_then(serde_json::Value::as_str)
                .unwrap_or(""),
            body.get("operationName")
                .and_then(serde_json::Value::as_str),
        )
    {
        let mut r = problem(
            StatusCode::METHOD_NOT_ALLOWED,
            "mutations must be sent with POST",
        );
        r.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("POST"));
        return r;
    }
    let mut request: async_graphql::Request = match serde_json::from_value(body) {
        Ok(r) => r,
        Err(e) => {
            return problem(
                StatusCode::BAD_REQUEST,
                &format!("not a GraphQL request: {e}"),
            );
        }
    };
    // Parsed once (or taken from the cache of parsed documents) and kept in the request, so
    // execution does not parse it again; one that does not parse is left to execution, which
    // reports the syntax error.
    if let Some(n) = crate::request::parse(&mut request)
        .map(alias_count)
        .filter(|n| *n > MAX_ALIASES)
    {
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
    // Resolvers read the caller with `ctx.data_opt::<Principal>()`.
    let request = request.data(principal);
    let metadata = forwarded(headers);
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
        tracing::Instrument::instrument(execute(&composition, request, ctx.clone()), span),
    )
    .await;
    let (mut response, planned) = match outcome {
        Ok(Executed::Engine(r)) => (r, None),
        Ok(Executed::Planned(data)) => (
            async_graphql::Response::new(async_graphql::Value::Null),
            Some(data),
        ),
        Err(_) => {
            let err = async_graphql::ServerError::new("the operation ran out of time", None);
            let mut r = async_graphql::Response::from_errors(vec![err]);
            r.errors[0]
                .extensions
                .get_or_insert_with(Default::default)
                .set("code", "TIMEOUT");
            (r, None)
        }
    };
    if planned.is_some() {
        state.metrics.planned();
    }
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
    if headers
        .get(DEBUG_HEADER)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("plan"))
    {
        let how = if planned.is_some() {
            "compiled"
        } else {
            "engine"
        };
        response = response.extension("executor", async_graphql::Value::from(how));
    }
    let request_error = matches!(response.data, async_graphql::Value::Null)
        && !response.errors.is_empty()
        && response.errors.iter().all(|e| e.path.is_empty());
    let (status, media) = match accept {
        Accept::GraphqlResponse if request_error => (StatusCode::BAD_REQUEST, GRAPHQL_RESPONSE),
        Accept::GraphqlResponse => (StatusCode::OK, GRAPHQL_RESPONSE),
        Accept::Json => (StatusCode::OK, "application/json"),
    };
    let body = match &planned {
        Some(data) => planned_body(data, &response.extensions),
        None => serde_json::to_vec(&response).unwrap_or_else(|_| {
            b"{\"errors\":[{\"message\":\"unserialisable response\"}]}".to_vec()
        }),
    };
    (status, [(header::CONTENT_TYPE, media)], body).into_response()
}

/// The body of an operation a compiled plan answered: what serializing the engine's response
/// gives (`data`, then `extensions` when any; a plan never has errors).
fn planned_body(
    data: &[u8],
    extensions: &std::collections::BTreeMap<String, async_graphql::Value>,
) -> Vec<u8> {
    let mut body = Vec::with_capacity(data.len() + 32);
    body.extend_from_slice(b"{\"data\":");
    body.extend_from_slice(data);
    if !extensions.is_empty() {
        body.extend_from_slice(b",\"extensions\":");
        if serde_json::to_writer(&mut body, extensions).is_err() {
            body.extend_from_slice(b"{}");
        }
    }
    body.push(b'}');
    body
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
    // Credentials on the upgrade request are checked before upgrading, so a bad token gets a
    // plain 401; credentials in `connection_init` are checked when that message arrives.
    let upgrade_principal = match authenticate(&state, &parts.headers).await {
        Ok(p) => p,
        Err(refused) => return refused,
    };
    let peer = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0);
    let executor = GuardedSchema {
        schema: composition.schema.clone(),
        client: client_ip(peer, &parts.headers, state.trust_forwarded_for),
        state: state.clone(),
    };
    let headers = parts.headers;
    upgrade
        .protocols(ALL_WEBSOCKET_PROTOCOLS)
        .on_upgrade(move |socket| {
            GraphQLWebSocket::new(socket, executor, protocol)
                .on_connection_init(move |payload| {
                    connection_init(state, headers, upgrade_principal, payload)
                })
                .serve()
        })
        .into_response()
}

/// What a WebSocket connection established at `connection_init`: the caller and the metadata
/// its subscriptions forward to the backends.
#[derive(Clone)]
struct WsConnection {
    principal: Principal,
    metadata: Vec<(String, String)>,
}

/// Authenticates a WebSocket connection from its `connection_init` payload
/// (`{"Authorization": "Bearer …"}` or `{"authorization": …}`), else keeps the upgrade request's
/// caller. An error closes the connection with the authenticator's message.
async fn connection_init(
    state: AppState,
    mut headers: HeaderMap,
    upgrade_principal: Principal,
    payload: serde_json::Value,
) -> async_graphql::Result<async_graphql::Data> {
    let token = payload
        .get("Authorization")
        .or_else(|| payload.get("authorization"))
        .and_then(serde_json::Value::as_str);
    let principal = match token {
        None => upgrade_principal,
        Some(token) => {
            let value = HeaderValue::from_str(token).map_err(|_| {
                state.metrics.unauthenticated();
                async_graphql::Error::new("the Authorization value is not a valid header value")
            })?;
            headers.insert(header::AUTHORIZATION, value);
            state
                .authenticator
                .authenticate(&headers)
                .await
                .map_err(|status| {
                    state.metrics.unauthenticated();
                    async_graphql::Error::new(auth_failure(&status).2)
                })?
        }
    };
    let mut data = async_graphql::Data::default();
    data.insert(WsConnection {
        principal: principal.clone(),
        metadata: forwarded(&headers),
    });
    data.insert(principal);
    Ok(data)
}

/// The schema as a WebSocket connection runs it: each subscription is counted against the rate
/// limits, may be a persisted query (and must be allowed in allow-list mode), and carries the
/// caller and the forwarded metadata.
#[derive(Clone)]
struct GuardedSchema {
    schema: async_graphql::dynamic::Schema,
    state: AppState,
    client: IpAddr,
}

impl GuardedSchema {
    async fn subscribe(
        self,
        mut request: async_graphql::Request,
        session: Arc<async_graphql::Data>,
    ) -> BoxStream<'static, async_graphql::Response> {
        let connection = session
            .get(&std::any::TypeId::of::<WsConnection>())
            .and_then(|d| d.downcast_ref::<WsConnection>())
            .cloned()
            .unwrap_or(WsConnection {
                principal: Principal::Anonymous,
                metadata: Vec::new(),
            });
        if let Err(limited) = self
            .state
            .limiter
            .check(&connection.principal, self.client)
            .await
        {
            return refusal_stream(
                &limited.message(),
                &[
                    ("code", RATE_LIMITED.into()),
                    ("limit", limited.scope.name().into()),
                    ("limitPerMinute", limited.limit.into()),
                    ("retryAfterSeconds", limited.retry_after_secs().into()),
                ],
            );
        }
        let persisted = request
            .extensions
            .0
            .get("persistedQuery")
            .cloned()
            .and_then(|v| v.into_json().ok());
        match self
            .state
            .persisted
            .resolve(Some(&request.query), persisted.as_ref())
            .await
        {
            Ok(None) => {}
            Ok(Some(text)) => request.query = text.to_string(),
            Err(refusal) => {
                return refusal_stream(&refusal.message(), &[("code", refusal.code().into())]);
            }
        }
        if !self.state.introspection {
            request = request.disable_introspection();
        }
        let request = request
            .data(connection.principal)
            .data(RequestCtx::new(None, connection.metadata));
        self.schema
            .execute_stream_with_session_data(request, session)
    }
}

/// A subscription answered by one error and then completed.
fn refusal_stream(
    message: &str,
    extensions: &[(&str, async_graphql::Value)],
) -> BoxStream<'static, async_graphql::Response> {
    let mut error = async_graphql::ServerError::new(message, None);
    let ext = error.extensions.get_or_insert_with(Default::default);
    for (k, v) in extensions {
        ext.set(*k, v.clone());
    }
    futures::stream::once(std::future::ready(async_graphql::Response::from_errors(
        vec![error],
    )))
    .boxed()
}

impl async_graphql::Executor for GuardedSchema {
    fn execute(
        &self,
        request: async_graphql::Request,
    ) -> impl Future<Output = async_graphql::Response> + Send {
        // The WebSocket protocol runs every operation through `execute_stream`; should anything
        // call this, it goes through the same guards.
        let mut stream = self.execute_stream(request, None);
        async move {
            stream.next().await.unwrap_or_else(|| {
                async_graphql::Response::from_errors(vec![async_graphql::ServerError::new(
                    "the operation produced no response",
                    None,
                )])
            })
        }
    }

    fn execute_stream(
        &self,
        request: async_graphql::Request,
        session_data: Option<Arc<async_graphql::Data>>,
    ) -> BoxStream<'static, async_graphql::Response> {
        let this = self.clone();
        futures::stream::once(this.subscribe(request, session_data.unwrap_or_default()))
            .flatten()
            .boxed()
    }
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
