//! Command-line settings of a seal provider (`openkcm dev --seal …`, `openkcm operator migrate-seal --to …`).

use anyhow::Context;
use openkcm_providers::config::ProviderConfig;
use std::path::PathBuf;
use zeroize::Zeroizing;

/// Seal providers the command line can name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ProviderKind {
    /// AWS KMS (--aws-region, --aws-endpoint; credentials from AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and
    /// AWS_SESSION_TOKEN).
    AwsKms,
    /// A Vault or OpenBao transit key (--vault-addr; token from --vault-token-file or OPENKCM_VAULT_TOKEN).
    VaultTransit,
    /// An AES key in an HSM through PKCS#11 (--pkcs11-module, --pkcs11-token; PIN from --pkcs11-pin-file or
    /// OPENKCM_PKCS11_PIN).
    Pkcs11,
    /// Google Cloud KMS over REST (--gcp-token-file, --seal-key projects/…/cryptoKeys/K; untested against Google).
    GcpKms,
    /// Azure Key Vault over REST (--azure-vault, --azure-token-file; untested against Azure).
    AzureKeyvault,
    /// A key on a KMIP server (--kmip-addr, --kmip-ca, --kmip-cert, --kmip-key; --seal-key is its unique
    /// identifier).
    Kmip,
}

/// Where the seal provider is and how to authenticate.
#[derive(clap::Args, Clone, Debug)]
pub struct SealProviderArgs {
    /// The seal provider's key: a transit key name (vault-transit), a key id, ARN or `alias/NAME` (aws-kms). It
    /// must exist.
    #[arg(long, env = "OPENKCM_SEAL_KEY", default_value = "openkcm-seal")]
    pub seal_key: String,
    /// vault-transit: the Vault or OpenBao server, `http://HOST:PORT` or `https://HOST:PORT`.
    #[arg(long, env = "OPENKCM_VAULT_ADDR")]
    pub vault_addr: Option<String>,
    /// vault-transit: CA certificate of an https server (PEM).
    #[arg(long, env = "OPENKCM_VAULT_CA")]
    pub vault_ca: Option<PathBuf>,
    /// vault-transit: a file holding the token (else the OPENKCM_VAULT_TOKEN environment variable).
    #[arg(long, env = "OPENKCM_VAULT_TOKEN_FILE")]
    pub vault_token_file: Option<PathBuf>,
    /// vault-transit: the transit engine's mount path.
    #[arg(long, env = "OPENKCM_VAULT_MOUNT", default_value = "transit")]
    pub vault_mount: String,
    /// aws-kms: the region of the key.
    #[arg(long, env = "AWS_REGION")]
    pub aws_region: Option<String>,
    /// aws-kms: endpoint override, e.g. `http://127.0.0.1:5000` for a moto server.
    #[arg(long, env = "OPENKCM_AWS_ENDPOINT")]
    pub aws_endpoint: Option<String>,
    /// pkcs11: the PKCS#11 module, e.g. `/usr/lib/softhsm/libsofthsm2.so`.
    #[arg(long, env = "OPENKCM_PKCS11_MODULE")]
    pub pkcs11_module: Option<PathBuf>,
    /// pkcs11: the label of the token holding the seal key.
    #[arg(long, env = "OPENKCM_PKCS11_TOKEN")]
    pub pkcs11_token: Option<String>,
    /// pkcs11: a file holding the user PIN (else the OPENKCM_PKCS11_PIN environment variable).
    #[arg(long, env = "OPENKCM_PKCS11_PIN_FILE")]
    pub pkcs11_pin_file: Option<PathBuf>,
    /// gcp-kms: the Cloud KMS endpoint.
    #[arg(long, env = "OPENKCM_GCP_ENDPOINT", default_value = openkcm_providers::gcp_kms::ENDPOINT)]
    pub gcp_endpoint: String,
    /// gcp-kms: CA certificate of the endpoint (default: the system bundle).
    #[arg(long, env = "OPENKCM_GCP_CA")]
    pub gcp_ca: Option<PathBuf>,
    /// gcp-kms: a file holding an OAuth 2 access token, re-read on every call (keep it fresh, e.g. with
    /// `gcloud auth print-access-token > FILE` on a timer).
    #[arg(long, env = "OPENKCM_GCP_TOKEN_FILE")]
    pub gcp_token_file: Option<PathBuf>,
    /// azure-keyvault: the vault, `https://NAME.vault.azure.net`.
    #[arg(long, env = "OPENKCM_AZURE_VAULT")]
    pub azure_vault: Option<String>,
    /// azure-keyvault: CA certificate of the vault (default: the system bundle).
    #[arg(long, env = "OPENKCM_AZURE_CA")]
    pub azure_ca: Option<PathBuf>,
    /// azure-keyvault: a file holding an Azure AD access token, re-read on every call.
    #[arg(long, env = "OPENKCM_AZURE_TOKEN_FILE")]
    pub azure_token_file: Option<PathBuf>,
    /// azure-keyvault: the wrap algorithm, RSA-OAEP-256 (vault RSA keys) or A256KW (Managed HSM AES keys).
    #[arg(long, env = "OPENKCM_AZURE_ALG", default_value = "RSA-OAEP-256")]
    pub azure_alg: String,
    /// kmip: the KMIP server, HOST:PORT.
    #[arg(long, env = "OPENKCM_SEAL_KMIP_ADDR")]
    pub kmip_addr: Option<String>,
    /// kmip: the server name to verify in its certificate.
    #[arg(
        long,
        env = "OPENKCM_SEAL_KMIP_SERVER_NAME",
        default_value = "localhost"
    )]
    pub kmip_server_name: String,
    /// kmip: CA certificate of the server (PEM).
    #[arg(long, env = "OPENKCM_SEAL_KMIP_CA")]
    pub kmip_ca: Option<PathBuf>,
    /// kmip: client certificate (PEM).
    #[arg(long, env = "OPENKCM_SEAL_KMIP_CERT")]
    pub kmip_cert: Option<PathBuf>,
    /// kmip: client key (PEM).
    #[arg(long, env = "OPENKCM_SEAL_KMIP_KEY")]
    pub kmip_key: Option<PathBuf>,
}

impl SealProviderArgs {
    /// The settings of provider `kind`.
    pub fn config(&self, kind: ProviderKind) -> anyhow::Result<ProviderConfig> {
        Ok(match kind {
            ProviderKind::VaultTransit => {
                let addr = self.vault_addr.clone().context(
                    "the vault-transit seal needs --vault-addr (http://HOST:PORT or https://HOST:PORT)",
                )?;
                let token = match &self.vault_token_file {
                    Some(f) => std::fs::read_to_string(f)
                        .with_context(|| format!("reading the Vault token file {}", f.display()))?
                        .trim()
                        .to_owned(),
                    None => std::env::var("OPENKCM_VAULT_TOKEN").context(
                        "the vault-transit seal needs a token: --vault-token-file FILE or the OPENKCM_VAULT_TOKEN environment variable",
                    )?,
                };
                ProviderConfig::VaultTransit {
                    addr,
                    ca: self.vault_ca.clone(),
                    token: Zeroizing::new(token),
                    mount: self.vault_mount.clone(),
                }
            }
            ProviderKind::Pkcs11 => {
                let pin = match &self.pkcs11_pin_file {
                    Some(f) => std::fs::read_to_string(f)
                        .with_context(|| format!("reading the PIN file {}", f.display()))?
                        .trim()
                        .to_owned(),
                    None => std::env::var("OPENKCM_PKCS11_PIN").context(
                        "the pkcs11 seal needs the user PIN: --pkcs11-pin-file FILE or the OPENKCM_PKCS11_PIN environment variable",
                    )?,
                };
                ProviderConfig::Pkcs11 {
                    module: self
                        .pkcs11_module
                        .clone()
                        .context("the pkcs11 seal needs --pkcs11-module (the PKCS#11 library)")?,
                    token_label: self
                        .pkcs11_token
                        .clone()
                        .context("the pkcs11 seal needs --pkcs11-token (the token label)")?,
                    pin: Zeroizing::new(pin),
                }
            }
            ProviderKind::GcpKms => ProviderConfig::GcpKms {
                endpoint: self.gcp_endpoint.clone(),
                ca: self.gcp_ca.clone(),
                token_file: Some(
                    self.gcp_token_file
                        .clone()
                        .context("the gcp-kms seal needs --gcp-token-file (a file holding an access token)")?,
                ),
                token: None,
            },
            ProviderKind::AzureKeyvault => ProviderConfig::AzureKeyvault {
                vault: self
                    .azure_vault
                    .clone()
                    .context("the azure-keyvault seal needs --azure-vault (https://NAME.vault.azure.net)")?,
                ca: self.azure_ca.clone(),
                token_file: Some(
                    self.azure_token_file
                        .clone()
                        .context("the azure-keyvault seal needs --azure-token-file (a file holding an access token)")?,
                ),
                token: None,
                alg: self.azure_alg.clone(),
            },
            ProviderKind::Kmip => {
                let need = |v: &Option<PathBuf>, flag: &str| {
                    v.clone()
                        .with_context(|| format!("the kmip seal needs {flag}"))
                };
                ProviderConfig::Kmip {
                    addr: self
                        .kmip_addr
                        .clone()
                        .context("the kmip seal needs --kmip-addr (HOST:PORT of the KMIP server)")?,
                    server_name: self.kmip_server_name.clone(),
                    ca: Some(need(&self.kmip_ca, "--kmip-ca")?),
                    cert: Some(need(&self.kmip_cert, "--kmip-cert")?),
                    key: Some(need(&self.kmip_key, "--kmip-key")?),
                    ca_pem: None,
                    cert_pem: None,
                    key_pem: None,
                }
            }
            ProviderKind::AwsKms => {
                let env = |name: &str| {
                    std::env::var(name).with_context(|| {
                        format!("the aws-kms seal needs credentials: set {name} (and AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY)")
                    })
                };
                ProviderConfig::AwsKms {
                    region: self
                        .aws_region
                        .clone()
                        .context("the aws-kms seal needs --aws-region (or AWS_REGION)")?,
                    endpoint: self.aws_endpoint.clone(),
                    access_key_id: env("AWS_ACCESS_KEY_ID")?,
                    secret_access_key: Zeroizing::new(env("AWS_SECRET_ACCESS_KEY")?),
                    session_token: std::env::var("AWS_SESSION_TOKEN").ok().map(Zeroizing::new),
                }
            }
        })
    }
}
