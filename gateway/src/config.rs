//! The gateway's configuration, from the environment (or a map, in tests).

use std::net::SocketAddr;
use std::time::Duration;

use patto_service_kit::config::{ConfigError, SERVICES, Source, flag_or, parse_or};

/// Everything the gateway reads at start-up.
#[derive(Debug, Clone)]
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
}

impl GatewayConfig {
    /// Reads the configuration from `src`.
    pub fn from_source(src: &dyn Source) -> Result<Self, ConfigError> {
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
        let secs = |key: &str, default: u64| -> Result<Duration, ConfigError> {
            let n: u64 = parse_or(src, key, default, "a whole number of seconds, at least 1")?;
            if n == 0 {
                return Err(ConfigError {
                    var: key.into(),
                    value: "0".into(),
                    expected: "at least 1 second".into(),
                });
            }
            Ok(Duration::from_secs(n))
        };
        Ok(Self {
            http_addr: parse_or(
                src,
                "GATEWAY_ADDR",
                SocketAddr::from(([0, 0, 0, 0], 8080)),
                "a socket address such as 0.0.0.0:8080",
            )?,
            backends,
            reflect_interval: secs("PATTO_REFLECT_INTERVAL_SECS", 30)?,
            reflect_timeout: secs("PATTO_REFLECT_TIMEOUT_SECS", 5)?,
            operation_timeout: secs("PATTO_GRAPHQL_TIMEOUT_SECS", 15)?,
            introspection: flag_or(src, "PATTO_GRAPHQL_INTROSPECTION", true)?,
            shutdown_grace: secs("PATTO_SHUTDOWN_GRACE_SECS", 20)?,
        })
    }
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
        for (var, value) in [
            ("CULTURE_GRPC_URL", "culture:50053"),
            ("PATTO_GRAPHQL_TIMEOUT_SECS", "0"),
            ("GATEWAY_ADDR", "x"),
        ] {
            let src: HashMap<&'static str, String> =
                [(var, value.to_owned())].into_iter().collect();
            let err = GatewayConfig::from_source(&src).unwrap_err().to_string();
            assert!(err.starts_with(var), "{err}");
        }
    }
}
