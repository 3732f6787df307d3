//! The taxes service binary: configuration from the environment, then [`patto_taxes::run`].

#[tokio::main]
async fn main() -> std::process::ExitCode {
    patto_service_kit::main_entry(patto_taxes::SERVICE, |config, listener| {
        patto_taxes::run(config, listener, patto_service_kit::host::shutdown_signal())
    })
    .await
}
