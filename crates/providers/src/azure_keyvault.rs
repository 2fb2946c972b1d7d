//! The `azure-keyvault` driver: a key in Azure Key Vault (or Managed HSM), over its documented REST API
//! (api-version 7.4).
//!
//! * encrypt: `POST {vault}/keys/{name}/wrapkey?api-version=7.4` with `{"alg": ALG, "value": base64url}`;
//! * decrypt: `POST {vault}/keys/{name}/unwrapkey?api-version=7.4` with `{"alg": ALG, "value": base64url}`;
//! * describe: `GET {vault}/keys/{name}?api-version=7.4` (`attributes.enabled`, the key id with its version).
//!
//! ALG is `RSA-OAEP-256` (Key Vault RSA keys, the default) or `A256KW` (Managed HSM AES keys). Wrap/unwrap takes no
//! associated data, so the caller's context is bound by prefixing the SHA-256 of its canonical encoding to the
//! plaintext and checking it, in constant time, after unwrap; both algorithms authenticate what they wrap. The Azure
//! AD access token is read from a file on every call (a sidecar refreshes it), never logged. Errors are normalised
//! from the HTTP status and the error `code`: 401/403 → Denied, 404 (KeyNotFound) → NotFound, a disabled key
//! (`Forbidden` with "disabled", `KeyDisabled`) → Disabled, 429 → RateLimited, 5xx → Unavailable, other 4xx → Invalid.
//!
//! Tested against an HTTP fake that checks the exact request shape (no emulator of Key Vault exists); not tested
//! against the real service.

use crate::{KeyDescription, KeyProvider, KeyRef, ProviderError};
use async_trait::async_trait;
use base64::Engine;
use openkcm_crypto::SecretBytes;
use openkcm_net::https::HttpTarget;
use zeroize::Zeroizing;

/// Driver name.
pub const NAME: &str = "azure-keyvault";
/// The REST API version spoken.
pub const API_VERSION: &str = "7.4";
const B64URL: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// One vault and the file holding the access token.
pub struct AzureKeyVault {
    target: HttpTarget,
    token: crate::TokenSource,
    alg: String,
}

impl AzureKeyVault {
    /// The client of the vault at `target` (e.g. `https://NAME.vault.azure.net`), wrapping with `alg`
    /// (`RSA-OAEP-256` or `A256KW`), authenticating with `token`.
    pub fn new(
        target: HttpTarget,
        token: crate::TokenSource,
        alg: &str,
    ) -> Result<Self, ProviderError> {
        if !matches!(alg, "RSA-OAEP-256" | "A256KW") {
            return Err(ProviderError::Invalid(format!(
                "wrap algorithm {alg:?} is not supported: use RSA-OAEP-256 (vault RSA keys) or A256KW (Managed HSM AES keys)"
            )));
        }
        Ok(Self {
            target,
            token,
            alg: alg.to_owned(),
        })
    }

    fn check_ref(key: &KeyRef) -> Result<(), ProviderError> {
        crate::check_provider(key, NAME)?;
        // A key name, optionally with its version: NAME or NAME/VERSION.
        let ok = key.key_id.split('/').count() <= 2
            && key.key_id.split('/').all(|p| {
                !p.is_empty()
                    && p.len() <= 127
                    && p.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            });
        if !ok {
            return Err(ProviderError::Invalid(format!(
                "{:?} is not a Key Vault key name (NAME or NAME/VERSION; letters, digits and -)",
                key.key_id
            )));
        }
        Ok(())
    }

    async fn api(
        &self,
        method: &str,
        path: &str,
        body: Vec<u8>,
    ) -> Result<serde_json::Value, ProviderError> {
        let path = format!("{path}?api-version={API_VERSION}");
        let (status, value) =
            crate::bearer_call(&self.target, &self.token, method, &path, body).await?;
        if (200..300).contains(&status) {
            return Ok(value);
        }
        let code = value["error"]["code"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let message = crate::json_error_message(&value);
        let detail = format!("Key Vault {path}: HTTP {status} {code}: {message}");
        let disabled = code == "KeyDisabled" || message.to_ascii_lowercase().contains("disabled");
        Err(match status {
            401 | 403 if disabled => ProviderError::Disabled(detail),
            401 | 403 => ProviderError::Denied(detail),
            404 => ProviderError::NotFound(detail),
            429 => ProviderError::RateLimited(detail),
            s if s >= 500 => ProviderError::Unavailable(detail),
            _ if disabled => ProviderError::Disabled(detail),
            _ => ProviderError::Invalid(detail),
        })
    }
}

#[async_trait]
impl KeyProvider for AzureKeyVault {
    fn name(&self) -> &str {
        NAME
    }

    async fn describe(&self, key: &KeyRef) -> Result<KeyDescription, ProviderError> {
        Self::check_ref(key)?;
        let v = self
            .api("GET", &format!("/keys/{}", key.key_id), Vec::new())
            .await?;
        Ok(KeyDescription {
            key_id: key.key_id.clone(),
            enabled: v["attributes"]["enabled"].as_bool().unwrap_or(false),
            version: v["key"]["kid"].as_str().map(str::to_owned),
        })
    }

    async fn encrypt(
        &self,
        key: &KeyRef,
        plaintext: &[u8],
        context: &[(String, String)],
    ) -> Result<Vec<u8>, ProviderError> {
        Self::check_ref(key)?;
        let value = crate::context_prefixed(context, plaintext)?;
        let encoded = Zeroizing::new(B64URL.encode(value.as_slice()));
        let body =
            serde_json::to_vec(&serde_json::json!({ "alg": self.alg, "value": encoded.as_str() }))
                .map_err(|e| ProviderError::Invalid(e.to_string()))?;
        let v = self
            .api("POST", &format!("/keys/{}/wrapkey", key.key_id), body)
            .await?;
        let ct = v["value"].as_str().ok_or_else(|| {
            ProviderError::Unavailable("Key Vault returned no wrapped value".into())
        })?;
        B64URL.decode(ct).map_err(|_| {
            ProviderError::Unavailable("Key Vault returned a malformed wrapped value".into())
        })
    }

    async fn decrypt(
        &self,
        key: &KeyRef,
        ciphertext: &[u8],
        context: &[(String, String)],
    ) -> Result<SecretBytes, ProviderError> {
        Self::check_ref(key)?;
        let body = serde_json::to_vec(&serde_json::json!({
            "alg": self.alg,
            "value": B64URL.encode(ciphertext),
        }))
        .map_err(|e| ProviderError::Invalid(e.to_string()))?;
        let v = self
            .api("POST", &format!("/keys/{}/unwrapkey", key.key_id), body)
            .await?;
        let encoded = v["value"].as_str().ok_or_else(|| {
            ProviderError::Unavailable("Key Vault returned no unwrapped value".into())
        })?;
        let value = Zeroizing::new(B64URL.decode(encoded).map_err(|_| {
            ProviderError::Unavailable("Key Vault returned a malformed value".into())
        })?);
        crate::strip_context_prefix(context, &value)
    }

    async fn create(&self, _key_id: &str) -> Result<KeyRef, ProviderError> {
        Err(ProviderError::Invalid(
            "Key Vault keys are created by their owner (az keyvault key create); name an existing key".into(),
        ))
    }
}
