//! `make bench`: latency (p50, p99) and throughput over real sockets on loopback, each against a
//! baseline measured in the same run, so the ratios hold on any machine.
//!
//! 1. gRPC: `grpc.health.v1.Health/Check` (transport and framework only) as the baseline for
//!    culture reads (lookup by key, a paged listing).
//! 2. Gateway: the same `ListEvents` call made directly over gRPC (baseline) and through the
//!    gateway as GraphQL; goal p50 ≤ 1.3× and throughput ≥ 0.6× direct.
//! 3. A cross-service query (a comune, its events, each event's venue through a lookup, and the
//!    indicators fanned out to every service), against the same direct call.

use std::time::{Duration, Instant};

use patto_culture::{Migrator, demo, store::Store};
use patto_proto::culture::v1 as pb;
use patto_proto::culture::v1::culture_service_client::CultureServiceClient;
use patto_service_kit::testing::{TestServer, sqlite};
use tonic::transport::Channel;
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

/// Calls in flight at once.
const CONCURRENCY: usize = 16;
/// Calls per measurement (after a warm-up of a tenth of it).
const CALLS: usize = 4_000;

struct Measure {
    name: &'static str,
    p50: Duration,
    p99: Duration,
    per_second: f64,
}

async fn measure<F, Fut>(name: &'static str, call: F) -> Measure
where
    F: Fn() -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    // Latency unloaded (one call at a time); throughput saturated (CONCURRENCY in flight).
    let run = |n: usize, concurrency: usize| {
        let call = call.clone();
        async move {
            let started = Instant::now();
            let per_worker = n / concurrency;
            let workers = (0..concurrency).map(|_| {
                let call = call.clone();
                tokio::spawn(async move {
                    let mut times = Vec::with_capacity(per_worker);
                    for _ in 0..per_worker {
                        let t = Instant::now();
                        call().await;
                        times.push(t.elapsed());
                    }
                    times
                })
            });
            let mut all: Vec<Duration> = futures::future::join_all(workers)
                .await
                .into_iter()
                .flat_map(|r| r.unwrap_or_default())
                .collect();
            all.sort();
            (all, started.elapsed())
        }
    };
    run(CALLS / 10, CONCURRENCY).await;
    let (times, _) = run(CALLS / 4, 1).await;
    let (loaded, wall) = run(CALLS, CONCURRENCY).await;
    let pct = |p: f64| {
        times
            .get(((times.len() as f64 * p) as usize).min(times.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default()
    };
    Measure {
        name,
        p50: pct(0.50),
        p99: pct(0.99),
        per_second: loaded.len() as f64 / wall.as_secs_f64(),
    }
}

#[tokio::main]
async fn main() {
    let store = Store::new(sqlite::<Migrator>().await, "bench");
    demo::seed(&store, chrono::Utc::now())
        .await
        .expect("demo data");
    let server = TestServer::start(patto_culture::app(store)).await;
    let channel: Channel = server.channel().await;

    let health = HealthClient::new(channel.clone());
    let culture = CultureServiceClient::new(channel.clone());
    let baseline = measure("health check (baseline)", move || {
        let mut c = health.clone();
        async move {
            c.check(HealthCheckRequest {
                service: String::new(),
            })
            .await
            .expect("health");
        }
    })
    .await;
    let c1 = culture.clone();
    let lookup = measure("culture LookupEvents (3 keys)", move || {
        let mut c = c1.clone();
        async move {
            let keys = vec![
                "evt-082053-01-1".into(),
                "evt-082001-01-1".into(),
                "evt-082070-01-2".into(),
            ];
            c.lookup_events(pb::LookupEventsRequest { keys })
                .await
                .expect("lookup");
        }
    })
    .await;
    let c2 = culture.clone();
    let list = measure("culture ListEvents (Palermo, 20)", move || {
        let mut c = c2.clone();
        async move {
            c.list_events(pb::ListEventsRequest {
                istat_code: "082053".into(),
                ..Default::default()
            })
            .await
            .expect("list");
        }
    })
    .await;

    println!(
        "latency: {} calls one at a time; throughput: {CALLS} calls, {CONCURRENCY} in flight; loopback, in-memory SQLite\n",
        CALLS / 4
    );
    table(&baseline, &[&baseline, &lookup, &list]);

    // The gateway in front of the same service.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let gateway_addr = listener.local_addr().expect("addr");
    let mut backends: Vec<(String, String)> = vec![("culture".into(), server.url())];
    // The other services are absent here: their indicators are reported as unavailable.
    backends.extend(
        ["social", "building"]
            .iter()
            .map(|s| ((*s).to_owned(), "http://127.0.0.1:9".to_owned())),
    );
    let config = patto_gateway::GatewayConfig {
        http_addr: gateway_addr,
        backends,
        reflect_interval: Duration::from_secs(3600),
        reflect_timeout: Duration::from_secs(5),
        operation_timeout: Duration::from_secs(10),
        introspection: true,
        shutdown_grace: Duration::from_secs(5),
        // The limiter still counts every request (its cost is measured), but one client at
        // thousands of calls a minute must never be refused.
        rate_limit_per_minute: u32::MAX,
        rate_limit_comune_per_minute: u32::MAX,
        ..patto_gateway::GatewayConfig::default()
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let gateway = tokio::spawn(patto_gateway::run(config, listener, async {
        let _ = stopped.await;
    }));

    let c3 = culture.clone();
    let direct = measure("ListEvents over gRPC (baseline)", move || {
        let mut c = c3.clone();
        async move {
            let page = Some(patto_proto::common::v1::PageRequest {
                first: 20,
                after: String::new(),
            });
            c.list_events(pb::ListEventsRequest {
                istat_code: "082053".into(),
                page,
                ..Default::default()
            })
            .await
            .expect("list");
        }
    })
    .await;
    let through = measure(
        "events through the gateway",
        graphql(
            gateway_addr,
            r#"{ events(istatCode: "082053", first: 20) { totalCount nodes { id istatCode name description category startTime endTime venueId organizer status attendanceMode price { cents } capacity seatsAvailable audience url } } }"#,
        ),
    )
    .await;
    let count_only = measure(
        "events, totalCount only",
        graphql(
            gateway_addr,
            r#"{ events(istatCode: "082053", first: 20) { totalCount } }"#,
        ),
    )
    .await;
    let floor = measure(
        "events, two fields each",
        graphql(
            gateway_addr,
            r#"{ events(istatCode: "082053", first: 20) { nodes { id name } } }"#,
        ),
    )
    .await;
    let cross = measure(
        "cross-service query",
        graphql(
            gateway_addr,
            r#"{ municipality(istatCode: "082053") { name events(first: 5) { name venue { name } } indicators { completedInteractions distinctCitizens } } }"#,
        ),
    )
    .await;
    println!(
        "\nGateway against the same RPC called directly (goal: p50 x <= 1.30, tput x >= 0.60)\n"
    );
    table(&direct, &[&direct, &count_only, &floor, &through, &cross]);

    let _ = stop.send(());
    let _ = gateway.await;
    let _ = server.stop().await;
}

fn table(baseline: &Measure, rows: &[&Measure]) {
    println!(
        "{:<34} {:>10} {:>10} {:>12} {:>9} {:>9}",
        "", "p50", "p99", "calls/s", "p50 x", "tput x"
    );
    for m in rows {
        println!(
            "{:<34} {:>10.3?} {:>10.3?} {:>12.0} {:>9.2} {:>9.2}",
            m.name,
            m.p50,
            m.p99,
            m.per_second,
            m.p50.as_secs_f64() / baseline.p50.as_secs_f64(),
            m.per_second / baseline.per_second,
        );
    }
}

type Sender = hyper::client::conn::http1::SendRequest<http_body_util::Full<bytes::Bytes>>;

/// A closure posting `query` to the gateway, reusing kept-alive HTTP/1.1 connections.
fn graphql(
    addr: std::net::SocketAddr,
    query: &'static str,
) -> impl Fn() -> futures::future::BoxFuture<'static, ()> + Clone + Send + 'static {
    let body = bytes::Bytes::from(serde_json::json!({ "query": query }).to_string());
    let pool: std::sync::Arc<std::sync::Mutex<Vec<Sender>>> = Default::default();
    move || {
        let (body, pool) = (body.clone(), pool.clone());
        Box::pin(async move {
            let cached = pool.lock().expect("pool").pop();
            let mut sender = match cached {
                Some(s) if !s.is_closed() => s,
                _ => {
                    let stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
                    stream.set_nodelay(true).ok();
                    let (sender, conn) =
                        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
                            .await
                            .expect("handshake");
                    tokio::spawn(conn);
                    sender
                }
            };
            sender.ready().await.expect("ready");
            let request = hyper::Request::post("/graphql")
                .header("host", "localhost")
                .header("content-type", "application/json")
                .body(http_body_util::Full::new(body))
                .expect("request");
            let response = sender.send_request(request).await.expect("response");
            assert!(response.status().is_success());
            let bytes = http_body_util::BodyExt::collect(response.into_body())
                .await
                .expect("body")
                .to_bytes();
            assert!(
                !bytes.windows(9).any(|w| w == b"\"errors\":") || query.contains("indicators"),
                "{}",
                String::from_utf8_lossy(&bytes)
            );
            pool.lock().expect("pool").push(sender);
        })
    }
}
