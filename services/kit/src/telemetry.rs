//! Logs and traces: JSON logs to stdout (or human-readable with `PATTO_LOG_FORMAT=text`), filtered by
//! `RUST_LOG` (default `info`), and OTLP trace export when `OTEL_EXPORTER_OTLP_ENDPOINT` is set (the
//! exporter reads the standard `OTEL_*` variables itself).

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use crate::config::{ConfigError, Source};

/// Log filter when `RUST_LOG` is unset: our own events at info, the migrator's chatter muted.
pub const DEFAULT_FILTER: &str = "info,sea_orm_migration=warn,sqlx=warn";

/// Keeps the trace pipeline alive; call [`Telemetry::shutdown`] before exit so the last spans leave.
#[derive(Debug, Default)]
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Telemetry {
    /// Flushes and stops the trace exporter, if any.
    pub fn shutdown(self) {
        if let Some(provider) = self.provider {
            let _ = provider.force_flush();
            let _ = provider.shutdown();
        }
    }
}

/// Why telemetry could not start.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    /// A variable holds an unusable value.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The OTLP exporter could not be built.
    #[error("OTLP exporter: {0}. Check OTEL_EXPORTER_OTLP_ENDPOINT.")]
    Exporter(String),
}

/// What telemetry to set up.
#[derive(Debug, Clone)]
pub struct Settings {
    /// JSON lines (true) or compact text logs.
    pub json: bool,
    /// The log filter.
    pub filter: String,
    /// OTLP/gRPC endpoint of the trace collector; none means no trace export.
    pub otlp_endpoint: Option<String>,
}

impl Settings {
    /// Reads `PATTO_LOG_FORMAT`, `RUST_LOG` and `OTEL_EXPORTER_OTLP_ENDPOINT`.
    pub fn from_source(src: &dyn Source) -> Result<Self, TelemetryError> {
        let json = match src.get("PATTO_LOG_FORMAT").as_deref() {
            None | Some("json") => true,
            Some("text") => false,
            Some(other) => {
                return Err(ConfigError {
                    var: "PATTO_LOG_FORMAT".into(),
                    value: other.into(),
                    expected: "`json` or `text`".into(),
                }
                .into());
            }
        };
        let filter = src.get("RUST_LOG").unwrap_or_else(|| DEFAULT_FILTER.into());
        if let Err(e) = EnvFilter::try_new(&filter) {
            return Err(ConfigError {
                var: "RUST_LOG".into(),
                value: filter,
                expected: format!("a tracing filter such as `info` or `patto=debug` ({e})"),
            }
            .into());
        }
        Ok(Self {
            json,
            filter,
            otlp_endpoint: src.get("OTEL_EXPORTER_OTLP_ENDPOINT"),
        })
    }
}

/// Installs the global subscriber for `service_name`, configured from `src`. A second call in
/// the same process (the all-in-one, tests) keeps the first subscriber.
pub fn init(service_name: &str, src: &dyn Source) -> Result<Telemetry, TelemetryError> {
    init_with(service_name, Settings::from_source(src)?)
}

/// Installs the global subscriber for `service_name` with explicit settings.
pub fn init_with(service_name: &str, settings: Settings) -> Result<Telemetry, TelemetryError> {
    let json = settings.json;
    let filter =
        EnvFilter::try_new(&settings.filter).unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    let provider = match settings.otlp_endpoint {
        None => None,
        Some(endpoint) => {
            use opentelemetry_otlp::WithExportConfig;
            let exporter = opentelemetry_otlp::SpanExporter::builder()
                .with_tonic()
                .with_endpoint(endpoint)
                .build()
                .map_err(|e| TelemetryError::Exporter(e.to_string()))?;
            let resource = opentelemetry_sdk::Resource::builder()
                .with_service_name(service_name.to_owned())
                .build();
            Some(
                SdkTracerProvider::builder()
                    .with_batch_exporter(exporter)
                    .with_resource(resource)
                    .build(),
            )
        }
    };
    opentelemetry::global::set_text_map_propagator(
        opentelemetry_sdk::propagation::TraceContextPropagator::new(),
    );
    let otel_layer = provider
        .as_ref()
        .map(|p| tracing_opentelemetry::layer().with_tracer(p.tracer(service_name.to_owned())));

    let registry = tracing_subscriber::registry().with(filter).with(otel_layer);
    let result = if json {
        registry
            .with(tracing_subscriber::fmt::layer().json().flatten_event(true))
            .try_init()
    } else {
        registry
            .with(tracing_subscriber::fmt::layer().compact())
            .try_init()
    };
    if result.is_err() {
        tracing::debug!("a global subscriber is already installed; keeping it");
    }
    Ok(Telemetry { provider })
}
