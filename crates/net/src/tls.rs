//! rustls configurations: mutual TLS for every listener and client, with the aws-lc-rs provider set explicitly.

use crate::NetError;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use std::path::Path;
use std::sync::Arc;

/// The crypto provider every configuration uses.
pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// Installs aws-lc-rs as the process-wide default provider (idempotent).
pub fn install_default_provider() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}

fn read(path: &Path) -> Result<Vec<u8>, NetError> {
    std::fs::read(path).map_err(|e| NetError::io(format!("cannot read {}", path.display()), e))
}

/// Parses every certificate of a PEM file.
pub fn certs_from_pem(pem: &[u8], what: &str) -> Result<Vec<CertificateDer<'static>>, NetError> {
    let certs: Vec<_> = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<_, _>>()
        .map_err(|e| NetError::Pki(format!("{what} is not a valid PEM certificate file: {e}")))?;
    if certs.is_empty() {
        return Err(NetError::Pki(format!("{what} holds no certificate")));
    }
    Ok(certs)
}

/// Parses the private key of a PEM file.
pub fn key_from_pem(pem: &[u8], what: &str) -> Result<PrivateKeyDer<'static>, NetError> {
    PrivateKeyDer::from_pem_slice(pem)
        .map_err(|e| NetError::Pki(format!("{what} holds no usable private key: {e}")))
}

fn roots(ca_pem: &[u8]) -> Result<RootCertStore, NetError> {
    let mut roots = RootCertStore::empty();
    for c in certs_from_pem(ca_pem, "the CA file")? {
        roots
            .add(c)
            .map_err(|e| NetError::Pki(format!("the CA certificate is not usable: {e}")))?;
    }
    Ok(roots)
}

/// PEM paths of a TLS identity and the CA it trusts.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// CA certificate(s) that peers must chain to.
    pub ca: std::path::PathBuf,
    /// Own certificate chain.
    pub cert: std::path::PathBuf,
    /// Own private key.
    pub key: std::path::PathBuf,
}

/// A server configuration that requires a client certificate issued by the CA (TLS 1.3, and 1.2 for older
/// KMIP clients).
pub fn server_config(files: &TlsFiles) -> Result<Arc<ServerConfig>, NetError> {
    let provider = provider();
    let verifier = WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots(&read(&files.ca)?)?),
        provider.clone(),
    )
    .build()
    .map_err(|e| NetError::Pki(format!("cannot build the client certificate verifier: {e}")))?;
    let config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_client_cert_verifier(verifier)
        .with_single_cert(
            certs_from_pem(&read(&files.cert)?, "the server certificate")?,
            key_from_pem(&read(&files.key)?, "the server key")?,
        )?;
    Ok(Arc::new(config))
}

/// A client configuration presenting a certificate and trusting only the CA.
pub fn client_config(files: &TlsFiles) -> Result<Arc<ClientConfig>, NetError> {
    let config = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_root_certificates(roots(&read(&files.ca)?)?)
        .with_client_auth_cert(
            certs_from_pem(&read(&files.cert)?, "the client certificate")?,
            key_from_pem(&read(&files.key)?, "the client key")?,
        )?;
    Ok(Arc::new(config))
}

/// A client configuration without a client certificate, trusting only the CA in `ca` (for calling an external
/// service such as a Vault/OpenBao server).
pub fn ca_only_client_config(ca: &Path) -> Result<Arc<ClientConfig>, NetError> {
    let config = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_root_certificates(roots(&read(ca)?)?)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// [`client_config`] from PEM contents instead of files.
pub fn client_config_from_pem(
    ca: &[u8],
    cert: &[u8],
    key: &[u8],
) -> Result<Arc<ClientConfig>, NetError> {
    let config = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_root_certificates(roots(ca)?)
        .with_client_auth_cert(
            certs_from_pem(cert, "the client certificate")?,
            key_from_pem(key, "the client key")?,
        )?;
    Ok(Arc::new(config))
}
