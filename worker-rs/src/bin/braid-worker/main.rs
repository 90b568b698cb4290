//! `braid-worker`: serves task types with no code, each through an HTTP or process executor named in a config file.

mod assemble;
mod config;
#[path = "../shared/connection.rs"]
mod connection;
mod tasks;

use clap::{CommandFactory, FromArgMatches, Parser};
use connection::Connection;
use std::path::PathBuf;
use std::process::ExitCode;

/// A Braid worker whose task types are served by executors (HTTP endpoints, commands) named in a config file.
#[derive(Debug, Parser)]
#[command(version)]
pub(crate) struct Args {
    /// The config file (TOML): the worker's settings and one [[task]] table per task type.
    #[arg(long, short = 'c', env = "BRAID_WORKER_CONFIG")]
    config: PathBuf,
    /// Checks the config file, prints the task types it would serve, and exits.
    #[arg(long)]
    check: bool,
    #[command(flatten)]
    connection: Connection,
}

#[tokio::main]
async fn main() -> ExitCode {
    connection::init_logging();
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("braid-worker: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> anyhow::Result<()> {
    let matches = Args::command().get_matches();
    let args = Args::from_arg_matches(&matches)?;
    let token_on_command_line = matches.value_source("token") == Some(clap::parser::ValueSource::CommandLine);
    let config = config::load(&args.config)?;
    if args.check {
        let lines = assemble::check(&config, &args.connection)?;
        println!("{}: {} task type(s)", args.config.display(), lines.len());
        for line in lines {
            println!("{line}");
        }
        return Ok(());
    }
    let worker = assemble::worker(config, &args.connection, token_on_command_line)?;
    if let Some(addr) = worker.metrics_addr() {
        println!("metrics http://{addr}");
    }
    worker.run().await?;
    Ok(())
}
