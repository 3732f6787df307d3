//! The culture service binary: configuration from the environment, then [`patto_culture::run`].

#[tokio::main]
async fn main() -> std::process::ExitCode {
    patto_service_kit::main_entry(patto_culture::SERVICE, |config, listener| {
        patto_culture::run(config, listener, patto_service_kit::host::shutdown_signal())
    })
    .await
}
