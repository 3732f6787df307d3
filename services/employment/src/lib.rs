//! `patto-employment`: the work and training service (`patto.employment.v1`).
//!
//! Job offers published through the comuni (ISTAT CP2021 professions, ATECO 2025 sectors), training
//! courses with a seat limit and a waiting list, and the citizens' online job applications and
//! course enrolments. Split as every Patto service is: [`domain`] holds the rules without I/O,
//! [`store`] the database, [`grpc`] the API, which asks the kit's shared rule
//! ([`patto_service_kit::access`]) who may read and change the personal data and records every read
//! of it ([`patto_service_kit::audit`]); [`run`] wires them into the service kit.

pub mod demo;
pub mod domain;
pub mod grpc;
pub mod store;

use std::future::Future;

use chrono::Utc;
use patto_proto::employment::v1::employment_service_server::EmploymentServiceServer;
use patto_service_kit::audit::AuditServer;
use patto_service_kit::config::ServiceName;
use patto_service_kit::indicators::IndicatorsServer;
use patto_service_kit::{GrpcApp, RunError, ServiceConfig, serve_service};

pub use store::migration::Migrator;

/// Name and default port of this service.
pub const SERVICE: ServiceName = ServiceName {
    name: "employment",
    default_port: 50054,
};

/// The gRPC services of employment over `store`: the employment API, the indicators and the audit
/// of personal-data reads.
pub fn app(store: store::Store) -> GrpcApp {
    GrpcApp::new()
        .add_service(IndicatorsServer::new(store.db().clone(), domain::PROCEDURES).into_service())
        .add_service(AuditServer::new(store.db().clone(), SERVICE.name).into_service())
        .add_service(EmploymentServiceServer::new(grpc::EmploymentApi::new(
            store,
        )))
}

/// Connects and migrates the database, seeds demo data if the config asks, and serves on
/// `listener` until `shutdown` completes.
pub async fn run(
    config: ServiceConfig,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), RunError> {
    serve_service::<Migrator, _, _>(
        SERVICE,
        config,
        listener,
        shutdown,
        |db, config| async move {
            let store = store::Store::new(db, config.indicators_salt.clone());
            if config.demo_data {
                let seeded = demo::seed(&store, Utc::now()).await?;
                if seeded.offers > 0 {
                    tracing::info!(
                        offers = seeded.offers,
                        courses = seeded.courses,
                        enrolments = seeded.enrolments,
                        "employment demo data seeded"
                    );
                }
            }
            Ok(app(store))
        },
    )
    .await
}
