//! Rate limits per caller and per comune, counted once per GraphQL request (HTTP) and once per
//! subscription (WebSocket `subscribe`).
//!
//! - Caller: a citizen by fiscal code, an operator or a system by comune and subject, an
//!   anonymous caller by client address (IPv6 by its /64, which one host usually owns entirely);
//!   `PATTO_RATE_LIMIT_PER_MINUTE`, 0 disables.
//! - Comune: the operators and systems of one comune together (citizens and anonymous callers have
//!   no comune limit); `PATTO_RATE_LIMIT_COMUNE_PER_MINUTE`, 0 disables.
//!
//! Fixed windows of one minute, each starting at the key's first request. With `REDIS_URL`, the
//! counters live in Redis and every replica shares them: one Lua script increments the caller's
//! counter and, only if that one is within its limit, the comune's, atomically (so a caller
//! refused by its own limit does not use up its comune's budget). Redis keys are
//! `<prefix>ratelimit:principal:<digest>` (a SHA-256 of the caller key: no fiscal code in clear
//! in Redis) and `<prefix>ratelimit:comune:<ISTAT>`. When Redis fails, the request is counted by
//! the replica's in-process limiter instead: limits then hold per replica (fail open, not closed).

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, Instant};

use patto_service_kit::Principal;

use crate::RedisLink;
use crate::apq::sha256_hex;
use crate::metrics::{LimitScope, Metrics};

/// Length of a rate-limit window.
pub const WINDOW: Duration = Duration::from_secs(60);
/// Most counters the in-process limiter tracks; past it, new keys are not limited until expired
/// windows are swept (memory stays bounded whatever the number of client addresses).
pub const MAX_LOCAL_KEYS: usize = 200_000;
/// How many checks pass between sweeps of expired in-process windows.
const SWEEP_EVERY: u64 = 1024;
/// Least time between two sweeps forced by a full table (a sweep walks every key).
const SWEEP_FULL_PAUSE: Duration = Duration::from_secs(1);

/// The configured limits, in requests per minute; 0 disables one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Per caller.
    pub per_principal: u32,
    /// Per comune (operators and systems).
    pub per_comune: u32,
}

/// A refused request: which limit, and when its window resets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limited {
    /// The limit that was reached.
    pub scope: LimitScope,
    /// Its value, in requests per minute.
    pub limit: u32,
    /// Time until the window resets.
    pub retry_after: Duration,
}

impl Limited {
    /// Whole seconds until the window resets, at least 1 (the `Retry-After` header).
    pub fn retry_after_secs(&self) -> u64 {
        self.retry_after.as_millis().div_ceil(1000).max(1) as u64
    }

    /// The message clients see, naming the limit.
    pub fn message(&self) -> String {
        let whose = match self.scope {
            LimitScope::Principal => "per caller",
            LimitScope::Comune => "per comune",
        };
        format!(
            "rate limit exceeded: at most {} requests per minute {whose}; retry in {} s",
            self.limit,
            self.retry_after_secs()
        )
    }
}

/// The key a caller is counted under: `citizen:<CF>`, `operator:<ISTAT>:<subject>`,
/// `system:<ISTAT>:<subject>`, or `anonymous:<address>` (an IPv6 address by its /64).
pub fn principal_key(principal: &Principal, client: IpAddr) -> String {
    match principal {
        Principal::Citizen { fiscal_code } => format!("citizen:{fiscal_code}"),
        Principal::Operator {
            istat_code,
            subject,
        } => format!("operator:{istat_code}:{subject}"),
        Principal::System {
            istat_code,
            subject,
        } => format!("system:{istat_code}:{subject}"),
        Principal::Anonymous => match client.to_canonical() {
            IpAddr::V4(v4) => format!("anonymous:{v4}"),
            IpAddr::V6(v6) => {
                let s = v6.segments();
                let net = Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0);
                format!("anonymous:{net}/64")
            }
        },
    }
}

/// The client's address: the peer's, or with `trust_forwarded_for` the last address in
/// `X-Forwarded-For` (the one the nearest proxy appended; earlier entries are whatever the
/// client claimed). Unknown peers count as `0.0.0.0`.
pub fn client_ip(
    peer: Option<SocketAddr>,
    headers: &http::HeaderMap,
    trust_forwarded_for: bool,
) -> IpAddr {
    if trust_forwarded_for
        && let Some(ip) = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|s| {
                let s = s.trim();
                s.parse::<IpAddr>()
                    .ok()
                    .or_else(|| s.parse::<SocketAddr>().ok().map(|a| a.ip()))
            })
            .next_back()
    {
        return ip;
    }
    peer.map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |p| p.ip())
}

/// Increments each counter (KEYS) in turn, starting its window on the first hit, and stops at
/// the first one over its limit (ARGV[i + 1]); returns `{index of that counter or 0, its
/// remaining window in ms}`. Atomic, so replicas never race past a limit.
const SCRIPT_SOURCE: &str = r"
local window = tonumber(ARGV[1])
for i, key in ipairs(KEYS) do
  local n = redis.call('INCR', key)
  local ttl = redis.call('PTTL', key)
  if ttl < 0 then
    redis.call('PEXPIRE', key, window)
    ttl = window
  end
  if n > tonumber(ARGV[i + 1]) then
    return {i, ttl}
  end
end
return {0, 0}
";

static SCRIPT: LazyLock<redis::Script> = LazyLock::new(|| redis::Script::new(SCRIPT_SOURCE));

struct Counter {
    scope: LimitScope,
    limit: u32,
    local_key: String,
    redis_key: String,
}

struct Window {
    count: u64,
    resets_at: Instant,
}

#[derive(Default)]
struct Local {
    windows: HashMap<String, Window>,
    checks: u64,
    last_sweep: Option<Instant>,
}

/// Counts requests and refuses those over a limit.
pub struct RateLimiter {
    limits: Limits,
    window: Duration,
    redis: Option<Arc<RedisLink>>,
    local: Mutex<Local>,
    metrics: Arc<Metrics>,
}

impl std::fmt::Debug for RateLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimiter")
            .field("limits", &self.limits)
            .field("window", &self.window)
            .field("redis", &self.redis)
            .finish_non_exhaustive()
    }
}

impl RateLimiter {
    /// A limiter with these limits, shared through `redis` when set.
    pub fn new(limits: Limits, redis: Option<Arc<RedisLink>>, metrics: Arc<Metrics>) -> Self {
        Self {
            limits,
            window: WINDOW,
            redis,
            local: Mutex::new(Local::default()),
            metrics,
        }
    }

    /// Counts one request of `principal` (from `client`), or says which limit refuses it.
    pub async fn check(&self, principal: &Principal, client: IpAddr) -> Result<(), Limited> {
        let mut counters = Vec::with_capacity(2);
        if self.limits.per_principal > 0 {
            let key = principal_key(principal, client);
            counters.push(Counter {
                scope: LimitScope::Principal,
                limit: self.limits.per_principal,
                redis_key: format!("ratelimit:principal:{}", &sha256_hex(&key)[..32]),
                local_key: format!("p:{key}"),
            });
        }
        if let Some(comune) = principal.comune().filter(|_| self.limits.per_comune > 0) {
            counters.push(Counter {
                scope: LimitScope::Comune,
                limit: self.limits.per_comune,
                redis_key: format!("ratelimit:comune:{comune}"),
                local_key: format!("c:{comune}"),
            });
        }
        if counters.is_empty() {
            return Ok(());
        }
        let shared = match &self.redis {
            Some(redis) => self.check_redis(redis, &counters).await,
            None => None,
        };
        let verdict = match shared {
            Some(v) => v,
            None => self.check_local(&counters, Instant::now()),
        };
        if let Err(limited) = &verdict {
            self.metrics.rate_limited(limited.scope);
        }
        verdict
    }

    /// The shared verdict, or `None` when Redis is unavailable.
    async fn check_redis(
        &self,
        redis: &RedisLink,
        counters: &[Counter],
    ) -> Option<Result<(), Limited>> {
        let keys: Vec<String> = counters.iter().map(|c| redis.key(&c.redis_key)).collect();
        let limits: Vec<u32> = counters.iter().map(|c| c.limit).collect();
        let window_ms = u64::try_from(self.window.as_millis()).unwrap_or(u64::MAX);
        let reply: Vec<i64> = redis
            .run("rate limits", |mut c| async move {
                let mut invocation = SCRIPT.prepare_invoke();
                for k in &keys {
                    invocation.key(k);
                }
                invocation.arg(window_ms);
                for l in &limits {
                    invocation.arg(*l);
                }
                invocation.invoke_async::<Vec<i64>>(&mut c).await
            })
            .await?;
        let (index, ttl_ms) = match reply.as_slice() {
            [i, t] => (*i, *t),
            // Not what the script returns: let the request through rather than refuse it.
            _ => return Some(Ok(())),
        };
        let Some(counter) = usize::try_from(index)
            .ok()
            .and_then(|i| i.checked_sub(1))
            .and_then(|i| counters.get(i))
        else {
            return Some(Ok(()));
        };
        Some(Err(Limited {
            scope: counter.scope,
            limit: counter.limit,
            retry_after: Duration::from_millis(u64::try_from(ttl_ms).unwrap_or(0)),
        }))
    }

    /// The in-process verdict (no Redis, or Redis down), with the same semantics as the script.
    fn check_local(&self, counters: &[Counter], now: Instant) -> Result<(), Limited> {
        let mut local = self
            .local
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        local.checks += 1;
        let full_and_due = local.windows.len() >= MAX_LOCAL_KEYS
            && local
                .last_sweep
                .is_none_or(|t| now.saturating_duration_since(t) >= SWEEP_FULL_PAUSE);
        if local.checks.is_multiple_of(SWEEP_EVERY) || full_and_due {
            local.windows.retain(|_, w| w.resets_at > now);
            local.last_sweep = Some(now);
        }
        for counter in counters {
            if !local.windows.contains_key(&counter.local_key)
                && local.windows.len() >= MAX_LOCAL_KEYS
            {
                // Full of live windows: let this new key through uncounted rather than grow.
                continue;
            }
            let window = local
                .windows
                .entry(counter.local_key.clone())
                .or_insert(Window {
                    count: 0,
                    resets_at: now + self.window,
                });
            if window.resets_at <= now {
                *window = Window {
                    count: 0,
                    resets_at: now + self.window,
                };
            }
            window.count += 1;
            if window.count > u64::from(counter.limit) {
                return Err(Limited {
                    scope: counter.scope,
                    limit: counter.limit,
                    retry_after: window.resets_at.saturating_duration_since(now),
                });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter(per_principal: u32, per_comune: u32) -> RateLimiter {
        RateLimiter::new(
            Limits {
                per_principal,
                per_comune,
            },
            None,
            Arc::new(Metrics::default()),
        )
    }

    fn operator(istat: &str, subject: &str) -> Principal {
        Principal::Operator {
            istat_code: istat.into(),
            subject: subject.into(),
        }
    }

    const HOME: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

    #[test]
    fn keys() {
        let v6: IpAddr = "2001:db8:1:2:3:4:5:6".parse().unwrap();
        assert_eq!(
            principal_key(&Principal::Anonymous, v6),
            "anonymous:2001:db8:1:2::/64"
        );
        let mapped: IpAddr = "::ffff:10.0.0.1".parse().unwrap();
        assert_eq!(
            principal_key(&Principal::Anonymous, mapped),
            "anonymous:10.0.0.1"
        );
        assert_eq!(
            principal_key(&operator("082053", "anna"), HOME),
            "operator:082053:anna"
        );
        assert_eq!(
            principal_key(
                &Principal::Citizen {
                    fiscal_code: "RSSMRA80A01G273Z".into()
                },
                HOME
            ),
            "citizen:RSSMRA80A01G273Z"
        );
    }

    #[test]
    fn forwarded_for_only_when_trusted() {
        let mut h = http::HeaderMap::new();
        h.append("x-forwarded-for", "6.6.6.6, 10.1.2.3".parse().unwrap());
        let peer = Some(SocketAddr::from(([192, 168, 0, 9], 4000)));
        assert_eq!(
            client_ip(peer, &h, false),
            "192.168.0.9".parse::<IpAddr>().unwrap()
        );
        assert_eq!(
            client_ip(peer, &h, true),
            "10.1.2.3".parse::<IpAddr>().unwrap()
        );
        h.append("x-forwarded-for", "[2001:db8::1]:443".parse().unwrap());
        assert_eq!(
            client_ip(peer, &h, true),
            "2001:db8::1".parse::<IpAddr>().unwrap()
        );
        let junk: http::HeaderMap = [(
            http::header::HeaderName::from_static("x-forwarded-for"),
            "unknown".parse().unwrap(),
        )]
        .into_iter()
        .collect();
        assert_eq!(
            client_ip(peer, &junk, true),
            "192.168.0.9".parse::<IpAddr>().unwrap()
        );
        assert_eq!(
            client_ip(None, &junk, false),
            IpAddr::V4(Ipv4Addr::UNSPECIFIED)
        );
    }

    #[tokio::test]
    async fn caller_and_comune_limits_in_process() {
        let l = limiter(3, 4);
        let anna = operator("082053", "anna");
        let bruno = operator("082053", "bruno");
        for _ in 0..3 {
            l.check(&anna, HOME).await.unwrap();
        }
        let refused = l.check(&anna, HOME).await.unwrap_err();
        assert_eq!(refused.scope, LimitScope::Principal);
        assert!((1..=60).contains(&refused.retry_after_secs()));
        assert!(
            refused
                .message()
                .contains("3 requests per minute per caller")
        );
        // Anna's refused request did not use up the comune's budget: Bruno has one left.
        l.check(&bruno, HOME).await.unwrap();
        let refused = l.check(&bruno, HOME).await.unwrap_err();
        assert_eq!((refused.scope, refused.limit), (LimitScope::Comune, 4));
        // Another comune and citizens are unaffected.
        l.check(&operator("082001", "carla"), HOME).await.unwrap();
        let citizen = Principal::Citizen {
            fiscal_code: "RSSMRA80A01G273Z".into(),
        };
        l.check(&citizen, HOME).await.unwrap();
    }

    #[test]
    fn windows_reset() {
        let l = limiter(1, 0);
        let key = Counter {
            scope: LimitScope::Principal,
            limit: 1,
            local_key: "p:x".into(),
            redis_key: String::new(),
        };
        let t0 = Instant::now();
        l.check_local(std::slice::from_ref(&key), t0).unwrap();
        let refused = l
            .check_local(std::slice::from_ref(&key), t0 + Duration::from_secs(20))
            .unwrap_err();
        assert_eq!(refused.retry_after_secs(), 40);
        l.check_local(std::slice::from_ref(&key), t0 + WINDOW)
            .unwrap();
    }

    #[test]
    fn the_in_process_table_stays_bounded() {
        let l = limiter(1, 0);
        let now = Instant::now();
        {
            let mut local = l.local.lock().unwrap();
            for i in 0..MAX_LOCAL_KEYS {
                local.windows.insert(
                    format!("p:{i}"),
                    Window {
                        count: 1,
                        resets_at: now + WINDOW,
                    },
                );
            }
        }
        let newcomer = Counter {
            scope: LimitScope::Principal,
            limit: 1,
            local_key: "p:new".into(),
            redis_key: String::new(),
        };
        for _ in 0..3 {
            l.check_local(std::slice::from_ref(&newcomer), now).unwrap();
        }
        assert_eq!(l.local.lock().unwrap().windows.len(), MAX_LOCAL_KEYS);
        // Once the old windows expire, a sweep makes room and the newcomer is counted again.
        let later = now + WINDOW + SWEEP_FULL_PAUSE;
        l.check_local(std::slice::from_ref(&newcomer), later)
            .unwrap();
        assert!(
            l.check_local(std::slice::from_ref(&newcomer), later)
                .is_err()
        );
    }

    #[tokio::test]
    async fn zero_disables() {
        let l = limiter(0, 0);
        for _ in 0..10 {
            l.check(&operator("082053", "anna"), HOME).await.unwrap();
        }
    }
}
