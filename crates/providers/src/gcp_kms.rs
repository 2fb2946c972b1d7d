//! The `gcp-kms` driver: a symmetric key in Google Cloud KMS, over its documented REST API (v1).
//!
//! * encrypt: `POST /v1/{key}:encrypt` with `{"plaintext": b64, "additionalAuthenticatedData": b64}`;
//! * decrypt: `POST /v1/{key}:decrypt` with `{"ciphertext": b64, "additionalAuthenticatedData": b64}`;
//! * describe: `GET /v1/{key}` (the primary version's `state`).
//!
//! `{key}` is the full resource name `projects/P/locations/L/keyRings/R/cryptoKeys/K`; the caller's context is the
//! canonical encoding of its pairs as additional authenticated data, so a ciphertext only decrypts with the same
//! context. The OAuth 2 access token is read from a file on every call (so that a sidecar such as
//! `gcloud auth print-access-token` can refresh it), never logged. Errors are normalised from the Google API
//! `status`: PERMISSION_DENIED/UNAUTHENTICATED → Denied, NOT_FOUND → NotFound, FAILED_PRECONDITION (disabled or
//! destroyed version) → Disabled, RESOURCE_EXHAUSTED → RateLimited, UNAVAILABLE/INTERNAL/DEADLINE_EXCEEDED → Unavailable,
//! anything else → Invalid.
//!
//! Tested against an HTTP fake that checks the exact request shape (no emulator of Cloud KMS exists); not tested
//! against the real service.

use crate::{KeyDescription, KeyProvider, KeyRef, ProviderError};
use async_trait::async_trait;
use base64::Engine;
use openkcm_crypto::SecretBytes;
use openkcm_net::https::HttpTarget;
use zeroize::{Zeroize, Zeroizing};

/// Driver name.
pub const NAME: &str = "gcp-kms";
/// The public endpoint.
pub const ENDPOINT: &str = "https://cloudkms.googleapis.com";
const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// A Cloud KMS endpoint and the file holding the access token.
pub struct GcpKms {
    target: HttpTarget,
    token: crate::TokenSource,
}

impl GcpKms {
    /// The client of `target` (usually [`ENDPOINT`]), authenticating with `token`.
    pub fn new(target: HttpTarget, token: crate::TokenSource) -> Self {
        Self { target, token }
    }

    fn check_ref(key: &KeyRef) -> Result<(), ProviderError> {
        crate::check_provider(key, NAME)?;
        let parts: Vec<&str> = key.key_id.split('/').collect();
        let shaped = matches!(
            parts.as_slice(),
            ["projects", p, "locations", l, "keyRings", r, "cryptoKeys", k]
                if [p, l, r, k].iter().all(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
        );
        if !shaped {
            return Err(ProviderError::Invalid(format!(
                "{:?} is not a Cloud KMS key name (projects/P/locations/L/keyRings/R/cryptoKeys/K)",
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
        let (status, value) =
            crate::bearer_call(&self.target, &self.token, method, path, body).await?;
        if (200..300).contains(&status) {
            return Ok(value);
        }
        let api_status = value["error"]["status"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let detail = format!(
            "Cloud KMS {path}: HTTP {status} {api_status}: {}",
            crate::json_error_message(&value)
        );
        Err(match api_status.as_str() {
            "PERMISSION_DENIED" | "UNAUTHENTICATED" => ProviderError::Denied(detail),
            "NOT_FOUND" => ProviderError::NotFound(detail),
            "FAILED_PRECONDITION" => ProviderError::Disabled(detail),
            "RESOURCE_EXHAUSTED" => ProviderError::RateLimited(detail),
            "UNAVAILABLE" | "INTERNAL" | "DEADLINE_EXCEEDED" => ProviderError::Unavailable(detail),
            _ if status >= 500 => ProviderError::Unavailable(detail),
            _ if status == 401 || status == 403 => ProviderError::Denied(detail),
            _ if status == 429 => ProviderError::RateLimited(detail),
            _ => ProviderError::Invalid(detail),
        })
    }
}

#[async_trait]
impl KeyProvider for GcpKms {
    fn name(&self) -> &str {
        NAME
    }

    async fn describe(&self, key: &KeyRef) -> Result<KeyDescription, ProviderError> {
        Self::check_ref(key)?;
        let v = self
            .api("GET", &format!("/v1/{}", key.key_id), Vec::new())
            .await?;
        Ok(KeyDescription {
            key_id: key.key_id.clone(),
            enabled: v["primary"]["state"] == "ENABLED",
            version: v["primary"]["name"].as_str().map(str::to_owned),
        })
    }

    async fn encrypt(
        &self,
        key: &KeyRef,
        plaintext: &[u8],
        context: &[(String, String)],
    ) -> Result<Vec<u8>, ProviderError> {
        Self::check_ref(key)?;
        let mut pt = Zeroizing::new(B64.encode(plaintext));
        let body = serde_json::to_vec(&serde_json::json!({
            "plaintext": pt.as_str(),
            "additionalAuthenticatedData": B64.encode(crate::canonical_context(context)?),
        }))
        .map_err(|e| ProviderError::Invalid(e.to_string()))?;
        pt.zeroize();
        let v = self
            .api("POST", &format!("/v1/{}:encrypt", key.key_id), body)
            .await?;
        let ct = v["ciphertext"]
            .as_str()
            .ok_or_else(|| ProviderError::Unavailable("Cloud KMS returned no ciphertext".into()))?;
        B64.decode(ct).map_err(|_| {
            ProviderError::Unavailable("Cloud KMS returned a malformed ciphertext".into())
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
            "ciphertext": B64.encode(ciphertext),
            "additionalAuthenticatedData": B64.encode(crate::canonical_context(context)?),
        }))
        .map_err(|e| ProviderError::Invalid(e.to_string()))?;
        let v = self
            .api("POST", &format!("/v1/{}:decrypt", key.key_id), body)
            .await?;
        let pt = v["plaintext"]
            .as_str()
            .ok_or_else(|| ProviderError::Unavailable("Cloud KMS returned no plaintext".into()))?;
        B64.decode(pt).map(SecretBytes::new).map_err(|_| {
            ProviderError::Unavailable("Cloud KMS returned a malformed plaintext".into())
        })
    }

    async fn create(&self, _key_id: &str) -> Result<KeyRef, ProviderError> {
        Err(ProviderError::Invalid(
            "Cloud KMS keys are created by their owner (gcloud kms keys create); name an existing key".into(),
        ))
    }
}
