//! The publicworks service binary: configuration from the environment, then [`patto_publicworks::run`].

#[tokio::main]
async fn main() -> std::process::ExitCode {
    patto_service_kit::main_entry(patto_publicworks::SERVICE, |config, listener| {
        patto_publicworks::run(config, listener, patto_service_kit::host::shutdown_signal())
    })
    .await
}
