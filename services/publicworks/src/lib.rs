//! `patto-publicworks`: the public works service (`patto.publicworks.v1`).
//!
//! The comuni's works from the triennial programme to the collaudo (D.Lgs 36/2023): CUP and CIG
//! (validated by the kit's [`patto_service_kit::procurement`]), budget and funding sources, the
//! state machine, the award to a contractor (partita IVA verified), the SAL with their certificate
//! and payment deadlines and late flags, the all-or-nothing import and the open-data export. Split as
//! every Patto service is: [`domain`] holds the rules without I/O, [`store`] the database, [`grpc`]
//! the API, which asks the kit's shared rule ([`patto_service_kit::access`]) who may change a comune's
//! works; [`run`] wires them into the kit.

pub mod demo;
pub mod domain;
pub mod grpc;
pub mod store;

use std::future::Future;

use chrono::Utc;
use patto_proto::publicworks::v1::public_works_service_server::PublicWorksServiceServer;
use patto_service_kit::audit::AuditServer;
use patto_service_kit::config::ServiceName;
use patto_service_kit::indicators::IndicatorsServer;
use patto_service_kit::{GrpcApp, RunError, ServiceConfig, serve_service};

pub use store::migration::Migrator;

/// Name and default port of this service.
pub const SERVICE: ServiceName = ServiceName {
    name: "publicworks",
    default_port: 50057,
};

/// The gRPC services of public works over `store`: the public works API (reads open to anyone,
/// changes to the operators and systems of the work's comune), the indicators (with no citizen
/// procedure: see [`domain::PROCEDURES`]) and the audit of personal-data reads (public works hold
/// none, so it stays empty, but every service answers it).
pub fn app(store: store::Store) -> GrpcApp {
    GrpcApp::new()
        .add_service(IndicatorsServer::new(store.db().clone(), domain::PROCEDURES).into_service())
        .add_service(AuditServer::new(store.db().clone(), SERVICE.name).into_service())
        .add_service(PublicWorksServiceServer::new(grpc::PublicWorksApi::new(
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
            let store = store::Store::new(db);
            if config.demo_data {
                let seeded = demo::seed(&store, Utc::now()).await?;
                if seeded > 0 {
                    tracing::info!(works = seeded, "public works demo data seeded");
                }
            }
            Ok(app(store))
        },
    )
    .await
}
