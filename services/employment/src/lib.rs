//! `patto-employment`: Work and training (lavoro e formazione), `patto.employment.v1`.
//!
//! The service is hosted with its full contract, health, reflection and indicators. Its domain
//! arrives with its own issue; until then every RPC of `EmploymentService` answers UNIMPLEMENTED naming
//! itself, and the indicators list no procedure: no made-up data.

use std::future::Future;

use patto_proto::employment::v1::employment_service_server::{
    EmploymentService, EmploymentServiceServer,
};
use patto_service_kit::config::ServiceName;
use patto_service_kit::{GrpcApp, RunError, ServiceConfig, serve_pending};

/// Name and default port of this service.
pub const SERVICE: ServiceName = ServiceName {
    name: "employment",
    default_port: 50054,
};

/// The `EmploymentService` implementation: the generated defaults, until the domain lands.
#[derive(Debug, Clone, Copy, Default)]
pub struct EmploymentApi;

impl EmploymentService for EmploymentApi {}

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
        GrpcApp::new().add_service(EmploymentServiceServer::new(EmploymentApi)),
    )
    .await
}
