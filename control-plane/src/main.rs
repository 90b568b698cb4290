//! The `braid` binary: parses the command line and hands it to `braid_control_plane::cli`.

use braid_control_plane::cli::{Cli, run};
use clap::Parser;
use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let telemetry = braid_control_plane::telemetry::init();
    let result = run(cli).await;
    telemetry.shutdown().await;
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
