//! `patto token`: the token it prints verifies with the authenticator `patto` runs the services
//! and the gateway with, and its command line accepts exactly one identity.

use std::collections::HashMap;
use std::path::PathBuf;

use clap::Parser;
use patto::{Cli, Command, LaunchError, TokenArgs};
use patto_service_kit::Principal;
use tonic::codegen::http;

const CF: &str = "RCCMNL83S18D969H";

fn scratch_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "patto-dev-token-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// Parses a command line as the binary does.
fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
    Cli::try_parse_from(std::iter::once("patto").chain(args.iter().copied()))
}

fn token_args(cli: &Cli) -> &TokenArgs {
    match &cli.command {
        Some(Command::Token(args)) => args,
        None => panic!("expected the token subcommand"),
    }
}

fn bearer(token: &str) -> http::HeaderMap {
    let mut headers = http::HeaderMap::new();
    headers.insert(
        http::header::AUTHORIZATION,
        format!("Bearer {token}").parse().unwrap(),
    );
    headers
}

#[tokio::test]
async fn printed_tokens_verify_with_the_platforms_authenticator() {
    let dir = scratch_dir();
    let data_dir = dir.to_string_lossy().into_owned();
    let no_env: HashMap<&'static str, String> = HashMap::new();
    let cases: [(&[&str], Principal); 4] = [
        (
            &["token", "--citizen", "rccmnl83s18d969h"],
            Principal::Citizen {
                fiscal_code: CF.into(),
            },
        ),
        (
            &[
                "token",
                "--operator",
                "--comune",
                "082053",
                "--subject",
                "mario.rossi",
            ],
            Principal::Operator {
                istat_code: "082053".into(),
                subject: "mario.rossi".into(),
            },
        ),
        (
            &[
                "token",
                "--system",
                "--comune",
                "082006",
                "--ttl-minutes",
                "5",
            ],
            Principal::System {
                istat_code: "082006".into(),
                subject: "dev-system".into(),
            },
        ),
        (
            &["token", "--operator", "--comune", "082053"],
            Principal::Operator {
                istat_code: "082053".into(),
                subject: "dev-operator".into(),
            },
        ),
    ];
    for (args, expected) in cases {
        let mut line = vec!["--data-dir", data_dir.as_str()];
        line.extend_from_slice(args);
        let cli = parse(&line).expect("the command line parses");
        // What `patto token` prints...
        let token = patto::dev_token(&cli.options.data_dir, token_args(&cli)).unwrap();
        // ...verifies with what `patto` runs with.
        let auth = patto::authenticator(&cli.options, &no_env).unwrap();
        let got = auth.authenticate(&bearer(&token)).await.unwrap();
        assert_eq!(got, expected, "{args:?}");
    }
    assert!(patto::dev_issuer_key_path(&dir).exists());

    // Another data directory is another issuer: its tokens are refused.
    let other = scratch_dir().join("other");
    let cli = parse(&["token", "--citizen", CF]).unwrap();
    let foreign = patto::dev_token(&other, token_args(&cli)).unwrap();
    let auth =
        patto::authenticator(&parse(&["--data-dir", &data_dir]).unwrap().options, &no_env).unwrap();
    let status = auth.authenticate(&bearer(&foreign)).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::Unauthenticated);
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir_all(&other);
}

#[test]
fn the_command_line_takes_exactly_one_identity() {
    assert!(parse(&[]).unwrap().command.is_none(), "no args: run");
    assert!(parse(&["--print-schema"]).unwrap().options.print_schema);
    assert!(parse(&["--http-port", "9000"]).unwrap().options.http_port == 9000);
    for bad in [
        &["token"][..],
        &["token", "--operator"],
        &["token", "--system", "--subject", "erp"],
        &["token", "--citizen", CF, "--operator", "--comune", "082053"],
        &["token", "--citizen", CF, "--comune", "082053"],
        &["token", "--citizen", CF, "--ttl-minutes", "0"],
    ] {
        assert!(parse(bad).is_err(), "{bad:?} must be refused");
    }
    let cli = parse(&["token", "--data-dir", "/tmp/x", "--citizen", CF]).unwrap();
    assert_eq!(cli.options.data_dir, PathBuf::from("/tmp/x"));
    assert_eq!(token_args(&cli).ttl_minutes, 60);
}

#[test]
fn bad_identities_and_configuration_are_explained() {
    let dir = scratch_dir();
    let cli = parse(&["token", "--citizen", "RCCMNL83S18D969A"]).unwrap();
    let err = patto::dev_token(&dir, token_args(&cli)).unwrap_err();
    assert!(matches!(err, LaunchError::Token(_)), "{err}");
    assert!(err.to_string().contains("check character"), "{err}");

    let cli = parse(&["token", "--operator", "--comune", "999999"]).unwrap();
    let err = patto::dev_token(&dir, token_args(&cli)).unwrap_err();
    assert!(err.to_string().contains("82 comuni"), "{err}");

    // A real identity provider takes over from the dev issuer, and needs its issuer named.
    let src: HashMap<&'static str, String> = [(
        "PATTO_JWKS_URL",
        "https://id.example.invalid/jwks.json".to_owned(),
    )]
    .into_iter()
    .collect();
    let options = parse(&["--data-dir", &dir.to_string_lossy()])
        .unwrap()
        .options;
    let err = patto::authenticator(&options, &src).err().unwrap();
    assert!(err.to_string().starts_with("PATTO_JWT_ISSUER="), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}
