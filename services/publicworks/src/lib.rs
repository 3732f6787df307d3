//! `patto-publicworks`: Public works (lavori pubblici), `patto.publicworks.v1`.
//!
//! The service is hosted with its full contract, health, reflection and indicators. Its domain
//! arrives with its own issue; until then every RPC of `PublicWorksService` answers UNIMPLEMENTED naming
//! itself, and the indicators list no procedure: no made-up data.

use std::future::Future;

use patto_proto::publicworks::v1::public_works_service_server::{
    PublicWorksService, PublicWorksServiceServer,
};
use patto_service_kit::config::ServiceName;
use patto_service_kit::{GrpcApp, RunError, ServiceConfig, serve_pending};

/// Name and default port of this service.
pub const SERVICE: ServiceName = ServiceName {
    name: "publicworks",
    default_port: 50057,
};

/// The `PublicWorksService` implementation: the generated defaults, until the domain lands.
#[derive(Debug, Clone, Copy, Default)]
pub struct PublicWorksApi;

impl PublicWorksService for PublicWorksApi {}

/// Serves the service on `listener` until `shutdown` completes.
pub async fn run(
    config: ServiceConfig,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), RunError> {
    serve_pending(
        SERVICE,
        config,
        listener,
        shutdown,
        GrpcApp::new().add_service(PublicWorksServiceServer::new(PublicWorksApi)),
    )
    .await
}
