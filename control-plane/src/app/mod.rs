//! Assembling a control plane: listeners, gRPC and HTTP servers, background tasks, ordered shutdown.

pub mod scheduler;
pub mod tasks;
pub mod tls;

use crate::api;
pub use crate::api::auth::{Access, AuthMode};
use crate::engine::Engine;
use crate::http;
use std::net::SocketAddr;
use std::time::Duration;
use tasks::Tasks;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic_health::ServingStatus;

/// How long each part may take to stop once shutdown begins.
pub const SHUTDOWN_DEADLINE: Duration = Duration::from_secs(10);
/// How long open gRPC connections may linger after shutdown begins.
pub const CONNECTION_GRACE: Duration = Duration::from_secs(3);
/// How often queue depth and lag, dead letters and worker slots are collected for `/metrics`.
pub const METRICS_INTERVAL: Duration = Duration::from_secs(5);

/// Why a control plane could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("cannot listen on {addr} for {what}: {source}")]
    Bind { what: &'static str, addr: SocketAddr, source: std::io::Error },
    #[error("cannot set up {0}")]
    Setup(String),
    #[error("{0}")]
    Serve(String),
}

/// The two bound sockets of a control plane. Binding first lets port 0 mean "any free port".
#[derive(Debug)]
pub struct Listeners {
    grpc: TcpListener,
    http: TcpListener,
    /// TLS on the gRPC port; `None` serves plaintext.
    tls: Option<tls::ServerTls>,
}

impl Listeners {
    pub async fn bind(grpc: SocketAddr, http: SocketAddr) -> Result<Self, AppError> {
        let bind = |what, addr| async move {
            TcpListener::bind(addr).await.map_err(|source| AppError::Bind { what, addr, source })
        };
        Ok(Self { grpc: bind("gRPC", grpc).await?, http: bind("HTTP", http).await?, tls: None })
    }

    /// Serves the gRPC port with TLS (mTLS when `tls` has a client CA).
    #[must_use]
    pub fn with_tls(mut self, tls: Option<tls::ServerTls>) -> Self {
        self.tls = tls;
        self
    }

    pub fn grpc_addr(&self) -> SocketAddr {
        self.grpc.local_addr().unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 0)))
    }

    pub fn http_addr(&self) -> SocketAddr {
        self.http.local_addr().unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 0)))
    }

    /// The lines a newcomer (and the tests) read to find the servers.
    pub fn announce(&self) {
        println!("gRPC  {}", self.grpc_addr());
        match &self.tls {
            Some(tls) if tls.mutual() => println!("TLS   on the gRPC port, client certificates required (mTLS)"),
            Some(_) => println!("TLS   on the gRPC port"),
            None => {}
        }
        println!("HTTP  http://{}", self.http_addr());
        println!("UI    http://{}/  (the dashboard)", self.http_addr());
    }
}

/// Serves the gRPC API and the HTTP endpoints, and runs the reaper, reconciler and retention,
/// until `shutdown` is cancelled (or a server fails). Then stops in order: health turns
/// NOT_SERVING, the servers stop (worker streams end), the loops stop.
pub async fn serve(
    engine: Engine,
    listeners: Listeners,
    access: Access,
    shutdown: CancellationToken,
) -> Result<(), AppError> {
    let (health, health_service) = tonic_health::server::health_reporter();
    for name in api::SERVICE_NAMES {
        health.set_service_status(name, ServingStatus::Serving).await;
    }
    // Both reflection versions describe everything, each other included, so a client
    // listing through either (grpcurl 1.8 and Python's client speak only v1alpha) sees all.
    let described = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(braid_proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
    };
    let setup = |e: tonic_reflection::server::Error| AppError::Setup(format!("gRPC reflection: {e}"));
    let reflection_v1 = described()
        .register_encoded_file_descriptor_set(tonic_reflection::pb::v1alpha::FILE_DESCRIPTOR_SET)
        .build_v1()
        .map_err(setup)?;
    let reflection_v1alpha = described()
        .register_encoded_file_descriptor_set(tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET)
        .build_v1alpha()
        .map_err(setup)?;
    let servers_stop = CancellationToken::new();
    let routes = api::routes(engine.clone(), servers_stop.clone())
        .add_service(health_service)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha);
    // One registry: what the engine records and the gRPC layer counts, exported on /metrics.
    let metrics = engine.metrics().clone();
    let retention_metrics = metrics.retention();
    let grpc_metrics = api::layer::GrpcMetricsLayer::new(metrics.grpc().clone());
    let grpc_auth = api::auth::AuthLayer::new(engine.clone(), access.mode);

    let mut servers = Tasks::default();
    let Listeners { grpc, http, tls } = listeners;
    let mut grpc_server = tonic::transport::Server::builder();
    if let Some(tls) = tls {
        grpc_server =
            grpc_server.tls_config(tls.config()).map_err(|e| AppError::Setup(format!("TLS: {}", tls::chain(&e))))?;
    }
    let (stop, failed) = (servers_stop.clone(), shutdown.clone());
    servers.spawn("grpc-server", async move {
        let serve = grpc_server
            .layer(grpc_metrics)
            .layer(grpc_auth)
            .add_routes(routes)
            .serve_with_incoming_shutdown(incoming(grpc), stop.clone().cancelled_owned());
        // In-flight calls get a grace period; clients that keep idle connections
        // (or streams) open past it are cut off rather than holding shutdown hostage.
        let grace = async {
            stop.cancelled().await;
            tokio::time::sleep(CONNECTION_GRACE).await;
        };
        let result = tokio::select! {
            r = serve => r.map_err(|e| e.to_string()),
            () = grace => {
                tracing::warn!(grace = ?CONNECTION_GRACE, "gRPC connections still open after the grace period; closing them");
                Ok(())
            }
        };
        failed.cancel();
        result
    });
    let (stop, failed, feed_engine) = (servers_stop.clone(), shutdown.clone(), engine.clone());
    servers.spawn("http-server", async move {
        let routes = http::router(metrics, feed_engine, access, stop.clone());
        let result =
            axum::serve(http, routes).with_graceful_shutdown(stop.cancelled_owned()).await.map_err(|e| e.to_string());
        failed.cancel();
        result
    });

    let loops_stop = CancellationToken::new();
    let mut loops = Tasks::default();
    let (e, stop, every) = (engine.clone(), loops_stop.clone(), engine.settings().reaper_interval);
    loops.spawn(
        "reaper",
        repeat("reaper", every, stop, move || {
            let e = e.clone();
            async move {
                e.reap_once().await.map(|n| {
                    if n > 0 {
                        tracing::info!(recovered = n, "expired leases recovered")
                    }
                })
            }
        }),
    );
    let (e, stop, every) = (engine.clone(), loops_stop.clone(), engine.settings().reconcile_interval);
    loops.spawn(
        "reconciler",
        repeat("reconciler", every, stop, move || {
            let e = e.clone();
            async move {
                e.reconcile_once().await.map(|n| {
                    if n > 0 {
                        tracing::debug!(published = n, "reconciler published")
                    }
                })
            }
        }),
    );
    loops.spawn("scheduler", scheduler::run(engine.clone(), loops_stop.clone()));
    let (e, stop, every) = (engine.clone(), loops_stop.clone(), engine.settings().retention_interval);
    loops.spawn(
        "retention",
        repeat("retention", every, stop, move || {
            let (e, m) = (e.clone(), retention_metrics.clone());
            async move {
                e.retention_once().await.map(|r| {
                    m.record(r.runs, r.tasks, r.attempts, r.events);
                    if r.runs > 0 {
                        tracing::info!(runs = r.runs, tasks = r.tasks, "finished runs past their retention deleted")
                    }
                })
            }
        }),
    );
    let (e, stop) = (engine.clone(), loops_stop.clone());
    loops.spawn(
        "metrics-collector",
        repeat("metrics-collector", METRICS_INTERVAL, stop, move || {
            let e = e.clone();
            async move { e.collect_gauges().await }
        }),
    );

    shutdown.cancelled().await;
    tracing::info!("shutting down");
    health.set_service_status("", ServingStatus::NotServing).await;
    for name in api::SERVICE_NAMES {
        health.set_service_status(name, ServingStatus::NotServing).await;
    }
    servers_stop.cancel();
    let served = servers.join(SHUTDOWN_DEADLINE).await;
    loops_stop.cancel();
    let looped = loops.join(SHUTDOWN_DEADLINE).await;
    served.and(looped).map_err(AppError::Serve)
}

/// Runs `pass` every `every` until `stop`; a failed pass is logged and the loop goes on.
async fn repeat<F, Fut>(name: &'static str, every: Duration, stop: CancellationToken, pass: F) -> Result<(), String>
where
    F: Fn() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = Result<(), crate::engine::EngineError>> + Send,
{
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = stop.cancelled() => return Ok(()),
        }
        if let Err(e) = pass().await {
            tracing::warn!(task = name, error = %e, "pass failed; retrying next tick");
        }
    }
}

/// A token cancelled on SIGINT or SIGTERM.
pub fn shutdown_on_signals() -> CancellationToken {
    let token = CancellationToken::new();
    let t = token.clone();
    tokio::spawn(async move {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        let term = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut s) => {
                    s.recv().await;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot watch SIGTERM");
                    std::future::pending::<()>().await;
                }
            }
        };
        #[cfg(not(unix))]
        let term = std::future::pending::<()>();
        tokio::select! {
            _ = ctrl_c => tracing::info!("SIGINT received"),
            () = term => tracing::info!("SIGTERM received"),
        }
        t.cancel();
    });
    token
}

/// Accepted gRPC connections with Nagle's algorithm off: an assignment is a small write after
/// another, and with it on each waited for the worker's delayed ACK (measured: enqueue-to-start
/// p50 25 ms, uniform up to the 40-50 ms of delayed ACKs, instead of about 2 ms).
fn incoming(listener: tokio::net::TcpListener) -> tonic::transport::server::TcpIncoming {
    tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true))
}
