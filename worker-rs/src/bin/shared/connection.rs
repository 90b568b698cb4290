//! The connection flags both worker binaries take (endpoint, token, TLS files) and logging set-up, shared through `#[path]`.

use anyhow::Context;
use braid_worker::WorkerBuilder;
use std::path::{Path, PathBuf};

/// How a worker binary reaches the control plane.
#[derive(Debug, clap::Args)]
pub(crate) struct Connection {
    /// The control plane's gRPC endpoint; wins over a config file's control_plane [default: http://127.0.0.1:7400].
    #[arg(long, visible_alias = "control-plane", env = "BRAID_ENDPOINT")]
    pub(crate) endpoint: Option<String>,
    /// API token (a worker token of the tenant whose tasks to serve).
    #[arg(long, env = "BRAID_TOKEN", hide_env_values = true)]
    pub(crate) token: Option<String>,
    /// PEM CA certificate the server's certificate must chain to (an https:// endpoint).
    #[arg(long, env = "BRAID_CA_CERT")]
    pub(crate) ca_cert: Option<PathBuf>,
    /// PEM client certificate for a server that requires one (mTLS); with --client-key.
    #[arg(long, env = "BRAID_CLIENT_CERT", requires = "client_key")]
    pub(crate) client_cert: Option<PathBuf>,
    /// PEM private key of --client-cert.
    #[arg(long, env = "BRAID_CLIENT_KEY", requires = "client_cert")]
    pub(crate) client_key: Option<PathBuf>,
}

impl Connection {
    /// Sets the endpoint (`--endpoint`, else `fallback`, else the default), the TLS files and
    /// `token` on `builder`.
    pub(crate) fn apply(
        &self,
        builder: WorkerBuilder,
        fallback: Option<&str>,
        token: Option<String>,
    ) -> anyhow::Result<WorkerBuilder> {
        let endpoint = self.endpoint.as_deref().or(fallback).unwrap_or(braid_worker::DEFAULT_ENDPOINT);
        let mut builder = builder.endpoint(endpoint);
        if let Some(path) = &self.ca_cert {
            builder = builder.tls_ca_cert(read("--ca-cert", path)?);
        }
        if let (Some(cert), Some(key)) = (&self.client_cert, &self.client_key) {
            builder = builder.tls_client_identity(read("--client-cert", cert)?, read("--client-key", key)?);
        }
        if let Some(token) = token {
            builder = builder.token(token);
        }
        Ok(builder)
    }
}

fn read(flag: &str, path: &Path) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("{flag} {}: cannot read", path.display()))
}

/// Logs to stderr, filtered by `RUST_LOG` (default `info`).
pub(crate) fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt().with_writer(std::io::stderr).with_env_filter(filter).init();
}
