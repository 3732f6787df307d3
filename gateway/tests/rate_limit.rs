//! Caller identity and rate limits end to end: a real culture service (SQLite), gateways on
//! ephemeral ports, HTTP and WebSocket clients, and a real Redis (`PATTO_TEST_REDIS_URL`, default
//! `redis://127.0.0.1:6379`) for the limits shared by replicas. Redis tests skip with a note when
//! Redis is unreachable, unless `PATTO_REQUIRE_REDIS=1`.

mod support;

use std::sync::Arc;

use futures::future::BoxFuture;
use patto_gateway::GatewayConfig;
use patto_service_kit::Principal;
use patto_service_kit::auth::Authenticator;
use patto_service_kit::testing::{HeaderPrincipal, PRINCIPAL_HEADER, TestServer};
use serde_json::json;
use support::{
    Gateway, Reply, TestRedis, UNREACHABLE_REDIS, culture, next_json, send_json, subscribe,
};

const QUERY: &str = "{ __typename }";

/// [`HeaderPrincipal`], also reading `authorization: Bearer <same syntax>` (as a WebSocket's
/// `connection_init` carries it), and `x-test-subject` to tell two operators of a comune apart.
struct TestAuth;

impl Authenticator for TestAuth {
    fn authenticate<'a>(
        &'a self,
        headers: &'a http::HeaderMap,
    ) -> BoxFuture<'a, Result<Principal, tonic::Status>> {
        Box::pin(async move {
            let mut h = headers.clone();
            if let Some(token) = headers
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "))
            {
                let value = token
                    .parse()
                    .map_err(|_| tonic::Status::unauthenticated("bad principal"))?;
                h.insert(PRINCIPAL_HEADER, value);
            }
            let principal = HeaderPrincipal.authenticate(&h).await?;
            let subject = headers.get("x-test-subject").and_then(|v| v.to_str().ok());
            Ok(match (principal, subject) {
                (Principal::Operator { istat_code, .. }, Some(s)) => Principal::Operator {
                    istat_code,
                    subject: s.to_owned(),
                },
                (p, _) => p,
            })
        })
    }
}

impl Gateway {
    /// POSTs `query` as the caller `who` (`x-test-principal`; empty for anonymous).
    async fn post_as(&self, who: &str, query: &str, extra: &[(&str, &str)]) -> Reply {
        let mut headers = vec![("content-type", "application/json")];
        headers.extend_from_slice(extra);
        if !who.is_empty() {
            headers.push((PRINCIPAL_HEADER, who));
        }
        let body = json!({"query": query}).to_string();
        self.send("POST", "/graphql", &headers, &body).await
    }
}

/// The shared gateway configuration, with callers named by [`TestAuth`] and these limits per
/// minute.
fn config(culture: &TestServer, per_principal: u32, per_comune: u32) -> GatewayConfig {
    GatewayConfig {
        authenticator: Arc::new(TestAuth),
        rate_limit_per_minute: per_principal,
        rate_limit_comune_per_minute: per_comune,
        ..support::config(culture)
    }
}

/// Credentials that cannot be verified get 401 before anything runs, over POST, GET and
/// WebSocket; verified callers reach the resolvers as their `Principal`.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn credentials_are_checked_before_anything_runs() {
    let culture = culture().await;
    let gw = Gateway::start(config(&culture, 100, 100)).await;
    let cf = patto_service_kit::demo::citizen(1).fiscal_code;

    let refused = gw.post_as("bad", QUERY, &[]).await;
    assert_eq!(refused.status, 401, "{}", refused.body);
    assert_eq!(
        refused
            .headers
            .get("www-authenticate")
            .and_then(|v| v.to_str().ok()),
        Some(r#"Bearer error="invalid_token""#)
    );
    assert_eq!(refused.code(), "UNAUTHENTICATED");
    assert_eq!(refused.body["errors"][0]["message"], "bad principal");
    assert!(refused.body.get("data").is_none(), "{}", refused.body);
    let get = gw
        .send(
            "GET",
            "/graphql?query=%7B__typename%7D",
            &[
                ("content-type", "application/json"),
                (PRINCIPAL_HEADER, "bad"),
            ],
            "",
        )
        .await;
    assert_eq!((get.status, get.code()), (401, "UNAUTHENTICATED"));

    // The caller reaches the resolvers (`me` reads the Principal from the request data).
    let me = gw
        .post_as(&format!("citizen:{cf}"), "{ me { fiscalCode } }", &[])
        .await;
    assert_eq!(
        me.body["data"]["me"]["fiscalCode"],
        cf.as_str(),
        "{}",
        me.body
    );
    let anonymous = gw.post_as("", "{ me { fiscalCode } }", &[]).await;
    assert!(anonymous.body["data"]["me"].is_null(), "{}", anonymous.body);

    // WebSocket: bad credentials on the upgrade request are a plain 401.
    match gw.websocket(&[(PRINCIPAL_HEADER, "bad")]).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
            assert_eq!(resp.status().as_u16(), 401);
        }
        other => panic!("expected 401, got {:?}", other.map(|_| ())),
    }
    // … in `connection_init` they close the connection.
    let mut ws = gw.websocket(&[]).await.unwrap();
    send_json(
        &mut ws,
        json!({"type": "connection_init", "payload": {"Authorization": "Bearer bad"}}),
    )
    .await;
    assert_eq!(next_json(&mut ws).await, None, "closed");
    // Good ones in `connection_init` make the caller of every subscription.
    let mut ws = gw.websocket(&[]).await.unwrap();
    send_json(
        &mut ws,
        json!({"type": "connection_init", "payload": {"authorization": format!("Bearer citizen:{cf}")}}),
    )
    .await;
    assert_eq!(next_json(&mut ws).await.unwrap()["type"], "connection_ack");
    let me = subscribe(&mut ws, "1", "{ me { fiscalCode } }").await;
    assert_eq!(me["data"]["me"]["fiscalCode"], cf.as_str(), "{me}");
    ws.close(None).await.ok();

    assert!(gw.metric("patto_gateway_unauthenticated_total").await >= 4);
    gw.stop().await;
    culture.stop().await.unwrap();
}

/// In process: the N+1th request of a caller is refused with 429 and `Retry-After`, other callers
/// are unaffected, two operators of one comune share its limit, WebSocket subscriptions count.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn limits_per_caller_and_per_comune_in_process() {
    let culture = culture().await;
    let gw = Gateway::start(config(&culture, 3, 5)).await;
    let a = format!(
        "citizen:{}",
        patto_service_kit::demo::citizen(1).fiscal_code
    );
    let b = format!(
        "citizen:{}",
        patto_service_kit::demo::citizen(2).fiscal_code
    );

    for i in 0..3 {
        let ok = gw.post_as(&a, QUERY, &[]).await;
        assert_eq!(ok.status, 200, "request {i}: {}", ok.body);
    }
    let limited = gw.post_as(&a, QUERY, &[]).await;
    assert_eq!(limited.status, 429, "{}", limited.body);
    assert!(
        (1..=60).contains(&limited.retry_after()),
        "{:?}",
        limited.headers
    );
    assert_eq!(limited.code(), "RATE_LIMITED");
    assert_eq!(
        limited.body["errors"][0]["extensions"]["limit"],
        "principal"
    );
    assert!(
        limited.body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("3 requests per minute per caller"),
        "{}",
        limited.body
    );
    assert_eq!(gw.post_as(&b, QUERY, &[]).await.status, 200);

    // Anonymous callers are counted by address.
    for _ in 0..3 {
        assert_eq!(gw.post_as("", QUERY, &[]).await.status, 200);
    }
    assert_eq!(gw.post_as("", QUERY, &[]).await.status, 429);

    // Two operators of Palermo share its 5 requests; another comune is unaffected.
    let anna = [("x-test-subject", "anna")];
    let bruno = [("x-test-subject", "bruno")];
    for _ in 0..3 {
        assert_eq!(
            gw.post_as("operator:082053", QUERY, &anna).await.status,
            200
        );
    }
    for _ in 0..2 {
        assert_eq!(
            gw.post_as("operator:082053", QUERY, &bruno).await.status,
            200
        );
    }
    let comune = gw.post_as("operator:082053", QUERY, &bruno).await;
    assert_eq!(comune.status, 429, "{}", comune.body);
    assert_eq!(comune.body["errors"][0]["extensions"]["limit"], "comune");
    assert!(comune.retry_after() >= 1);
    assert_eq!(
        gw.post_as("operator:082001", QUERY, &bruno).await.status,
        200
    );

    // Each WebSocket subscription counts, against the same budget as HTTP.
    let c = format!(
        "citizen:{}",
        patto_service_kit::demo::citizen(3).fiscal_code
    );
    assert_eq!(gw.post_as(&c, QUERY, &[]).await.status, 200);
    let mut ws = gw
        .websocket(&[(PRINCIPAL_HEADER, c.as_str())])
        .await
        .unwrap();
    send_json(&mut ws, json!({"type": "connection_init"})).await;
    assert_eq!(next_json(&mut ws).await.unwrap()["type"], "connection_ack");
    for id in ["1", "2"] {
        let ok = subscribe(&mut ws, id, QUERY).await;
        assert_eq!(ok["data"]["__typename"], "Query", "{ok}");
    }
    let refused = subscribe(&mut ws, "3", QUERY).await;
    assert_eq!(
        refused["errors"][0]["extensions"]["code"], "RATE_LIMITED",
        "{refused}"
    );
    ws.close(None).await.ok();
    assert_eq!(gw.post_as(&c, QUERY, &[]).await.status, 429);

    assert_eq!(
        gw.metric("patto_gateway_rate_limited_total{limit=\"principal\"}")
            .await,
        4
    );
    assert_eq!(
        gw.metric("patto_gateway_rate_limited_total{limit=\"comune\"}")
            .await,
        1
    );
    gw.stop().await;
    culture.stop().await.unwrap();
}

/// Two gateways sharing one Redis: requests alternating between them hit the shared limit at
/// exactly N, and the comune limit is shared too.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_gateways_share_one_limit_through_redis() {
    const N: usize = 5;
    let Some(redis) = TestRedis::connect("two_gateways_share_one_limit_through_redis").await else {
        return;
    };
    let culture = culture().await;
    let shared = redis.shared(config(&culture, N as u32, 4));
    let gws = [
        Gateway::start(shared.clone()).await,
        Gateway::start(shared).await,
    ];
    let cf = patto_service_kit::demo::citizen(4).fiscal_code;
    let who = format!("citizen:{cf}");
    for i in 0..N {
        let ok = gws[i % 2].post_as(&who, QUERY, &[]).await;
        assert_eq!(
            ok.status,
            200,
            "request {} on gateway {}: {}",
            i + 1,
            i % 2,
            ok.body
        );
    }
    for (i, gw) in [&gws[N % 2], &gws[(N + 1) % 2]].into_iter().enumerate() {
        let limited = gw.post_as(&who, QUERY, &[]).await;
        assert_eq!(
            limited.status,
            429,
            "request {} must be refused: {}",
            N + 1 + i,
            limited.body
        );
        assert_eq!(limited.code(), "RATE_LIMITED");
        assert!((1..=60).contains(&limited.retry_after()));
    }
    // Operators of one comune on different gateways share the comune's 4.
    let anna = [("x-test-subject", "anna")];
    let bruno = [("x-test-subject", "bruno")];
    for i in 0..4 {
        let extra = if i % 2 == 0 { &anna } else { &bruno };
        let ok = gws[i % 2].post_as("operator:082053", QUERY, extra).await;
        assert_eq!(ok.status, 200, "{}", ok.body);
    }
    let comune = gws[0].post_as("operator:082053", QUERY, &bruno).await;
    assert_eq!(comune.status, 429, "{}", comune.body);
    assert_eq!(comune.body["errors"][0]["extensions"]["limit"], "comune");

    // The counters live under the test's prefix, without fiscal codes in clear.
    let keys = redis.keys().await;
    assert!(!keys.is_empty());
    assert!(keys.iter().all(|k| !k.contains(&cf)), "{keys:?}");
    assert!(
        keys.iter()
            .any(|k| k == &format!("{}ratelimit:comune:082053", redis.prefix)),
        "{keys:?}"
    );
    let [a, b] = gws;
    a.stop().await;
    b.stop().await;
    culture.stop().await.unwrap();
}

/// Redis unreachable: each gateway limits in process instead of failing or letting everything
/// through.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn limits_fall_back_in_process_when_redis_is_down() {
    let culture = culture().await;
    let gw = Gateway::start(GatewayConfig {
        redis_url: Some(UNREACHABLE_REDIS.into()),
        ..config(&culture, 2, 0)
    })
    .await;
    let who = format!(
        "citizen:{}",
        patto_service_kit::demo::citizen(5).fiscal_code
    );
    for _ in 0..2 {
        let ok = gw.post_as(&who, QUERY, &[]).await;
        assert_eq!(ok.status, 200, "{}", ok.body);
    }
    let limited = gw.post_as(&who, QUERY, &[]).await;
    assert_eq!(limited.status, 429, "{}", limited.body);
    assert!(gw.metric("patto_gateway_redis_errors_total").await >= 1);
    gw.stop().await;
    culture.stop().await.unwrap();
}
