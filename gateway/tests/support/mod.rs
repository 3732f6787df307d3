//! The harness of the gateway's integration tests, in one place: a culture service seeded with the
//! demo data on SQLite, a gateway on an ephemeral port with an HTTP/1.1 and a WebSocket client,
//! and a Redis of the test's own.
//!
//! Redis is `PATTO_TEST_REDIS_URL` (default `redis://127.0.0.1:6379`); tests that need it skip
//! with a note when it is unreachable, unless `PATTO_REQUIRE_REDIS=1` makes that a failure.

// Every test binary (`mod support;`) compiles the whole module and uses a part of it.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use chrono::Utc;
use futures::{SinkExt, StreamExt};
use http_body_util::{BodyExt, Full};
use patto_culture::{Migrator, demo, store::Store};
use patto_gateway::GatewayConfig;
use patto_service_kit::GrpcApp;
use patto_service_kit::testing::{self, TestServer};
use serde_json::{Value, json};
use tokio::sync::oneshot;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

/// The culture store on a fresh in-memory SQLite, seeded with the demo catalogue (its programme
/// anchored an hour ago).
pub async fn culture_store() -> Store {
    let store = Store::new(testing::sqlite::<Migrator>().await, "test");
    demo::seed(&store, Utc::now() - chrono::Duration::hours(1))
        .await
        .unwrap();
    store
}

/// The culture service over [`culture_store`], with the kit's default authenticator.
pub async fn culture_app() -> GrpcApp {
    patto_culture::app(culture_store().await)
}

/// [`culture_app`] served on an ephemeral port.
pub async fn culture() -> TestServer {
    TestServer::start(culture_app().await).await
}

/// A gateway in front of `culture` alone: no re-reflection during a test, 10 s per operation, 5 s
/// to drain on stop, the rest (anonymous callers included) as [`GatewayConfig::default`].
pub fn config(culture: &TestServer) -> GatewayConfig {
    GatewayConfig {
        backends: vec![("culture".into(), culture.url())],
        reflect_interval: Duration::from_secs(3600),
        operation_timeout: Duration::from_secs(10),
        shutdown_grace: Duration::from_secs(5),
        ..GatewayConfig::default()
    }
}

/// A gateway served in process (`patto_gateway::run`) on an ephemeral port.
pub struct Gateway {
    /// The bound address.
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<Result<(), patto_gateway::GatewayError>>,
}

impl Gateway {
    /// Binds `127.0.0.1:0` and runs the gateway with `config` there (its `http_addr` replaced by
    /// the bound address). The listener is bound before this returns.
    pub async fn start(config: GatewayConfig) -> Self {
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

    /// Signals shutdown and waits for the gateway to drain; panics unless it stops cleanly.
    pub async fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        self.task.await.unwrap().expect("clean gateway stop");
    }

    /// Sends one HTTP/1.1 request on a new connection, with `host: localhost` and `headers`
    /// (nothing else: no content type unless given), and reads the whole answer.
    pub async fn send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> Reply {
        let stream = tokio::net::TcpStream::connect(self.addr).await.unwrap();
        let (mut sender, conn) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
                .await
                .unwrap();
        tokio::spawn(conn);
        let mut req = hyper::Request::builder()
            .method(method)
            .uri(path)
            .header("host", "localhost");
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
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let body = serde_json::from_slice(&bytes).unwrap_or_else(|_| Value::String(text.clone()));
        Reply {
            status,
            headers,
            text,
            body,
        }
    }

    /// The value of the sample `name` (with its labels, as in `/metrics`), 0 when absent.
    pub async fn metric(&self, name: &str) -> u64 {
        let reply = self.send("GET", "/metrics", &[], "").await;
        reply
            .text
            .lines()
            .find_map(|l| l.strip_prefix(name).map(str::trim))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    }

    /// Opens a `graphql-transport-ws` WebSocket on `/graphql`, with `headers` on the upgrade
    /// request; the handshake's error (a refused upgrade is `Error::Http`) otherwise.
    pub async fn websocket(
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

/// An HTTP answer of the gateway.
pub struct Reply {
    /// The status code.
    pub status: u16,
    /// The response headers.
    pub headers: http::HeaderMap,
    /// The body as text.
    pub text: String,
    /// The body as JSON; a JSON string of [`Reply::text`] when it is not JSON.
    pub body: Value,
}

impl Reply {
    /// The `code` extension of the first GraphQL error, `""` without one.
    pub fn code(&self) -> &str {
        self.body["errors"][0]["extensions"]["code"]
            .as_str()
            .unwrap_or("")
    }

    /// The `content-type` header, `""` without one.
    pub fn media(&self) -> &str {
        self.headers
            .get("content-type")
            .map(|v| v.to_str().unwrap())
            .unwrap_or_default()
    }

    /// The `retry-after` header in seconds, 0 without one.
    pub fn retry_after(&self) -> u64 {
        self.headers
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    }
}

/// A client WebSocket to the gateway.
pub type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// The next text message as JSON (other frames skipped), or `None` once the server closes the
/// connection; panics after 10 s without either.
pub async fn next_json(ws: &mut Ws) -> Option<Value> {
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

/// Sends `value` as a text message.
pub async fn send_json(ws: &mut Ws, value: Value) {
    ws.send(Message::Text(value.to_string().into()))
        .await
        .unwrap();
}

/// Subscribes with `query` as operation `id` and returns its first `next` payload (other messages
/// skipped).
pub async fn subscribe(ws: &mut Ws, id: &str, query: &str) -> Value {
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

/// A Redis URL nothing answers on (the discard port), to play an outage.
pub const UNREACHABLE_REDIS: &str = "redis://127.0.0.1:9/0";

/// A Redis for one test: its own key prefix, whose keys are deleted when the test ends.
pub struct TestRedis {
    /// The server's URL.
    pub url: String,
    /// The prefix of this test's keys (`patto-test:<uuid>:`).
    pub prefix: String,
}

impl TestRedis {
    /// `None` (with a note naming `test`) when Redis is unreachable, unless
    /// `PATTO_REQUIRE_REDIS=1`, which makes that a panic.
    pub async fn connect(test: &str) -> Option<Self> {
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

    /// `config` with this Redis as the gateway's shared store, under this test's prefix.
    pub fn shared(&self, config: GatewayConfig) -> GatewayConfig {
        GatewayConfig {
            redis_url: Some(self.url.clone()),
            redis_prefix: self.prefix.clone(),
            ..config
        }
    }

    /// A new connection, to read what the gateways stored.
    pub async fn conn(&self) -> redis::aio::MultiplexedConnection {
        redis::Client::open(self.url.as_str())
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .unwrap()
    }

    /// The keys under this test's prefix.
    pub async fn keys(&self) -> Vec<String> {
        let mut c = self.conn().await;
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
