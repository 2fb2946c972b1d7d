//! The edge's KMIP client side towards the Core: pooled, pipelined mTLS connections, the on-behalf-of header,
//! and L4 wrap/unwrap as Encrypt/Decrypt under the service's current L3 (core custody, DESIGN §6.3).

use openkcm_crypto::{aes, SecretKey};
use openkcm_crypto::{EnvelopeHeader, Layer, SecretBytes, WrappedKey};
use openkcm_kmip::enums::{block_cipher_mode, operation as op, result_reason as rr};
use openkcm_kmip::payload::{CipherRequest, CipherResponse, CryptoParams, LocateRequest};
use openkcm_kmip::{
    attributes::Attribute, tags as t, KmipError, ProtocolVersion, RequestMessage, ResponseMessage,
};
use openkcm_net::KmipPool;
use openkcm_ttlv::{Item, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The version the edge speaks to the Core.
const CORE_VERSION: ProtocolVersion = ProtocolVersion::new(1, 4);
/// The KMIP attribute by which the Core tells when the current L3 stops wrapping (a successor is scheduled).
const DEACTIVATION_DATE: &str = "Deactivation Date";

/// How long the edge trusts its knowledge of a service's current L3.
const L3_CACHE_TTL: Duration = Duration::from_secs(30);

/// (tenant, service) → (current L3 unique identifier, its version, until when it is trusted as current: the cache
/// TTL, or sooner when the Core reported that a scheduled successor takes over).
type L3Cache = HashMap<(String, String), (String, u32, Instant)>;

/// The longest this edge keeps a leased service key, whatever the Core grants (DESIGN §6.3).
pub const MAX_L3_LEASE: Duration = Duration::from_secs(300);

/// A service key (L3) the Core leased to this edge (`lease` custody).
struct Lease {
    key: Arc<SecretKey>,
    until: Instant,
}

/// (tenant, service, L3 unique identifier, version) → lease.
type Leases = HashMap<(String, String, String, u32), Lease>;

/// Connection to the Core for one edge.
pub struct CoreLink {
    pool: KmipPool,
    current_l3: Mutex<L3Cache>,
    /// `lease` custody: wrap and unwrap L4s locally under leased service keys. Off: `core` custody.
    lease: bool,
    leases: Mutex<Leases>,
}

/// The ciphertext and the 16-byte GCM tag of a wrapped key.
fn split_tag(wrapped: &WrappedKey) -> Result<(&[u8], &[u8]), KmipError> {
    let ct_tag = wrapped.ciphertext_and_tag();
    let split = ct_tag
        .len()
        .checked_sub(openkcm_crypto::TAG_LEN)
        .ok_or_else(|| KmipError::crypto("the wrapped key is truncated"))?;
    Ok(ct_tag.split_at(split))
}

fn unreachable(e: openkcm_net::NetError) -> KmipError {
    tracing::warn!(error = %e, "Crypto Core call failed");
    KmipError::general(format!("the Crypto Core could not be reached: {e}"))
}

impl CoreLink {
    /// A link over `pool`.
    pub fn new(pool: KmipPool) -> Self {
        Self {
            pool,
            current_l3: Mutex::new(HashMap::new()),
            lease: false,
            leases: Mutex::new(HashMap::new()),
        }
    }

    /// `lease` custody (DESIGN §6.3): the edge gets each service key from the Core for the lease time the Core
    /// grants (at most [`MAX_L3_LEASE`]) and wraps and unwraps L4s itself. When a lease is refused, the edge asks
    /// the Core to wrap or unwrap, as in `core` custody.
    pub fn with_l3_lease(mut self, enabled: bool) -> Self {
        self.lease = enabled;
        self
    }

    /// Whether this link leases service keys.
    pub fn leases_l3(&self) -> bool {
        self.lease
    }

    fn leases(&self) -> std::sync::MutexGuard<'_, Leases> {
        self.leases
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Drops every leased service key of `tenant` (its L1 was revoked or its system unlinked); they are zeroized.
    pub fn purge_leases(&self, tenant: &str) {
        self.leases().retain(|(t, ..), _| t != tenant);
    }

    /// Forgets the cached current service key of `tenant/service` (it was just rotated here): the next wrap asks
    /// the Core which version is current.
    pub fn forget_current_l3(&self, tenant: &str, service: &str) {
        self.lock().remove(&(tenant.to_owned(), service.to_owned()));
    }

    /// The key of this edge's vault metadata, from the Core (see [`openkcm_kmip::EDGE_VAULT_KEY_ID`]).
    pub async fn vault_key(&self) -> Result<SecretKey, KmipError> {
        let mut answer = self
            .send_as(
                None,
                CORE_VERSION,
                vec![(
                    op::GET,
                    openkcm_kmip::payload::uid_payload(
                        t::REQUEST_PAYLOAD,
                        openkcm_kmip::EDGE_VAULT_KEY_ID,
                    ),
                )],
                true,
            )
            .await?
            .into_iter()
            .next()
            .unwrap_or_else(|| Err(KmipError::general("the Crypto Core returned no result")))?;
        let key = openkcm_kmip::payload::key_material(&answer)
            .ok_or_else(|| KmipError::general("the Crypto Core sent no vault key"))
            .and_then(|mut bytes| {
                let key = SecretKey::from_slice(&bytes);
                zeroize::Zeroize::zeroize(&mut bytes);
                key.map_err(|e| KmipError::general(format!("the vault key is unusable: {e}")))
            });
        answer.zeroize_bytes();
        key
    }

    /// Drops every leased service key (the Core was sealed); they are zeroized.
    pub fn purge_all_leases(&self) {
        self.leases().clear();
    }

    /// The leased key of L3 `l3` version `version`, from the Core when this edge holds no valid lease.
    async fn leased(
        &self,
        tenant: &str,
        service: &str,
        l3: &str,
        version: u32,
    ) -> Result<Arc<SecretKey>, KmipError> {
        let id = (
            tenant.to_owned(),
            service.to_owned(),
            l3.to_owned(),
            version,
        );
        {
            let mut leases = self.leases();
            match leases.get(&id) {
                Some(l) if Instant::now() < l.until => return Ok(l.key.clone()),
                Some(_) => {
                    leases.remove(&id);
                }
                None => {}
            }
        }
        let mut answer = self
            .call_one(
                tenant,
                service,
                op::GET,
                openkcm_kmip::payload::uid_payload(t::REQUEST_PAYLOAD, l3),
            )
            .await?;
        let key = openkcm_kmip::payload::key_material(&answer)
            .ok_or_else(|| KmipError::general("the Crypto Core leased no key material"))
            .and_then(|mut bytes| {
                let key = SecretKey::from_slice(&bytes);
                zeroize::Zeroize::zeroize(&mut bytes);
                key.map_err(|e| {
                    KmipError::general(format!("the leased service key is unusable: {e}"))
                })
            });
        let granted = answer
            .child(openkcm_kmip::TAG_L3_LEASE_SECONDS)
            .and_then(|i| match i.value {
                Value::Interval(s) => Some(Duration::from_secs(u64::from(s))),
                _ => None,
            });
        answer.zeroize_bytes();
        let key = Arc::new(key?);
        let ttl = granted.unwrap_or(Duration::ZERO).min(MAX_L3_LEASE);
        if !ttl.is_zero() {
            self.leases().insert(
                id,
                Lease {
                    key: key.clone(),
                    until: Instant::now() + ttl,
                },
            );
            tracing::debug!(
                tenant,
                service,
                l3,
                version,
                lease_s = ttl.as_secs(),
                "service key leased"
            );
        }
        Ok(key)
    }

    /// Sends `items` in one message on behalf of `tenant/service` and returns each item's result.
    ///
    /// Used for the edge's own side-effect-free calls (L3 lookup, wrap, unwrap), which are retried on a fresh
    /// connection when one breaks.
    pub async fn call(
        &self,
        tenant: &str,
        service: &str,
        version: ProtocolVersion,
        items: Vec<(u32, Item)>,
    ) -> Result<Vec<Result<Item, KmipError>>, KmipError> {
        self.send(tenant, service, version, items, true).await
    }

    async fn send(
        &self,
        tenant: &str,
        service: &str,
        version: ProtocolVersion,
        items: Vec<(u32, Item)>,
        idempotent: bool,
    ) -> Result<Vec<Result<Item, KmipError>>, KmipError> {
        self.send_as(
            Some(format!("{tenant}/{service}")),
            version,
            items,
            idempotent,
        )
        .await
    }

    /// Sends `items` on behalf of `on_behalf_of` (an application `tenant/service`), or as the edge itself.
    async fn send_as(
        &self,
        on_behalf_of: Option<String>,
        version: ProtocolVersion,
        items: Vec<(u32, Item)>,
        idempotent: bool,
    ) -> Result<Vec<Result<Item, KmipError>>, KmipError> {
        let mut request = RequestMessage::new(version, items);
        request.header.on_behalf_of = on_behalf_of;
        let mut request = request.into_item();
        let response = if idempotent {
            self.pool.call_idempotent(&request).await
        } else {
            self.pool.call(&request).await
        };
        // Wrap requests carry a plaintext data key, unwrap responses return one: wipe both trees.
        request.zeroize_bytes();
        let mut response = response.map_err(unreachable)?;
        let parsed = ResponseMessage::parse(&response);
        response.zeroize_bytes();
        Ok(parsed?.items.into_iter().map(|i| i.result).collect())
    }

    async fn call_one(
        &self,
        tenant: &str,
        service: &str,
        operation: u32,
        payload: Item,
    ) -> Result<Item, KmipError> {
        self.call(tenant, service, CORE_VERSION, vec![(operation, payload)])
            .await?
            .into_iter()
            .next()
            .unwrap_or_else(|| Err(KmipError::general("the Crypto Core returned no result")))
    }

    /// Proxies one operation unchanged, in the client's protocol version.
    pub async fn proxy(
        &self,
        tenant: &str,
        service: &str,
        version: ProtocolVersion,
        operation: u32,
        payload: &Item,
    ) -> Result<Item, KmipError> {
        self.send(
            tenant,
            service,
            version,
            vec![(operation, payload.clone())],
            false,
        )
        .await?
        .into_iter()
        .next()
        .unwrap_or_else(|| Err(KmipError::general("the Crypto Core returned no result")))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, L3Cache> {
        self.current_l3
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The current L3 (unique identifier, version) of a service: one batched Locate + Get Attributes (with the ID
    /// placeholder) on a cache miss.
    async fn current_l3(&self, tenant: &str, service: &str) -> Result<(String, u32), KmipError> {
        let key = (tenant.to_owned(), service.to_owned());
        if let Some((uid, v, until)) = self.lock().get(&key) {
            if Instant::now() < *until {
                return Ok((uid.clone(), *v));
            }
        }
        let locate = LocateRequest {
            max_items: Some(1),
            offset_items: None,
            attributes: vec![Attribute::name_value(service)],
        };
        let get_attrs = Item::structure(
            t::REQUEST_PAYLOAD,
            [
                openkcm_kmip::attributes::ATTR_KEY_VERSION,
                DEACTIVATION_DATE,
            ]
            .into_iter()
            .map(|name| Item::new(t::ATTRIBUTE_NAME, Value::TextString(name.into())))
            .collect(),
        );
        let mut results = self
            .call(
                tenant,
                service,
                CORE_VERSION,
                vec![
                    (op::LOCATE, locate.to_item(CORE_VERSION)),
                    (op::GET_ATTRIBUTES, get_attrs),
                ],
            )
            .await?
            .into_iter();
        let located = results
            .next()
            .unwrap_or_else(|| Err(KmipError::general("no Locate result")))?;
        if openkcm_kmip::payload::uids(&located).is_empty() {
            return Err(KmipError::new(
                rr::ITEM_NOT_FOUND,
                format!("service {service:?} of tenant {tenant:?} has no active service key; provision it first"),
            ));
        }
        let attrs = results
            .next()
            .unwrap_or_else(|| Err(KmipError::general("no Get Attributes result")))?;
        let uid = attrs
            .child(t::UNIQUE_IDENTIFIER)
            .and_then(Item::as_text)
            .unwrap_or_default()
            .to_owned();
        let reported = openkcm_kmip::attributes::from_payload(&attrs)?;
        let version = reported
            .iter()
            .find(|a| a.name == openkcm_kmip::attributes::ATTR_KEY_VERSION)
            .and_then(|a| a.value.as_i32())
            .and_then(|v| u32::try_from(v).ok())
            .ok_or_else(|| {
                KmipError::general("the Crypto Core did not report the service key version")
            })?;
        // A scheduled successor takes over at this version's Deactivation Date: trust it as current until then.
        let mut until = Instant::now() + L3_CACHE_TTL;
        if let Some(at) = reported
            .iter()
            .find(|a| a.name == DEACTIVATION_DATE)
            .and_then(|a| a.value.as_datetime())
        {
            let left = at.saturating_sub(crate::ops::now()).max(0);
            until = until.min(Instant::now() + Duration::from_secs(left.unsigned_abs()));
        }
        let previous = self.lock().insert(key, (uid.clone(), version, until));
        if previous
            .is_some_and(|(old_uid, old_version, _)| old_uid != uid || old_version != version)
        {
            // The service key rotated: leases of older versions go (they are fetched again if old keys need them).
            self.leases().retain(|(t, s, l3, v), _| {
                !(t == tenant && s == service && (*l3 != uid || *v != version))
            });
        }
        Ok((uid, version))
    }

    /// Whether the service's current L3 is no longer `l3` (it was rotated since `l3` wrapped a key); false when the
    /// current L3 cannot be learned now.
    pub async fn rotated_away(&self, tenant: &str, service: &str, l3: &str) -> bool {
        matches!(self.current_l3(tenant, service).await, Ok((current, _)) if current != l3)
    }

    /// Wraps `key` (an L4 with unique identifier `uid`) under the service's current L3, through the Core.
    pub async fn wrap(
        &self,
        tenant: &str,
        service: &str,
        uid: &str,
        key: &[u8],
    ) -> Result<WrappedKey, KmipError> {
        for attempt in 0..2 {
            let (l3, version) = self.current_l3(tenant, service).await?;
            let header = EnvelopeHeader {
                layer: Layer::L4,
                tenant: tenant.into(),
                key_id: uid.into(),
                parent_id: l3.clone(),
                parent_version: version,
            };
            let aad = header
                .encode()
                .map_err(|e| KmipError::invalid_field(e.to_string()))?;
            if self.lease {
                match self.leased(tenant, service, &l3, version).await {
                    Ok(l3_key) => return Self::wrap_locally(&l3_key, &header, &aad, key),
                    Err(e) => {
                        tracing::debug!(tenant, service, error = %e.message, "no lease; the Core wraps");
                    }
                }
            }
            let req = CipherRequest {
                uid: Some(l3),
                params: Some(CryptoParams {
                    mode: Some(block_cipher_mode::GCM),
                    ..CryptoParams::default()
                }),
                data: key.to_vec(),
                iv: None,
                aad: Some(aad),
                tag: None,
            };
            let result = self
                .call_one(tenant, service, op::ENCRYPT, req.into_item())
                .await;
            match result {
                Ok(resp) => {
                    let resp = CipherResponse::parse(&resp)?;
                    let nonce: [u8; 12] = resp
                        .iv
                        .as_deref()
                        .and_then(|n| n.try_into().ok())
                        .ok_or_else(|| {
                            KmipError::general("the Crypto Core returned no 12-byte nonce")
                        })?;
                    let mut ct = resp.data;
                    ct.extend_from_slice(resp.tag.as_deref().unwrap_or_default());
                    return WrappedKey::from_parts(&header, nonce, &ct)
                        .map_err(|e| KmipError::general(e.to_string()));
                }
                // The cached L3 may have been rotated, revoked or marked compromised ("key version compromised", a
                // Cryptographic Failure): forget it and ask again once.
                Err(e)
                    if attempt == 0
                        && matches!(
                            e.reason,
                            rr::ITEM_NOT_FOUND
                                | rr::WRONG_KEY_LIFECYCLE_STATE
                                | rr::PERMISSION_DENIED
                                | rr::CRYPTOGRAPHIC_FAILURE
                        ) =>
                {
                    self.lock().remove(&(tenant.to_owned(), service.to_owned()));
                }
                Err(e) => return Err(e),
            }
        }
        Err(KmipError::general("wrapping the key failed"))
    }

    /// AES-256-GCM under a leased service key, byte for byte what the Core's Encrypt produces.
    fn wrap_locally(
        l3_key: &SecretKey,
        header: &EnvelopeHeader,
        aad: &[u8],
        key: &[u8],
    ) -> Result<WrappedKey, KmipError> {
        if key.is_empty() || key.len() > openkcm_crypto::MAX_L4_LEN {
            return Err(KmipError::invalid_field(
                "an object wrapped under an L3 has 1 to 65536 bytes",
            ));
        }
        let nonce = aes::random_bytes::<12>().map_err(|e| KmipError::crypto(e.to_string()))?;
        let (mut ct, tag) = aes::gcm_seal(l3_key, &nonce, aad, key)
            .map_err(|e| KmipError::crypto(e.to_string()))?;
        ct.extend_from_slice(&tag);
        WrappedKey::from_parts(header, nonce, &ct).map_err(|e| KmipError::general(e.to_string()))
    }

    /// Unwraps an L4: locally under a leased service key in `lease` custody, otherwise through the Core. The caller
    /// has checked that the header names this tenant and key id.
    pub async fn unwrap(
        &self,
        tenant: &str,
        service: &str,
        wrapped: &WrappedKey,
    ) -> Result<SecretBytes, KmipError> {
        let header = wrapped.header_ref();
        if self.lease {
            match self
                .leased(tenant, service, &header.parent_id, header.parent_version)
                .await
            {
                Ok(l3_key) => {
                    let (ct, tag) = split_tag(wrapped)?;
                    return aes::gcm_open(&l3_key, &wrapped.nonce(), wrapped.aad(), ct, tag).map_err(
                        |e| match e {
                            openkcm_crypto::CryptoError::AuthenticationFailed => KmipError::crypto(
                                "authentication of the wrapped key failed: it was altered or belongs to another key",
                            ),
                            other => KmipError::crypto(other.to_string()),
                        },
                    );
                }
                Err(e) => {
                    tracing::debug!(tenant, service, error = %e.message, "no lease; the Core unwraps");
                }
            }
        }
        let (ct, tag) = split_tag(wrapped)?;
        let req = CipherRequest {
            uid: Some(header.parent_id.clone()),
            params: Some(CryptoParams {
                mode: Some(block_cipher_mode::GCM),
                ..CryptoParams::default()
            }),
            data: ct.to_vec(),
            iv: Some(wrapped.nonce().to_vec()),
            aad: Some(wrapped.aad().to_vec()),
            tag: Some(tag.to_vec()),
        };
        let mut resp = self
            .call_one(tenant, service, op::DECRYPT, req.into_item())
            .await?;
        let key = resp
            .child(t::DATA)
            .and_then(Item::as_bytes)
            .ok_or_else(|| KmipError::general("the Crypto Core returned no key"))
            .map(SecretBytes::from_slice);
        resp.zeroize_bytes();
        key
    }
}
