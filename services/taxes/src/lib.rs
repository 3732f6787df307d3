//! `patto-taxes`: the local taxes service (`patto.taxes.v1`).
//!
//! IMU computed from the cadastral units citizens hold (read from the building service over gRPC,
//! one batched call per request), TARI and TEFA from the comuni's tariffs, the comuni's rates and
//! tariffs as data, tax positions, their pagoPA debt positions with notice numbers (NAV/IUV) and
//! payments, and the bulk import of a comune's tax roll. Split as every Patto service is:
//! [`domain`] holds the rules without I/O, [`store`] the database, [`grpc`] the API, [`building`] the
//! client of the building service; [`run`] wires them into the service kit.

pub mod building;
pub mod compute;
pub mod demo;
pub mod domain;
pub mod error;
pub mod grpc;
pub mod store;

use std::future::Future;

use chrono::Utc;
use patto_proto::taxes::v1::taxes_service_server::TaxesServiceServer;
use patto_service_kit::audit::AuditServer;
use patto_service_kit::config::ServiceName;
use patto_service_kit::indicators::IndicatorsServer;
use patto_service_kit::{GrpcApp, RunError, ServiceConfig, serve_service};

pub use building::{BuildingClient, Credentials};
pub use store::migration::Migrator;

/// Name and default port of this service.
pub const SERVICE: ServiceName = ServiceName {
    name: "taxes",
    default_port: 50055,
};

/// The gRPC services of taxes over `store`, reading cadastral units through `building`: the taxes
/// API, the indicators and the audit of reads of personal data.
pub fn app(store: store::Store, building: BuildingClient) -> GrpcApp {
    GrpcApp::new()
        .add_service(IndicatorsServer::new(store.db().clone(), domain::PROCEDURES).into_service())
        .add_service(AuditServer::new(store.db().clone(), SERVICE.name).into_service())
        .add_service(TaxesServiceServer::new(grpc::TaxesApi::new(
            store, building,
        )))
}

/// Connects and migrates the database, connects (lazily) to the building service named by the
/// config's peers, seeds demo data if the config asks, and serves on `listener` until `shutdown`
/// completes.
pub async fn run(
    config: ServiceConfig,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), RunError> {
    // Locally the dev issuer signs taxes' own calls to building (the demo seed) as each comune's
    // system; elsewhere those calls carry no credentials of their own and the seed is skipped.
    let credentials = config.dev_issuer.clone();
    run_with(
        config,
        listener,
        shutdown,
        move |building| match credentials {
            Some(issuer) => {
                building.with_system_credentials(building::dev_system_credentials(issuer))
            }
            None => building,
        },
    )
    .await
}

/// As [`run`], with the client of the building service adjusted by `building` before use: the
/// host gives it the credentials of the service's own calls as each comune's system
/// ([`BuildingClient::with_system_credentials`]), which the demo roll is seeded with. Without
/// them (as [`run`] leaves it) building refuses those calls and the roll is not seeded; the calls
/// made for a request carry the caller's own credentials either way.
pub async fn run_with(
    config: ServiceConfig,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
    building: impl FnOnce(BuildingClient) -> BuildingClient + Send + 'static,
) -> Result<(), RunError> {
    serve_service::<Migrator, _, _>(
        SERVICE,
        config,
        listener,
        shutdown,
        |db, config| async move {
            let url = config
                .peer("building")
                .unwrap_or("http://127.0.0.1:50052")
                .to_owned();
            let building = building(BuildingClient::connect_lazy(&url).map_err(|e| {
                sea_orm::DbErr::Custom(format!(
                    "BUILDING_GRPC_URL={url} is not a usable endpoint: {e}"
                ))
            })?);
            let store = store::Store::new(db, config.indicators_salt.clone());
            if config.demo_data {
                let seeded = demo::seed(&store, &building, Utc::now()).await?;
                if seeded.comuni > 0 || seeded.tax_positions > 0 {
                    tracing::info!(
                        comuni = seeded.comuni,
                        tax_positions = seeded.tax_positions,
                        debt_positions = seeded.debt_positions,
                        payments = seeded.payments,
                        "taxes demo data seeded"
                    );
                }
            }
            Ok(app(store, building))
        },
    )
    .await
}
