//! External key providers for OpenKCM (DESIGN §7): the one async trait, [`KeyProvider`], through
//! which the Core reaches a customer's root key (L1) in their KMS or HSM and a seal provider
//! wraps the MasterKey, the normalised [`ProviderError`] the upper layers act on, and the drivers.
//! Today the only driver is [`local::LocalProvider`], a key file on disk for development.
//!
//! This crate must never log, return in an error, or keep beyond a call any key material it
//! handles; never store a provider key in plaintext outside the provider (the `local` driver is
//! the one dev-only exception, and says so loudly); and never turn a provider's "no" into a retry
//! or a provider's outage into a revocation — that distinction is what [`ProviderError`] carries.
//!
//! ```
//! use openkcm_providers::{local::LocalProvider, KeyProvider};
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let dir = tempfile::tempdir().unwrap();
//! let provider = LocalProvider::new(dir.path().to_path_buf());
//! let key = provider.create("customer-root").await?;
//! let context = [("tenant".to_string(), "acme".to_string())];
//! let ct = provider.encrypt(&key, b"an L2 key", &context).await?;
//! assert_eq!(provider.decrypt(&key, &ct, &context).await?.expose(), b"an L2 key");
//! # Ok::<(), openkcm_providers::ProviderError>(())
//! # }).unwrap();
//! ```

#![warn(missing_docs)]

pub mod aws_kms;
pub mod azure_keyvault;
pub mod config;
pub mod gcp_kms;
pub mod kmip;
pub mod local;
pub mod pkcs11;
pub mod vault_transit;

use async_trait::async_trait;
use openkcm_crypto::SecretBytes;

/// A reference to a key held by an external provider: never the key itself.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct KeyRef {
    /// Driver name, as returned by [`KeyProvider::name`] (for example `"local"`, `"aws-kms"`).
    pub provider: String,
    /// The provider's identifier for the key (key id, ARN, path, label).
    pub key_id: String,
    /// The provider region, where the provider has regions.
    pub region: Option<String>,
}

/// What a provider reports about a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyDescription {
    /// The provider's identifier for the key.
    pub key_id: String,
    /// Whether the key can currently be used to encrypt and decrypt.
    pub enabled: bool,
    /// The provider's current key version, where it exposes one.
    pub version: Option<String>,
}

/// A provider failure, normalised into the classes the Core acts on (DESIGN §2.2, §7).
///
/// `Denied`, `NotFound` and `Disabled` mean the customer (or their KMS) said no: revocation
/// semantics. `RateLimited` and `Unavailable` are transient: retry with backoff, then fail closed.
/// `Invalid` is a bad request or a ciphertext that does not authenticate. Each carries a
/// human-readable detail that never contains key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProviderError {
    /// The provider refused access (permissions revoked, policy denies).
    #[error("the key provider denied access: {0}")]
    Denied(String),
    /// The key does not exist (or was deleted) at the provider.
    #[error("the key provider has no such key: {0}")]
    NotFound(String),
    /// The key exists but is disabled at the provider.
    #[error("the key is disabled at the provider: {0}")]
    Disabled(String),
    /// The provider is throttling requests.
    #[error("the key provider is throttling requests: {0}; retry with backoff")]
    RateLimited(String),
    /// The provider could not be reached or failed internally.
    #[error("the key provider is unavailable: {0}; retry later")]
    Unavailable(String),
    /// The request was malformed, or the ciphertext or context does not authenticate.
    #[error("the key provider rejected the request: {0}")]
    Invalid(String),
}

impl ProviderError {
    /// `true` for the answers that mean the key is no longer usable (Denied, NotFound, Disabled):
    /// the Core treats them as a revocation of the customer's root key.
    pub fn is_revocation(&self) -> bool {
        matches!(
            self,
            ProviderError::Denied(_) | ProviderError::NotFound(_) | ProviderError::Disabled(_)
        )
    }

    /// `true` for transient failures (RateLimited, Unavailable) worth retrying.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            ProviderError::RateLimited(_) | ProviderError::Unavailable(_)
        )
    }
}

/// One external KMS or HSM, used for customer roots (L1) and for seal providers.
#[async_trait]
pub trait KeyProvider: Send + Sync {
    /// The driver name, as it appears in [`KeyRef::provider`].
    fn name(&self) -> &str;

    /// The key's state at the provider.
    async fn describe(&self, key: &KeyRef) -> Result<KeyDescription, ProviderError>;

    /// Encrypts `plaintext` under `key`, binding `context` (an encryption context / AAD).
    async fn encrypt(
        &self,
        key: &KeyRef,
        plaintext: &[u8],
        context: &[(String, String)],
    ) -> Result<Vec<u8>, ProviderError>;

    /// Decrypts what [`KeyProvider::encrypt`] returned; `context` must be the same pairs.
    async fn decrypt(
        &self,
        key: &KeyRef,
        ciphertext: &[u8],
        context: &[(String, String)],
    ) -> Result<SecretBytes, ProviderError>;

    /// Creates a key at the provider and returns its reference.
    async fn create(&self, key_id: &str) -> Result<KeyRef, ProviderError>;
}

/// The canonical bytes of an encryption context, for providers that take associated data rather than key/value
/// pairs: a domain tag, the pair count, then each key and value length-prefixed, pairs sorted.
pub fn canonical_context(context: &[(String, String)]) -> Result<Vec<u8>, ProviderError> {
    canonical_context_with(b"openkcm-provider-context-v1", context)
}

pub(crate) fn canonical_context_with(
    domain: &[u8],
    context: &[(String, String)],
) -> Result<Vec<u8>, ProviderError> {
    let too_long = || ProviderError::Invalid("the encryption context is too large".to_owned());
    let mut pairs: Vec<&(String, String)> = context.iter().collect();
    pairs.sort();
    let mut out = Vec::from(domain);
    out.extend_from_slice(
        &u32::try_from(pairs.len())
            .map_err(|_| too_long())?
            .to_be_bytes(),
    );
    for (k, v) in pairs {
        for part in [k, v] {
            let len = u32::try_from(part.len()).map_err(|_| too_long())?;
            out.extend_from_slice(&len.to_be_bytes());
            out.extend_from_slice(part.as_bytes());
        }
    }
    Ok(out)
}

/// The system's CA bundle, used for an https endpoint when no CA file is given.
pub const SYSTEM_CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

/// An HTTP(S) endpoint from `http(s)://HOST[:PORT]` (no path). https trusts `ca`, else the system bundle.
pub fn http_target(
    url: &str,
    ca: Option<&std::path::Path>,
) -> Result<openkcm_net::https::HttpTarget, ProviderError> {
    let url = url.trim_end_matches('/');
    let (tls, rest, default_port) = if let Some(rest) = url.strip_prefix("https://") {
        (true, rest, 443)
    } else if let Some(rest) = url.strip_prefix("http://") {
        (false, rest, 80)
    } else {
        return Err(ProviderError::Invalid(format!(
            "{url:?} must start with http:// or https://"
        )));
    };
    if rest.is_empty() || rest.contains('/') || rest.contains('@') {
        return Err(ProviderError::Invalid(format!(
            "{url:?} is not http(s)://HOST[:PORT]"
        )));
    }
    let (host, addr) = match rest.rsplit_once(':') {
        Some((h, p)) if p.parse::<u16>().is_ok() => (h.to_owned(), rest.to_owned()),
        _ => (rest.to_owned(), format!("{rest}:{default_port}")),
    };
    let tls = if tls {
        let ca = ca.unwrap_or_else(|| std::path::Path::new(SYSTEM_CA_BUNDLE));
        let config = openkcm_net::tls::ca_only_client_config(ca)
            .map_err(|e| ProviderError::Invalid(e.to_string()))?;
        Some((config, host))
    } else {
        None
    };
    Ok(openkcm_net::https::HttpTarget { addr, tls })
}

/// The `error` text of a JSON error body (`{"error":{"message":…}}`, `{"errors":[…]}`), for error details.
pub(crate) fn json_error_message(value: &serde_json::Value) -> String {
    if let Some(m) = value["error"]["message"].as_str() {
        return m.to_owned();
    }
    if let Some(a) = value["errors"].as_array() {
        return a
            .iter()
            .filter_map(|e| e.as_str())
            .collect::<Vec<_>>()
            .join("; ");
    }
    String::new()
}

/// Refuses a key reference made for another driver.
pub(crate) fn check_provider(key: &KeyRef, name: &str) -> Result<(), ProviderError> {
    if key.provider != name {
        return Err(ProviderError::Invalid(format!(
            "the key reference is for provider {:?}, not {name}",
            key.provider
        )));
    }
    Ok(())
}

/// Where a cloud driver's bearer token comes from.
pub enum TokenSource {
    /// A file on this host, re-read on every call (an outside agent keeps it fresh).
    File(std::path::PathBuf),
    /// A token given directly.
    Inline(zeroize::Zeroizing<String>),
}

impl TokenSource {
    pub(crate) async fn read(&self) -> Result<zeroize::Zeroizing<String>, ProviderError> {
        match self {
            TokenSource::Inline(t) => Ok(t.clone()),
            TokenSource::File(path) => Ok(zeroize::Zeroizing::new(
                read_bounded_text(path, MAX_OPERATOR_FILE)
                    .map_err(|e| {
                        ProviderError::Unavailable(format!(
                            "cannot read the access token file {}: {e}",
                            path.display()
                        ))
                    })?
                    .trim()
                    .to_owned(),
            )),
        }
    }
}

/// One JSON call of a cloud REST API with a bearer token from `token` (re-read on every call, so that an
/// outside agent can refresh it). Returns the status and the parsed body; the token never reaches an error.
pub(crate) async fn bearer_call(
    target: &openkcm_net::https::HttpTarget,
    token: &TokenSource,
    method: &str,
    path: &str,
    body: Vec<u8>,
) -> Result<(u16, serde_json::Value), ProviderError> {
    let token = token.read().await?;
    let auth = zeroize::Zeroizing::new(format!("Bearer {}", token.as_str()));
    let (status, bytes) = openkcm_net::https::call(
        target,
        method,
        path,
        &[("Authorization", auth.as_str())],
        body,
        std::time::Duration::from_secs(10),
    )
    .await
    .map_err(|e| ProviderError::Unavailable(format!("{target:?}: {e}")))?;
    let bytes = zeroize::Zeroizing::new(bytes);
    let value = serde_json::from_slice(&bytes).map_err(|_| {
        ProviderError::Unavailable(format!(
            "{target:?} answered HTTP {status} with a body that is not JSON"
        ))
    })?;
    Ok((status, value))
}

/// For drivers whose wrap operation takes no associated data: the plaintext prefixed by the SHA-256 of the canonical
/// context (what gets wrapped).
pub(crate) fn context_prefixed(
    context: &[(String, String)],
    plaintext: &[u8],
) -> Result<zeroize::Zeroizing<Vec<u8>>, ProviderError> {
    let mut value =
        zeroize::Zeroizing::new(openkcm_crypto::sha256(&canonical_context(context)?).to_vec());
    value.extend_from_slice(plaintext);
    Ok(value)
}

/// The inverse of [`context_prefixed`]: checks the prefix in constant time and returns the plaintext.
pub(crate) fn strip_context_prefix(
    context: &[(String, String)],
    value: &[u8],
) -> Result<SecretBytes, ProviderError> {
    let digest = openkcm_crypto::sha256(&canonical_context(context)?);
    let ok = value.len() >= digest.len()
        && value
            .iter()
            .zip(digest.iter())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0;
    if !ok {
        return Err(ProviderError::Invalid(
            "the ciphertext was made under another encryption context".into(),
        ));
    }
    Ok(SecretBytes::from_slice(&value[digest.len()..]))
}

/// Largest file an operator may name for a token, PIN, share, identity, certificate or key (1 MiB).
pub const MAX_OPERATOR_FILE: u64 = 1 << 20;

/// Reads a file an operator named, refusing one larger than `max` bytes (or an endless one such as `/dev/zero`)
/// instead of reading it whole.
pub fn read_bounded(path: &std::path::Path, max: u64) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let file = std::fs::File::open(path)?;
    let mut out = Vec::new();
    file.take(max + 1).read_to_end(&mut out)?;
    if out.len() as u64 > max {
        zeroize::Zeroize::zeroize(&mut out);
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("larger than {max} bytes"),
        ));
    }
    Ok(out)
}

/// As [`read_bounded`], as UTF-8 text.
pub fn read_bounded_text(path: &std::path::Path, max: u64) -> std::io::Result<String> {
    let bytes = read_bounded(path, max)?;
    String::from_utf8(bytes).map_err(|e| {
        let mut b = e.into_bytes();
        zeroize::Zeroize::zeroize(&mut b);
        std::io::Error::new(std::io::ErrorKind::InvalidData, "not UTF-8 text")
    })
}
