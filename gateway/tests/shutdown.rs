//! SIGTERM to the gateway binary under load: GraphQL operations in flight when the signal
//! arrives all complete, and the process exits 0.

mod support;

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use patto_service_kit::testing::{self, TestServer};
use sea_orm::TransactionTrait;

struct Reaper(Child);

impl Drop for Reaper {
    fn drop(&mut self) {
        let _ = self.0.kill();
    }
}

/// Counts the calls that reached the service (through the kit's authentication hook).
struct Arrivals(Arc<AtomicUsize>);

impl patto_service_kit::auth::Authenticator for Arrivals {
    fn authenticate<'a>(
        &'a self,
        _: &'a http::HeaderMap,
    ) -> futures::future::BoxFuture<'a, Result<patto_service_kit::Principal, tonic::Status>> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Box::pin(std::future::ready(Ok(
            patto_service_kit::Principal::Anonymous,
        )))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_drains_operations_in_flight_and_exits_zero() {
    let store = support::culture_store().await;
    let db = store.db().clone();
    let arrivals = Arc::new(AtomicUsize::new(0));
    let culture = TestServer::start(
        patto_culture::app(store).with_authenticator(Arc::new(Arrivals(arrivals.clone()))),
    )
    .await;

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(env!("CARGO_BIN_EXE_patto-gateway"))
        .env("GATEWAY_ADDR", format!("127.0.0.1:{port}"))
        .env("CULTURE_GRPC_URL", culture.url())
        .env("PATTO_SHUTDOWN_GRACE_SECS", "20")
        .env("PATTO_REFLECT_TIMEOUT_SECS", "2")
        .env("PATTO_LOG_FORMAT", "text")
        .stdout(Stdio::null())
        .spawn()
        .expect("start patto-gateway");
    let pid = child.id();
    let mut child = Reaper(child);
    let gateway: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while tokio::net::TcpStream::connect(gateway).await.is_err()
        || testing::get(gateway, "/health/ready").await.0 != 200
    {
        assert!(
            Instant::now() < deadline,
            "the gateway did not become ready"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // The embedded SQLite has one connection: holding it keeps every culture call waiting.
    let hold = db.begin().await.unwrap();
    let before = arrivals.load(Ordering::SeqCst);
    let body = serde_json::json!({"query": r#"{ events(istatCode: "082053", first: 2) { nodes { name } } }"#}).to_string();
    let operations: Vec<_> = (0..10)
        .map(|_| {
            let body = body.clone();
            tokio::spawn(async move { testing::post_json(gateway, "/graphql", &[], &body).await })
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(30);
    while arrivals.load(Ordering::SeqCst) < before + 10 {
        assert!(
            Instant::now() < deadline,
            "the operations did not reach the service"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // All ten are in flight: stop the gateway, then let the service answer.
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .unwrap()
            .success()
    );
    // Shutdown has begun once the listener is closed to new connections.
    let deadline = Instant::now() + Duration::from_secs(30);
    while tokio::net::TcpStream::connect(gateway).await.is_ok() {
        assert!(
            Instant::now() < deadline,
            "the gateway kept accepting after SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    hold.commit().await.unwrap();

    for op in operations {
        let (status, body) = op.await.unwrap();
        assert_eq!(status, 200, "{body}");
        let json: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert!(json["errors"].is_null(), "{json}");
        assert_eq!(json["data"]["events"]["nodes"].as_array().unwrap().len(), 2);
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    let exit = loop {
        if let Some(s) = child.0.try_wait().unwrap() {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "the gateway did not exit after draining"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(exit.success(), "exit status {exit:?}");
    culture.stop().await.unwrap();
}
