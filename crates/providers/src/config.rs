//! Provider settings as data: what an operator writes on the command line or sends to the operator API to name a
//! seal provider, and [`ProviderConfig::build`] to make the driver. Secrets (tokens, secret keys) are kept in
//! zeroizing strings and redacted from `Debug`.

use crate::aws_kms::{AwsKms, AwsKmsConfig};
use crate::local::LocalProvider;
use crate::vault_transit::VaultTransit;
use crate::{KeyProvider, ProviderError};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::sync::Arc;
use zeroize::Zeroizing;

/// One provider's settings. JSON: `{"provider":"vault-transit","addr":"http://…","token":"…"}` and so on.
#[derive(Clone, Serialize, Deserialize)]
#[serde(tag = "provider", rename_all = "kebab-case", deny_unknown_fields)]
pub enum ProviderConfig {
    /// AWS KMS.
    AwsKms {
        /// Region.
        region: String,
        /// Endpoint override (moto).
        #[serde(default)]
        endpoint: Option<String>,
        /// Access key id.
        access_key_id: String,
        /// Secret access key.
        secret_access_key: Zeroizing<String>,
        /// Session token.
        #[serde(default)]
        session_token: Option<Zeroizing<String>>,
    },
    /// Vault or OpenBao transit.
    VaultTransit {
        /// `http://HOST:PORT` or `https://HOST:PORT`.
        addr: String,
        /// CA certificate file of an https server.
        #[serde(default)]
        ca: Option<PathBuf>,
        /// File holding the token (re-read on every call, so that a renewed token is used without a restart).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        token_file: Option<PathBuf>,
        /// The token itself (instead of `token_file`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        token: Option<Zeroizing<String>>,
        /// Transit mount path.
        #[serde(default = "transit")]
        mount: String,
    },
    /// A token of a PKCS#11 module (an HSM).
    Pkcs11 {
        /// The module (shared library).
        module: PathBuf,
        /// Token label.
        token_label: String,
        /// User PIN.
        pin: Zeroizing<String>,
    },
    /// Google Cloud KMS over REST.
    GcpKms {
        /// Endpoint (default `https://cloudkms.googleapis.com`).
        #[serde(default = "gcp_endpoint")]
        endpoint: String,
        /// CA certificate file of the endpoint (default: the system bundle).
        #[serde(default)]
        ca: Option<PathBuf>,
        /// File holding the OAuth 2 access token (re-read on every call).
        #[serde(default)]
        token_file: Option<PathBuf>,
        /// The access token itself (instead of `token_file`).
        #[serde(default)]
        token: Option<Zeroizing<String>>,
    },
    /// Azure Key Vault (or Managed HSM) over REST.
    AzureKeyvault {
        /// The vault, `https://NAME.vault.azure.net`.
        vault: String,
        /// CA certificate file of the vault (default: the system bundle).
        #[serde(default)]
        ca: Option<PathBuf>,
        /// File holding the Azure AD access token (re-read on every call).
        #[serde(default)]
        token_file: Option<PathBuf>,
        /// The access token itself (instead of `token_file`).
        #[serde(default)]
        token: Option<Zeroizing<String>>,
        /// `RSA-OAEP-256` (default) or `A256KW`.
        #[serde(default = "azure_alg")]
        alg: String,
    },
    /// A KMIP server (KMIP 1.4, mutual TLS).
    Kmip {
        /// HOST:PORT.
        addr: String,
        /// Server name to verify in its certificate.
        #[serde(default = "localhost")]
        server_name: String,
        /// CA certificate of the server (PEM file).
        #[serde(default)]
        ca: Option<PathBuf>,
        /// Client certificate (PEM file).
        #[serde(default)]
        cert: Option<PathBuf>,
        /// Client key (PEM file).
        #[serde(default)]
        key: Option<PathBuf>,
        /// The CA certificate itself (PEM), instead of `ca`.
        #[serde(default)]
        ca_pem: Option<String>,
        /// The client certificate itself (PEM), instead of `cert`.
        #[serde(default)]
        cert_pem: Option<String>,
        /// The client key itself (PEM), instead of `key`.
        #[serde(default)]
        key_pem: Option<Zeroizing<String>>,
    },
    /// Key files in a directory (development only).
    Local {
        /// The directory.
        dir: PathBuf,
    },
}

fn transit() -> String {
    "transit".into()
}

fn gcp_endpoint() -> String {
    crate::gcp_kms::ENDPOINT.into()
}

fn localhost() -> String {
    "localhost".into()
}

fn azure_alg() -> String {
    "RSA-OAEP-256".into()
}

impl std::fmt::Debug for ProviderConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::AwsKms {
                region, endpoint, ..
            } => write!(
                f,
                "aws-kms(region {region}, endpoint {endpoint:?}, credentials [redacted])"
            ),
            Self::VaultTransit { addr, mount, .. } => {
                write!(f, "vault-transit({addr}, mount {mount}, token [redacted])")
            }
            Self::Pkcs11 {
                module,
                token_label,
                ..
            } => write!(
                f,
                "pkcs11({}, token {token_label}, pin [redacted])",
                module.display()
            ),
            Self::GcpKms { endpoint, .. } => write!(f, "gcp-kms({endpoint}, token from a file)"),
            Self::AzureKeyvault { vault, alg, .. } => {
                write!(f, "azure-keyvault({vault}, {alg}, token from a file)")
            }
            Self::Kmip { addr, .. } => write!(f, "kmip({addr})"),
            Self::Local { dir } => write!(f, "local({})", dir.display()),
        }
    }
}

impl ProviderConfig {
    /// The driver name.
    pub fn name(&self) -> &'static str {
        match self {
            Self::AwsKms { .. } => crate::aws_kms::NAME,
            Self::VaultTransit { .. } => crate::vault_transit::NAME,
            Self::Pkcs11 { .. } => crate::pkcs11::NAME,
            Self::GcpKms { .. } => crate::gcp_kms::NAME,
            Self::AzureKeyvault { .. } => crate::azure_keyvault::NAME,
            Self::Kmip { .. } => crate::kmip::NAME,
            Self::Local { .. } => "local",
        }
    }

    /// The provider's region, where it has one.
    pub fn region(&self) -> Option<String> {
        match self {
            Self::AwsKms { region, .. } => Some(region.clone()),
            _ => None,
        }
    }

    /// Makes the driver.
    pub fn build(&self) -> Result<Arc<dyn KeyProvider>, ProviderError> {
        Ok(match self {
            Self::AwsKms {
                region,
                endpoint,
                access_key_id,
                secret_access_key,
                session_token,
            } => Arc::new(AwsKms::new(&AwsKmsConfig {
                region: region.clone(),
                endpoint: endpoint.clone(),
                access_key_id: access_key_id.clone(),
                secret_access_key: secret_access_key.clone(),
                session_token: session_token.clone(),
            })),
            Self::VaultTransit {
                addr,
                ca,
                token_file,
                token,
                mount,
            } => Arc::new(VaultTransit::from_url(
                addr,
                ca.as_deref(),
                token_source(token_file, token)?,
                mount,
            )?),
            Self::Pkcs11 {
                module,
                token_label,
                pin,
            } => Arc::new(crate::pkcs11::Pkcs11Provider::open(
                &crate::pkcs11::Pkcs11Config {
                    module: module.clone(),
                    token_label: token_label.clone(),
                    pin: pin.clone(),
                },
            )?),
            Self::GcpKms {
                endpoint,
                ca,
                token_file,
                token,
            } => Arc::new(crate::gcp_kms::GcpKms::new(
                crate::http_target(endpoint, ca.as_deref())?,
                token_source(token_file, token)?,
            )),
            Self::AzureKeyvault {
                vault,
                ca,
                token_file,
                token,
                alg,
            } => Arc::new(crate::azure_keyvault::AzureKeyVault::new(
                crate::http_target(vault, ca.as_deref())?,
                token_source(token_file, token)?,
                alg,
            )?),
            Self::Kmip {
                addr,
                server_name,
                ca,
                cert,
                key,
                ca_pem,
                cert_pem,
                key_pem,
            } => {
                let read = |path: &Option<PathBuf>,
                            inline: Option<&str>,
                            what: &str|
                 -> Result<Zeroizing<Vec<u8>>, ProviderError> {
                    match (path, inline) {
                        (_, Some(pem)) => Ok(Zeroizing::new(pem.as_bytes().to_vec())),
                        (Some(p), None) => crate::read_bounded(p, crate::MAX_OPERATOR_FILE)
                            .map(Zeroizing::new)
                            .map_err(|e| {
                                ProviderError::Invalid(format!(
                                    "cannot read the {what} {}: {e}",
                                    p.display()
                                ))
                            }),
                        (None, None) => Err(ProviderError::Invalid(format!(
                            "the kmip provider needs the {what}"
                        ))),
                    }
                };
                let config = openkcm_net::tls::client_config_from_pem(
                    &read(ca, ca_pem.as_deref(), "CA certificate")?,
                    &read(cert, cert_pem.as_deref(), "client certificate")?,
                    &read(key, key_pem.as_ref().map(|k| k.as_str()), "client key")?,
                )
                .map_err(|e| ProviderError::Invalid(e.to_string()))?;
                Arc::new(crate::kmip::KmipProvider::new(addr, server_name, config))
            }
            Self::Local { dir } => Arc::new(LocalProvider::new(dir.clone())),
        })
    }
}

fn token_source(
    file: &Option<PathBuf>,
    token: &Option<Zeroizing<String>>,
) -> Result<crate::TokenSource, ProviderError> {
    match (file, token) {
        (_, Some(t)) if !t.trim().is_empty() => Ok(crate::TokenSource::Inline(t.clone())),
        (Some(f), None) => Ok(crate::TokenSource::File(f.clone())),
        _ => Err(ProviderError::Invalid(
            "an access token is needed: a token file, or the token itself".into(),
        )),
    }
}

impl ProviderConfig {
    /// The same settings with every secret a file on this host names read in (tokens, client certificate and
    /// key), so that they can be sent to a node, which must not be asked to read its own files on a caller's
    /// behalf. CA files stay paths (on the node).
    pub fn inlined(mut self) -> Result<Self, ProviderError> {
        let read = |p: &PathBuf| {
            crate::read_bounded_text(p, crate::MAX_OPERATOR_FILE)
                .map_err(|e| ProviderError::Invalid(format!("cannot read {}: {e}", p.display())))
        };
        match &mut self {
            Self::GcpKms {
                token_file, token, ..
            }
            | Self::AzureKeyvault {
                token_file, token, ..
            }
            | Self::VaultTransit {
                token_file, token, ..
            } => {
                if let Some(f) = token_file.take() {
                    *token = Some(Zeroizing::new(read(&f)?.trim().to_owned()));
                }
            }
            Self::Kmip {
                ca,
                cert,
                key,
                ca_pem,
                cert_pem,
                key_pem,
                ..
            } => {
                if let Some(f) = ca.take() {
                    *ca_pem = Some(read(&f)?);
                }
                if let Some(f) = cert.take() {
                    *cert_pem = Some(read(&f)?);
                }
                if let Some(f) = key.take() {
                    *key_pem = Some(Zeroizing::new(read(&f)?));
                }
            }
            _ => {}
        }
        Ok(self)
    }

    /// Whether a node may use these settings sent by a remote operator: no file of the node's may be named except
    /// CA certificates and a PKCS#11 module from `allowed_modules` (loading a library runs its code in the node).
    pub fn check_remote(&self, allowed_modules: &[PathBuf]) -> Result<(), String> {
        match self {
            Self::Local { .. } => Err(
                "the local provider is for development only and cannot be named remotely".into(),
            ),
            Self::Pkcs11 { module, .. } => {
                let canon = |p: &std::path::Path| {
                    std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf())
                };
                if allowed_modules.iter().any(|m| canon(m) == canon(module)) {
                    Ok(())
                } else {
                    Err(format!(
                        "the node loads only the PKCS#11 modules it was configured with (--pkcs11-allowed-module), not {}",
                        module.display()
                    ))
                }
            }
            Self::GcpKms {
                token_file: Some(_),
                ..
            }
            | Self::AzureKeyvault {
                token_file: Some(_),
                ..
            }
            | Self::VaultTransit {
                token_file: Some(_),
                ..
            } => Err("send the access token itself, not a file name on the node".into()),
            Self::Kmip { cert: Some(_), .. } | Self::Kmip { key: Some(_), .. } => Err(
                "send the client certificate and key themselves (PEM), not file names on the node"
                    .into(),
            ),
            _ => Ok(()),
        }
    }
}
