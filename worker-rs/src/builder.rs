//! `WorkerBuilder`: the worker's settings and handlers, checked by `build()`.

use crate::handler::{BoxedHandler, boxed};
use crate::tls::TlsOptions;
use crate::traces::Traces;
use crate::{Executor, TaskContext, TaskError, Worker, WorkerError, WorkerEvent};
use opentelemetry_sdk::trace::SdkTracerProvider;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tonic::transport::Endpoint;

/// The endpoint used when none is set.
pub const DEFAULT_ENDPOINT: &str = "http://127.0.0.1:7400";

pub(crate) type EventHook = Arc<dyn Fn(&WorkerEvent) + Send + Sync>;

/// Everything the runtime needs, fixed at `build()`.
pub(crate) struct Config {
    pub(crate) endpoint: Endpoint,
    pub(crate) name: String,
    pub(crate) slots: u32,
    pub(crate) labels: HashMap<String, String>,
    pub(crate) handlers: HashMap<String, BoxedHandler>,
    pub(crate) drain_timeout: Duration,
    pub(crate) connect_timeout: Duration,
    pub(crate) backoff: (Duration, Duration),
    pub(crate) traces: Traces,
    /// Where `/metrics` is served, bound at `build()`.
    pub(crate) metrics_listener: Option<std::net::TcpListener>,
    /// `Bearer …`, sent on the stream's request when a token is set.
    pub(crate) authorization: Option<tonic::metadata::MetadataValue<tonic::metadata::Ascii>>,
    on_event: Option<EventHook>,
}

impl Config {
    pub(crate) fn emit(&self, event: WorkerEvent) {
        if let Some(hook) = &self.on_event {
            hook(&event);
        }
    }
}

/// Builds a [`Worker`]; start with [`Worker::builder`].
pub struct WorkerBuilder {
    endpoint: String,
    name: Option<String>,
    slots: u32,
    labels: BTreeMap<String, String>,
    handlers: HashMap<String, BoxedHandler>,
    problem: Option<WorkerError>,
    drain_timeout: Duration,
    connect_timeout: Duration,
    backoff: (Duration, Duration),
    on_event: Option<EventHook>,
    tracer_provider: Option<SdkTracerProvider>,
    metrics_listen: Option<std::net::SocketAddr>,
    token: Option<String>,
    tls: TlsOptions,
}

impl Default for WorkerBuilder {
    fn default() -> Self {
        Self {
            endpoint: DEFAULT_ENDPOINT.to_owned(),
            name: None,
            slots: 1,
            labels: BTreeMap::new(),
            handlers: HashMap::new(),
            problem: None,
            drain_timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
            backoff: (Duration::from_millis(100), Duration::from_secs(10)),
            on_event: None,
            tracer_provider: None,
            metrics_listen: None,
            token: None,
            tls: TlsOptions::default(),
        }
    }
}

impl fmt::Debug for WorkerBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut types: Vec<&String> = self.handlers.keys().collect();
        types.sort();
        f.debug_struct("WorkerBuilder")
            .field("endpoint", &self.endpoint)
            .field("name", &self.name)
            .field("slots", &self.slots)
            .field("labels", &self.labels)
            .field("task_types", &types)
            .field("drain_timeout", &self.drain_timeout)
            .field("tls", &self.tls)
            .finish_non_exhaustive()
    }
}

impl WorkerBuilder {
    /// The control plane's gRPC address, e.g. `http://127.0.0.1:7400` (the default).
    #[must_use]
    pub fn endpoint(mut self, endpoint: impl Into<String>) -> Self {
        self.endpoint = endpoint.into();
        self
    }

    /// A human-readable name; need not be unique. Default: `<hostname>-<pid>`.
    #[must_use]
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// How many tasks run at once (default 1); the server leases at most this many.
    #[must_use]
    pub fn slots(mut self, slots: u32) -> Self {
        self.slots = slots;
        self
    }

    /// Adds a label sent in `Hello.labels`.
    #[must_use]
    pub fn label(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.labels.insert(key.into(), value.into());
        self
    }

    /// Adds labels sent in `Hello.labels`.
    #[must_use]
    pub fn labels<K: Into<String>, V: Into<String>>(mut self, labels: impl IntoIterator<Item = (K, V)>) -> Self {
        self.labels.extend(labels.into_iter().map(|(k, v)| (k.into(), v.into())));
        self
    }

    /// Serves `task_type` with `handler`: an async function of the typed run input (the `input`
    /// part of the assignment) and a [`TaskContext`], returning a serializable output or an error
    /// convertible into [`TaskError`].
    #[must_use]
    pub fn task<I, O, E, F, Fut>(mut self, task_type: impl Into<String>, handler: F) -> Self
    where
        F: Fn(I, TaskContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<O, E>> + Send + 'static,
        I: DeserializeOwned + Send + 'static,
        O: Serialize,
        E: Into<TaskError>,
    {
        let task_type = task_type.into();
        if !is_valid_task_type(&task_type) {
            self.problem.get_or_insert(WorkerError::InvalidTaskType(task_type));
        } else if self.handlers.insert(task_type.clone(), boxed(handler)).is_some() {
            self.problem.get_or_insert(WorkerError::DuplicateTaskType(task_type));
        }
        self
    }

    /// Serves `task_type` with `executor` (for example an [`HttpExecutor`](crate::HttpExecutor) or
    /// a [`ProcessExecutor`](crate::ProcessExecutor)) instead of an in-process handler: it gets
    /// the run input as JSON and the [`TaskContext`], and is run like a handler (slots, deadline,
    /// cancellation, spans, metrics).
    #[must_use]
    pub fn executor(self, task_type: impl Into<String>, executor: impl Executor) -> Self {
        let executor = Arc::new(executor);
        self.task(task_type, move |input: Value, ctx: TaskContext| {
            let executor = executor.clone();
            async move { executor.execute(input, ctx).await }
        })
    }

    /// How long a drain lets running tasks finish before cancelling them (default 30 s).
    #[must_use]
    pub fn drain_timeout(mut self, timeout: Duration) -> Self {
        self.drain_timeout = timeout;
        self
    }

    /// Bound on connecting and on waiting for `Welcome` (default 10 s).
    #[must_use]
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Reconnect delays: full jitter over a ceiling that starts at `initial` and doubles up to
    /// `max` (default 100 ms to 10 s).
    #[must_use]
    pub fn reconnect_backoff(mut self, initial: Duration, max: Duration) -> Self {
        self.backoff = (initial, max);
        self
    }

    /// Calls `hook` for every [`WorkerEvent`]. It runs on the worker's tasks: keep it quick.
    #[must_use]
    pub fn on_event(mut self, hook: impl Fn(&WorkerEvent) + Send + Sync + 'static) -> Self {
        self.on_event = Some(Arc::new(hook));
        self
    }

    /// Exports the `handler` spans (one an attempt, a child of the run's trace) through
    /// `provider` instead of the default: an OTLP exporter when `BRAID_OTLP_ENDPOINT` is set,
    /// else the global provider. The worker flushes it when it stops; shutting it down is yours.
    #[must_use]
    pub fn tracer_provider(mut self, provider: SdkTracerProvider) -> Self {
        self.tracer_provider = Some(provider);
        self
    }

    /// Serves Prometheus metrics on `http://ADDR/metrics` while the worker runs (port 0: any
    /// free port; [`Worker::metrics_addr`] says which): `braid_worker_tasks_total`,
    /// `braid_worker_handler_duration_seconds`, `braid_worker_heartbeats_sent_total`.
    #[must_use]
    pub fn metrics_listen(mut self, addr: std::net::SocketAddr) -> Self {
        self.metrics_listen = Some(addr);
        self
    }

    /// The API token the stream authenticates with (a `worker` or `admin` token of the tenant whose
    /// tasks it serves), sent as `authorization: Bearer …`. An empty token means none.
    #[must_use]
    pub fn token(mut self, token: impl Into<String>) -> Self {
        let t = token.into();
        self.token = (!t.trim().is_empty()).then(|| t.trim().to_owned());
        self
    }

    /// PEM CA certificate(s) the server's certificate must chain to; required for an `https://`
    /// endpoint (TLS is used only with `https://`; system roots are not consulted).
    #[must_use]
    pub fn tls_ca_cert(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.tls.ca = Some(pem.into());
        self
    }

    /// PEM client certificate (chain) and its private key, presented to a server that requires
    /// client certificates (mTLS).
    #[must_use]
    pub fn tls_client_identity(mut self, cert_pem: impl Into<Vec<u8>>, key_pem: impl Into<Vec<u8>>) -> Self {
        self.tls.identity = Some((cert_pem.into(), key_pem.into()));
        self
    }

    /// The name the server's certificate is checked against, instead of the endpoint's host.
    #[must_use]
    pub fn tls_domain(mut self, name: impl Into<String>) -> Self {
        self.tls.domain = Some(name.into());
        self
    }

    /// Checks the settings and makes the worker; nothing connects until it runs.
    pub fn build(self) -> Result<Worker, WorkerError> {
        if let Some(problem) = self.problem {
            return Err(problem);
        }
        if self.handlers.is_empty() {
            return Err(WorkerError::NoTasks);
        }
        if self.slots == 0 {
            return Err(WorkerError::ZeroSlots);
        }
        let endpoint = Endpoint::from_shared(self.endpoint.clone())
            .map_err(|source| WorkerError::InvalidEndpoint { endpoint: self.endpoint.clone(), source })?
            .connect_timeout(self.connect_timeout)
            .tcp_nodelay(true)
            // Detects a dead connection while the server is silent, so that leases are given up
            // (and handlers cancelled) in time.
            .http2_keep_alive_interval(Duration::from_secs(10))
            .keep_alive_timeout(Duration::from_secs(10))
            .keep_alive_while_idle(true);
        let authorization = match &self.token {
            None => None,
            Some(t) => Some(format!("Bearer {t}").parse().map_err(|_| WorkerError::InvalidToken)?),
        };
        let endpoint = self.tls.apply(&self.endpoint, endpoint)?;
        let metrics_listener = match self.metrics_listen {
            Some(addr) => {
                Some(std::net::TcpListener::bind(addr).map_err(|source| WorkerError::MetricsListen { addr, source })?)
            }
            None => None,
        };
        Ok(Worker::new(Config {
            endpoint,
            name: self.name.unwrap_or_else(default_name),
            slots: self.slots,
            labels: self.labels.into_iter().collect(),
            handlers: self.handlers,
            drain_timeout: self.drain_timeout,
            connect_timeout: self.connect_timeout,
            backoff: self.backoff,
            traces: Traces::new(self.tracer_provider),
            metrics_listener,
            authorization,
            on_event: self.on_event,
        }))
    }
}

/// The server's rule for names: `^[A-Za-z0-9][A-Za-z0-9_.-]*$`, at most 64 characters.
fn is_valid_task_type(name: &str) -> bool {
    let mut chars = name.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric());
    first_ok && name.len() <= 64 && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

/// The default worker name: `<hostname>-<pid>`.
pub fn default_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .or_else(|| std::env::var("COMPUTERNAME").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "worker".to_owned());
    format!("{host}-{}", std::process::id())
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn nothing(_: serde_json::Value, _: TaskContext) -> Result<(), TaskError> {
        Ok(())
    }

    #[test]
    fn build_checks() {
        assert!(matches!(Worker::builder().build(), Err(WorkerError::NoTasks)));
        assert!(matches!(Worker::builder().task("a", nothing).slots(0).build(), Err(WorkerError::ZeroSlots)));
        let dup = Worker::builder().task("a", nothing).task("a", nothing).build();
        assert!(matches!(dup, Err(WorkerError::DuplicateTaskType(t)) if t == "a"));
        for bad in ["", "-a", "a b", "é", &"x".repeat(65)] {
            let built = Worker::builder().task(bad, nothing).build();
            assert!(matches!(built, Err(WorkerError::InvalidTaskType(t)) if t == bad), "{bad:?}");
        }
        assert!(Worker::builder().task("resize.v2_x-1", nothing).build().is_ok());
        let bad = Worker::builder().task("a", nothing).endpoint("not a uri").build();
        assert!(matches!(bad, Err(WorkerError::InvalidEndpoint { .. })));
        let w = Worker::builder().task("a", nothing).build().expect("builds");
        assert!(w.name().ends_with(&format!("-{}", std::process::id())));
    }

    #[test]
    fn tls_checks() {
        let made = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
        let (cert, key) = (made.cert.pem(), made.signing_key.serialize_pem());
        let https = || Worker::builder().task("a", nothing).endpoint("https://127.0.0.1:7400");
        assert!(matches!(https().build(), Err(WorkerError::HttpsWithoutCa { .. })));
        let plain_with_ca = Worker::builder().task("a", nothing).tls_ca_cert(cert.clone()).build();
        assert!(matches!(plain_with_ca, Err(WorkerError::TlsWithoutHttps { .. })));
        let bad_ca = https().tls_ca_cert("not pem").build();
        assert!(matches!(bad_ca, Err(WorkerError::InvalidPem { what: "CA certificate", .. })));
        let bad_key = https().tls_ca_cert(cert.clone()).tls_client_identity(cert.clone(), cert.clone()).build();
        assert!(matches!(bad_key, Err(WorkerError::InvalidPem { what: "client key", .. })));
        let ok = https().tls_ca_cert(cert.clone()).tls_client_identity(cert, key).tls_domain("localhost").build();
        assert!(ok.is_ok(), "{ok:?}");
    }
}
