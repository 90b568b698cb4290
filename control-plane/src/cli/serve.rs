//! `braid server`, `braid dev` and `braid migrate`: starting control planes and migrating databases.

use super::{CliError, DevArgs, MigrateArgs};
use crate::app::tls::ServerTls;
use crate::app::{self, Access, AuthMode, Listeners};
use crate::config::{ServerArgs, ServerConfig};
use crate::domain::auth::Role;
use crate::engine::{Engine, SystemClock};
use crate::objects::PayloadStore;
use crate::queue::{InProcessQueue, RedisQueue};
use crate::store::Store;
use std::io::Write;
use std::net::SocketAddr;
use std::os::unix::fs::OpenOptionsExt;
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
    let auth = auth_mode(args.insecure);
    if auth == AuthMode::Required {
        outln!("Auth  on: every call needs an API token (braid admin token create --tenant T --role R)");
    }
    let payloads = PayloadStore::open(&cfg.object_store).map_err(|e| CliError::Input(e.to_string()))?;
    outln!("Objects {}", payloads.location());
    let engine = Engine::new(store.clone(), Arc::new(SystemClock), Arc::new(queue), cfg.exec).with_payloads(payloads);
    let access = Access { mode: auth, metrics_need_token: args.metrics_need_token };
    let served = app::serve(engine, listeners, access, app::shutdown_on_signals()).await;
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
    let payloads = dev_payloads(&args)?;
    outln!("Objects {}", payloads.location());
    let engine = Engine::new(store.clone(), Arc::new(SystemClock), Arc::new(InProcessQueue::new()), settings)
        .with_payloads(payloads);
    let auth = auth_mode(args.insecure);
    let token = match auth {
        AuthMode::Off => None,
        AuthMode::Required => {
            let token = dev_token(&engine, &args.data_dir).await?;
            outln!("Token {token}");
            outln!(
                "      an admin token of tenant \"default\": export BRAID_TOKEN=… for the CLI; the dashboard asks for it once"
            );
            Some(token)
        }
    };
    let signals = app::shutdown_on_signals();
    // The demo worker drains first (finishing its task), then the server stops.
    let server_stop = tokio_util::sync::CancellationToken::new();
    if !args.no_demo && !demo_on {
        outln!("Demo  off: the demo worker does not speak TLS (run one with --ca-cert, or pass --no-demo)");
    }
    let demo = if !demo_on {
        None
    } else {
        let worker = super::demo::worker(format!("http://{}", listeners.grpc_addr()), token.as_deref())?;
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
    let access = Access { mode: auth, metrics_need_token: args.metrics_need_token };
    let served = app::serve(engine, listeners, access, server_stop).await;
    let closed = store.close().await;
    served?;
    Ok(closed?)
}

/// The object store of `braid dev`: `--object-store`, else `DATA_DIR/objects`.
fn dev_payloads(args: &DevArgs) -> Result<PayloadStore, CliError> {
    let given = args.object_store.clone().unwrap_or_else(|| args.data_dir.join("objects").display().to_string());
    let mut problems = Vec::new();
    let url = crate::config::object_store_url("object_store", &given, &mut problems);
    if !problems.is_empty() {
        return Err(crate::config::ConfigError(problems).into());
    }
    PayloadStore::open(&url).map_err(|e| CliError::Input(e.to_string()))
}

/// Auth is on unless `--insecure` says otherwise, which is said loudly.
fn auth_mode(insecure: bool) -> AuthMode {
    if insecure {
        outln!(
            "Auth  OFF (--insecure): every call acts as an admin of tenant \"default\"; use only on a trusted machine"
        );
        tracing::warn!("authentication is OFF (--insecure): every call acts as an admin of tenant \"default\"");
        AuthMode::Off
    } else {
        AuthMode::Required
    }
}

/// The admin token `braid dev` prints: the one kept in the data dir while it is still valid,
/// else a new one (kept there, readable only by its owner).
async fn dev_token(engine: &Engine, data_dir: &std::path::Path) -> Result<String, CliError> {
    let path = data_dir.join("admin-token");
    if let Ok(text) = std::fs::read_to_string(&path)
        && engine.authenticate(text.trim()).await.is_ok()
    {
        return Ok(text.trim().to_owned());
    }
    let made = engine.create_token(crate::domain::records::Tenant::DEFAULT, Role::Admin, "braid dev", None).await?;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&path)
        .map_err(|e| CliError::Input(format!("cannot write {}: {e}", path.display())))?;
    writeln!(file, "{}", made.text).map_err(|e| CliError::Input(format!("cannot write {}: {e}", path.display())))?;
    Ok(made.text)
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
