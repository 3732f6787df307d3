//! Caller identity and rate limits end to end: a real culture service (SQLite), gateways on
//! ephemeral ports, HTTP and WebSocket clients, and a real Redis (`PATTO_TEST_REDIS_URL`, default
//! `redis://127.0.0.1:6379`) for the limits shared by replicas. Redis tests skip with a note when
//! Redis is unreachable, unless `PATTO_REQUIRE_REDIS=1`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use chrono::Utc;
use futures::future::BoxFuture;
use futures::{SinkExt, StreamExt};
use http_body_util::{BodyExt, Full};
use patto_culture::{Migrator, demo, store::Store};
use patto_gateway::GatewayConfig;
use patto_service_kit::Principal;
use patto_service_kit::auth::Authenticator;
use patto_service_kit::testing::{self, HeaderPrincipal, PRINCIPAL_HEADER, TestServer};
use serde_json::{Value, json};
use tokio::sync::oneshot;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

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

struct Reply {
    status: u16,
    headers: http::HeaderMap,
    body: Value,
}

impl Reply {
    fn code(&self) -> &str {
        self.body["errors"][0]["extensions"]["code"]
            .as_str()
            .unwrap_or("")
    }

    fn retry_after(&self) -> u64 {
        self.headers
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    }
}

struct Gateway {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<Result<(), patto_gateway::GatewayError>>,
}

impl Gateway {
    async fn start(config: GatewayConfig) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let config = GatewayConfig {
            http_addr: addr,
            ..config
        };
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(patto_gateway::run(config, listener, async {
            let _ = stopped.await;
        }));
        Self {
            addr,
            stop: Some(stop),
            task,
        }
    }

    async fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        self.task.await.unwrap().expect("clean gateway stop");
    }

    async fn send(&self, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Reply {
        let stream = tokio::net::TcpStream::connect(self.addr).await.unwrap();
        let (mut sender, conn) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
                .await
                .unwrap();
        tokio::spawn(conn);
        let mut req = hyper::Request::builder()
            .method(method)
            .uri(path)
            .header("host", "localhost")
            .header("content-type", "application/json");
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let resp = sender
            .send_request(req.body(Full::new(Bytes::from(body.to_owned()))).unwrap())
            .await
            .unwrap();
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        let body = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
        Reply {
            status,
            headers,
            body,
        }
    }

    /// POSTs `query` as the caller `who` (`x-test-principal`; empty for anonymous).
    async fn post_as(&self, who: &str, query: &str, extra: &[(&str, &str)]) -> Reply {
        let mut headers = extra.to_vec();
        if !who.is_empty() {
            headers.push((PRINCIPAL_HEADER, who));
        }
        let body = json!({"query": query}).to_string();
        self.send("POST", "/graphql", &headers, &body).await
    }

    async fn metric(&self, name: &str) -> u64 {
        let reply = self.send("GET", "/metrics", &[], "").await;
        reply
            .body
            .as_str()
            .unwrap_or("")
            .lines()
            .find_map(|l| l.strip_prefix(name).map(str::trim))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    }

    async fn websocket(
        &self,
        headers: &[(&str, &str)],
    ) -> Result<Ws, tokio_tungstenite::tungstenite::Error> {
        let mut request = format!("ws://{}/graphql", self.addr)
            .into_client_request()
            .unwrap();
        request.headers_mut().insert(
            "sec-websocket-protocol",
            "graphql-transport-ws".parse().unwrap(),
        );
        for (k, v) in headers {
            request.headers_mut().insert(
                http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        tokio_tungstenite::connect_async(request)
            .await
            .map(|(ws, _)| ws)
    }
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// The next text message as JSON, or `None` once the server closes the connection.
async fn next_json(ws: &mut Ws) -> Option<Value> {
    loop {
        match tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("a message in time")
        {
            Some(Ok(Message::Text(t))) => return Some(serde_json::from_str(&t).unwrap()),
            Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return None,
            Some(Ok(_)) => continue,
        }
    }
}

async fn send_json(ws: &mut Ws, value: Value) {
    ws.send(Message::Text(value.to_string().into()))
        .await
        .unwrap();
}

/// Subscribes with `query` and returns the first `next` payload.
async fn subscribe(ws: &mut Ws, id: &str, query: &str) -> Value {
    send_json(
        ws,
        json!({"id": id, "type": "subscribe", "payload": {"query": query}}),
    )
    .await;
    loop {
        let msg = next_json(ws).await.expect("the connection stays open");
        if msg["type"] == "next" && msg["id"] == id {
            return msg["payload"].clone();
        }
    }
}

async fn culture() -> TestServer {
    let store = Store::new(testing::sqlite::<Migrator>().await, "test");
    demo::seed(&store, Utc::now() - chrono::Duration::hours(1))
        .await
        .unwrap();
    TestServer::start(patto_culture::app(store)).await
}

fn config(culture: &TestServer, per_principal: u32, per_comune: u32) -> GatewayConfig {
    GatewayConfig {
        backends: vec![("culture".into(), culture.url())],
        reflect_interval: Duration::from_secs(3600),
        operation_timeout: Duration::from_secs(10),
        shutdown_grace: Duration::from_secs(5),
        authenticator: Arc::new(TestAuth),
        rate_limit_per_minute: per_principal,
        rate_limit_comune_per_minute: per_comune,
        ..GatewayConfig::default()
    }
}

/// A Redis for one test: its own key prefix, whose keys are deleted when the test ends.
struct TestRedis {
    url: String,
    prefix: String,
}

impl TestRedis {
    /// `None` (with a note) when Redis is unreachable, unless `PATTO_REQUIRE_REDIS=1`.
    async fn connect(test: &str) -> Option<Self> {
        let url = std::env::var("PATTO_TEST_REDIS_URL")
            .ok()
            .filter(|u| !u.is_empty())
            .unwrap_or_else(|| "redis://127.0.0.1:6379".to_owned());
        let reachable = async {
            let client = redis::Client::open(url.as_str()).ok()?;
            let mut c = tokio::time::timeout(
                Duration::from_secs(3),
                client.get_multiplexed_async_connection(),
            )
            .await
            .ok()?
            .ok()?;
            redis::cmd("PING").query_async::<String>(&mut c).await.ok()
        }
        .await
        .is_some();
        if !reachable {
            assert!(
                std::env::var("PATTO_REQUIRE_REDIS").as_deref() != Ok("1"),
                "PATTO_REQUIRE_REDIS=1 but Redis at {url} is unreachable"
            );
            eprintln!("note: {test} skipped: Redis at {url} is unreachable");
            return None;
        }
        Some(Self {
            url,
            prefix: format!("patto-test:{}:", uuid::Uuid::new_v4()),
        })
    }

    async fn keys(&self) -> Vec<String> {
        let mut c = redis::Client::open(self.url.as_str())
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .unwrap();
        redis::cmd("KEYS")
            .arg(format!("{}*", self.prefix))
            .query_async(&mut c)
            .await
            .unwrap()
    }
}

impl Drop for TestRedis {
    fn drop(&mut self) {
        // Runs on failure too; synchronous because Drop cannot await.
        let Ok(client) = redis::Client::open(self.url.as_str()) else {
            return;
        };
        let Ok(mut c) = client.get_connection_with_timeout(Duration::from_secs(3)) else {
            return;
        };
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("{}*", self.prefix))
            .query(&mut c)
            .unwrap_or_default();
        if !keys.is_empty() {
            let _: redis::RedisResult<()> = redis::cmd("DEL").arg(keys).query(&mut c);
        }
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
            &[(PRINCIPAL_HEADER, "bad")],
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
    let shared = GatewayConfig {
        redis_url: Some(redis.url.clone()),
        redis_prefix: redis.prefix.clone(),
        ..config(&culture, N as u32, 4)
    };
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
        // Nothing listens on the discard port.
        redis_url: Some("redis://127.0.0.1:9/0".into()),
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
