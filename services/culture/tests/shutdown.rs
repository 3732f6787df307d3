//! SIGTERM during load, on the real binary: calls in flight when the signal arrives all complete,
//! and the process exits 0 (what a Kubernetes rolling update relies on). The binary verifies the
//! tokens of a dev issuer (`PATTO_DEV_ISSUER_KEY`): the imports in flight are an operator's, and an
//! import without a token is refused before a row is read.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use patto_proto::culture::v1 as pb;
use patto_proto::culture::v1::culture_service_client::CultureServiceClient;
use patto_service_kit::Principal;
use patto_service_kit::token::{DEV_ISSUER_KEY_VAR, DevIssuer};
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Reaper(Child);

impl Drop for Reaper {
    fn drop(&mut self) {
        let _ = self.0.kill();
    }
}

fn row(n: usize) -> pb::ImportEventsRequest {
    let start = chrono::Utc::now() + chrono::Duration::days(30);
    pb::ImportEventsRequest {
        event: Some(pb::Event {
            istat_code: "082053".into(),
            venue_id: "ven-082053-01".into(),
            name: format!("Replica {n}"),
            category: pb::EventCategory::Theatre as i32,
            start_time: Some(patto_service_kit::time::to_timestamp(start)),
            end_time: Some(patto_service_kit::time::to_timestamp(
                start + chrono::Duration::hours(2),
            )),
            capacity: 100,
            ..Default::default()
        }),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_drains_calls_in_flight_and_exits_zero() {
    let port = free_port();
    let dir = std::env::temp_dir().join(format!("patto-culture-shutdown-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let key = dir.join("dev-issuer-key.pem");
    let operator = DevIssuer::load_or_create(&key)
        .expect("dev issuer")
        .issue(
            &Principal::Operator {
                istat_code: "082053".into(),
                subject: "operator@082053".into(),
            },
            Duration::from_secs(600),
        )
        .expect("operator token");
    let bearer: tonic::metadata::AsciiMetadataValue = format!("Bearer {operator}").parse().unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_patto-culture"))
        .env("GRPC_ADDR", format!("127.0.0.1:{port}"))
        .env("PATTO_DATA_DIR", &dir)
        .env(DEV_ISSUER_KEY_VAR, &key)
        .env("PATTO_DEMO_DATA", "1")
        .env("PATTO_SHUTDOWN_GRACE_SECS", "20")
        .env("PATTO_LOG_FORMAT", "text")
        .stdout(Stdio::null())
        .spawn()
        .expect("start patto-culture");
    let pid = child.id();
    let mut child = Reaper(child);

    // Ready when health says SERVING (the binary seeds its demo data first).
    let url = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(60);
    let channel = loop {
        if let Ok(ch) = tonic::transport::Endpoint::from_shared(url.clone())
            .unwrap()
            .connect()
            .await
        {
            let serving = HealthClient::new(ch.clone())
                .check(HealthCheckRequest {
                    service: String::new(),
                })
                .await;
            if serving.is_ok_and(|r| r.into_inner().status == 1) {
                break ch;
            }
        }
        assert!(
            Instant::now() < deadline,
            "patto-culture did not become ready"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };

    // Without a token, an import is refused before a row is read.
    let refused = CultureServiceClient::new(channel.clone())
        .import_events(futures::stream::iter([row(1_000), row(1_001)]))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::Unauthenticated, "{refused:?}");

    // Twenty imports by Palermo's operator, each left open after its first row: in flight until
    // released.
    let (release, released) = tokio::sync::watch::channel(false);
    let calls: Vec<_> = (0..20)
        .map(|i| {
            let mut client = CultureServiceClient::new(channel.clone());
            let mut released = released.clone();
            let bearer = bearer.clone();
            tokio::spawn(async move {
                let rows = async_stream(i, async move {
                    let _ = released.wait_for(|r| *r).await;
                });
                let mut request = tonic::Request::new(rows);
                request.metadata_mut().insert("authorization", bearer);
                client.import_events(request).await
            })
        })
        .collect();
    // Frames on one connection arrive in order: once this answer is back, the server has every
    // import's opening frames.
    HealthClient::new(channel.clone())
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .unwrap();

    let status = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let _ = release.send(true);

    for call in calls {
        let answer = call
            .await
            .unwrap()
            .expect("an import in flight at SIGTERM completes");
        assert_eq!(answer.into_inner().imported, 2);
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    let exit = loop {
        if let Some(s) = child.0.try_wait().unwrap() {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "patto-culture did not exit after draining"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(exit.success(), "exit status {exit:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Two rows, the second only after `gate` completes.
fn async_stream(
    i: usize,
    gate: impl std::future::Future<Output = ()> + Send + 'static,
) -> impl futures::Stream<Item = pb::ImportEventsRequest> + Send + 'static {
    use futures::StreamExt;
    futures::stream::iter([row(i * 2)]).chain(futures::stream::once(async move {
        gate.await;
        row(i * 2 + 1)
    }))
}
