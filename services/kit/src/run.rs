//! The life of a service process, shared by every binary and by the all-in-one launcher:
//! telemetry, configuration, bind, database and migrations, serve, drain, exit code.

use std::future::Future;
use std::process::ExitCode;

use sea_orm::{DatabaseConnection, DbErr};
use sea_orm_migration::{MigrationTrait, MigratorTrait};
use tokio::net::TcpListener;

use crate::config::{Env, ServiceName};
use crate::host::{self, GrpcApp, HostError};
use crate::{ServiceConfig, db, telemetry};

/// Why a service stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The database could not be reached, migrated or seeded.
    #[error("database: {0}. Check DATABASE_URL.")]
    Database(#[from] DbErr),
    /// The gRPC server failed.
    #[error(transparent)]
    Host(#[from] HostError),
}

/// The migrations every service shares (the indicators and audit tables); a service with no tables of its
/// own yet migrates with this alone.
pub struct BaseMigrator;

impl MigratorTrait for BaseMigrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(crate::indicators::CreateOnlineInteractions),
            Box::new(crate::audit::CreatePersonalDataReads),
        ]
    }
}

/// Connects and migrates the database with `M`, lets `build` make the gRPC app over it (seeding
/// demo data there if the config asks), installs the config's authenticator on it, then serves on
/// `listener` until `shutdown` completes.
pub async fn serve_service<M, B, Fut>(
    service: ServiceName,
    config: ServiceConfig,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
    build: B,
) -> Result<(), RunError>
where
    M: MigratorTrait,
    B: FnOnce(DatabaseConnection, ServiceConfig) -> Fut,
    Fut: Future<Output = Result<GrpcApp, DbErr>>,
{
    let connection = db::connect_and_migrate::<M>(&config.database_url).await?;
    let grace = config.shutdown_grace;
    // Every service verifies callers the same way, from its configuration: no per-service code.
    let authenticator = config.authenticator.clone();
    let app = build(connection.clone(), config)
        .await?
        .with_authenticator(authenticator);
    app.metrics().watch_database(service.name, connection);
    tracing::info!(
        service = service.name,
        addr = %listener.local_addr().map(|a| a.to_string()).unwrap_or_default(),
        services = ?app.service_names(),
        "serving"
    );
    host::serve(app, listener, shutdown, grace).await?;
    tracing::info!(service = service.name, "stopped");
    Ok(())
}

/// The whole `main` of a service binary: telemetry and configuration from the environment, bind,
/// then `run` until SIGTERM or ctrl-c. Errors are printed with the fix and exit non-zero.
pub async fn main_entry<F, Fut, E>(service: ServiceName, run: F) -> ExitCode
where
    F: FnOnce(ServiceConfig, TcpListener) -> Fut,
    Fut: Future<Output = Result<(), E>>,
    E: std::fmt::Display,
{
    let telemetry = match telemetry::init(service.name, &Env) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("patto-{}: {e}", service.name);
            return ExitCode::FAILURE;
        }
    };
    let outcome = async {
        let config = ServiceConfig::from_source(service, &Env).map_err(|e| e.to_string())?;
        let listener = host::bind(config.grpc_addr)
            .await
            .map_err(|e| e.to_string())?;
        run(config, listener).await.map_err(|e| e.to_string())
    }
    .await;
    telemetry.shutdown();
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(service = service.name, error = %e, "exiting");
            eprintln!("patto-{}: {e}", service.name);
            ExitCode::FAILURE
        }
    }
}

/// Serves a theme whose domain is not built yet: `api` holds its generated service, where every
/// RPC answers UNIMPLEMENTED naming itself (never made-up data); the indicators are added with no
/// procedure offered.
pub async fn serve_pending(
    service: ServiceName,
    config: ServiceConfig,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
    api: GrpcApp,
) -> Result<(), RunError> {
    serve_service::<BaseMigrator, _, _>(service, config, listener, shutdown, |db, _| async move {
        Ok(api.add_service(crate::indicators::IndicatorsServer::new(db, &[]).into_service()))
    })
    .await
}
