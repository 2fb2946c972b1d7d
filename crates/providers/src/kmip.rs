//! The `kmip` driver: a symmetric key on any KMIP server (KMIP 1.4 over mutual TLS), through this project's own KMIP
//! client. Tested against a second `openkcm` and against PyKMIP's server.
//!
//! Encrypt is AES-256-GCM with a 12-byte IV chosen here and the canonical context as Authenticated Encryption
//! Additional Data, so a ciphertext only decrypts with the same context; the ciphertext stored is IV ‖ tag ‖ data.
//! The key is named by its Unique Identifier. One mTLS connection is kept and reopened when it breaks. A server's
//! refusal is normalised from its result reason: Permission Denied / Authentication Not Successful → Denied,
//! Item Not Found → NotFound, Wrong Key Lifecycle State → Disabled, Cryptographic Failure → Invalid; a connection
//! failure, and a General Failure that says the server is sealed → Unavailable.

use crate::{KeyDescription, KeyProvider, KeyRef, ProviderError};
use async_trait::async_trait;
use openkcm_crypto::SecretBytes;
use openkcm_kmip::attributes::Attribute;
use openkcm_kmip::enums::{
    algorithm, block_cipher_mode, operation as op, result_reason as rr, state,
};
use openkcm_kmip::payload::{self, CipherRequest, CipherResponse, CryptoParams};
use openkcm_kmip::{tags as t, KmipError, ProtocolVersion, RequestMessage, ResponseMessage};
use openkcm_net::KmipClient;
use openkcm_ttlv::{Item, Value};
use rustls::ClientConfig;
use std::sync::Arc;
use tokio::sync::Mutex;

/// Driver name.
pub const NAME: &str = "kmip";
const VERSION: ProtocolVersion = ProtocolVersion::new(1, 4);
const IV_LEN: usize = 12;
const TAG_LEN: usize = 16;

/// A KMIP server.
pub struct KmipProvider {
    addr: String,
    server_name: String,
    config: Arc<ClientConfig>,
    connection: Mutex<Option<KmipClient>>,
}

fn normalise(e: KmipError) -> ProviderError {
    let detail = format!("the KMIP server refused: {}", e.message);
    match e.reason {
        rr::PERMISSION_DENIED | rr::AUTHENTICATION_NOT_SUCCESSFUL => ProviderError::Denied(detail),
        rr::ITEM_NOT_FOUND => ProviderError::NotFound(detail),
        rr::WRONG_KEY_LIFECYCLE_STATE => ProviderError::Disabled(detail),
        // KMIP has no "unavailable" reason: a server that says it is sealed (as this project's does) answers
        // later. Other General Failures (PyKMIP's for a tag that does not authenticate, say) are refusals.
        rr::GENERAL_FAILURE if e.message.contains("sealed") => ProviderError::Unavailable(detail),
        _ => ProviderError::Invalid(detail),
    }
}

impl KmipProvider {
    /// The server at `addr` (HOST:PORT), verified as `server_name`, with a client certificate in `config`.
    pub fn new(addr: &str, server_name: &str, config: Arc<ClientConfig>) -> Self {
        Self {
            addr: addr.to_owned(),
            server_name: server_name.to_owned(),
            config,
            connection: Mutex::new(None),
        }
    }

    /// Sends one operation; returns its response payload.
    async fn call(&self, operation: u32, payload: Item) -> Result<Item, ProviderError> {
        let message = RequestMessage::new(VERSION, vec![(operation, payload)]).into_item();
        let mut slot = self.connection.lock().await;
        let mut reply = None;
        // A kept connection may have been closed by the server (idle timeout): one fresh retry.
        for attempt in 0..2 {
            if slot.is_none() {
                let client =
                    KmipClient::connect(&self.addr, self.config.clone(), &self.server_name)
                        .await
                        .map_err(|e| {
                            ProviderError::Unavailable(format!("KMIP server {}: {e}", self.addr))
                        })?;
                *slot = Some(client);
            }
            let Some(client) = slot.as_mut() else { break };
            match client.call(&message).await {
                Ok(r) => {
                    reply = Some(r);
                    break;
                }
                Err(e) => {
                    *slot = None;
                    if attempt == 1 {
                        return Err(ProviderError::Unavailable(format!(
                            "KMIP server {}: {e}",
                            self.addr
                        )));
                    }
                }
            }
        }
        drop(slot);
        let mut reply =
            reply.ok_or_else(|| ProviderError::Unavailable("no KMIP response".into()))?;
        let parsed = ResponseMessage::parse(&reply);
        reply.zeroize_bytes();
        let response = parsed.map_err(|e| {
            ProviderError::Unavailable(format!("KMIP server {}: {}", self.addr, e.message))
        })?;
        response
            .items
            .into_iter()
            .next()
            .ok_or_else(|| ProviderError::Unavailable("the KMIP server returned no result".into()))?
            .result
            .map_err(normalise)
    }

    fn check_ref(key: &KeyRef) -> Result<(), ProviderError> {
        crate::check_provider(key, NAME)?;
        if key.key_id.is_empty() || key.key_id.len() > 256 {
            return Err(ProviderError::Invalid(
                "a KMIP unique identifier must be 1 to 256 characters".into(),
            ));
        }
        Ok(())
    }

    fn params() -> Option<CryptoParams> {
        Some(CryptoParams {
            mode: Some(block_cipher_mode::GCM),
            padding: None,
            algorithm: Some(algorithm::AES),
            random_iv: None,
            tag_length: Some(TAG_LEN as i32),
            iv_length: None,
        })
    }
}

fn uid_payload(uid: &str, extra: Vec<Item>) -> Item {
    let mut c = vec![Item::new(
        t::UNIQUE_IDENTIFIER,
        Value::TextString(uid.to_owned()),
    )];
    c.extend(extra);
    Item::structure(t::REQUEST_PAYLOAD, c)
}

#[async_trait]
impl KeyProvider for KmipProvider {
    fn name(&self) -> &str {
        NAME
    }

    async fn describe(&self, key: &KeyRef) -> Result<KeyDescription, ProviderError> {
        Self::check_ref(key)?;
        let payload = uid_payload(
            &key.key_id,
            vec![Item::new(
                t::ATTRIBUTE_NAME,
                Value::TextString("State".into()),
            )],
        );
        let reply = self.call(op::GET_ATTRIBUTES, payload).await?;
        let attrs = openkcm_kmip::attributes::from_payload(&reply).map_err(normalise)?;
        let active = attrs
            .iter()
            .find(|a| a.name == "State")
            .and_then(|a| a.value.as_enum())
            == Some(state::ACTIVE);
        Ok(KeyDescription {
            key_id: key.key_id.clone(),
            enabled: active,
            version: None,
        })
    }

    async fn encrypt(
        &self,
        key: &KeyRef,
        plaintext: &[u8],
        context: &[(String, String)],
    ) -> Result<Vec<u8>, ProviderError> {
        Self::check_ref(key)?;
        let iv = openkcm_crypto::random_bytes::<IV_LEN>()
            .map_err(|e| ProviderError::Unavailable(e.to_string()))?;
        let mut request = CipherRequest {
            uid: Some(key.key_id.clone()),
            params: Self::params(),
            data: plaintext.to_vec(),
            iv: Some(iv.to_vec()),
            aad: Some(crate::canonical_context(context)?),
            tag: None,
        }
        .to_item();
        let reply = self.call(op::ENCRYPT, request.clone()).await;
        request.zeroize_bytes();
        let response = CipherResponse::parse(&reply?).map_err(normalise)?;
        let tag = response.tag.filter(|t| t.len() == TAG_LEN).ok_or_else(|| {
            ProviderError::Unavailable("the KMIP server returned no 16-byte GCM tag".into())
        })?;
        let mut out = Vec::with_capacity(IV_LEN + TAG_LEN + response.data.len());
        out.extend_from_slice(&iv);
        out.extend_from_slice(&tag);
        out.extend_from_slice(&response.data);
        Ok(out)
    }

    async fn decrypt(
        &self,
        key: &KeyRef,
        ciphertext: &[u8],
        context: &[(String, String)],
    ) -> Result<SecretBytes, ProviderError> {
        Self::check_ref(key)?;
        if ciphertext.len() < IV_LEN + TAG_LEN {
            return Err(ProviderError::Invalid(
                "the KMIP ciphertext is truncated".into(),
            ));
        }
        let (iv, rest) = ciphertext.split_at(IV_LEN);
        let (tag, data) = rest.split_at(TAG_LEN);
        let request = CipherRequest {
            uid: Some(key.key_id.clone()),
            params: Self::params(),
            data: data.to_vec(),
            iv: Some(iv.to_vec()),
            aad: Some(crate::canonical_context(context)?),
            tag: Some(tag.to_vec()),
        }
        .to_item();
        let mut reply = self.call(op::DECRYPT, request).await?;
        let parsed = CipherResponse::parse(&reply);
        reply.zeroize_bytes();
        let response = parsed.map_err(normalise)?;
        Ok(SecretBytes::new(response.data))
    }

    async fn create(&self, key_id: &str) -> Result<KeyRef, ProviderError> {
        let attrs = vec![
            Attribute::new(
                "Cryptographic Algorithm",
                Value::Enumeration(algorithm::AES),
            ),
            Attribute::new("Cryptographic Length", Value::Integer(256)),
            Attribute::new(
                "Cryptographic Usage Mask",
                Value::Integer(
                    openkcm_kmip::enums::usage_mask::ENCRYPT
                        | openkcm_kmip::enums::usage_mask::DECRYPT,
                ),
            ),
            Attribute::name_value(key_id),
        ];
        let reply = self
            .call(op::CREATE, payload::create_request(VERSION, &attrs))
            .await?;
        let uid = reply
            .child(t::UNIQUE_IDENTIFIER)
            .and_then(Item::as_text)
            .ok_or_else(|| {
                ProviderError::Unavailable("the KMIP server returned no unique identifier".into())
            })?
            .to_owned();
        // Activate as a separate operation: every server accepts it, not every one an Activation Date at Create.
        self.call(op::ACTIVATE, uid_payload(&uid, Vec::new()))
            .await?;
        Ok(KeyRef {
            provider: NAME.into(),
            key_id: uid,
            region: None,
        })
    }
}
