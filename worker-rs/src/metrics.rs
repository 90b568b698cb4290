//! The worker's Prometheus metrics (tasks handled, handler latency, heartbeats) and the optional `/metrics` HTTP server.

use prometheus::{Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, Opts, Registry, TextEncoder};
use tokio_util::sync::CancellationToken;

/// The worker's registry: `braid_worker_tasks_total{task_type,outcome}`,
/// `braid_worker_handler_duration_seconds{task_type}`, `braid_worker_heartbeats_sent_total`.
#[derive(Debug, Clone)]
pub(crate) struct WorkerMetrics {
    registry: Registry,
    tasks: IntCounterVec,
    handler: HistogramVec,
    heartbeats: IntCounter,
}

impl Default for WorkerMetrics {
    fn default() -> Self {
        // Fixed, distinct families in a fresh registry: registering cannot fail.
        Self::new().expect("the worker metric families are well-formed")
    }
}

impl WorkerMetrics {
    fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new();
        let tasks = IntCounterVec::new(
            Opts::new(
                "braid_worker_tasks_total",
                "Attempts this worker finished, by task type and outcome (succeeded, failed).",
            ),
            &["task_type", "outcome"],
        )?;
        let handler = HistogramVec::new(
            HistogramOpts::new("braid_worker_handler_duration_seconds", "Time in the task handler, by task type."),
            &["task_type"],
        )?;
        let heartbeats = IntCounter::new("braid_worker_heartbeats_sent_total", "Heartbeats this worker sent.")?;
        registry.register(Box::new(tasks.clone()))?;
        registry.register(Box::new(handler.clone()))?;
        registry.register(Box::new(heartbeats.clone()))?;
        Ok(Self { registry, tasks, handler, heartbeats })
    }

    /// An attempt finished with `outcome` (succeeded or failed).
    pub(crate) fn task(&self, task_type: &str, outcome: &str) {
        self.tasks.with_label_values(&[task_type, outcome]).inc();
    }

    /// A handler ran for `seconds`.
    pub(crate) fn handler(&self, task_type: &str, seconds: f64) {
        self.handler.with_label_values(&[task_type]).observe(seconds);
    }

    pub(crate) fn heartbeat(&self) {
        self.heartbeats.inc();
    }

    /// The Prometheus text exposition.
    pub(crate) fn render(&self) -> String {
        let mut buf = Vec::new();
        // Encoding into a Vec cannot fail for well-formed families.
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut buf);
        String::from_utf8(buf).unwrap_or_default()
    }
}

/// Serves `GET /metrics` on `listener` until `stop`.
pub(crate) async fn serve(listener: std::net::TcpListener, metrics: WorkerMetrics, stop: CancellationToken) {
    let listener = match listener.set_nonblocking(true).and_then(|()| tokio::net::TcpListener::from_std(listener)) {
        Ok(l) => l,
        Err(e) => {
            tracing::warn!(error = %e, "cannot serve metrics");
            return;
        }
    };
    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let body = metrics.render();
            async move { ([(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4")], body) }
        }),
    );
    if let Err(e) = axum::serve(listener, app).with_graceful_shutdown(stop.cancelled_owned()).await {
        tracing::warn!(error = %e, "metrics server stopped");
    }
}

#[cfg(test)]
mod tests {
    use super::WorkerMetrics;

    #[test]
    fn what_is_recorded_is_rendered() {
        let m = WorkerMetrics::default();
        m.task("echo", "succeeded");
        m.task("echo", "succeeded");
        m.handler("echo", 0.2);
        m.heartbeat();
        let text = m.render();
        for line in [
            r#"braid_worker_tasks_total{outcome="succeeded",task_type="echo"} 2"#,
            r#"braid_worker_handler_duration_seconds_count{task_type="echo"} 1"#,
            "braid_worker_heartbeats_sent_total 1",
        ] {
            assert!(text.contains(line), "{line} missing from:\n{text}");
        }
    }
}
