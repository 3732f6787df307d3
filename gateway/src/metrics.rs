//! Prometheus counters of the gateway: operations, their latency, backend calls per operation,
//! calls and circuit-breaker state per service, and the request-safety layer (refused
//! credentials, persisted queries, rate limits, Redis fallbacks).

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
    operations_planned: AtomicU64,
    backend_calls: AtomicU64,
    latency_buckets: [AtomicU64; BUCKETS.len()],
    latency_sum_micros: AtomicU64,
    unauthenticated: AtomicU64,
    apq_hits: AtomicU64,
    apq_misses: AtomicU64,
    apq_registrations: AtomicU64,
    apq_refused: AtomicU64,
    rate_limited_principal: AtomicU64,
    rate_limited_comune: AtomicU64,
    redis_errors: AtomicU64,
}

/// What happened to a persisted query (Apollo APQ or allow-list).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApqOutcome {
    /// A hash was sent without text and its document was found.
    Hit,
    /// A hash was sent without text and is unknown (`PERSISTED_QUERY_NOT_FOUND`).
    Miss,
    /// A hash was sent with its text and the pair was stored.
    Registered,
    /// The document is not on the allow-list (`PERSISTED_QUERY_NOT_ALLOWED`).
    Refused,
}

/// Which rate limit refused a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitScope {
    /// The caller's own limit.
    Principal,
    /// The shared limit of the caller's comune.
    Comune,
}

impl LimitScope {
    /// The name clients and metrics see: `principal` or `comune`.
    pub fn name(self) -> &'static str {
        match self {
            LimitScope::Principal => "principal",
            LimitScope::Comune => "comune",
        }
    }
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

    /// Records an operation a compiled plan answered (see `compose::plan`), besides [`Metrics::observe`].
    pub fn planned(&self) {
        self.operations_planned.fetch_add(1, Ordering::Relaxed);
    }

    /// Records a request refused because its credentials could not be verified.
    pub fn unauthenticated(&self) {
        self.unauthenticated.fetch_add(1, Ordering::Relaxed);
    }

    /// Records what happened to a persisted query.
    pub fn apq(&self, outcome: ApqOutcome) {
        match outcome {
            ApqOutcome::Hit => &self.apq_hits,
            ApqOutcome::Miss => &self.apq_misses,
            ApqOutcome::Registered => &self.apq_registrations,
            ApqOutcome::Refused => &self.apq_refused,
        }
        .fetch_add(1, Ordering::Relaxed);
    }

    /// Records a request refused by a rate limit.
    pub fn rate_limited(&self, scope: LimitScope) {
        match scope {
            LimitScope::Principal => &self.rate_limited_principal,
            LimitScope::Comune => &self.rate_limited_comune,
        }
        .fetch_add(1, Ordering::Relaxed);
    }

    /// Records a Redis command that failed or timed out (the in-process fallback served instead).
    pub fn redis_error(&self) {
        self.redis_errors.fetch_add(1, Ordering::Relaxed);
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
        out.push_str("# HELP patto_gateway_planned_operations_total GraphQL operations a compiled plan answered (the rest ran through the engine).\n# TYPE patto_gateway_planned_operations_total counter\n");
        out.push_str(&format!(
            "patto_gateway_planned_operations_total {}\n",
            self.operations_planned.load(Ordering::Relaxed)
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
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        out.push_str("# HELP patto_gateway_unauthenticated_total Requests refused because their credentials could not be verified.\n# TYPE patto_gateway_unauthenticated_total counter\n");
        out.push_str(&format!(
            "patto_gateway_unauthenticated_total {}\n",
            load(&self.unauthenticated)
        ));
        out.push_str("# HELP patto_gateway_persisted_queries_total Persisted queries by outcome (hit, miss, registered, refused by the allow-list).\n# TYPE patto_gateway_persisted_queries_total counter\n");
        for (outcome, counter) in [
            ("hit", &self.apq_hits),
            ("miss", &self.apq_misses),
            ("registered", &self.apq_registrations),
            ("refused", &self.apq_refused),
        ] {
            out.push_str(&format!(
                "patto_gateway_persisted_queries_total{{outcome=\"{outcome}\"}} {}\n",
                load(counter)
            ));
        }
        out.push_str("# HELP patto_gateway_rate_limited_total Requests refused by a rate limit, by limit.\n# TYPE patto_gateway_rate_limited_total counter\n");
        for (scope, counter) in [
            (LimitScope::Principal, &self.rate_limited_principal),
            (LimitScope::Comune, &self.rate_limited_comune),
        ] {
            out.push_str(&format!(
                "patto_gateway_rate_limited_total{{limit=\"{}\"}} {}\n",
                scope.name(),
                load(counter)
            ));
        }
        out.push_str("# HELP patto_gateway_redis_errors_total Redis commands that failed or timed out; the in-process fallback served those requests.\n# TYPE patto_gateway_redis_errors_total counter\n");
        out.push_str(&format!(
            "patto_gateway_redis_errors_total {}\n",
            load(&self.redis_errors)
        ));
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
