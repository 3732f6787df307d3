//! The gateway's configuration, from the environment (or a map, in tests).
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `GATEWAY_ADDR` | `0.0.0.0:8080` | HTTP listen address |
//! | `<NAME>_GRPC_URL` | `http://127.0.0.1:<port>` | each service's gRPC URL |
//! | `PATTO_REFLECT_INTERVAL_SECS` | 30 | how often the services' contracts are re-read |
//! | `PATTO_REFLECT_TIMEOUT_SECS` | 5 | how long one service may take to answer reflection |
//! | `PATTO_GRAPHQL_TIMEOUT_SECS` | 15 | time budget of one GraphQL operation |
//! | `PATTO_GRAPHQL_INTROSPECTION` | true | whether introspection (and `/schema.graphql`) is served |
//! | `PATTO_SHUTDOWN_GRACE_SECS` | 20 | how long in-flight requests may run after SIGTERM |
//! | `REDIS_URL` | unset | Redis shared by the replicas: persisted queries and rate limits; unset → in-process |
//! | `PATTO_REDIS_PREFIX` | `patto:` | prefix of every Redis key the gateway writes |
//! | `PATTO_GRAPHQL_ALLOWLIST` | unset | path of a JSON array of GraphQL documents: only these run |
//! | `PATTO_APQ_TTL_SECS` | 86400 | how long a registered persisted query stays in Redis |
//! | `PATTO_RATE_LIMIT_PER_MINUTE` | 600 | requests per minute per caller; 0 disables |
//! | `PATTO_RATE_LIMIT_COMUNE_PER_MINUTE` | 6000 | requests per minute per comune (operators and systems together); 0 disables |
//! | `PATTO_TRUST_FORWARDED_FOR` | false | key anonymous callers by `X-Forwarded-For` (only behind a proxy that sets it) |
//!
//! The authenticator is not read from the environment: the binary that embeds the gateway sets
//! [`GatewayConfig::authenticator`] (the default treats every caller as anonymous).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use patto_service_kit::auth::{Anonymous, Authenticator};
use patto_service_kit::config::{ConfigError, SERVICES, Source, flag_or, parse_or};

use crate::apq::Allowlist;

/// Default Redis key prefix (`PATTO_REDIS_PREFIX`).
pub const DEFAULT_REDIS_PREFIX: &str = "patto:";
/// Default lifetime of a persisted query in Redis (`PATTO_APQ_TTL_SECS`): a day.
pub const DEFAULT_APQ_TTL: Duration = Duration::from_secs(24 * 60 * 60);
/// Default requests per minute per caller (`PATTO_RATE_LIMIT_PER_MINUTE`).
pub const DEFAULT_RATE_LIMIT_PER_MINUTE: u32 = 600;
/// Default requests per minute per comune (`PATTO_RATE_LIMIT_COMUNE_PER_MINUTE`).
pub const DEFAULT_RATE_LIMIT_COMUNE_PER_MINUTE: u32 = 6000;

/// Everything the gateway reads at start-up.
#[derive(Clone)]
pub struct GatewayConfig {
    /// HTTP listen address (`GATEWAY_ADDR`, default `0.0.0.0:8080`).
    pub http_addr: SocketAddr,
    /// Backends by short name and gRPC URL (`<NAME>_GRPC_URL`, default `http://127.0.0.1:<port>`).
    pub backends: Vec<(String, String)>,
    /// How often the services' contracts are re-read (`PATTO_REFLECT_INTERVAL_SECS`, default 30).
    pub reflect_interval: Duration,
    /// How long one service may take to answer reflection (`PATTO_REFLECT_TIMEOUT_SECS`, default 5).
    pub reflect_timeout: Duration,
    /// Time budget of one GraphQL operation (`PATTO_GRAPHQL_TIMEOUT_SECS`, default 15).
    pub operation_timeout: Duration,
    /// Whether introspection is allowed (`PATTO_GRAPHQL_INTROSPECTION`, default true; off in production).
    pub introspection: bool,
    /// How long in-flight requests may run after SIGTERM (`PATTO_SHUTDOWN_GRACE_SECS`, default 20).
    pub shutdown_grace: Duration,
    /// Who the caller of each GraphQL request is (default [`Anonymous`]: everyone is anonymous).
    /// Set by the embedding binary, not from the environment.
    pub authenticator: Arc<dyn Authenticator>,
    /// Redis shared by the gateway's replicas (`REDIS_URL`); `None` keeps persisted queries and
    /// rate limits in process.
    pub redis_url: Option<String>,
    /// Prefix of every Redis key the gateway writes (`PATTO_REDIS_PREFIX`, default `patto:`).
    pub redis_prefix: String,
    /// Allow-list mode (`PATTO_GRAPHQL_ALLOWLIST`, a JSON array of documents): only these run.
    pub allowlist: Option<Arc<Allowlist>>,
    /// Lifetime of a registered persisted query in Redis (`PATTO_APQ_TTL_SECS`, default a day).
    pub apq_ttl: Duration,
    /// Requests per minute per caller (`PATTO_RATE_LIMIT_PER_MINUTE`, default 600; 0 disables).
    pub rate_limit_per_minute: u32,
    /// Requests per minute per comune, its operators and systems together
    /// (`PATTO_RATE_LIMIT_COMUNE_PER_MINUTE`, default 6000; 0 disables).
    pub rate_limit_comune_per_minute: u32,
    /// Whether anonymous callers are keyed by the last `X-Forwarded-For` address instead of the
    /// peer address (`PATTO_TRUST_FORWARDED_FOR`, default false: clients could forge it).
    pub trust_forwarded_for: bool,
}

impl std::fmt::Debug for GatewayConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GatewayConfig")
            .field("http_addr", &self.http_addr)
            .field("backends", &self.backends)
            .field("reflect_interval", &self.reflect_interval)
            .field("reflect_timeout", &self.reflect_timeout)
            .field("operation_timeout", &self.operation_timeout)
            .field("introspection", &self.introspection)
            .field("shutdown_grace", &self.shutdown_grace)
            // The URL may carry a password.
            .field("redis_url", &self.redis_url.as_ref().map(|_| "<set>"))
            .field("redis_prefix", &self.redis_prefix)
            .field("allowlist", &self.allowlist.as_ref().map(|a| a.len()))
            .field("apq_ttl", &self.apq_ttl)
            .field("rate_limit_per_minute", &self.rate_limit_per_minute)
            .field(
                "rate_limit_comune_per_minute",
                &self.rate_limit_comune_per_minute,
            )
            .field("trust_forwarded_for", &self.trust_forwarded_for)
            .finish_non_exhaustive()
    }
}

impl Default for GatewayConfig {
    /// The defaults of every variable, with an anonymous authenticator. Tests build their
    /// configuration as `GatewayConfig { backends: …, ..Default::default() }`.
    fn default() -> Self {
        Self {
            http_addr: SocketAddr::from(([0, 0, 0, 0], 8080)),
            backends: SERVICES
                .iter()
                .map(|s| {
                    (
                        s.name.to_owned(),
                        format!("http://127.0.0.1:{}", s.default_port),
                    )
                })
                .collect(),
            reflect_interval: Duration::from_secs(30),
            reflect_timeout: Duration::from_secs(5),
            operation_timeout: Duration::from_secs(15),
            introspection: true,
            shutdown_grace: Duration::from_secs(20),
            authenticator: Arc::new(Anonymous),
            redis_url: None,
            redis_prefix: DEFAULT_REDIS_PREFIX.to_owned(),
            allowlist: None,
            apq_ttl: DEFAULT_APQ_TTL,
            rate_limit_per_minute: DEFAULT_RATE_LIMIT_PER_MINUTE,
            rate_limit_comune_per_minute: DEFAULT_RATE_LIMIT_COMUNE_PER_MINUTE,
            trust_forwarded_for: false,
        }
    }
}

impl GatewayConfig {
    /// The defaults, listening on `http_addr` and calling these backends (short name, gRPC URL):
    /// where tests and embedding binaries start from.
    pub fn for_backends(http_addr: SocketAddr, backends: Vec<(String, String)>) -> Self {
        Self {
            http_addr,
            backends,
            ..Self::default()
        }
    }

    /// Reads the configuration from `src`, the authenticator included (the same verifier as every
    /// service's, `PATTO_JWKS_URL` or the dev key: the gateway checks the token first, each
    /// service again).
    pub fn from_source(src: &dyn Source) -> Result<Self, ConfigError> {
        Ok(Self {
            authenticator: patto_service_kit::token::authenticator_from_source(src)?,
            ..Self::settings_from_source(src)?
        })
    }

    /// Reads everything but the authenticator from `src` (which stays anonymous), for a host that
    /// decides whom the gateway trusts itself, as the all-in-one launcher does.
    pub fn settings_from_source(src: &dyn Source) -> Result<Self, ConfigError> {
        let defaults = Self::default();
        let mut backends = Vec::new();
        for s in SERVICES {
            let var = format!("{}_GRPC_URL", s.name.to_ascii_uppercase());
            let url = src
                .get(&var)
                .unwrap_or_else(|| format!("http://127.0.0.1:{}", s.default_port));
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(ConfigError {
                    var,
                    value: url,
                    expected: "an http:// or https:// URL".into(),
                });
            }
            backends.push((s.name.to_owned(), url));
        }
        let secs = |key: &str, default: Duration| -> Result<Duration, ConfigError> {
            let n: u64 = parse_or(
                src,
                key,
                default.as_secs(),
                "a whole number of seconds, at least 1",
            )?;
            if n == 0 {
                return Err(ConfigError {
                    var: key.into(),
                    value: "0".into(),
                    expected: "at least 1 second".into(),
                });
            }
            Ok(Duration::from_secs(n))
        };
        let per_minute = |key: &str, default: u32| -> Result<u32, ConfigError> {
            parse_or(
                src,
                key,
                default,
                "a whole number of requests per minute (0 disables the limit)",
            )
        };
        Ok(Self {
            http_addr: parse_or(
                src,
                "GATEWAY_ADDR",
                defaults.http_addr,
                "a socket address such as 0.0.0.0:8080",
            )?,
            backends,
            reflect_interval: secs("PATTO_REFLECT_INTERVAL_SECS", defaults.reflect_interval)?,
            reflect_timeout: secs("PATTO_REFLECT_TIMEOUT_SECS", defaults.reflect_timeout)?,
            operation_timeout: secs("PATTO_GRAPHQL_TIMEOUT_SECS", defaults.operation_timeout)?,
            introspection: flag_or(src, "PATTO_GRAPHQL_INTROSPECTION", defaults.introspection)?,
            shutdown_grace: secs("PATTO_SHUTDOWN_GRACE_SECS", defaults.shutdown_grace)?,
            authenticator: defaults.authenticator,
            redis_url: redis_url(src)?,
            redis_prefix: redis_prefix(src)?,
            allowlist: allowlist(src)?,
            apq_ttl: secs("PATTO_APQ_TTL_SECS", defaults.apq_ttl)?,
            rate_limit_per_minute: per_minute(
                "PATTO_RATE_LIMIT_PER_MINUTE",
                defaults.rate_limit_per_minute,
            )?,
            rate_limit_comune_per_minute: per_minute(
                "PATTO_RATE_LIMIT_COMUNE_PER_MINUTE",
                defaults.rate_limit_comune_per_minute,
            )?,
            trust_forwarded_for: flag_or(
                src,
                "PATTO_TRUST_FORWARDED_FOR",
                defaults.trust_forwarded_for,
            )?,
        })
    }
}

fn redis_url(src: &dyn Source) -> Result<Option<String>, ConfigError> {
    let Some(url) = src.get("REDIS_URL") else {
        return Ok(None);
    };
    let url = url.trim().to_owned();
    match redis::Client::open(url.as_str()) {
        Ok(_) => Ok(Some(url)),
        Err(e) => Err(ConfigError {
            var: "REDIS_URL".into(),
            // The URL may carry a password: the error names the variable, not its value.
            value: "<redacted>".into(),
            expected: format!("a Redis URL such as redis://redis:6379/0 ({e})"),
        }),
    }
}

fn redis_prefix(src: &dyn Source) -> Result<String, ConfigError> {
    let Some(prefix) = src.get("PATTO_REDIS_PREFIX") else {
        return Ok(DEFAULT_REDIS_PREFIX.to_owned());
    };
    // Whitespace or control characters in keys make them painful to inspect with redis-cli.
    if prefix.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(ConfigError {
            var: "PATTO_REDIS_PREFIX".into(),
            value: prefix,
            expected: "a key prefix without spaces or control characters, such as patto:".into(),
        });
    }
    Ok(prefix)
}

fn allowlist(src: &dyn Source) -> Result<Option<Arc<Allowlist>>, ConfigError> {
    let Some(path) = src.get("PATTO_GRAPHQL_ALLOWLIST") else {
        return Ok(None);
    };
    Allowlist::load(std::path::Path::new(&path))
        .map(|a| Some(Arc::new(a)))
        .map_err(|reason| ConfigError {
            var: "PATTO_GRAPHQL_ALLOWLIST".into(),
            value: path,
            expected: format!(
                "the path of a JSON file holding an array of GraphQL documents ({reason})"
            ),
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn defaults_and_errors() {
        let cfg = GatewayConfig::from_source(&HashMap::<&'static str, String>::new()).unwrap();
        assert_eq!(cfg.backends.len(), 7);
        assert_eq!(
            cfg.backends[2],
            ("culture".to_owned(), "http://127.0.0.1:50053".to_owned())
        );
        assert_eq!(cfg.redis_url, None);
        assert_eq!(cfg.redis_prefix, "patto:");
        assert!(cfg.allowlist.is_none());
        assert_eq!(cfg.rate_limit_per_minute, 600);
        assert_eq!(cfg.rate_limit_comune_per_minute, 6000);
        assert!(!cfg.trust_forwarded_for);
        assert_eq!(cfg.backends, GatewayConfig::default().backends);
        for (var, value) in [
            ("CULTURE_GRPC_URL", "culture:50053"),
            ("PATTO_GRAPHQL_TIMEOUT_SECS", "0"),
            ("GATEWAY_ADDR", "x"),
            ("REDIS_URL", "http://redis:6379"),
            ("PATTO_REDIS_PREFIX", "my prefix"),
            ("PATTO_GRAPHQL_ALLOWLIST", "/nonexistent/allowlist.json"),
            ("PATTO_APQ_TTL_SECS", "0"),
            ("PATTO_RATE_LIMIT_PER_MINUTE", "-1"),
            ("PATTO_RATE_LIMIT_COMUNE_PER_MINUTE", "lots"),
            ("PATTO_TRUST_FORWARDED_FOR", "maybe"),
        ] {
            let src: HashMap<&'static str, String> =
                [(var, value.to_owned())].into_iter().collect();
            let err = GatewayConfig::from_source(&src).unwrap_err().to_string();
            assert!(err.starts_with(var), "{err}");
        }
    }

    #[test]
    fn redis_passwords_stay_out_of_errors_and_debug() {
        let src: HashMap<&'static str, String> =
            [("REDIS_URL", "rediz://:hunter2@redis:6379".to_owned())]
                .into_iter()
                .collect();
        let err = GatewayConfig::from_source(&src).unwrap_err().to_string();
        assert!(!err.contains("hunter2"), "{err}");
        let src: HashMap<&'static str, String> = [
            ("REDIS_URL", "redis://:hunter2@redis:6379/0".to_owned()),
            ("PATTO_RATE_LIMIT_PER_MINUTE", "0".to_owned()),
            ("PATTO_TRUST_FORWARDED_FOR", "yes".to_owned()),
        ]
        .into_iter()
        .collect();
        let cfg = GatewayConfig::from_source(&src).unwrap();
        assert_eq!(cfg.rate_limit_per_minute, 0);
        assert!(cfg.trust_forwarded_for);
        assert!(!format!("{cfg:?}").contains("hunter2"));
    }

    #[test]
    fn allowlist_files_are_read_at_start_up() {
        let dir = std::env::temp_dir().join(format!("patto-allowlist-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let good = dir.join("good.json");
        std::fs::write(&good, r#"["{ a }", "query B { b }"]"#).unwrap();
        let bad = dir.join("bad.json");
        std::fs::write(&bad, r#"{"not": "an array"}"#).unwrap();
        let src: HashMap<&'static str, String> = [(
            "PATTO_GRAPHQL_ALLOWLIST",
            good.to_string_lossy().into_owned(),
        )]
        .into_iter()
        .collect();
        let cfg = GatewayConfig::from_source(&src).unwrap();
        assert_eq!(cfg.allowlist.map(|a| a.len()), Some(2));
        let src: HashMap<&'static str, String> = [(
            "PATTO_GRAPHQL_ALLOWLIST",
            bad.to_string_lossy().into_owned(),
        )]
        .into_iter()
        .collect();
        let err = GatewayConfig::from_source(&src).unwrap_err().to_string();
        assert!(err.starts_with("PATTO_GRAPHQL_ALLOWLIST"), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
