//! `make bench`: latency (p50, p99) and throughput of culture RPCs over real gRPC on loopback,
//! each against a baseline measured in the same run, so the ratios hold on any machine.
//!
//! Baseline: `grpc.health.v1.Health/Check`, which costs transport and framework only. The ratios
//! show what a real read (lookup by key, a paged listing) adds on top.

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
    let run = |n: usize| {
        let call = call.clone();
        async move {
            let started = Instant::now();
            let per_worker = n / CONCURRENCY;
            let workers = (0..CONCURRENCY).map(|_| {
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
    run(CALLS / 10).await;
    let (times, wall) = run(CALLS).await;
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
        per_second: times.len() as f64 / wall.as_secs_f64(),
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

    println!("{CALLS} calls each, {CONCURRENCY} in flight, loopback, in-memory SQLite\n");
    println!(
        "{:<34} {:>10} {:>10} {:>12} {:>9} {:>9}",
        "", "p50", "p99", "calls/s", "p50 ×", "tput ×"
    );
    for m in [&baseline, &lookup, &list] {
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
    let _ = server.stop().await;
}
