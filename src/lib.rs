//! The all-in-one launcher: the seven thematic services and the gateway in one process, on
//! embedded defaults (SQLite files under a data directory, demo data for the 82 comuni), so a
//! newcomer's `cargo run` shows a working platform with nothing installed.
//!
//! It calls the same `run` functions as the services' own binaries; only the wiring lives here.
//!
//! Identity: unless `PATTO_JWKS_URL` points at a real identity provider, the services and the
//! gateway trust the local dev issuer, whose key lives at `<data-dir>/dev-issuer-key.pem`;
//! `patto token` prints tokens signed with it.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use patto_gateway::GatewayConfig;
use patto_service_kit::auth::Authenticator;
use patto_service_kit::config::{
    ConfigError, DEV_INDICATORS_SALT, ServiceName, Source, sqlite_file_url,
};
use patto_service_kit::token::{self, DevIssuer, TokenError};
use patto_service_kit::{Principal, RunError, ServiceConfig, host};
use tokio::net::TcpListener;
use tokio::sync::watch;

/// Command-line and environment options of the launcher.
#[derive(Debug, Clone, clap::Parser)]
#[command(
    name = "patto",
    version,
    about = "Patto all-in-one: seven gRPC services and the GraphQL gateway"
)]
pub struct Options {
    /// Address every listener binds to.
    #[arg(long, env = "PATTO_BIND", default_value = "127.0.0.1")]
    pub bind: IpAddr,
    /// Directory of the services' SQLite files and of the dev issuer's key.
    #[arg(long, env = "PATTO_DATA_DIR", default_value = "data", global = true)]
    pub data_dir: PathBuf,
    /// Seed deterministic demo data for the 82 comuni on first start.
    #[arg(long, env = "PATTO_DEMO_DATA", default_value_t = true, action = clap::ArgAction::Set)]
    pub demo_data: bool,
    /// Port of the GraphQL gateway.
    #[arg(long, env = "PATTO_HTTP_PORT", default_value_t = 8080)]
    pub http_port: u16,
    /// Port of the social assistance service.
    #[arg(long, env = "PATTO_SOCIAL_PORT", default_value_t = 50051)]
    pub social_port: u16,
    /// Port of the building and cadastre service.
    #[arg(long, env = "PATTO_BUILDING_PORT", default_value_t = 50052)]
    pub building_port: u16,
    /// Port of the culture and leisure service.
    #[arg(long, env = "PATTO_CULTURE_PORT", default_value_t = 50053)]
    pub culture_port: u16,
    /// Port of the work and training service.
    #[arg(long, env = "PATTO_EMPLOYMENT_PORT", default_value_t = 50054)]
    pub employment_port: u16,
    /// Port of the local taxes service.
    #[arg(long, env = "PATTO_TAXES_PORT", default_value_t = 50055)]
    pub taxes_port: u16,
    /// Port of the environment and territory service.
    #[arg(long, env = "PATTO_ENVIRONMENT_PORT", default_value_t = 50056)]
    pub environment_port: u16,
    /// Port of the public works service.
    #[arg(long, env = "PATTO_PUBLICWORKS_PORT", default_value_t = 50057)]
    pub publicworks_port: u16,
    /// Seconds in-flight calls may take to finish after ctrl-c or SIGTERM.
    #[arg(long, env = "PATTO_SHUTDOWN_GRACE_SECS", default_value_t = 10)]
    pub shutdown_grace_secs: u64,
    /// Print the gateway's GraphQL schema (SDL) and exit.
    #[arg(long)]
    pub print_schema: bool,
}

impl Options {
    /// Loopback, every port chosen by the system, demo data in `data_dir`, a 5 s grace: how
    /// tests run the whole platform side by side.
    pub fn ephemeral(data_dir: PathBuf) -> Self {
        Self {
            bind: IpAddr::from([127, 0, 0, 1]),
            data_dir,
            demo_data: true,
            http_port: 0,
            social_port: 0,
            building_port: 0,
            culture_port: 0,
            employment_port: 0,
            taxes_port: 0,
            environment_port: 0,
            publicworks_port: 0,
            shutdown_grace_secs: 5,
            print_schema: false,
        }
    }
}

/// The launcher's command line: the platform's options, and optionally a subcommand.
#[derive(Debug, Clone, clap::Parser)]
#[command(
    name = "patto",
    version,
    about = "Patto all-in-one: seven gRPC services and the GraphQL gateway"
)]
pub struct Cli {
    /// How to run the platform (also read by `patto token` for `--data-dir`).
    #[command(flatten)]
    pub options: Options,
    /// What to do instead of running the platform.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Subcommands of the launcher.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum Command {
    /// Print a bearer token signed by the dev issuer, which `patto` trusts unless PATTO_JWKS_URL is set.
    Token(TokenArgs),
}

/// Who the dev token is for: exactly one of `--citizen`, `--operator`, `--system`.
#[derive(Debug, Clone, clap::Args)]
#[command(group(
    clap::ArgGroup::new("role")
        .required(true)
        .args(["citizen", "operator", "system"])
))]
pub struct TokenArgs {
    /// A citizen's token, for this codice fiscale.
    #[arg(long, value_name = "CF", conflicts_with_all = ["comune", "subject"])]
    pub citizen: Option<String>,
    /// An operator's token, bound to --comune.
    #[arg(long, requires = "comune")]
    pub operator: bool,
    /// A comune system's token (protocollo, ERP), bound to --comune.
    #[arg(long, requires = "comune")]
    pub system: bool,
    /// ISTAT code of the comune of the operator or system, e.g. 082053 (Palermo).
    #[arg(long, value_name = "ISTAT")]
    pub comune: Option<String>,
    /// Who the operator or system is (the token's `sub`, recorded in the audit); default
    /// `dev-operator` or `dev-system`.
    #[arg(long)]
    pub subject: Option<String>,
    /// Minutes the token stays valid (at most a week).
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=10_080))]
    pub ttl_minutes: u64,
}

impl TokenArgs {
    /// The identity the token stands for.
    pub fn principal(&self) -> Principal {
        let comune = self.comune.clone().unwrap_or_default();
        match (&self.citizen, self.operator) {
            (Some(fiscal_code), _) => Principal::Citizen {
                fiscal_code: fiscal_code.clone(),
            },
            (None, true) => Principal::Operator {
                istat_code: comune,
                subject: self
                    .subject
                    .clone()
                    .unwrap_or_else(|| "dev-operator".to_owned()),
            },
            (None, false) => Principal::System {
                istat_code: comune,
                subject: self
                    .subject
                    .clone()
                    .unwrap_or_else(|| "dev-system".to_owned()),
            },
        }
    }
}

/// File name of the dev issuer's private key inside the data directory.
pub const DEV_ISSUER_KEY_FILE: &str = "dev-issuer-key.pem";

/// Where the dev issuer's key of a data directory lives.
pub fn dev_issuer_key_path(data_dir: &Path) -> PathBuf {
    data_dir.join(DEV_ISSUER_KEY_FILE)
}

/// What `patto token` prints: a token for `args`, signed by the dev issuer of `data_dir` (its key
/// is created on first use).
pub fn dev_token(data_dir: &Path, args: &TokenArgs) -> Result<String, LaunchError> {
    let issuer = DevIssuer::load_or_create(&dev_issuer_key_path(data_dir))?;
    let ttl = Duration::from_secs(args.ttl_minutes.saturating_mul(60));
    Ok(issuer.issue(&args.principal(), ttl)?)
}

/// The authenticator `patto` runs the services and the gateway with: the identity provider's
/// JWKS when `PATTO_JWKS_URL` is set in `src` (with `PATTO_JWT_ISSUER`, `PATTO_JWT_AUDIENCE`),
/// otherwise the dev issuer whose key is in the data directory (created on first use), so that
/// tokens from `patto token` work out of the box.
pub fn authenticator(
    options: &Options,
    src: &dyn Source,
) -> Result<Arc<dyn Authenticator>, LaunchError> {
    credentials(options, src).map(|(authenticator, _)| authenticator)
}

/// [`authenticator`], with the dev issuer it trusts (which the services also sign their calls to
/// each other with, as a comune's system); no dev issuer when `PATTO_JWKS_URL` in `src` names an
/// identity provider. The key is read (or created) once.
pub fn credentials(options: &Options, src: &dyn Source) -> Result<token::Credentials, LaunchError> {
    if src.get(token::JWKS_URL_VAR).is_some() {
        return Ok((token::authenticator_from_source(src)?, None));
    }
    let key = dev_issuer_key_path(&options.data_dir);
    let issuer = Arc::new(DevIssuer::load_or_create(&key)?);
    tracing::info!(
        mode = "dev-issuer",
        key = %key.display(),
        kid = issuer.kid(),
        "trusting tokens of the local dev issuer (`patto token`); set PATTO_JWKS_URL to use an identity provider"
    );
    Ok((Arc::new(issuer.verifier()), Some(issuer)))
}

type Runner = fn(
    ServiceConfig,
    TcpListener,
    BoxFuture<'static, ()>,
) -> BoxFuture<'static, Result<(), RunError>>;

/// The seven services, in port order, with the function that runs each.
pub const SERVICES: [(ServiceName, Runner); 7] = [
    (patto_social::SERVICE, |c, l, s| {
        Box::pin(patto_social::run(c, l, s))
    }),
    (patto_building::SERVICE, |c, l, s| {
        Box::pin(patto_building::run(c, l, s))
    }),
    (patto_culture::SERVICE, |c, l, s| {
        Box::pin(patto_culture::run(c, l, s))
    }),
    (patto_employment::SERVICE, |c, l, s| {
        Box::pin(patto_employment::run(c, l, s))
    }),
    (patto_taxes::SERVICE, |c, l, s| {
        Box::pin(patto_taxes::run(c, l, s))
    }),
    (patto_environment::SERVICE, |c, l, s| {
        Box::pin(patto_environment::run(c, l, s))
    }),
    (patto_publicworks::SERVICE, |c, l, s| {
        Box::pin(patto_publicworks::run(c, l, s))
    }),
];

/// Why the platform could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    /// A port could not be bound.
    #[error(
        "cannot listen on {addr} for {what}: {source}. Free the port or choose another with {flag}."
    )]
    Bind {
        /// What wanted the port.
        what: &'static str,
        /// The address.
        addr: SocketAddr,
        /// The flag (and environment variable) that moves it.
        flag: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// A service stopped with an error.
    #[error("{service}: {source}")]
    Service {
        /// The service.
        service: &'static str,
        /// Its error.
        source: RunError,
    },
    /// The gateway stopped with an error.
    #[error("gateway: {0}")]
    Gateway(#[from] patto_gateway::GatewayError),
    /// The identity configuration (`PATTO_JWKS_URL` and friends) is not usable.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The dev issuer's key could not be used, or a dev token not issued.
    #[error(transparent)]
    Token(#[from] TokenError),
}

impl Options {
    fn port_of(&self, service: &str) -> u16 {
        match service {
            "social" => self.social_port,
            "building" => self.building_port,
            "culture" => self.culture_port,
            "employment" => self.employment_port,
            "taxes" => self.taxes_port,
            "environment" => self.environment_port,
            _ => self.publicworks_port,
        }
    }
}

/// Where the running platform listens.
#[derive(Debug, Clone)]
pub struct Listening {
    /// Each service's name and gRPC address.
    pub services: Vec<(&'static str, SocketAddr)>,
    /// The gateway's HTTP address.
    pub gateway: SocketAddr,
}

async fn bind(
    what: &'static str,
    addr: SocketAddr,
    flag: String,
) -> Result<TcpListener, LaunchError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| LaunchError::Bind {
            what,
            addr,
            flag,
            source,
        })
}

/// A running platform: stop it with [`Platform::stop`] or wait for it with [`Platform::wait`].
pub struct Platform {
    /// Where everything listens.
    pub listening: Listening,
    stop: watch::Sender<bool>,
    tasks: tokio::task::JoinSet<Result<(), LaunchError>>,
}

impl Platform {
    /// Binds every port (all or nothing), then starts the services and the gateway, all
    /// authenticating callers with [`authenticator`] over the process environment.
    pub async fn start(options: &Options) -> Result<Self, LaunchError> {
        let (authenticator, dev_issuer) = credentials(options, &patto_service_kit::config::Env)?;
        let mut listeners = Vec::new();
        for (service, run) in SERVICES {
            let addr = SocketAddr::new(options.bind, options.port_of(service.name));
            let flag = format!(
                "--{}-port / PATTO_{}_PORT",
                service.name,
                service.name.to_ascii_uppercase()
            );
            listeners.push((service, run, bind(service.name, addr, flag).await?));
        }
        let gateway_listener = bind(
            "gateway",
            SocketAddr::new(options.bind, options.http_port),
            "--http-port / PATTO_HTTP_PORT".into(),
        )
        .await?;

        let (stop, stopped) = watch::channel(false);
        let on_stop = move || {
            let mut rx = stopped.clone();
            async move {
                let _ = rx.wait_for(|s| *s).await;
            }
        };
        let mut tasks = tokio::task::JoinSet::new();
        let mut listening = Listening {
            services: Vec::new(),
            gateway: local(&gateway_listener),
        };
        let peers: Vec<(&'static str, String)> = listeners
            .iter()
            .map(|(s, _, l)| (s.name, format!("http://{}", loopback(local(l)))))
            .collect();
        for (service, run, listener) in listeners {
            let addr = local(&listener);
            listening.services.push((service.name, addr));
            let config = ServiceConfig {
                grpc_addr: addr,
                database_url: sqlite_file_url(&options.data_dir, service.name),
                demo_data: options.demo_data,
                shutdown_grace: Duration::from_secs(options.shutdown_grace_secs),
                indicators_salt: DEV_INDICATORS_SALT.to_owned(),
                peers: peers
                    .iter()
                    .filter(|(n, _)| *n != service.name)
                    .map(|(n, u)| (*n, u.clone()))
                    .collect(),
                authenticator: authenticator.clone(),
                dev_issuer: dev_issuer.clone(),
            };
            let shutdown: BoxFuture<'static, ()> = Box::pin(on_stop());
            tasks.spawn(async move {
                run(config, listener, shutdown)
                    .await
                    .map_err(|source| LaunchError::Service {
                        service: service.name,
                        source,
                    })
            });
        }
        // The gateway's own settings (REDIS_URL, rate limits, persisted queries, introspection)
        // come from the environment as for its binary; where it listens, what it calls and whom
        // it trusts are the launcher's.
        let from_env = GatewayConfig::settings_from_source(&patto_service_kit::config::Env)?;
        let gateway = GatewayConfig {
            http_addr: listening.gateway,
            backends: peers
                .iter()
                .map(|(n, u)| ((*n).to_owned(), u.clone()))
                .collect(),
            reflect_interval: Duration::from_secs(10),
            // The services may still be seeding demo data: give them time before falling back.
            reflect_timeout: Duration::from_secs(20),
            shutdown_grace: Duration::from_secs(5),
            // The gateway verifies the token too (and forwards it): one key, one verifier.
            authenticator,
            ..from_env
        };
        let gateway_stop = on_stop();
        tasks.spawn(async move {
            patto_gateway::run(gateway, gateway_listener, gateway_stop)
                .await
                .map_err(LaunchError::from)
        });
        Ok(Self {
            listening,
            stop,
            tasks,
        })
    }

    /// Asks everything to stop and waits until it has drained.
    pub async fn stop(mut self) -> Result<(), LaunchError> {
        let _ = self.stop.send(true);
        let mut first_error = None;
        while let Some(joined) = self.tasks.join_next().await {
            if let Ok(Err(e)) = joined {
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Runs until `shutdown` completes or a part fails; then stops everything.
    pub async fn wait(
        mut self,
        shutdown: impl std::future::Future<Output = ()>,
    ) -> Result<(), LaunchError> {
        tokio::select! {
            () = shutdown => self.stop().await,
            Some(joined) = self.tasks.join_next() => {
                let failure = match joined {
                    Ok(Err(e)) => Some(e),
                    _ => None,
                };
                let rest = self.stop().await;
                match failure {
                    Some(e) => Err(e),
                    None => rest,
                }
            }
        }
    }
}

fn local(listener: &TcpListener) -> SocketAddr {
    listener
        .local_addr()
        .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 0)))
}

/// The address to dial for a listener bound to `addr` (an unspecified address is dialled on
/// loopback).
fn loopback(addr: SocketAddr) -> SocketAddr {
    if addr.ip().is_unspecified() {
        SocketAddr::from(([127, 0, 0, 1], addr.port()))
    } else {
        addr
    }
}

/// The banner printed once everything listens.
pub fn banner(l: &Listening) -> String {
    let gw = loopback(l.gateway);
    let mut out = String::from("Patto is running.\n\n  gRPC services (health + reflection):\n");
    for (name, addr) in &l.services {
        out.push_str(&format!("    {name:<12} {}\n", loopback(*addr)));
    }
    out.push_str(&format!(
        "\n  GraphQL gateway:  http://{gw}/graphql   (GraphiQL: http://{gw}/)\n\n  Try:\n    curl -s http://{gw}/graphql -H 'content-type: application/json' \\\n      -d '{{\"query\":\"{{ municipality(istatCode: \\\"082053\\\") {{ name events(first: 3) {{ name startTime }} }} }}\"}}'\n    grpcurl -plaintext {} list\n\n  Stop with ctrl-c.\n",
        l.services.iter().find(|(n, _)| *n == "culture").map(|(_, a)| loopback(*a).to_string()).unwrap_or_default()
    ));
    out
}

/// The whole launcher: start, print where everything listens, run until ctrl-c or SIGTERM.
pub async fn main(options: Options) -> Result<(), LaunchError> {
    if options.print_schema {
        let sdl = patto_gateway::embedded_sdl().map_err(patto_gateway::GatewayError::from)?;
        // A closed pipe (`patto --print-schema | head`) is not an error worth a panic.
        let _ = std::io::Write::write_all(&mut std::io::stdout(), sdl.as_bytes());
        return Ok(());
    }
    let platform = Platform::start(&options).await?;
    println!("{}", banner(&platform.listening));
    platform.wait(host::shutdown_signal()).await
}
