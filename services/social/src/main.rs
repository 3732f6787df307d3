//! The social service binary: configuration from the environment, then [`patto_social::run`].

#[tokio::main]
async fn main() -> std::process::ExitCode {
    patto_service_kit::main_entry(patto_social::SERVICE, |config, listener| {
        patto_social::run(config, listener, patto_service_kit::host::shutdown_signal())
    })
    .await
}
