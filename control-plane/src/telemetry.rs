//! Logging and traces: `tracing` to stderr filtered by `RUST_LOG` (default info), and OpenTelemetry spans exported over OTLP when `BRAID_OTLP_ENDPOINT` is set.

pub mod spans;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// The OTLP/gRPC collector address (e.g. `http://127.0.0.1:4317`); unset or empty: no traces.
pub const OTLP_ENDPOINT_ENV: &str = "BRAID_OTLP_ENDPOINT";

/// What [`init`] installed; [`Telemetry::shutdown`] exports the spans still buffered.
#[derive(Debug)]
#[must_use = "call shutdown() before exiting, or buffered spans are lost"]
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

/// Installs the global subscriber and, when `BRAID_OTLP_ENDPOINT` is set, the OTLP exporter
/// (also behind the `tracing` spans, through the OpenTelemetry layer). Call it once per process,
/// inside the Tokio runtime (the exporter's gRPC client lives on it).
pub fn init() -> Telemetry {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,sea_orm=warn,tokio_cron_scheduler=warn"));
    let provider = match std::env::var(OTLP_ENDPOINT_ENV) {
        Ok(endpoint) if !endpoint.trim().is_empty() => match otlp_provider(endpoint.trim()) {
            Ok(provider) => Some(provider),
            Err(e) => {
                eprintln!("warning: traces are off: {OTLP_ENDPOINT_ENV}={endpoint:?}: {e}");
                None
            }
        },
        _ => None,
    };
    let otel = provider.as_ref().map(|p| tracing_opentelemetry::layer().with_tracer(p.tracer("braid")));
    let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr).with_target(false);
    let _ = tracing_subscriber::registry().with(filter).with(fmt).with(otel).try_init();
    if let Some(p) = &provider {
        install_tracer_provider(p.clone());
    }
    Telemetry { provider }
}

/// Makes `provider` the one the control plane's spans (`trigger_run`, `dispatch`) go to, and
/// turns them on. Tests install one with an in-memory exporter.
pub fn install_tracer_provider(provider: SdkTracerProvider) {
    opentelemetry::global::set_tracer_provider(provider);
    spans::enable();
}

fn otlp_provider(endpoint: &str) -> Result<SdkTracerProvider, opentelemetry_otlp::ExporterBuildError> {
    let exporter = opentelemetry_otlp::SpanExporter::builder().with_tonic().with_endpoint(endpoint).build()?;
    Ok(SdkTracerProvider::builder()
        .with_resource(Resource::builder().with_service_name("braid-control-plane").build())
        .with_batch_exporter(exporter)
        .build())
}

impl Telemetry {
    /// Exports what is buffered and stops the exporter (off the async threads: it blocks).
    pub async fn shutdown(self) {
        if let Some(provider) = self.provider {
            let done = tokio::task::spawn_blocking(move || provider.shutdown()).await;
            if let Ok(Err(e)) = done {
                eprintln!("warning: exporting the last spans failed: {e}");
            }
        }
    }
}
