//! `patto`: the all-in-one launcher (see the library crate).

use clap::Parser;
use patto_service_kit::config::{Env, Source};

/// The environment, with human-readable logs unless `PATTO_LOG_FORMAT` says otherwise: the
/// launcher runs in a developer's terminal, the services' own binaries in a cluster.
struct LauncherEnv;

impl Source for LauncherEnv {
    fn get(&self, key: &str) -> Option<String> {
        Env.get(key)
            .or_else(|| (key == "PATTO_LOG_FORMAT").then(|| "text".to_owned()))
    }
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let options = patto::Options::parse();
    let telemetry = match patto_service_kit::telemetry::init("patto", &LauncherEnv) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("patto: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = patto::main(options).await;
    telemetry.shutdown();
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("patto: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
