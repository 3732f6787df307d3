//! `patto-social`: the social assistance service (`patto.social.v1`).
//!
//! Benefit schemes of the comuni with their ISEE and household rules, the ISEE declarations
//! citizens' eligibility rests on, and applications from the online draft through the caseworker's
//! review, the graduatoria and the reasoned decision to the payment schedule. Split as every Patto
//! service is: [`domain`] holds the rules without I/O, [`store`] the database, [`grpc`] the API,
//! which asks the kit's shared rule ([`patto_service_kit::access`]) who may read and change this
//! special-category personal data and records every read of it ([`patto_service_kit::audit`]);
//! [`run`] wires them into the service kit.

pub mod demo;
pub mod domain;
pub mod grpc;
pub mod store;

use std::future::Future;

use chrono::Utc;
use patto_proto::social::v1::social_service_server::SocialServiceServer;
use patto_service_kit::audit::AuditServer;
use patto_service_kit::config::ServiceName;
use patto_service_kit::indicators::IndicatorsServer;
use patto_service_kit::{GrpcApp, RunError, ServiceConfig, serve_service};

pub use store::migration::Migrator;

/// Name and default port of this service.
pub const SERVICE: ServiceName = ServiceName {
    name: "social",
    default_port: 50051,
};

/// The gRPC services of social over `store`: the social API, the indicators and the audit of
/// personal-data reads.
pub fn app(store: store::Store) -> GrpcApp {
    GrpcApp::new()
        .add_service(IndicatorsServer::new(store.db().clone(), domain::PROCEDURES).into_service())
        .add_service(AuditServer::new(store.db().clone(), SERVICE.name).into_service())
        .add_service(SocialServiceServer::new(grpc::SocialApi::new(store)))
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
                if seeded > 0 {
                    tracing::info!(applications = seeded, "social demo data seeded");
                }
            }
            Ok(app(store))
        },
    )
    .await
}
