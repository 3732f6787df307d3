//! `patto-environment`: the environment and territory service (`patto.environment.v1`).
//!
//! Citizens' reports (segnalazioni) with their workflow and duplicate linking, the waste-collection
//! calendars of the comuni with bulky-waste pickups, and air quality with the EU limit values.
//! Split as every Patto service is: [`domain`] holds the rules without I/O, [`store`] the database,
//! [`grpc`] the API; [`access`] decides, in one place, who may read and change personal data;
//! [`run`] wires them into the service kit.

pub mod access;
pub mod demo;
pub mod domain;
pub mod grpc;
pub mod store;

use std::future::Future;

use chrono::Utc;
use patto_proto::environment::v1::environment_service_server::EnvironmentServiceServer;
use patto_service_kit::config::{Env, ServiceName};
use patto_service_kit::indicators::IndicatorsServer;
use patto_service_kit::{GrpcApp, RunError, ServiceConfig, serve_service};

pub use access::Access;
pub use store::migration::Migrator;

/// Name and default port of this service.
pub const SERVICE: ServiceName = ServiceName {
    name: "environment",
    default_port: 50056,
};

/// The gRPC services of environment over `store`, applying `access`: the environment API and the
/// indicators.
pub fn app(store: store::Store, access: Access) -> GrpcApp {
    GrpcApp::new()
        .add_service(IndicatorsServer::new(store.db().clone(), domain::PROCEDURES).into_service())
        .add_service(EnvironmentServiceServer::new(grpc::EnvironmentApi::new(
            store, access,
        )))
}

/// The access rule as `ENVIRONMENT_ENFORCE_ACCESS` sets it. A value that cannot be read enforces
/// the rule: failing closed keeps personal data safe while the message names the variable to fix.
fn access_from_env() -> Access {
    match Access::from_source(&Env) {
        Ok(access) => access,
        Err(e) => {
            tracing::error!(error = %e, "enforcing the access rule");
            Access::enforced()
        }
    }
}

/// Connects and migrates the database, seeds demo data if the config asks, and serves on
/// `listener` until `shutdown` completes. Whether the access rule is enforced comes from
/// `ENVIRONMENT_ENFORCE_ACCESS` (default off until callers carry verified tokens).
pub async fn run(
    config: ServiceConfig,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), RunError> {
    let access = access_from_env();
    if !access.is_enforced() {
        tracing::warn!(
            "access rule NOT enforced (ENVIRONMENT_ENFORCE_ACCESS unset or false): every caller may read and change pickups and run the comuni's workflows; set ENVIRONMENT_ENFORCE_ACCESS=true once callers carry verified tokens"
        );
    }
    serve_service::<Migrator, _, _>(
        SERVICE,
        config,
        listener,
        shutdown,
        |db, config| async move {
            let store = store::Store::new(db, config.indicators_salt.clone());
            if config.demo_data {
                let seeded = demo::seed(&store, Utc::now()).await?;
                if seeded > 0 {
                    tracing::info!(readings = seeded, "environment demo data seeded");
                }
            }
            Ok(app(store, access))
        },
    )
    .await
}
