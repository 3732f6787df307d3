//! `patto-publicworks`: the public works service (`patto.publicworks.v1`).
//!
//! The comuni's works from the triennial programme to the collaudo (D.Lgs 36/2023): CUP and CIG
//! (validated by the kit's [`patto_service_kit::procurement`]), budget and funding sources, the
//! state machine, the award to a contractor (partita IVA verified), the SAL with their certificate
//! and payment deadlines and late flags, the all-or-nothing import and the open-data export. Split as
//! every Patto service is: [`domain`] holds the rules without I/O, [`store`] the database, [`grpc`]
//! the API; [`access`] decides who may change a comune's works; [`run`] wires them into the kit.

pub mod access;
pub mod demo;
pub mod domain;
pub mod grpc;
pub mod store;

use std::future::Future;

use chrono::Utc;
use patto_proto::publicworks::v1::public_works_service_server::PublicWorksServiceServer;
use patto_service_kit::config::{Env, ServiceName};
use patto_service_kit::indicators::IndicatorsServer;
use patto_service_kit::{GrpcApp, RunError, ServiceConfig, serve_service};

pub use access::Access;
pub use store::migration::Migrator;

/// Name and default port of this service.
pub const SERVICE: ServiceName = ServiceName {
    name: "publicworks",
    default_port: 50057,
};

/// The gRPC services of public works over `store`, applying `access` to every change: the public
/// works API and the indicators (with no citizen procedure: see [`domain::PROCEDURES`]).
pub fn app(store: store::Store, access: Access) -> GrpcApp {
    GrpcApp::new()
        .add_service(IndicatorsServer::new(store.db().clone(), domain::PROCEDURES).into_service())
        .add_service(PublicWorksServiceServer::new(grpc::PublicWorksApi::new(
            store, access,
        )))
}

/// The write rule as `PUBLICWORKS_ENFORCE_ACCESS` sets it. A value that cannot be read enforces
/// it: failing closed keeps the works safe while the message names the variable to fix.
fn access_from_env() -> Access {
    match Access::from_source(&Env) {
        Ok(access) => access,
        Err(e) => {
            tracing::error!(error = %e, "enforcing the write rule");
            Access::enforced()
        }
    }
}

/// Connects and migrates the database, seeds demo data if the config asks, and serves on
/// `listener` until `shutdown` completes.
pub async fn run(
    config: ServiceConfig,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), RunError> {
    let access = access_from_env();
    if !access.is_enforced() {
        tracing::warn!(
            "write rule not enforced for anonymous callers (PUBLICWORKS_ENFORCE_ACCESS unset or false); operators of another comune are still refused"
        );
    }
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
            Ok(app(store, access))
        },
    )
    .await
}
