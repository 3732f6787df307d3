//! `patto-environment`: Environment and territory (ambiente e territorio), `patto.environment.v1`.
//!
//! The service is hosted with its full contract, health, reflection and indicators. Its domain
//! arrives with its own issue; until then every RPC of `EnvironmentService` answers UNIMPLEMENTED naming
//! itself, and the indicators list no procedure: no made-up data.

use std::future::Future;

use patto_proto::environment::v1::environment_service_server::{
    EnvironmentService, EnvironmentServiceServer,
};
use patto_service_kit::config::ServiceName;
use patto_service_kit::{GrpcApp, RunError, ServiceConfig, serve_pending};

/// Name and default port of this service.
pub const SERVICE: ServiceName = ServiceName {
    name: "environment",
    default_port: 50056,
};

/// The `EnvironmentService` implementation: the generated defaults, until the domain lands.
#[derive(Debug, Clone, Copy, Default)]
pub struct EnvironmentApi;

impl EnvironmentService for EnvironmentApi {}

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
        GrpcApp::new().add_service(EnvironmentServiceServer::new(EnvironmentApi)),
    )
    .await
}
