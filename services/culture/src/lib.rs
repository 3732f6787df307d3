//! `patto-culture`: the culture and leisure service (`patto.culture.v1`).
//!
//! Venues, public events (schema.org `Event`) and citizens' bookings with capacity. Split as every
//! Patto service is: [`domain`] holds the rules without I/O, [`store`] the database, [`grpc`] the
//! API; [`run`] wires them into the service kit.

pub mod demo;
pub mod domain;
pub mod grpc;
pub mod store;

use std::future::Future;

use chrono::{DurationRound, TimeDelta, Utc};
use patto_proto::culture::v1::culture_service_server::CultureServiceServer;
use patto_service_kit::audit::AuditServer;
use patto_service_kit::config::ServiceName;
use patto_service_kit::indicators::IndicatorsServer;
use patto_service_kit::{GrpcApp, RunError, ServiceConfig, serve_service};

pub use store::migration::Migrator;

/// Name and default port of this service.
pub const SERVICE: ServiceName = ServiceName {
    name: "culture",
    default_port: 50053,
};

/// The gRPC services of culture over `store`: the culture API, the indicators and the audit of
/// reads of personal data (bookings).
pub fn app(store: store::Store) -> GrpcApp {
    GrpcApp::new()
        .add_service(IndicatorsServer::new(store.db().clone(), domain::PROCEDURES).into_service())
        .add_service(AuditServer::new(store.db().clone(), SERVICE.name).into_service())
        .add_service(CultureServiceServer::new(grpc::CultureApi::new(store)))
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
                let today = Utc::now()
                    .duration_trunc(TimeDelta::days(1))
                    .unwrap_or_else(|_| Utc::now());
                let seeded = demo::seed(&store, today).await?;
                if seeded > 0 {
                    tracing::info!(events = seeded, "culture demo data seeded");
                }
            }
            Ok(app(store))
        },
    )
    .await
}
