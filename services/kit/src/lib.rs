//! `patto-service-kit`: what every Patto service shares, written once.
//!
//! - [`config`]: typed configuration from the environment (or a map, in tests), with errors that name
//!   the variable and the fix.
//! - [`telemetry`]: JSON logs and, when `OTEL_EXPORTER_OTLP_ENDPOINT` is set, OTLP traces.
//! - [`db`]: sea-orm connection (SQLite by default, PostgreSQL via `DATABASE_URL`) and migrations.
//! - [`host`]: gRPC hosting with health, reflection (v1 and v1alpha), the auth hook and graceful
//!   shutdown.
//! - [`error`]: one error type mapped once to `tonic::Status`, with `google.rpc.BadRequest` details.
//! - [`paging`]: opaque cursors for Relay-style paging.
//! - [`indicators`]: the programme indicators every service answers.
//! - [`testing`]: servers on ephemeral ports and fresh databases for integration tests.

/// Who may read and change what: the rule on personal data, shared by every service.
pub mod access;
/// Reads of citizens' personal data by others, recorded and listed.
pub mod audit;
pub mod auth;
pub mod comuni;
pub mod config;
pub mod db;
pub mod demo;
pub mod error;
pub mod host;
pub mod ids;
pub mod indicators;
pub mod observe;
pub mod paging;
pub mod pagopa;
pub mod procurement;
pub mod run;
pub mod stream;
pub mod telemetry;
pub mod testing;
pub mod time;
/// Verified identity: bearer JWTs checked against the issuer's JWKS, and the local dev issuer.
pub mod token;
pub mod validate;

pub use auth::Principal;
pub use config::{ConfigError, ServiceConfig, Source};
pub use error::{ServiceError, Violations};
pub use host::{GrpcApp, serve};
pub use run::{BaseMigrator, RunError, main_entry, serve_pending, serve_service};
