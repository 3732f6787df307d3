//! Typed configuration read from environment variables (12-factor), with defaults that make a
//! service start with nothing set. Values are read through [`Source`] so tests pass a map instead of
//! mutating the process environment.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::auth::Authenticator;

/// Where configuration values come from.
pub trait Source: Send + Sync {
    /// The value of `key`, if set and not empty.
    fn get(&self, key: &str) -> Option<String>;
}

/// The process environment.
#[derive(Debug, Clone, Copy, Default)]
pub struct Env;

impl Source for Env {
    fn get(&self, key: &str) -> Option<String> {
        std::env::var(key).ok().filter(|v| !v.is_empty())
    }
}

impl Source for HashMap<String, String> {
    fn get(&self, key: &str) -> Option<String> {
        HashMap::get(self, key).filter(|v| !v.is_empty()).cloned()
    }
}

impl Source for HashMap<&'static str, String> {
    fn get(&self, key: &str) -> Option<String> {
        HashMap::get(self, key).filter(|v| !v.is_empty()).cloned()
    }
}

/// A configuration value that cannot be used, with the fix.
#[derive(Debug, thiserror::Error)]
#[error("{var}={value:?} is not valid: {expected}. Fix {var} or unset it to use the default.")]
pub struct ConfigError {
    /// Name of the variable at fault.
    pub var: String,
    /// The value it holds.
    pub value: String,
    /// What a valid value looks like.
    pub expected: String,
}

/// Reads `key` and parses it, falling back to `default` when unset.
pub fn parse_or<T: std::str::FromStr>(
    src: &dyn Source,
    key: &str,
    default: T,
    expected: &str,
) -> Result<T, ConfigError> {
    match src.get(key) {
        None => Ok(default),
        Some(raw) => raw.trim().parse().map_err(|_| ConfigError {
            var: key.to_owned(),
            value: raw,
            expected: expected.to_owned(),
        }),
    }
}

/// Reads a boolean flag: `true/false`, `1/0`, `yes/no`, `on/off`.
pub fn flag_or(src: &dyn Source, key: &str, default: bool) -> Result<bool, ConfigError> {
    match src.get(key).map(|v| v.trim().to_ascii_lowercase()) {
        None => Ok(default),
        Some(v) => match v.as_str() {
            "1" | "true" | "yes" | "on" => Ok(true),
            "0" | "false" | "no" | "off" => Ok(false),
            _ => Err(ConfigError {
                var: key.to_owned(),
                value: v,
                expected: "a boolean (true/false, 1/0, yes/no, on/off)".to_owned(),
            }),
        },
    }
}

/// Identity of a service: its short name and default gRPC port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServiceName {
    /// Short name, e.g. `culture`; names the SQLite file and the logs' `service` field.
    pub name: &'static str,
    /// Port the service listens on by default (50051–50057).
    pub default_port: u16,
}

/// Configuration every service binary reads at start-up.
#[derive(Clone)]
pub struct ServiceConfig {
    /// Address the gRPC server binds (`GRPC_ADDR`, default `0.0.0.0:<default port>`).
    pub grpc_addr: SocketAddr,
    /// Database URL (`DATABASE_URL`, default a SQLite file under `PATTO_DATA_DIR`).
    pub database_url: String,
    /// Whether to seed deterministic demo data for the 82 comuni (`PATTO_DEMO_DATA`, default false).
    pub demo_data: bool,
    /// How long in-flight calls may run after SIGTERM before the process exits
    /// (`PATTO_SHUTDOWN_GRACE_SECS`, default 20).
    pub shutdown_grace: Duration,
    /// Platform-wide secret salted into citizen hashes for the indicators (`PATTO_INDICATORS_SALT`).
    pub indicators_salt: String,
    /// gRPC endpoints of the other services, by short name (`<NAME>_GRPC_URL`, e.g.
    /// `BUILDING_GRPC_URL`; default `http://127.0.0.1:<its default port>`).
    pub peers: BTreeMap<&'static str, String>,
    /// Who is calling: bearer tokens verified against the identity provider's JWKS
    /// (`PATTO_JWKS_URL`, `PATTO_JWT_ISSUER`, `PATTO_JWT_AUDIENCE`), or against the dev issuer's
    /// key (`PATTO_DEV_ISSUER_KEY`), or everyone anonymous when neither is set. See
    /// [`crate::token::authenticator_from_source`]; `serve_service` installs it on the app.
    pub authenticator: Arc<dyn Authenticator>,
    /// The local dev issuer, when the service trusts it (`PATTO_DEV_ISSUER_KEY` without
    /// `PATTO_JWKS_URL`, or the all-in-one): it also signs the service's own calls to its peers as
    /// a comune's system, such as the demo seed. `None` in production, where the identity provider
    /// issues a service its own credentials.
    pub dev_issuer: Option<Arc<crate::token::DevIssuer>>,
}

impl std::fmt::Debug for ServiceConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Written out because the authenticator is a trait object without `Debug`.
        f.debug_struct("ServiceConfig")
            .field("grpc_addr", &self.grpc_addr)
            .field("database_url", &self.database_url)
            .field("demo_data", &self.demo_data)
            .field("shutdown_grace", &self.shutdown_grace)
            .field("indicators_salt", &"<secret>")
            .field("peers", &self.peers)
            .finish_non_exhaustive()
    }
}

/// The seven services: short name and default gRPC port.
pub const SERVICES: [ServiceName; 7] = [
    ServiceName {
        name: "social",
        default_port: 50051,
    },
    ServiceName {
        name: "building",
        default_port: 50052,
    },
    ServiceName {
        name: "culture",
        default_port: 50053,
    },
    ServiceName {
        name: "employment",
        default_port: 50054,
    },
    ServiceName {
        name: "taxes",
        default_port: 50055,
    },
    ServiceName {
        name: "environment",
        default_port: 50056,
    },
    ServiceName {
        name: "publicworks",
        default_port: 50057,
    },
];

/// Salt used when `PATTO_INDICATORS_SALT` is unset: fine on one machine, never in production.
pub const DEV_INDICATORS_SALT: &str = "patto-dev-indicators-salt";

impl ServiceConfig {
    /// Reads the configuration of `service` from `src`.
    pub fn from_source(service: ServiceName, src: &dyn Source) -> Result<Self, ConfigError> {
        let grpc_addr = parse_or(
            src,
            "GRPC_ADDR",
            SocketAddr::from(([0, 0, 0, 0], service.default_port)),
            "a socket address such as 0.0.0.0:50053",
        )?;
        let data_dir: PathBuf = parse_or(
            src,
            "PATTO_DATA_DIR",
            PathBuf::from("data"),
            "a directory path",
        )?;
        let database_url = src
            .get("DATABASE_URL")
            .unwrap_or_else(|| sqlite_file_url(&data_dir, service.name));
        if !(database_url.starts_with("sqlite:")
            || database_url.starts_with("postgres://")
            || database_url.starts_with("postgresql://"))
        {
            return Err(ConfigError {
                var: "DATABASE_URL".into(),
                value: database_url,
                expected: "a sqlite: or postgres:// URL".into(),
            });
        }
        let grace_secs: u64 = parse_or(
            src,
            "PATTO_SHUTDOWN_GRACE_SECS",
            20,
            "a whole number of seconds",
        )?;
        let mut peers = BTreeMap::new();
        for peer in SERVICES.iter().filter(|p| p.name != service.name) {
            let var = format!("{}_GRPC_URL", peer.name.to_ascii_uppercase());
            let url = src
                .get(&var)
                .unwrap_or_else(|| format!("http://127.0.0.1:{}", peer.default_port));
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(ConfigError {
                    var,
                    value: url,
                    expected: "an http:// or https:// URL".into(),
                });
            }
            peers.insert(peer.name, url);
        }
        let (authenticator, dev_issuer) = crate::token::credentials_from_source(src)?;
        Ok(Self {
            grpc_addr,
            database_url,
            demo_data: flag_or(src, "PATTO_DEMO_DATA", false)?,
            shutdown_grace: Duration::from_secs(grace_secs),
            indicators_salt: src
                .get("PATTO_INDICATORS_SALT")
                .unwrap_or_else(|| DEV_INDICATORS_SALT.to_owned()),
            peers,
            authenticator,
            dev_issuer,
        })
    }

    /// The gRPC endpoint of another service, e.g. `peer("building")`.
    pub fn peer(&self, name: &str) -> Option<&str> {
        self.peers.get(name).map(String::as_str)
    }
}

/// URL of the SQLite file of `service` under `dir`, created when missing.
pub fn sqlite_file_url(dir: &std::path::Path, service: &str) -> String {
    format!(
        "sqlite://{}?mode=rwc",
        dir.join(format!("{service}.db")).display()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const CULTURE: ServiceName = ServiceName {
        name: "culture",
        default_port: 50053,
    };

    fn src(pairs: &[(&'static str, &str)]) -> HashMap<&'static str, String> {
        pairs.iter().map(|(k, v)| (*k, (*v).to_owned())).collect()
    }

    #[test]
    fn defaults_need_nothing_set() {
        let cfg = ServiceConfig::from_source(CULTURE, &src(&[])).unwrap();
        assert_eq!(cfg.grpc_addr.port(), 50053);
        assert_eq!(cfg.database_url, "sqlite://data/culture.db?mode=rwc");
        assert!(!cfg.demo_data);
        assert_eq!(cfg.shutdown_grace, Duration::from_secs(20));
        assert_eq!(cfg.peer("building"), Some("http://127.0.0.1:50052"));
        assert_eq!(cfg.peer("culture"), None, "a service is not its own peer");
    }

    #[test]
    fn errors_name_the_variable_and_the_fix() {
        let cases = [
            ("GRPC_ADDR", "localhost", "socket address"),
            ("PATTO_DEMO_DATA", "maybe", "boolean"),
            ("PATTO_SHUTDOWN_GRACE_SECS", "-1", "seconds"),
            ("DATABASE_URL", "mysql://x", "postgres://"),
            ("BUILDING_GRPC_URL", "building:50052", "http://"),
            ("PATTO_JWKS_URL", "jwks.json", "http:// or https://"),
        ];
        for (var, value, hint) in cases {
            let err = ServiceConfig::from_source(CULTURE, &src(&[(var, value)])).unwrap_err();
            let msg = err.to_string();
            assert!(msg.starts_with(&format!("{var}=")), "{msg}");
            assert!(msg.contains(hint) && msg.contains("Fix"), "{msg}");
        }
    }

    #[test]
    fn overrides_are_read() {
        let cfg = ServiceConfig::from_source(
            CULTURE,
            &src(&[
                ("GRPC_ADDR", "127.0.0.1:6000"),
                ("PATTO_DEMO_DATA", "yes"),
                ("PATTO_DATA_DIR", "/tmp/x"),
            ]),
        )
        .unwrap();
        assert_eq!(cfg.grpc_addr.to_string(), "127.0.0.1:6000");
        assert!(cfg.demo_data);
        assert_eq!(cfg.database_url, "sqlite:///tmp/x/culture.db?mode=rwc");
    }
}
