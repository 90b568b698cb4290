//! TLS on the gRPC port: the server's certificate and key, and the CA client certificates must chain to (mTLS).

use crate::config::{ConfigError, TlsArgs};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::fmt;
use std::path::Path;
use tonic::transport::{Certificate, Identity, ServerTlsConfig};

/// The gRPC port's TLS, read from the files named by `--tls-cert`, `--tls-key` and `--tls-client-ca` and checked.
#[derive(Clone, PartialEq, Eq)]
pub struct ServerTls {
    cert: Vec<u8>,
    key: Vec<u8>,
    client_ca: Option<Vec<u8>>,
}

impl fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The key stays out of logs.
        f.debug_struct("ServerTls").field("mutual", &self.mutual()).finish_non_exhaustive()
    }
}

/// What a PEM file must hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PemKind {
    /// One or more certificates.
    Certificates,
    /// One private key.
    PrivateKey,
}

impl ServerTls {
    /// Reads and checks the files the flags name; `None` when TLS is off. Every problem names its flag and file.
    pub fn load(args: &TlsArgs) -> Result<Option<Self>, ConfigError> {
        let mut problems = Vec::new();
        match (&args.tls_cert, &args.tls_key, &args.tls_client_ca) {
            (None, None, None) => return Ok(None),
            (None, None, Some(ca)) => problems.push(format!(
                "--tls-client-ca {}: needs --tls-cert and --tls-key (client certificates are checked over TLS)",
                ca.display()
            )),
            (Some(cert), None, _) => problems.push(format!("--tls-key: required with --tls-cert {}", cert.display())),
            (None, Some(key), _) => problems.push(format!("--tls-cert: required with --tls-key {}", key.display())),
            (Some(_), Some(_), _) => {}
        }
        let mut read = |flag, path: &Option<std::path::PathBuf>, kind| {
            path.as_deref().and_then(|p| read_pem(flag, p, kind).map_err(|e| problems.push(e)).ok())
        };
        let cert = read("--tls-cert", &args.tls_cert, PemKind::Certificates);
        let key = read("--tls-key", &args.tls_key, PemKind::PrivateKey);
        let client_ca = read("--tls-client-ca", &args.tls_client_ca, PemKind::Certificates);
        let (Some(cert), Some(key), true) = (cert, key, problems.is_empty()) else {
            return Err(ConfigError(problems));
        };
        let tls = Self { cert, key, client_ca };
        // tonic builds the rustls configuration here: a key that does not match the certificate shows now.
        if let Err(e) = tonic::transport::Server::builder().tls_config(tls.config()) {
            let (cert, key) = (args.tls_cert.as_deref().unwrap_or(Path::new("")), args.tls_key.as_deref());
            return Err(ConfigError(vec![format!(
                "--tls-cert {} and --tls-key {}: {}",
                cert.display(),
                key.unwrap_or(Path::new("")).display(),
                chain(&e)
            )]));
        }
        Ok(Some(tls))
    }

    /// Whether clients must present a certificate.
    pub fn mutual(&self) -> bool {
        self.client_ca.is_some()
    }

    /// The tonic server configuration: this identity, and client certificates required when a CA is set.
    pub fn config(&self) -> ServerTlsConfig {
        let config = ServerTlsConfig::new().identity(Identity::from_pem(&self.cert, &self.key));
        match &self.client_ca {
            Some(ca) => config.client_ca_root(Certificate::from_pem(ca)),
            None => config,
        }
    }
}

/// Reads `path` (given by `flag`) and checks that it holds PEM of `kind`; the error names both.
pub fn read_pem(flag: &str, path: &Path, kind: PemKind) -> Result<Vec<u8>, String> {
    let fail = |why: String| format!("{flag} {}: {why}", path.display());
    let bytes = std::fs::read(path).map_err(|e| fail(format!("cannot read: {e}")))?;
    match kind {
        PemKind::Certificates => {
            let certs = CertificateDer::pem_slice_iter(&bytes)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| fail(format!("not PEM: {e}")))?;
            if certs.is_empty() {
                return Err(fail("holds no PEM certificate (-----BEGIN CERTIFICATE-----)".into()));
            }
        }
        PemKind::PrivateKey => {
            PrivateKeyDer::from_pem_slice(&bytes)
                .map_err(|e| fail(format!("holds no PEM private key (PKCS#8, PKCS#1 or SEC1): {e}")))?;
        }
    }
    Ok(bytes)
}

/// An error and its sources on one line (tonic's transport errors keep the reason in a source);
/// a cause whose text its parent already ends with is not repeated.
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.ends_with(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}
