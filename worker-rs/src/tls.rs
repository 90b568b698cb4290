//! TLS for an `https://` endpoint: the CA, the client certificate (mTLS) and the domain name, checked at `build()`.

use crate::WorkerError;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::fmt;
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity};

/// What `WorkerBuilder::tls_*` collected.
#[derive(Default, Clone)]
pub(crate) struct TlsOptions {
    pub(crate) ca: Option<Vec<u8>>,
    pub(crate) identity: Option<(Vec<u8>, Vec<u8>)>,
    pub(crate) domain: Option<String>,
}

impl fmt::Debug for TlsOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The key stays out of logs.
        f.debug_struct("TlsOptions")
            .field("ca", &self.ca.is_some())
            .field("client_cert", &self.identity.is_some())
            .field("domain", &self.domain)
            .finish()
    }
}

impl TlsOptions {
    fn is_set(&self) -> bool {
        self.ca.is_some() || self.identity.is_some() || self.domain.is_some()
    }

    /// `endpoint` with TLS when its address is `https://`; an error for TLS options on `http://`,
    /// an `https://` address without a CA, or PEM without a certificate or key.
    pub(crate) fn apply(self, address: &str, endpoint: Endpoint) -> Result<Endpoint, WorkerError> {
        if !address.starts_with("https://") {
            return match self.is_set() {
                true => Err(WorkerError::TlsWithoutHttps { endpoint: address.to_owned() }),
                false => Ok(endpoint),
            };
        }
        let ca = self.ca.ok_or_else(|| WorkerError::HttpsWithoutCa { endpoint: address.to_owned() })?;
        check_certificates("CA certificate", &ca)?;
        let mut config = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(ca));
        if let Some((cert, key)) = self.identity {
            check_certificates("client certificate", &cert)?;
            PrivateKeyDer::from_pem_slice(&key).map_err(|e| WorkerError::InvalidPem {
                what: "client key",
                reason: format!("no PEM private key (PKCS#8, PKCS#1 or SEC1): {e}"),
            })?;
            config = config.identity(Identity::from_pem(cert, key));
        }
        if let Some(domain) = self.domain {
            config = config.domain_name(domain);
        }
        endpoint.tls_config(config).map_err(|source| WorkerError::Tls { endpoint: address.to_owned(), source })
    }
}

fn check_certificates(what: &'static str, pem: &[u8]) -> Result<(), WorkerError> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| WorkerError::InvalidPem { what, reason: format!("not PEM: {e}") })?;
    if certs.is_empty() {
        return Err(WorkerError::InvalidPem {
            what,
            reason: "no PEM certificate (-----BEGIN CERTIFICATE-----)".into(),
        });
    }
    Ok(())
}
