//! `braid-example-worker`: the demo task types (noop, echo, sleep, fail, rs-d; crash, blob and digest on request) for tests and drills.

#[path = "../shared/connection.rs"]
mod connection;
mod ledger;
mod tasks;

use anyhow::Context;
use braid_worker::{Worker, WorkerEvent};
use clap::Parser;
use connection::Connection;
use ledger::Ledger;
use std::path::PathBuf;
use std::time::Duration;
use tasks::Kind;

/// A Braid worker serving demo task types.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    #[command(flatten)]
    connection: Connection,
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
    /// Serves Prometheus metrics on http://ADDR/metrics (port 0: any free port; printed as `metrics http://ADDR`).
    #[arg(long)]
    metrics_listen: Option<std::net::SocketAddr>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    connection::init_logging();
    let args = Args::parse();
    let name = args.name.unwrap_or_else(braid_worker::default_name);
    let ledger = match &args.ledger {
        Some(path) => Some(Ledger::open(path, &name).with_context(|| format!("cannot open {}", path.display()))?),
        None => None,
    };
    let printed_name = name.clone();
    let builder =
        Worker::builder().name(name).slots(args.slots).drain_timeout(args.drain_timeout).on_event(move |event| {
            if let WorkerEvent::Connected { .. } = event {
                println!("worker {printed_name} connected");
            }
            if let Some(ledger) = &ledger {
                ledger.record(event);
            }
        });
    let mut builder = args.connection.apply(builder, None, args.connection.token.clone())?;
    if let Some(addr) = args.metrics_listen {
        builder = builder.metrics_listen(addr);
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
