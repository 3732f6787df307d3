//! `patto`: the all-in-one launcher (see the library crate).

use std::io::Write;

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
    let cli = patto::Cli::parse();
    if let Some(patto::Command::Token(args)) = &cli.command {
        // Only the token on stdout (no logs), so that `TOKEN=$(patto token ...)` works.
        let key = patto::dev_issuer_key_path(&cli.options.data_dir);
        let new_key = !key.exists();
        return match patto::dev_token(&cli.options.data_dir, args) {
            Ok(token) => {
                if new_key {
                    eprintln!("patto token: created the dev issuer key {}", key.display());
                }
                // Written without println!, which panics on a closed pipe.
                let _ = writeln!(std::io::stdout(), "{token}");
                std::process::ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("patto token: {e}");
                std::process::ExitCode::FAILURE
            }
        };
    }
    let options = cli.options;
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
