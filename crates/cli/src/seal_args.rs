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
    /// The seal provider's key; it must exist. vault-transit: a transit key name (default `openkcm-seal`);
    /// aws-kms: a key id, ARN or `alias/NAME` (default `alias/openkcm-seal`); pkcs11: the AES key's label (default
    /// `openkcm-seal`); azure-keyvault: `KEY[/VERSION]` (default `openkcm-seal`); kmip: the key's Unique
    /// Identifier and gcp-kms: `projects/P/locations/L/keyRings/R/cryptoKeys/K` (both required).
    #[arg(long, env = "OPENKCM_SEAL_KEY")]
    pub seal_key: Option<String>,
    /// vault-transit: the Vault or OpenBao server, `http://HOST:PORT` or `https://HOST:PORT`.
    #[arg(long, env = "OPENKCM_VAULT_ADDR")]
    pub vault_addr: Option<String>,
    /// vault-transit: CA certificate of an https server (PEM).
    #[arg(long, env = "OPENKCM_VAULT_CA")]
    pub vault_ca: Option<PathBuf>,
    /// vault-transit: a file holding the token, re-read on every call so that a renewed token is used without a
    /// restart (else the OPENKCM_VAULT_TOKEN environment variable).
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
    /// The seal key of provider `kind`: --seal-key, or that provider's default.
    pub fn seal_key(&self, kind: ProviderKind) -> anyhow::Result<String> {
        if let Some(k) = &self.seal_key {
            if k.trim().is_empty() {
                anyhow::bail!("--seal-key is empty");
            }
            return Ok(k.clone());
        }
        Ok(match kind {
            ProviderKind::VaultTransit | ProviderKind::Pkcs11 | ProviderKind::AzureKeyvault => {
                "openkcm-seal".into()
            }
            ProviderKind::AwsKms => "alias/openkcm-seal".into(),
            ProviderKind::Kmip => {
                anyhow::bail!("the kmip seal needs --seal-key (the Unique Identifier of the key on the KMIP server)")
            }
            ProviderKind::GcpKms => anyhow::bail!(
                "the gcp-kms seal needs --seal-key (projects/P/locations/L/keyRings/R/cryptoKeys/K)"
            ),
        })
    }

    /// The settings of provider `kind`.
    pub fn config(&self, kind: ProviderKind) -> anyhow::Result<ProviderConfig> {
        Ok(match kind {
            ProviderKind::VaultTransit => {
                let addr = self.vault_addr.clone().context(
                    "the vault-transit seal needs --vault-addr (http://HOST:PORT or https://HOST:PORT)",
                )?;
                let token = secret_from(
                    self.vault_token_file.as_deref(),
                    "OPENKCM_VAULT_TOKEN",
                    "the vault-transit seal needs a token: --vault-token-file FILE or the OPENKCM_VAULT_TOKEN environment variable",
                )?;
                // Checked now (present, not empty); a token file is re-read on every call, so a renewed token
                // is picked up without a restart.
                let (token_file, token) = match &self.vault_token_file {
                    Some(f) => (Some(f.clone()), None),
                    None => (None, Some(token)),
                };
                ProviderConfig::VaultTransit {
                    addr,
                    ca: self.vault_ca.clone(),
                    token_file,
                    token,
                    mount: self.vault_mount.clone(),
                }
            }
            ProviderKind::Pkcs11 => {
                let pin = secret_from(
                    self.pkcs11_pin_file.as_deref(),
                    "OPENKCM_PKCS11_PIN",
                    "the pkcs11 seal needs the user PIN: --pkcs11-pin-file FILE or the OPENKCM_PKCS11_PIN environment variable",
                )?;
                ProviderConfig::Pkcs11 {
                    module: self
                        .pkcs11_module
                        .clone()
                        .context("the pkcs11 seal needs --pkcs11-module (the PKCS#11 library)")?,
                    token_label: self
                        .pkcs11_token
                        .clone()
                        .context("the pkcs11 seal needs --pkcs11-token (the token label)")?,
                    pin,
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
                let env = |name: &str| match std::env::var(name) {
                    Ok(v) if !v.trim().is_empty() => Ok(v),
                    _ => Err(anyhow::anyhow!(
                        "the aws-kms seal needs credentials: {name} is not set (set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, and AWS_SESSION_TOKEN for temporary credentials)"
                    )),
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

/// A secret read from `file` (trimmed) or else from the environment variable `var`; missing or empty is an error
/// that says how to give it (`missing`). The value itself never appears in an error.
fn secret_from(
    file: Option<&std::path::Path>,
    var: &str,
    missing: &str,
) -> anyhow::Result<Zeroizing<String>> {
    let value = match file {
        Some(f) => {
            let text = Zeroizing::new(
                openkcm_providers::read_bounded_text(f, openkcm_providers::MAX_OPERATOR_FILE)
                    .with_context(|| format!("reading {}", f.display()))?,
            );
            let v = Zeroizing::new(text.trim().to_owned());
            if v.is_empty() {
                anyhow::bail!("{} is empty: {missing}", f.display());
            }
            v
        }
        None => match std::env::var(var) {
            Ok(v) if !v.trim().is_empty() => Zeroizing::new(v.trim().to_owned()),
            Ok(_) => anyhow::bail!("{var} is empty: {missing}"),
            Err(_) => anyhow::bail!("{missing}"),
        },
    };
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::secret_from;

    #[test]
    fn secrets_are_trimmed_and_never_empty() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("token");
        std::fs::write(&f, " s.abc \n").unwrap();
        assert_eq!(
            secret_from(Some(&f), "OPENKCM_TEST_UNSET_1", "give it")
                .unwrap()
                .as_str(),
            "s.abc"
        );
        std::fs::write(&f, "\n  \n").unwrap();
        let e = secret_from(Some(&f), "OPENKCM_TEST_UNSET_1", "give it").unwrap_err();
        assert!(e.to_string().contains("is empty: give it"), "{e}");
        let e = secret_from(None, "OPENKCM_TEST_UNSET_1", "give it").unwrap_err();
        assert_eq!(e.to_string(), "give it");
        let e = secret_from(Some(&dir.path().join("none")), "X", "give it").unwrap_err();
        assert!(e.to_string().contains("reading"), "{e}");
    }
}
