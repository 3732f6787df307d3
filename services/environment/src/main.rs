//! The environment service binary: configuration from the environment, then [`patto_environment::run`].

#[tokio::main]
async fn main() -> std::process::ExitCode {
    patto_service_kit::main_entry(patto_environment::SERVICE, |config, listener| {
        patto_environment::run(config, listener, patto_service_kit::host::shutdown_signal())
    })
    .await
}
