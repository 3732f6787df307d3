//! Profiling harness: culture and the gateway on loopback, then `N` calls of one kind, one at a
//! time, so a profiler sees the cost of one call:
//! `cargo run --release -p patto-bench --example profile -- <kind> <N> [pause]`, kind one of
//! `direct`, `typename`, `count`, `two`, `full`, `cross`, or `ab`: every kind in turn, `N` rounds,
//! so all kinds see the same background load (p50 of each against `direct`). With `pause`, it
//! stops before and after the measured calls until a line arrives on stdin, so
//! `callgrind_control -z`/`-d` can bracket them.

use std::io::BufRead;
use std::time::{Duration, Instant};

use patto_culture::{Migrator, demo, store::Store};
use patto_proto::culture::v1::culture_service_client::CultureServiceClient;
use patto_service_kit::testing::{TestServer, sqlite};

fn query_of(kind: &str) -> &'static str {
    match kind {
        "typename" => "{ __typename }",
        "count" => patto_bench::COUNT,
        "two" => patto_bench::TWO_FIELDS,
        "full" => patto_bench::ALL_FIELDS,
        "cross" => patto_bench::CROSS_SERVICE,
        _ => "",
    }
}

struct Client {
    culture: CultureServiceClient<tonic::transport::Channel>,
    addr: std::net::SocketAddr,
    sender: Option<patto_bench::Sender>,
}

impl Client {
    async fn call(&mut self, kind: &str) {
        if kind == "direct" {
            return patto_bench::list_events(&self.culture).await;
        }
        let query = query_of(kind);
        if self.sender.as_ref().is_none_or(|s| s.is_closed()) {
            // The gateway may still be composing: retry the connection.
            let sender = loop {
                match patto_bench::connect(self.addr).await {
                    Ok(s) => break s,
                    Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
                }
            };
            self.sender = Some(sender);
        }
        let sender = self.sender.as_mut().expect("sender");
        patto_bench::post(sender, patto_bench::body(query), kind == "cross").await;
    }
}

fn p50(times: &mut [Duration]) -> Duration {
    times.sort();
    times.get(times.len() / 2).copied().unwrap_or_default()
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let kind = args.get(1).cloned().unwrap_or_else(|| "count".into());
    let n: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(1000);
    let pause = args.get(3).is_some_and(|s| s == "pause");

    let store = Store::new(sqlite::<Migrator>().await, "bench");
    demo::seed(&store, chrono::Utc::now())
        .await
        .expect("demo data");
    let server = TestServer::start(patto_culture::app(store)).await;
    let culture = CultureServiceClient::new(server.channel().await);

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let mut backends: Vec<(String, String)> = vec![("culture".into(), server.url())];
    backends.extend(
        ["social", "building"]
            .iter()
            .map(|s| ((*s).to_owned(), "http://127.0.0.1:9".to_owned())),
    );
    let config = patto_gateway::GatewayConfig {
        http_addr: addr,
        backends,
        reflect_interval: Duration::from_secs(3600),
        reflect_timeout: Duration::from_secs(5),
        operation_timeout: Duration::from_secs(10),
        introspection: true,
        shutdown_grace: Duration::from_secs(5),
        // As `make bench`: the limiter counts every request, but never refuses one.
        rate_limit_per_minute: u32::MAX,
        rate_limit_comune_per_minute: u32::MAX,
        ..patto_gateway::GatewayConfig::default()
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let gateway = tokio::spawn(patto_gateway::run(config, listener, async {
        let _ = stopped.await;
    }));
    let mut client = Client {
        culture,
        addr,
        sender: None,
    };

    if kind == "ab" {
        let kinds = ["direct", "typename", "count", "two", "full", "cross"];
        for _ in 0..100 {
            for k in kinds {
                client.call(k).await;
            }
        }
        let mut times: Vec<Vec<Duration>> = vec![Vec::with_capacity(n); kinds.len()];
        for _ in 0..n {
            for (i, k) in kinds.iter().enumerate() {
                let t = Instant::now();
                client.call(k).await;
                times[i].push(t.elapsed());
            }
        }
        let p50s: Vec<Duration> = times.iter_mut().map(|t| p50(t)).collect();
        for (k, p) in kinds.iter().zip(&p50s) {
            eprintln!(
                "ab {k:>7}: p50 {p:>10.3?}  x {:.2}",
                p.as_secs_f64() / p50s[0].as_secs_f64()
            );
        }
    } else {
        for _ in 0..200 {
            client.call(&kind).await;
        }
        let wait = |what: &str| {
            if pause {
                eprintln!("{what}");
                let mut line = String::new();
                std::io::stdin().lock().read_line(&mut line).ok();
            }
        };
        wait("READY");
        let mut times = Vec::with_capacity(n);
        let started = Instant::now();
        for _ in 0..n {
            let t = Instant::now();
            client.call(&kind).await;
            times.push(t.elapsed());
        }
        let wall = started.elapsed();
        wait("DONE");
        if n > 0 {
            eprintln!(
                "{kind}: {n} calls, p50 {:?}, mean {:?}",
                p50(&mut times),
                wall / n as u32
            );
        }
    }
    let _ = stop.send(());
    let _ = gateway.await;
    let _ = server.stop().await;
}
