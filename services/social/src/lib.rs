//! `patto-social`: the social assistance service (`patto.social.v1`).
//!
//! Benefit schemes of the comuni with their ISEE and household rules, the ISEE declarations
//! citizens' eligibility rests on, and applications from the online draft through the caseworker's
//! review, the graduatoria and the reasoned decision to the payment schedule. Split as every Patto
//! service is: [`domain`] holds the rules without I/O, [`store`] the database, [`grpc`] the API;
//! [`access`] decides, in one place, who may read and change this special-category personal data;
//! [`run`] wires them into the service kit.

pub mod access;
pub mod demo;
pub mod domain;
pub mod grpc;
pub mod store;

use std::future::Future;

use chrono::Utc;
use patto_proto::social::v1::social_service_server::SocialServiceServer;
use patto_service_kit::config::{Env, ServiceName};
use patto_service_kit::indicators::IndicatorsServer;
use patto_service_kit::{GrpcApp, RunError, ServiceConfig, serve_service};

pub use access::Access;
pub use store::migration::Migrator;

/// Name and default port of this service.
pub const SERVICE: ServiceName = ServiceName {
    name: "social",
    default_port: 50051,
};

/// The gRPC services of social over `store`, applying `access` to every read and change: the
/// social API and the indicators.
pub fn app(store: store::Store, access: Access) -> GrpcApp {
    GrpcApp::new()
        .add_service(IndicatorsServer::new(store.db().clone(), domain::PROCEDURES).into_service())
        .add_service(SocialServiceServer::new(grpc::SocialApi::new(
            store, access,
        )))
}

/// The access rule as `SOCIAL_ENFORCE_ACCESS` sets it. A value that cannot be read enforces the
/// rule: failing closed keeps personal data safe while the message names the variable to fix.
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
/// `SOCIAL_ENFORCE_ACCESS` (default off until callers carry verified tokens).
pub async fn run(
    config: ServiceConfig,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), RunError> {
    let access = access_from_env();
    if access.is_enforced() {
        tracing::info!(
            "access rule enforced: personal data only for the citizen concerned and the comune's operators"
        );
    } else {
        tracing::warn!(
            "access rule NOT enforced (SOCIAL_ENFORCE_ACCESS unset or false): every caller may read and change all social data; set SOCIAL_ENFORCE_ACCESS=true once callers carry verified tokens"
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
                    tracing::info!(applications = seeded, "social demo data seeded");
                }
            }
            Ok(app(store, access))
        },
    )
    .await
}
