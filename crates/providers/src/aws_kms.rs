//! The `aws-kms` driver: a symmetric key in AWS KMS, through the official SDK (`aws-sdk-kms`).
//!
//! Encrypt and decrypt pass the caller's context as the KMS **encryption context**, so it appears in the customer's
//! CloudTrail log and a ciphertext only decrypts with the same pairs. Credentials are static (access key id and
//! secret, optionally a session token), given by the operator; the endpoint may be overridden (tested against the
//! moto server). Errors are normalised from the KMS error codes: NotFoundException → NotFound,
//! DisabledException / KMSInvalidStateException (pending deletion) → Disabled, AccessDeniedException → Denied,
//! throttling → RateLimited, internal errors, timeouts and connection failures → Unavailable, anything else →
//! Invalid.

use crate::{KeyDescription, KeyProvider, KeyRef, ProviderError};
use async_trait::async_trait;
use aws_sdk_kms::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_kms::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_kms::primitives::Blob;
use openkcm_crypto::SecretBytes;
use std::collections::HashMap;
use zeroize::Zeroizing;

/// Driver name.
pub const NAME: &str = "aws-kms";

/// How to reach AWS KMS.
#[derive(Clone)]
pub struct AwsKmsConfig {
    /// Region, e.g. `eu-central-1`.
    pub region: String,
    /// Endpoint override (`http://127.0.0.1:5000` for moto); `None` for the real service.
    pub endpoint: Option<String>,
    /// Access key id.
    pub access_key_id: String,
    /// Secret access key.
    pub secret_access_key: Zeroizing<String>,
    /// Session token, for temporary credentials.
    pub session_token: Option<Zeroizing<String>>,
}

impl std::fmt::Debug for AwsKmsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AwsKmsConfig")
            .field("region", &self.region)
            .field("endpoint", &self.endpoint)
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"[redacted]")
            .finish()
    }
}

/// A client of AWS KMS in one region.
pub struct AwsKms {
    client: aws_sdk_kms::Client,
    region: String,
}

impl AwsKms {
    /// A client for `config`.
    pub fn new(config: &AwsKmsConfig) -> Self {
        let credentials = Credentials::new(
            config.access_key_id.clone(),
            config.secret_access_key.as_str().to_owned(),
            config.session_token.as_ref().map(|t| t.as_str().to_owned()),
            None,
            "openkcm",
        );
        let mut builder = aws_sdk_kms::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(config.region.clone()))
            .credentials_provider(credentials);
        if let Some(endpoint) = &config.endpoint {
            builder = builder.endpoint_url(endpoint);
        }
        Self {
            client: aws_sdk_kms::Client::from_conf(builder.build()),
            region: config.region.clone(),
        }
    }

    fn check_ref(&self, key: &KeyRef) -> Result<(), ProviderError> {
        crate::check_provider(key, NAME)?;
        if let Some(r) = &key.region {
            if r != &self.region {
                return Err(ProviderError::Invalid(format!(
                    "the key is in region {r}, this client serves {}",
                    self.region
                )));
            }
        }
        if key.key_id.is_empty() || key.key_id.len() > 2048 {
            return Err(ProviderError::Invalid(
                "the AWS KMS key id is empty or too long".into(),
            ));
        }
        Ok(())
    }

    /// Disables the key (tests and the customer's side of a kill switch).
    pub async fn disable(&self, key: &KeyRef) -> Result<(), ProviderError> {
        self.check_ref(key)?;
        self.client
            .disable_key()
            .key_id(&key.key_id)
            .send()
            .await
            .map_err(|e| normalise("DisableKey", e))?;
        Ok(())
    }

    /// Schedules the key's deletion after `days` (7 to 30; moto accepts them too).
    pub async fn schedule_deletion(&self, key: &KeyRef, days: i32) -> Result<(), ProviderError> {
        self.check_ref(key)?;
        self.client
            .schedule_key_deletion()
            .key_id(&key.key_id)
            .pending_window_in_days(days)
            .send()
            .await
            .map_err(|e| normalise("ScheduleKeyDeletion", e))?;
        Ok(())
    }
}

fn context_map(context: &[(String, String)]) -> HashMap<String, String> {
    context.iter().cloned().collect()
}

/// Maps an SDK failure to the normalised classes. The detail names the operation, the KMS error code and message
/// (never request data).
fn normalise<E, R>(operation: &str, e: SdkError<E, R>) -> ProviderError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug + 'static,
{
    let code = e.code().unwrap_or_default().to_owned();
    let message = e.message().unwrap_or_default().to_owned();
    let detail = format!("AWS KMS {operation}: {code}: {message}");
    match &e {
        SdkError::ServiceError(_) => match code.as_str() {
            "NotFoundException" => ProviderError::NotFound(detail),
            "DisabledException" | "KMSInvalidStateException" | "KeyUnavailableException" => {
                ProviderError::Disabled(detail)
            }
            "AccessDeniedException"
            | "UnrecognizedClientException"
            | "InvalidGrantTokenException" => ProviderError::Denied(detail),
            "ThrottlingException" | "LimitExceededException" | "TooManyRequestsException" => {
                ProviderError::RateLimited(detail)
            }
            "KMSInternalException"
            | "DependencyTimeoutException"
            | "InternalFailure"
            | "ServiceUnavailable" => ProviderError::Unavailable(detail),
            _ => ProviderError::Invalid(detail),
        },
        SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) | SdkError::ResponseError(_) => {
            ProviderError::Unavailable(format!("AWS KMS {operation}: {}", error_chain(&e)))
        }
        _ => ProviderError::Invalid(format!("AWS KMS {operation}: {}", error_chain(&e))),
    }
}

/// An error and its sources as one line (`a: b: c`), each message once: readable, unlike the SDK's context
/// display, which appends the whole error's debug form.
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut next = Some(e);
    while let Some(err) = next {
        let text = err.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        next = err.source();
    }
    parts.join(": ")
}

#[async_trait]
impl KeyProvider for AwsKms {
    fn name(&self) -> &str {
        NAME
    }

    async fn describe(&self, key: &KeyRef) -> Result<KeyDescription, ProviderError> {
        self.check_ref(key)?;
        let out = self
            .client
            .describe_key()
            .key_id(&key.key_id)
            .send()
            .await
            .map_err(|e| normalise("DescribeKey", e))?;
        let meta = out.key_metadata().ok_or_else(|| {
            ProviderError::Unavailable("AWS KMS DescribeKey returned no metadata".into())
        })?;
        let enabled = meta.enabled()
            && meta
                .key_state()
                .is_some_and(|s| *s == aws_sdk_kms::types::KeyState::Enabled);
        Ok(KeyDescription {
            key_id: meta.key_id().to_owned(),
            enabled,
            // KMS rotates key material under one key id; the key id's ARN is the stable reference.
            version: meta.arn().map(str::to_owned),
        })
    }

    async fn encrypt(
        &self,
        key: &KeyRef,
        plaintext: &[u8],
        context: &[(String, String)],
    ) -> Result<Vec<u8>, ProviderError> {
        self.check_ref(key)?;
        let out = self
            .client
            .encrypt()
            .key_id(&key.key_id)
            .plaintext(Blob::new(plaintext.to_vec()))
            .set_encryption_context(Some(context_map(context)))
            .send()
            .await
            .map_err(|e| normalise("Encrypt", e))?;
        out.ciphertext_blob()
            .map(|b| b.as_ref().to_vec())
            .ok_or_else(|| {
                ProviderError::Unavailable("AWS KMS Encrypt returned no ciphertext".into())
            })
    }

    async fn decrypt(
        &self,
        key: &KeyRef,
        ciphertext: &[u8],
        context: &[(String, String)],
    ) -> Result<SecretBytes, ProviderError> {
        self.check_ref(key)?;
        let out = self
            .client
            .decrypt()
            .key_id(&key.key_id)
            .ciphertext_blob(Blob::new(ciphertext.to_vec()))
            .set_encryption_context(Some(context_map(context)))
            .send()
            .await
            .map_err(|e| normalise("Decrypt", e))?;
        let plaintext = out.plaintext().ok_or_else(|| {
            ProviderError::Unavailable("AWS KMS Decrypt returned no plaintext".into())
        })?;
        Ok(SecretBytes::from_slice(plaintext.as_ref()))
    }

    async fn create(&self, key_id: &str) -> Result<KeyRef, ProviderError> {
        let alias = format!("alias/{}", key_id.trim_start_matches("alias/"));
        let out = self
            .client
            .create_key()
            .description(format!("OpenKCM {key_id}"))
            .send()
            .await
            .map_err(|e| normalise("CreateKey", e))?;
        let id = out
            .key_metadata()
            .map(|m| m.key_id().to_owned())
            .ok_or_else(|| {
                ProviderError::Unavailable("AWS KMS CreateKey returned no key id".into())
            })?;
        self.client
            .create_alias()
            .alias_name(&alias)
            .target_key_id(&id)
            .send()
            .await
            .map_err(|e| normalise("CreateAlias", e))?;
        Ok(KeyRef {
            provider: NAME.into(),
            key_id: id,
            region: Some(self.region.clone()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::error_chain;

    #[derive(Debug)]
    struct Outer(std::io::Error);
    impl std::fmt::Display for Outer {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("dispatch failure")
        }
    }
    impl std::error::Error for Outer {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn error_chain_is_one_readable_line() {
        let e = Outer(std::io::Error::new(
            std::io::ErrorKind::ConnectionRefused,
            "connection refused",
        ));
        assert_eq!(error_chain(&e), "dispatch failure: connection refused");
    }
}
