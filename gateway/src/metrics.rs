//! Prometheus counters of the gateway: operations, their latency, backend calls per operation,
//! calls and circuit-breaker state per service.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::breaker::State;
use crate::transport::Backends;

/// Latency buckets, in seconds.
const BUCKETS: [f64; 10] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0];

/// The gateway's counters.
#[derive(Debug, Default)]
pub struct Metrics {
    operations_ok: AtomicU64,
    operations_with_errors: AtomicU64,
    backend_calls: AtomicU64,
    latency_buckets: [AtomicU64; BUCKETS.len()],
    latency_sum_micros: AtomicU64,
}

impl Metrics {
    /// Records one GraphQL operation.
    pub fn observe(&self, took: Duration, backend_calls: usize, ok: bool) {
        if ok {
            &self.operations_ok
        } else {
            &self.operations_with_errors
        }
        .fetch_add(1, Ordering::Relaxed);
        self.backend_calls
            .fetch_add(backend_calls as u64, Ordering::Relaxed);
        self.latency_sum_micros
            .fetch_add(took.as_micros() as u64, Ordering::Relaxed);
        for (i, b) in BUCKETS.iter().enumerate() {
            if took.as_secs_f64() <= *b {
                self.latency_buckets[i].fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// The Prometheus text exposition.
    pub fn render(&self, backends: &Backends) -> String {
        let ok = self.operations_ok.load(Ordering::Relaxed);
        let bad = self.operations_with_errors.load(Ordering::Relaxed);
        let mut out = String::new();
        out.push_str("# HELP patto_gateway_operations_total GraphQL operations served.\n# TYPE patto_gateway_operations_total counter\n");
        out.push_str(&format!(
            "patto_gateway_operations_total{{outcome=\"ok\"}} {ok}\n"
        ));
        out.push_str(&format!(
            "patto_gateway_operations_total{{outcome=\"errors\"}} {bad}\n"
        ));
        out.push_str("# HELP patto_gateway_operation_seconds Time to answer a GraphQL operation.\n# TYPE patto_gateway_operation_seconds histogram\n");
        for (i, b) in BUCKETS.iter().enumerate() {
            out.push_str(&format!(
                "patto_gateway_operation_seconds_bucket{{le=\"{b}\"}} {}\n",
                self.latency_buckets[i].load(Ordering::Relaxed)
            ));
        }
        out.push_str(&format!(
            "patto_gateway_operation_seconds_bucket{{le=\"+Inf\"}} {}\n",
            ok + bad
        ));
        out.push_str(&format!(
            "patto_gateway_operation_seconds_sum {}\npatto_gateway_operation_seconds_count {}\n",
            self.latency_sum_micros.load(Ordering::Relaxed) as f64 / 1e6,
            ok + bad
        ));
        out.push_str("# HELP patto_gateway_backend_calls_per_operation_total Backend calls made for GraphQL operations.\n# TYPE patto_gateway_backend_calls_per_operation_total counter\n");
        out.push_str(&format!(
            "patto_gateway_backend_calls_per_operation_total {}\n",
            self.backend_calls.load(Ordering::Relaxed)
        ));
        out.push_str("# HELP patto_gateway_backend_calls_total Calls sent to each service.\n# TYPE patto_gateway_backend_calls_total counter\n");
        for b in backends.iter() {
            out.push_str(&format!(
                "patto_gateway_backend_calls_total{{service=\"{}\"}} {}\n",
                b.name,
                b.calls_made()
            ));
        }
        out.push_str("# HELP patto_gateway_circuit_open Circuit breaker state per service (0 closed, 1 open, 2 half-open).\n# TYPE patto_gateway_circuit_open gauge\n");
        for b in backends.iter() {
            let state = match b.breaker().state() {
                State::Closed => 0,
                State::Open => 1,
                State::HalfOpen => 2,
            };
            out.push_str(&format!(
                "patto_gateway_circuit_open{{service=\"{}\"}} {state}\n",
                b.name
            ));
        }
        out
    }
}
