//! `patto-building`: the building and cadastre service (`patto.building.v1`).
//!
//! The comuni's copy of the Catasto (cadastral units with their holders, the base of IMU, which the
//! taxes service reads from here) and the building permits citizens file with the SUE: CIL, CILA,
//! SCIA, SCIA alternativa and permesso di costruire, with their legal workflow and deadlines. Split
//! as every Patto service is: [`domain`] holds the rules without I/O (the permit state machine
//! among them), [`store`] the database, [`grpc`] the API; [`run`] wires them into the service kit.

pub mod demo;
pub mod domain;
pub mod grpc;
pub mod store;

use std::future::Future;

use chrono::Utc;
use patto_proto::building::v1::building_service_server::BuildingServiceServer;
use patto_service_kit::audit::AuditServer;
use patto_service_kit::config::ServiceName;
use patto_service_kit::indicators::IndicatorsServer;
use patto_service_kit::{GrpcApp, RunError, ServiceConfig, serve_service};

pub use store::migration::Migrator;

/// Name and default port of this service.
pub const SERVICE: ServiceName = ServiceName {
    name: "building",
    default_port: 50052,
};

/// The gRPC services of building over `store`: the building API, the indicators and the audit of
/// reads of personal data (cadastral units, permits).
pub fn app(store: store::Store) -> GrpcApp {
    GrpcApp::new()
        .add_service(IndicatorsServer::new(store.db().clone(), domain::PROCEDURES).into_service())
        .add_service(AuditServer::new(store.db().clone(), SERVICE.name).into_service())
        .add_service(BuildingServiceServer::new(grpc::BuildingApi::new(store)))
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
                if seeded.units > 0 {
                    tracing::info!(
                        units = seeded.units,
                        permits = seeded.permits,
                        "building demo data seeded"
                    );
                }
            }
            Ok(app(store))
        },
    )
    .await
}
