//! The gateway binary: configuration from the environment, then [`patto_gateway::run`].

use patto_service_kit::config::Env;

/// The gateway allocates and frees many short-lived buffers per operation (decoded messages,
/// response bytes); mimalloc serves that pattern with less work than the system allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let telemetry = match patto_service_kit::telemetry::init("gateway", &Env) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("patto-gateway: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let outcome = async {
        let config = patto_gateway::GatewayConfig::from_source(&Env).map_err(|e| e.to_string())?;
        let listener = tokio::net::TcpListener::bind(config.http_addr)
            .await
            .map_err(|e| {
                format!(
                    "cannot listen on {}: {e}. Set GATEWAY_ADDR to a free address.",
                    config.http_addr
                )
            })?;
        patto_gateway::run(config, listener, patto_service_kit::host::shutdown_signal())
            .await
            .map_err(|e| e.to_string())
    }
    .await;
    telemetry.shutdown();
    match outcome {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("patto-gateway: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
