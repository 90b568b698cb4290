//! `braid-example-worker`: the demo task types (noop, echo, sleep, fail, rs-d; crash, blob and digest on request) for tests and drills.

mod ledger;
mod tasks;

use anyhow::Context;
use braid_worker::{Worker, WorkerEvent};
use clap::Parser;
use ledger::Ledger;
use std::path::PathBuf;
use std::time::Duration;
use tasks::Kind;

/// A Braid worker serving demo task types.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// The control plane's gRPC endpoint.
    #[arg(long, env = "BRAID_ENDPOINT", default_value = braid_worker::DEFAULT_ENDPOINT)]
    endpoint: String,
    /// The worker's name (default: HOSTNAME-PID).
    #[arg(long)]
    name: Option<String>,
    /// Tasks run at once.
    #[arg(long, default_value_t = 4)]
    slots: u32,
    /// Task types to serve, comma-separated.
    #[arg(long, value_enum, value_delimiter = ',', default_value = "noop,sleep,fail,echo")]
    types: Vec<Kind>,
    /// Appends one JSON line per task start, finish and result ack to this file.
    #[arg(long)]
    ledger: Option<PathBuf>,
    /// Serve `fail` as if its bug were fixed: it succeeds whatever its input says.
    #[arg(long)]
    heal: bool,
    /// How long a drain (SIGTERM/SIGINT) lets running tasks finish, e.g. "30s".
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    drain_timeout: Duration,
    /// API token (a worker token of the tenant whose tasks to serve).
    #[arg(long, env = "BRAID_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Serves Prometheus metrics on http://ADDR/metrics (port 0: any free port; printed as `metrics http://ADDR`).
    #[arg(long)]
    metrics_listen: Option<std::net::SocketAddr>,
    /// PEM CA certificate the server's certificate must chain to (an https:// endpoint).
    #[arg(long, env = "BRAID_CA_CERT")]
    ca_cert: Option<PathBuf>,
    /// PEM client certificate for a server that requires one (mTLS); with --client-key.
    #[arg(long, env = "BRAID_CLIENT_CERT", requires = "client_key")]
    client_cert: Option<PathBuf>,
    /// PEM private key of --client-cert.
    #[arg(long, env = "BRAID_CLIENT_KEY", requires = "client_cert")]
    client_key: Option<PathBuf>,
}

fn read(flag: &str, path: &std::path::Path) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("{flag} {}: cannot read", path.display()))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt().with_writer(std::io::stderr).with_env_filter(filter).init();
    let args = Args::parse();
    let name = args.name.unwrap_or_else(braid_worker::default_name);
    let ledger = match &args.ledger {
        Some(path) => Some(Ledger::open(path, &name).with_context(|| format!("cannot open {}", path.display()))?),
        None => None,
    };
    let printed_name = name.clone();
    let mut builder = Worker::builder()
        .endpoint(args.endpoint)
        .name(name)
        .slots(args.slots)
        .drain_timeout(args.drain_timeout)
        .on_event(move |event| {
            if let WorkerEvent::Connected { .. } = event {
                println!("worker {printed_name} connected");
            }
            if let Some(ledger) = &ledger {
                ledger.record(event);
            }
        });
    if let Some(path) = &args.ca_cert {
        builder = builder.tls_ca_cert(read("--ca-cert", path)?);
    }
    if let (Some(cert), Some(key)) = (&args.client_cert, &args.client_key) {
        builder = builder.tls_client_identity(read("--client-cert", cert)?, read("--client-key", key)?);
    }
    if let Some(addr) = args.metrics_listen {
        builder = builder.metrics_listen(addr);
    }
    if let Some(token) = args.token {
        builder = builder.token(token);
    }
    let mut kinds = args.types;
    kinds.sort();
    kinds.dedup();
    for kind in kinds {
        builder = tasks::register(builder, kind, args.heal);
    }
    let worker = builder.build()?;
    if let Some(addr) = worker.metrics_addr() {
        println!("metrics http://{addr}");
    }
    worker.run().await?;
    Ok(())
}
