//! The `vault-transit` driver: a key in the transit secrets engine of HashiCorp Vault or OpenBao, over its HTTP API.
//!
//! Encrypt and decrypt bind the caller's context as the AES-GCM associated data of the transit key
//! (`associated_data`, the canonical encoding of the pairs), so a ciphertext only decrypts with the same context.
//! Tested against a real OpenBao dev server (`bao server -dev`). The token is sent as `X-Vault-Token` and never
//! logged; HTTP errors are normalised: 403 → Denied, a missing key → NotFound, 429 → RateLimited, 5xx and connection
//! failures → Unavailable, other 4xx → Invalid.

use crate::{KeyDescription, KeyProvider, KeyRef, ProviderError};
use async_trait::async_trait;
use base64::Engine;
use openkcm_crypto::SecretBytes;
use openkcm_net::https::{call, HttpTarget};
use std::time::Duration;
use zeroize::{Zeroize, Zeroizing};

/// Driver name.
pub const NAME: &str = "vault-transit";
const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// A transit engine at one Vault/OpenBao server.
pub struct VaultTransit {
    target: HttpTarget,
    token: crate::TokenSource,
    mount: String,
    timeout: Duration,
}

impl std::fmt::Debug for VaultTransit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VaultTransit")
            .field("target", &self.target)
            .field("mount", &self.mount)
            .field("token", &"[redacted]")
            .finish()
    }
}

fn valid_segment(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
        && s != "."
        && s != ".."
}

impl VaultTransit {
    /// The transit engine mounted at `mount` (usually `transit`) of the server at `target`, with `token` (a file
    /// is re-read on every call, so that a renewed token is used without a restart).
    pub fn new(
        target: HttpTarget,
        token: crate::TokenSource,
        mount: &str,
    ) -> Result<Self, ProviderError> {
        let mount = mount.trim_matches('/');
        if !mount.split('/').all(valid_segment) {
            return Err(ProviderError::Invalid(format!(
                "{mount:?} is not a transit mount path (letters, digits, - _ . and /)"
            )));
        }
        Ok(Self {
            target,
            token,
            mount: mount.to_owned(),
            timeout: Duration::from_secs(10),
        })
    }

    /// The transit engine at `url` (`http://HOST:PORT` or `https://HOST:PORT`; https needs the server's `ca`).
    pub fn from_url(
        url: &str,
        ca: Option<&std::path::Path>,
        token: crate::TokenSource,
        mount: &str,
    ) -> Result<Self, ProviderError> {
        let target = crate::http_target(url, ca)?;
        Self::new(target, token, mount)
    }

    fn check_ref(&self, key: &KeyRef) -> Result<(), ProviderError> {
        crate::check_provider(key, NAME)?;
        if !valid_segment(&key.key_id) {
            return Err(ProviderError::Invalid(format!(
                "{:?} is not a transit key name (letters, digits, - _ .)",
                key.key_id
            )));
        }
        Ok(())
    }

    /// Calls the API; returns the `data` object of a 2xx answer.
    async fn api(
        &self,
        method: &str,
        path: &str,
        body: Vec<u8>,
    ) -> Result<serde_json::Value, ProviderError> {
        let path = format!("/v1/{}/{path}", self.mount);
        let token = self.token.read().await?;
        if token.is_empty() {
            return Err(ProviderError::Denied(
                "the Vault token is empty (check the token file)".into(),
            ));
        }
        let (status, bytes) = call(
            &self.target,
            method,
            &path,
            &[("X-Vault-Token", token.as_str())],
            body,
            self.timeout,
        )
        .await
        .map_err(|e| ProviderError::Unavailable(format!("{:?}: {e}", self.target)))?;
        let bytes = Zeroizing::new(bytes);
        let value: serde_json::Value = if bytes.is_empty() {
            serde_json::Value::Null
        } else {
            serde_json::from_slice(&bytes).map_err(|_| {
                ProviderError::Unavailable(format!(
                    "{:?} answered HTTP {status} with a body that is not JSON",
                    self.target
                ))
            })?
        };
        if (200..300).contains(&status) {
            return Ok(value["data"].clone());
        }
        let errors = value["errors"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|e| e.as_str())
                    .collect::<Vec<_>>()
                    .join("; ")
            })
            .unwrap_or_default();
        let detail = format!("{path}: HTTP {status}: {errors}");
        Err(match status {
            403 => ProviderError::Denied(detail),
            404 => ProviderError::NotFound(detail),
            429 => ProviderError::RateLimited(detail),
            s if s >= 500 => ProviderError::Unavailable(detail),
            _ if errors.contains("not found") || errors.contains("no existing key") => {
                ProviderError::NotFound(detail)
            }
            _ => ProviderError::Invalid(detail),
        })
    }
}

#[async_trait]
impl KeyProvider for VaultTransit {
    fn name(&self) -> &str {
        NAME
    }

    async fn describe(&self, key: &KeyRef) -> Result<KeyDescription, ProviderError> {
        self.check_ref(key)?;
        let data = self
            .api("GET", &format!("keys/{}", key.key_id), Vec::new())
            .await?;
        if data.is_null() {
            return Err(ProviderError::NotFound(format!(
                "transit key {:?} does not exist",
                key.key_id
            )));
        }
        Ok(KeyDescription {
            key_id: key.key_id.clone(),
            // Transit keys have no disabled state: a key that answers is usable (a revoked token is Denied).
            enabled: true,
            version: data["latest_version"].as_u64().map(|v| v.to_string()),
        })
    }

    async fn encrypt(
        &self,
        key: &KeyRef,
        plaintext: &[u8],
        context: &[(String, String)],
    ) -> Result<Vec<u8>, ProviderError> {
        self.check_ref(key)?;
        let mut pt = Zeroizing::new(B64.encode(plaintext));
        let aad = B64.encode(crate::canonical_context(context)?);
        let body = serde_json::to_vec(&serde_json::json!({
            "plaintext": pt.as_str(),
            "associated_data": aad,
        }))
        .map_err(|e| ProviderError::Invalid(e.to_string()))?;
        pt.zeroize();
        let data = self
            .api("POST", &format!("encrypt/{}", key.key_id), body)
            .await?;
        data["ciphertext"]
            .as_str()
            .map(|c| c.as_bytes().to_vec())
            .ok_or_else(|| {
                ProviderError::Unavailable("the transit engine returned no ciphertext".into())
            })
    }

    async fn decrypt(
        &self,
        key: &KeyRef,
        ciphertext: &[u8],
        context: &[(String, String)],
    ) -> Result<SecretBytes, ProviderError> {
        self.check_ref(key)?;
        let ct = std::str::from_utf8(ciphertext)
            .ok()
            .filter(|c| c.starts_with("vault:v"))
            .ok_or_else(|| ProviderError::Invalid("not a transit ciphertext (vault:v…)".into()))?;
        let aad = B64.encode(crate::canonical_context(context)?);
        let body = serde_json::to_vec(&serde_json::json!({
            "ciphertext": ct,
            "associated_data": aad,
        }))
        .map_err(|e| ProviderError::Invalid(e.to_string()))?;
        let data = self
            .api("POST", &format!("decrypt/{}", key.key_id), body)
            .await?;
        let encoded = Zeroizing::new(
            data["plaintext"]
                .as_str()
                .ok_or_else(|| {
                    ProviderError::Unavailable("the transit engine returned no plaintext".into())
                })?
                .to_owned(),
        );
        B64.decode(encoded.as_bytes())
            .map(SecretBytes::new)
            .map_err(|_| {
                ProviderError::Unavailable("the transit engine returned malformed plaintext".into())
            })
    }

    async fn create(&self, key_id: &str) -> Result<KeyRef, ProviderError> {
        let key = KeyRef {
            provider: NAME.into(),
            key_id: key_id.to_owned(),
            region: None,
        };
        self.check_ref(&key)?;
        self.api(
            "POST",
            &format!("keys/{key_id}"),
            br#"{"type":"aes256-gcm96"}"#.to_vec(),
        )
        .await?;
        Ok(key)
    }
}
