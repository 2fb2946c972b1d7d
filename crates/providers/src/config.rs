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
        /// Token.
        token: Zeroizing<String>,
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
        token_file: PathBuf,
    },
    /// Azure Key Vault (or Managed HSM) over REST.
    AzureKeyvault {
        /// The vault, `https://NAME.vault.azure.net`.
        vault: String,
        /// CA certificate file of the vault (default: the system bundle).
        #[serde(default)]
        ca: Option<PathBuf>,
        /// File holding the Azure AD access token (re-read on every call).
        token_file: PathBuf,
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
        /// CA certificate of the server (PEM).
        ca: PathBuf,
        /// Client certificate (PEM).
        cert: PathBuf,
        /// Client key (PEM).
        key: PathBuf,
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
                token,
                mount,
            } => Arc::new(VaultTransit::from_url(
                addr,
                ca.as_deref(),
                token.as_str().to_owned(),
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
            } => Arc::new(crate::gcp_kms::GcpKms::new(
                crate::http_target(endpoint, ca.as_deref())?,
                token_file.clone(),
            )),
            Self::AzureKeyvault {
                vault,
                ca,
                token_file,
                alg,
            } => Arc::new(crate::azure_keyvault::AzureKeyVault::new(
                crate::http_target(vault, ca.as_deref())?,
                token_file.clone(),
                alg,
            )?),
            Self::Kmip {
                addr,
                server_name,
                ca,
                cert,
                key,
            } => {
                let config = openkcm_net::tls::client_config(&openkcm_net::tls::TlsFiles {
                    ca: ca.clone(),
                    cert: cert.clone(),
                    key: key.clone(),
                })
                .map_err(|e| ProviderError::Invalid(e.to_string()))?;
                Arc::new(crate::kmip::KmipProvider::new(addr, server_name, config))
            }
            Self::Local { dir } => Arc::new(LocalProvider::new(dir.clone())),
        })
    }
}
