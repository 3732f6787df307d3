//! The employment service binary: configuration from the environment, then [`patto_employment::run`].

#[tokio::main]
async fn main() -> std::process::ExitCode {
    patto_service_kit::main_entry(patto_employment::SERVICE, |config, listener| {
        patto_employment::run(config, listener, patto_service_kit::host::shutdown_signal())
    })
    .await
}
