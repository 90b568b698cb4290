//! gRPC families: `braid_grpc_requests_total{service,method,code}` and `braid_grpc_request_duration_seconds{service,method}`.

use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry};

/// Handles on the gRPC families, recorded by the tower layer in front of every service.
#[derive(Debug, Clone)]
pub struct GrpcMetrics {
    requests: IntCounterVec,
    duration: HistogramVec,
}

impl GrpcMetrics {
    pub(super) fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        let requests = IntCounterVec::new(
            Opts::new("braid_grpc_requests_total", "gRPC requests answered, by service, method and gRPC status code."),
            &["service", "method", "code"],
        )?;
        // Prometheus' default buckets.
        let duration = HistogramVec::new(
            HistogramOpts::new(
                "braid_grpc_request_duration_seconds",
                "Time from a gRPC request's arrival to its response's start, by service and method.",
            ),
            &["service", "method"],
        )?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(duration.clone()))?;
        Ok(Self { requests, duration })
    }

    /// One answered request.
    pub fn record(&self, service: &str, method: &str, code: &str, seconds: f64) {
        self.requests.with_label_values(&[service, method, code]).inc();
        self.duration.with_label_values(&[service, method]).observe(seconds);
    }
}
