//! `make bench`: latency (p50, p99) and throughput over real sockets on loopback, each against a
//! baseline measured in the same run, so the ratios hold on any machine.
//!
//! The culture service and the gateway run as their release binaries, each in its own process
//! as in production (`make bench` builds them; they are looked up next to this executable); the
//! clients run here.
//!
//! 1. gRPC: `grpc.health.v1.Health/Check` (transport and framework only) as the baseline for
//!    culture reads (lookup by key, a paged listing).
//! 2. Gateway: the same `ListEvents` call made directly over gRPC (baseline) and through the
//!    gateway as GraphQL; goal p50 ≤ 1.3× and throughput ≥ 0.6× direct.
//! 3. A cross-service query (a comune, its events, each event's venue through a lookup, and the
//!    indicators fanned out to every service), against the same direct call.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::BoxFuture;

use patto_proto::culture::v1 as pb;
use patto_proto::culture::v1::culture_service_client::CultureServiceClient;
use tonic::transport::{Channel, Endpoint};
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

/// One kind of call.
type Call = Arc<dyn Fn() -> BoxFuture<'static, ()> + Send + Sync>;

fn call<F, Fut>(f: F) -> Call
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    Arc::new(move || Box::pin(f()))
}

/// Latency unloaded (one call at a time) and throughput saturated (CONCURRENCY in flight) of each
/// kind. Latency is sampled in rounds, one call of every kind per round, so every kind sees the
/// same machine: the ratios do not drift with whatever else the machine does meanwhile.
async fn measure(kinds: Vec<(&'static str, Call)>) -> Vec<Measure> {
    let saturate = |call: Call, n: usize| async move {
        let started = Instant::now();
        let workers = (0..CONCURRENCY).map(|_| {
            let call = call.clone();
            tokio::spawn(async move {
                for _ in 0..n / CONCURRENCY {
                    call().await;
                }
            })
        });
        futures::future::join_all(workers).await;
        (n / CONCURRENCY * CONCURRENCY) as f64 / started.elapsed().as_secs_f64()
    };
    for (_, c) in &kinds {
        saturate(c.clone(), CALLS / 10).await;
    }
    let calls: Vec<Call> = kinds.iter().map(|(_, c)| c.clone()).collect();
    let mut times = tokio::spawn(async move {
        let mut times = vec![Vec::with_capacity(CALLS / 4); calls.len()];
        for _ in 0..CALLS / 4 {
            for (i, c) in calls.iter().enumerate() {
                let t = Instant::now();
                c().await;
                times[i].push(t.elapsed());
            }
        }
        times
    })
    .await
    .expect("latency rounds");
    let mut out = Vec::new();
    for ((name, c), times) in kinds.into_iter().zip(times.iter_mut()) {
        times.sort();
        let pct = |p: f64| {
            times
                .get(((times.len() as f64 * p) as usize).min(times.len().saturating_sub(1)))
                .copied()
                .unwrap_or_default()
        };
        out.push(Measure {
            name,
            p50: pct(0.50),
            p99: pct(0.99),
            per_second: saturate(c, CALLS).await,
        });
    }
    out
}

/// A child process, killed when dropped (the benchmark owns its services).
struct Process(std::process::Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A release binary built next to this one; `make bench` builds them.
fn binary(name: &str) -> PathBuf {
    let dir = std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(PathBuf::from))
        .unwrap_or_default();
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is missing: run `make bench`, which builds it in release",
        path.display()
    );
    path
}

/// A loopback address free at the time of asking.
fn free_addr() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
}

/// Starts `name` with only `env` (and `PATH`) set, its output discarded.
fn spawn(name: &str, env: &[(&str, String)]) -> Process {
    let mut cmd = Command::new(binary(name));
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    Process(
        cmd.spawn()
            .unwrap_or_else(|e| panic!("starting {name}: {e}")),
    )
}

/// Retries `probe` for up to a minute (a service seeds its demo data before serving).
async fn wait_for<F, Fut>(what: &str, probe: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let until = Instant::now() + Duration::from_secs(60);
    while !probe().await {
        assert!(Instant::now() < until, "{what} did not become ready");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::main]
async fn main() {
    let data = std::env::temp_dir().join(format!("patto-bench-{}", std::process::id()));
    std::fs::create_dir_all(&data).expect("data dir");
    let culture_addr = free_addr();
    let _culture = spawn(
        "patto-culture",
        &[
            ("GRPC_ADDR", culture_addr.to_string()),
            ("PATTO_DATA_DIR", data.display().to_string()),
            ("PATTO_DEMO_DATA", "true".into()),
        ],
    );
    let culture_url = format!("http://{culture_addr}");
    let endpoint = Endpoint::from_shared(culture_url.clone())
        .expect("url")
        .tcp_nodelay(true);
    wait_for("patto-culture", || async {
        match endpoint.connect().await {
            Ok(ch) => HealthClient::new(ch)
                .check(HealthCheckRequest {
                    service: String::new(),
                })
                .await
                .is_ok(),
            Err(_) => false,
        }
    })
    .await;
    let channel: Channel = endpoint.connect().await.expect("culture");

    let health = HealthClient::new(channel.clone());
    let culture = CultureServiceClient::new(channel.clone());
    let c1 = culture.clone();
    let c2 = culture.clone();
    let grpc = measure(vec![
        (
            "health check (baseline)",
            call(move || {
                let mut c = health.clone();
                async move {
                    c.check(HealthCheckRequest {
                        service: String::new(),
                    })
                    .await
                    .expect("health");
                }
            }),
        ),
        (
            "culture LookupEvents (3 keys)",
            call(move || {
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
            }),
        ),
        (
            "culture ListEvents (Palermo, 20)",
            call(move || {
                let mut c = c2.clone();
                async move {
                    c.list_events(pb::ListEventsRequest {
                        istat_code: "082053".into(),
                        ..Default::default()
                    })
                    .await
                    .expect("list");
                }
            }),
        ),
    ])
    .await;

    println!(
        "latency: {} calls one at a time; throughput: {CALLS} calls, {CONCURRENCY} in flight; loopback, release binaries, SQLite\n",
        CALLS / 4
    );
    table(&grpc);

    // The gateway in front of the same service; the other services are absent here (their
    // indicators are reported as unavailable). The rate limiter still counts every request (its
    // cost is measured), but one client at thousands of calls a minute is never refused.
    let gateway_addr = free_addr();
    let mut env = vec![
        ("GATEWAY_ADDR", gateway_addr.to_string()),
        ("CULTURE_GRPC_URL", culture_url.clone()),
        ("PATTO_DATA_DIR", data.display().to_string()),
        ("PATTO_REFLECT_INTERVAL_SECS", "3600".into()),
        ("PATTO_RATE_LIMIT_PER_MINUTE", "1000000000".into()),
        ("PATTO_RATE_LIMIT_COMUNE_PER_MINUTE", "1000000000".into()),
    ];
    let absent: Vec<String> = [
        "SOCIAL",
        "BUILDING",
        "EMPLOYMENT",
        "TAXES",
        "ENVIRONMENT",
        "PUBLICWORKS",
    ]
    .iter()
    .map(|s| format!("{s}_GRPC_URL"))
    .collect();
    env.extend(
        absent
            .iter()
            .map(|v| (v.as_str(), "http://127.0.0.1:9".to_owned())),
    );
    let _gateway = spawn("patto-gateway", &env);
    wait_for("patto-gateway", || async {
        let Ok(mut sender) = patto_bench::connect(gateway_addr).await else {
            return false;
        };
        let request = hyper::Request::get("/health/ready")
            .header("host", "localhost")
            .body(http_body_util::Full::new(bytes::Bytes::new()))
            .expect("request");
        sender
            .send_request(request)
            .await
            .is_ok_and(|r| r.status().is_success())
    })
    .await;

    let direct = call(move || {
        let culture = culture.clone();
        async move { patto_bench::list_events(&culture).await }
    });
    let gateway = measure(vec![
        ("ListEvents over gRPC (baseline)", direct),
        (
            "gateway alone: { __typename }",
            graphql(gateway_addr, "{ __typename }"),
        ),
        (
            "events, totalCount only",
            graphql(gateway_addr, patto_bench::COUNT),
        ),
        (
            "events, two fields each",
            graphql(gateway_addr, patto_bench::TWO_FIELDS),
        ),
        (
            "events through the gateway",
            graphql(gateway_addr, patto_bench::ALL_FIELDS),
        ),
        (
            "cross-service query",
            graphql(gateway_addr, patto_bench::CROSS_SERVICE),
        ),
    ])
    .await;
    println!(
        "\nGateway against the same RPC called directly (goal: p50 x <= 1.30, tput x >= 0.60)\n"
    );
    table(&gateway);

    drop((_gateway, _culture));
    let _ = std::fs::remove_dir_all(&data);
}

/// The measures, each against the first.
fn table(rows: &[Measure]) {
    let Some(baseline) = rows.first() else {
        return;
    };
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

/// A closure posting `query` to the gateway, reusing kept-alive HTTP/1.1 connections.
fn graphql(addr: SocketAddr, query: &'static str) -> Call {
    let body = patto_bench::body(query);
    let errors_allowed = query == patto_bench::CROSS_SERVICE;
    let pool: Arc<std::sync::Mutex<Vec<patto_bench::Sender>>> = Default::default();
    Arc::new(move || {
        let (body, pool) = (body.clone(), pool.clone());
        Box::pin(async move {
            let cached = pool.lock().expect("pool").pop();
            let mut sender = match cached {
                Some(s) if !s.is_closed() => s,
                _ => patto_bench::connect(addr).await.expect("connect"),
            };
            patto_bench::post(&mut sender, body, errors_allowed).await;
            pool.lock().expect("pool").push(sender);
        })
    })
}
