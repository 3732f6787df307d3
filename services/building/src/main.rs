//! The building service binary: configuration from the environment, then [`patto_building::run`].

#[tokio::main]
async fn main() -> std::process::ExitCode {
    patto_service_kit::main_entry(patto_building::SERVICE, |config, listener| {
        patto_building::run(config, listener, patto_service_kit::host::shutdown_signal())
    })
    .await
}
