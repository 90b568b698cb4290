//! `Worker` and `WorkerHandle`: running a built worker, stopping it, reading its counters.

use crate::builder::Config;
use crate::runtime::Runtime;
use crate::stats::Counters;
use crate::{WorkerBuilder, WorkerError, WorkerStats};
use std::future::Future;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// State shared by the worker's runtime and its handles.
#[derive(Debug, Default)]
pub(crate) struct Shared {
    pub(crate) counters: Counters,
    /// Cancelled to start a graceful drain.
    pub(crate) drain: CancellationToken,
    /// Cancelled to stop at once: handlers are cancelled and abandoned, leases left to expire.
    pub(crate) abort: CancellationToken,
}

/// A worker ready to run; made by [`Worker::builder`].
pub struct Worker {
    config: Arc<Config>,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker").field("name", &self.config.name).finish_non_exhaustive()
    }
}

/// Controls a running worker from elsewhere: counters, drain, abort. Cheap to clone.
#[derive(Debug, Clone)]
pub struct WorkerHandle {
    shared: Arc<Shared>,
}

impl Worker {
    /// Starts building a worker.
    pub fn builder() -> WorkerBuilder {
        WorkerBuilder::default()
    }

    pub(crate) fn new(config: Config) -> Self {
        Self { config: Arc::new(config), shared: Arc::default() }
    }

    /// The name sent in `Hello.worker_name`.
    pub fn name(&self) -> &str {
        &self.config.name
    }

    /// Where `/metrics` is served (set with [`WorkerBuilder::metrics_listen`]).
    pub fn metrics_addr(&self) -> Option<std::net::SocketAddr> {
        self.config.metrics_listener.as_ref().and_then(|l| l.local_addr().ok())
    }

    /// A handle to stop the worker or read its counters while it runs.
    pub fn handle(&self) -> WorkerHandle {
        WorkerHandle { shared: self.shared.clone() }
    }

    /// Runs until SIGINT or SIGTERM, then drains gracefully; a second signal stops at once.
    pub async fn run(self) -> Result<(), WorkerError> {
        let signals = signals::listen(self.handle())?;
        let result = self.run_until(std::future::pending()).await;
        signals.abort();
        result
    }

    /// Runs until `shutdown` completes (or [`WorkerHandle::shutdown`] is called), then drains
    /// gracefully. Returns an error only when the server refuses the worker for good.
    pub async fn run_until(self, shutdown: impl Future<Output = ()>) -> Result<(), WorkerError> {
        let config = self.config.clone();
        config.traces.start();
        let metrics_stop = CancellationToken::new();
        if let Some(listener) = config.metrics_listener.as_ref().and_then(|l| l.try_clone().ok()) {
            let metrics = self.shared.counters.metrics.clone();
            tokio::spawn(crate::metrics::serve(listener, metrics, metrics_stop.clone()));
        }
        let result = Runtime::new(self.config, self.shared).run(shutdown).await;
        metrics_stop.cancel();
        config.traces.finish().await;
        result
    }
}

impl WorkerHandle {
    /// The worker's counters now.
    pub fn stats(&self) -> WorkerStats {
        self.shared.counters.snapshot()
    }

    /// The worker's Prometheus metrics in the text format (what `/metrics` serves).
    pub fn metrics_text(&self) -> String {
        self.shared.counters.metrics.render()
    }

    /// Starts a graceful drain, as if the `run_until` future had completed.
    pub fn shutdown(&self) {
        self.shared.drain.cancel();
    }

    /// Stops at once: cancels every handler and returns without waiting for results.
    pub fn abort(&self) {
        self.shared.abort.cancel();
    }
}

mod signals {
    //! SIGINT/SIGTERM: the first drains, the second aborts.

    use super::WorkerHandle;
    use crate::WorkerError;
    use tokio::task::JoinHandle;

    #[cfg(unix)]
    pub(super) fn listen(handle: WorkerHandle) -> Result<JoinHandle<()>, WorkerError> {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate()).map_err(WorkerError::Signal)?;
        let mut int = signal(SignalKind::interrupt()).map_err(WorkerError::Signal)?;
        Ok(tokio::spawn(async move {
            for step in 0..2 {
                let name = tokio::select! {
                    _ = term.recv() => "SIGTERM",
                    _ = int.recv() => "SIGINT",
                };
                if step == 0 {
                    tracing::info!(signal = name, "shutdown requested: draining (send it again to stop at once)");
                    handle.shutdown();
                } else {
                    tracing::warn!(signal = name, "second shutdown request: stopping at once");
                    handle.abort();
                }
            }
        }))
    }

    #[cfg(not(unix))]
    pub(super) fn listen(handle: WorkerHandle) -> Result<JoinHandle<()>, WorkerError> {
        Ok(tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                tracing::info!("shutdown requested: draining (press Ctrl-C again to stop at once)");
                handle.shutdown();
            }
            if tokio::signal::ctrl_c().await.is_ok() {
                handle.abort();
            }
        }))
    }
}
