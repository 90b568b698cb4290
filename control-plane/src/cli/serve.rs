//! `braid server`, `braid dev` and `braid migrate`: starting control planes and migrating databases.

use super::{CliError, DevArgs, MigrateArgs};
use crate::app::tls::ServerTls;
use crate::app::{self, Listeners};
use crate::config::{ServerArgs, ServerConfig};
use crate::engine::{Engine, SystemClock};
use crate::queue::{InProcessQueue, RedisQueue};
use crate::store::Store;
use std::net::SocketAddr;
use std::sync::Arc;

/// How long the demo worker may take to finish its task at shutdown.
const DEMO_DRAIN: std::time::Duration = std::time::Duration::from_secs(10);
/// Redis connections of one control plane (blocking reads hold their own).
const REDIS_POOL: u32 = 16;

pub async fn server(args: ServerArgs) -> Result<(), CliError> {
    // Every config problem is reported before anything is opened or bound.
    let cfg = ServerConfig::resolve(&args)?;
    let store = Store::connect(&cfg.database_url, cfg.db_max_connections).await?;
    store.check_schema().await?;
    let queue = RedisQueue::connect(&cfg.redis_url, REDIS_POOL).await.map_err(|e| CliError::Redis(e.to_string()))?;
    match queue.check_eviction_policy().await {
        Ok(Some(policy)) => tracing::warn!(
            %policy,
            "REDIS maxmemory-policy is {policy}, not noeviction: Redis may evict dispatch entries under memory \
             pressure; nothing is lost (the reconciler republishes from PostgreSQL) but dispatch slows. \
             Set `maxmemory-policy noeviction`."
        ),
        Ok(None) => {}
        Err(e) => return Err(CliError::Redis(e.to_string())),
    }
    let listeners = Listeners::bind(cfg.grpc_listen, cfg.http_listen).await?.with_tls(cfg.tls);
    outln!("Braid {} server", crate::VERSION);
    listeners.announce();
    let engine = Engine::new(store.clone(), Arc::new(SystemClock), Arc::new(queue), cfg.exec);
    let served = app::serve(engine, listeners, app::shutdown_on_signals()).await;
    let closed = store.close().await;
    served?;
    Ok(closed?)
}

pub async fn dev(args: DevArgs) -> Result<(), CliError> {
    std::fs::create_dir_all(&args.data_dir)
        .map_err(|e| CliError::Input(format!("cannot create data dir {}: {e}", args.data_dir.display())))?;
    let tls = ServerTls::load(&args.tls)?;
    let db_path = args.data_dir.join("braid.db");
    let url = format!("sqlite://{}?mode=rwc", db_path.display());
    let store = Store::connect(&url, 1).await?;
    let applied = store.migrate().await?;
    if !applied.is_empty() {
        tracing::info!(migrations = ?applied, "database migrated");
    }
    let localhost = |port| SocketAddr::from(([127, 0, 0, 1], port));
    // The demo worker speaks plaintext: with TLS on, it stays off (start a worker with --ca-cert instead).
    let demo_on = !args.no_demo && tls.is_none();
    let listeners = Listeners::bind(localhost(args.grpc_port), localhost(args.http_port)).await?.with_tls(tls);
    outln!("Braid {} dev mode: SQLite at {}", crate::VERSION, db_path.display());
    listeners.announce();
    let settings = args.exec.settings()?;
    let engine = Engine::new(store.clone(), Arc::new(SystemClock), Arc::new(InProcessQueue::new()), settings);
    let signals = app::shutdown_on_signals();
    // The demo worker drains first (finishing its task), then the server stops.
    let server_stop = tokio_util::sync::CancellationToken::new();
    if !args.no_demo && !demo_on {
        outln!("Demo  off: the demo worker does not speak TLS (run one with --ca-cert, or pass --no-demo)");
    }
    let demo = if !demo_on {
        None
    } else {
        let worker = super::demo::worker(format!("http://{}", listeners.grpc_addr()))?;
        let stop = signals.clone();
        let handle = tokio::spawn(async move { worker.run_until(stop.cancelled_owned()).await });
        let run = super::demo::start(&engine).await?;
        outln!("Demo  run {run} of workflow braid-demo: braid run get {run}");
        Some(handle)
    };
    let stop = server_stop.clone();
    tokio::spawn(async move {
        signals.cancelled().await;
        if let Some(handle) = demo {
            match tokio::time::timeout(DEMO_DRAIN, handle).await {
                Ok(Ok(Ok(()))) => {}
                Ok(Ok(Err(e))) => tracing::warn!(error = %e, "demo worker stopped with an error"),
                Ok(Err(e)) => tracing::warn!(error = %e, "demo worker task failed"),
                Err(_) => tracing::warn!("demo worker did not drain in time"),
            }
        }
        stop.cancel();
    });
    let served = app::serve(engine, listeners, server_stop).await;
    let closed = store.close().await;
    served?;
    Ok(closed?)
}

pub async fn migrate(args: MigrateArgs) -> Result<(), CliError> {
    let store = Store::connect(&args.database_url, 2).await?;
    let applied = store.migrate().await?;
    if applied.is_empty() {
        outln!("schema is up to date");
    } else {
        for name in &applied {
            outln!("applied {name}");
        }
    }
    store.close().await?;
    Ok(())
}
