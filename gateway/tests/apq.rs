//! Automatic persisted queries end to end: a real culture service (SQLite), gateways on
//! ephemeral ports, and a real Redis (`PATTO_TEST_REDIS_URL`, default `redis://127.0.0.1:6379`)
//! for the shared store. Redis tests skip with a note when Redis is unreachable, unless
//! `PATTO_REQUIRE_REDIS=1`.

mod support;

use std::sync::Arc;

use patto_gateway::GatewayConfig;
use patto_gateway::apq::{Allowlist, sha256_hex};
use patto_service_kit::testing::{HeaderPrincipal, TestServer};
use serde_json::{Value, json};
use support::{Gateway, Reply, TestRedis, UNREACHABLE_REDIS, culture};

const EVENTS: &str = r#"{ events(istatCode: "082053", first: 1) { nodes { name } } }"#;

/// What every GraphQL request of these tests carries.
const JSON: [(&str, &str); 2] = [
    ("content-type", "application/json"),
    ("accept", "application/json"),
];

impl Reply {
    /// The name of the first event listed, `""` without one.
    fn event_name(&self) -> &str {
        self.body["data"]["events"]["nodes"][0]["name"]
            .as_str()
            .unwrap_or("")
    }
}

impl Gateway {
    /// POSTs `body` to `/graphql`.
    async fn post(&self, body: Value) -> Reply {
        self.send("POST", "/graphql", &JSON, &body.to_string())
            .await
    }

    /// GETs `/graphql` with `params` (percent-encoded).
    async fn get(&self, params: &[(&str, &str)]) -> Reply {
        let query: Vec<String> = params
            .iter()
            .map(|(k, v)| format!("{k}={}", percent_encode(v)))
            .collect();
        self.send("GET", &format!("/graphql?{}", query.join("&")), &JSON, "")
            .await
    }
}

fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn persisted(hash: &str) -> Value {
    json!({"persistedQuery": {"version": 1, "sha256Hash": hash}})
}

/// The shared gateway configuration, with callers named by [`HeaderPrincipal`].
fn config(culture: &TestServer) -> GatewayConfig {
    GatewayConfig {
        authenticator: Arc::new(HeaderPrincipal),
        ..support::config(culture)
    }
}

/// Hash-only miss → registration with the text → hash-only hit; a hash that does not match the
/// text; GET with APQ; mutations stay POST-only when sent by hash.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn persisted_queries_round_trip_in_process() {
    let culture = culture().await;
    let gw = Gateway::start(config(&culture)).await;
    let hash = sha256_hex(EVENTS);

    let miss = gw.post(json!({"extensions": persisted(&hash)})).await;
    assert_eq!(miss.status, 200, "{}", miss.body);
    assert_eq!(miss.code(), "PERSISTED_QUERY_NOT_FOUND");
    assert_eq!(miss.body["errors"][0]["message"], "PersistedQueryNotFound");

    let registered = gw
        .post(json!({"query": EVENTS, "extensions": persisted(&hash)}))
        .await;
    assert_eq!(registered.status, 200, "{}", registered.body);
    let name = registered.event_name().to_owned();
    assert!(!name.is_empty(), "{}", registered.body);

    let hit = gw.post(json!({"extensions": persisted(&hash)})).await;
    assert_eq!(
        (hit.status, hit.event_name()),
        (200, name.as_str()),
        "{}",
        hit.body
    );

    let mismatch = gw
        .post(json!({"query": "{ __typename }", "extensions": persisted(&hash)}))
        .await;
    assert_eq!(mismatch.status, 400, "{}", mismatch.body);
    assert_eq!(
        mismatch.body["errors"][0]["message"],
        "provided sha does not match query"
    );
    assert_eq!(mismatch.code(), "BAD_REQUEST");

    let bad_version = gw
        .post(json!({"extensions": {"persistedQuery": {"version": 2, "sha256Hash": hash}}}))
        .await;
    assert_eq!(
        (bad_version.status, bad_version.code()),
        (400, "BAD_REQUEST")
    );

    // GET: `extensions` as a JSON URL parameter, with or without the text.
    let ext = persisted(&hash).to_string();
    let get_hit = gw.get(&[("extensions", &ext)]).await;
    assert_eq!(
        (get_hit.status, get_hit.event_name()),
        (200, name.as_str()),
        "{}",
        get_hit.body
    );
    let other = r#"{ events(istatCode: "082053", first: 2) { nodes { name } } }"#;
    let other_ext = persisted(&sha256_hex(other)).to_string();
    let get_miss = gw.get(&[("extensions", &other_ext)]).await;
    assert_eq!(
        (get_miss.status, get_miss.code()),
        (200, "PERSISTED_QUERY_NOT_FOUND")
    );
    let get_register = gw
        .get(&[("query", other), ("extensions", &other_ext)])
        .await;
    assert_eq!(get_register.status, 200, "{}", get_register.body);
    assert!(
        get_register.body["errors"].is_null(),
        "{}",
        get_register.body
    );
    assert_eq!(gw.get(&[("extensions", &other_ext)]).await.status, 200);
    assert_eq!(
        gw.get(&[("extensions", "[1]")]).await.status,
        400,
        "extensions must be an object"
    );

    // A mutation registered over POST cannot be run by hash over GET.
    let mutation =
        r#"mutation { bookEvent(eventId: "nope", fiscalCode: "x", seats: 1) { booking { id } } }"#;
    let m_hash = sha256_hex(mutation);
    gw.post(json!({"query": mutation, "extensions": persisted(&m_hash)}))
        .await;
    let via_get = gw
        .get(&[("extensions", &persisted(&m_hash).to_string())])
        .await;
    assert_eq!(via_get.status, 405, "{}", via_get.body);
    assert_eq!(
        via_get.headers.get("allow").and_then(|v| v.to_str().ok()),
        Some("POST")
    );

    let hits = gw
        .metric("patto_gateway_persisted_queries_total{outcome=\"hit\"}")
        .await;
    let misses = gw
        .metric("patto_gateway_persisted_queries_total{outcome=\"miss\"}")
        .await;
    let registered = gw
        .metric("patto_gateway_persisted_queries_total{outcome=\"registered\"}")
        .await;
    assert_eq!((hits, misses, registered), (4, 2, 3));
    gw.stop().await;
    culture.stop().await.unwrap();
}

/// Two gateways sharing one Redis: a hash registered on one is served by the other, and the
/// entry expires.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn persisted_queries_are_shared_through_redis() {
    let Some(redis) = TestRedis::connect("persisted_queries_are_shared_through_redis").await else {
        return;
    };
    let culture = culture().await;
    let shared = redis.shared(config(&culture));
    let a = Gateway::start(shared.clone()).await;
    let b = Gateway::start(shared).await;
    let hash = sha256_hex(EVENTS);

    let miss = b.post(json!({"extensions": persisted(&hash)})).await;
    assert_eq!(miss.code(), "PERSISTED_QUERY_NOT_FOUND", "{}", miss.body);
    let registered = a
        .post(json!({"query": EVENTS, "extensions": persisted(&hash)}))
        .await;
    assert!(registered.body["errors"].is_null(), "{}", registered.body);
    let hit = b.post(json!({"extensions": persisted(&hash)})).await;
    assert_eq!(hit.status, 200, "{}", hit.body);
    assert_eq!(hit.event_name(), registered.event_name(), "{}", hit.body);

    let mut c = redis.conn().await;
    let key = format!("{}apq:{hash}", redis.prefix);
    let stored: Option<String> = redis::cmd("GET")
        .arg(&key)
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!(stored.as_deref(), Some(EVENTS));
    let ttl: i64 = redis::cmd("TTL")
        .arg(&key)
        .query_async(&mut c)
        .await
        .unwrap();
    assert!((1..=24 * 3600).contains(&ttl), "ttl {ttl}");

    // A third gateway starting later sees the hash too (nothing is kept only in process).
    let c3 = Gateway::start(redis.shared(config(&culture))).await;
    let hit = c3
        .get(&[("extensions", &persisted(&hash).to_string())])
        .await;
    assert_eq!(hit.event_name(), registered.event_name(), "{}", hit.body);
    a.stop().await;
    b.stop().await;
    c3.stop().await;
    culture.stop().await.unwrap();
}

/// Redis unreachable: a hash alone is a miss (the client resends the text), the text runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn persisted_queries_survive_a_redis_outage() {
    let culture = culture().await;
    let gw = Gateway::start(GatewayConfig {
        redis_url: Some(UNREACHABLE_REDIS.into()),
        ..config(&culture)
    })
    .await;
    let hash = sha256_hex(EVENTS);
    let miss = gw.post(json!({"extensions": persisted(&hash)})).await;
    assert_eq!(
        (miss.status, miss.code()),
        (200, "PERSISTED_QUERY_NOT_FOUND"),
        "{}",
        miss.body
    );
    let ran = gw
        .post(json!({"query": EVENTS, "extensions": persisted(&hash)}))
        .await;
    assert_eq!(ran.status, 200, "{}", ran.body);
    assert!(!ran.event_name().is_empty(), "{}", ran.body);
    assert!(gw.metric("patto_gateway_redis_errors_total").await >= 1);
    gw.stop().await;
    culture.stop().await.unwrap();
}

/// Allow-list mode: listed documents run by text or by hash; anything else is refused before
/// execution, and registering new hashes is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn allowlist_mode_runs_only_listed_documents() {
    let culture = culture().await;
    // The file format, read as the gateway reads PATTO_GRAPHQL_ALLOWLIST.
    let dir = std::env::temp_dir().join(format!("patto-allowlist-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("allowlist.json");
    std::fs::write(&file, serde_json::to_string(&[EVENTS]).unwrap()).unwrap();
    let from_env = GatewayConfig::from_source(
        &[(
            "PATTO_GRAPHQL_ALLOWLIST",
            file.to_string_lossy().into_owned(),
        )]
        .into_iter()
        .collect::<std::collections::HashMap<&'static str, String>>(),
    )
    .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let list = from_env.allowlist.expect("allow-list loaded");
    assert_eq!(list.len(), Allowlist::from_documents([EVENTS]).len());
    let gw = Gateway::start(GatewayConfig {
        allowlist: Some(list),
        ..config(&culture)
    })
    .await;
    let hash = sha256_hex(EVENTS);

    let by_text = gw.post(json!({"query": EVENTS})).await;
    assert_eq!(by_text.status, 200, "{}", by_text.body);
    assert!(!by_text.event_name().is_empty(), "{}", by_text.body);
    let by_hash = gw.post(json!({"extensions": persisted(&hash)})).await;
    assert_eq!(
        by_hash.event_name(),
        by_text.event_name(),
        "{}",
        by_hash.body
    );
    let by_get = gw
        .get(&[("extensions", &persisted(&hash).to_string())])
        .await;
    assert_eq!(by_get.event_name(), by_text.event_name(), "{}", by_get.body);

    let unlisted = r#"{ events(istatCode: "082053", first: 5) { nodes { name } } }"#;
    let refused = gw.post(json!({"query": unlisted})).await;
    assert_eq!(
        (refused.status, refused.code()),
        (400, "PERSISTED_QUERY_NOT_ALLOWED"),
        "{}",
        refused.body
    );
    assert!(refused.body["data"].is_null());
    let registration = gw
        .post(json!({"query": unlisted, "extensions": persisted(&sha256_hex(unlisted))}))
        .await;
    assert_eq!(
        (registration.status, registration.code()),
        (400, "PERSISTED_QUERY_NOT_ALLOWED")
    );
    // Still refused afterwards: nothing was registered.
    let again = gw
        .post(json!({"extensions": persisted(&sha256_hex(unlisted))}))
        .await;
    assert_eq!(again.code(), "PERSISTED_QUERY_NOT_ALLOWED");
    let get_refused = gw.get(&[("query", unlisted)]).await;
    assert_eq!(get_refused.code(), "PERSISTED_QUERY_NOT_ALLOWED");
    assert!(
        gw.metric("patto_gateway_persisted_queries_total{outcome=\"refused\"}")
            .await
            >= 4
    );
    gw.stop().await;
    culture.stop().await.unwrap();
}
