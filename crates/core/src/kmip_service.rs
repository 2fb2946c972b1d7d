//! The Core's KMIP endpoint for edges (DESIGN §6.4): an edge authenticates with its own certificate and names
//! the application it acts for in the on-behalf-of header extension. The Core then serves, for that
//! application's tenant and service only:
//! * Locate by Name (the service name) → the service's L3 versions, current first;
//! * Get Attributes of an L3 (state, version as `x-openkcm-key-version`);
//! * Encrypt / Decrypt under an L3 with AES-256-GCM, where the authenticated data must be the L4 envelope header
//!   naming that L3 — so a wrapped L4 is bound to its tenant, key id and L3 version;
//! * Re-key of the service's current L3 → a new L3 version (DESIGN §5.1 on-demand rotation); the old version is
//!   DEACTIVATED and keeps unwrapping what it wrapped.

use crate::hierarchy::{Core, CoreError, L3Info, L3Key};
use crate::seal::Node;
use openkcm_crypto::{aes, CryptoError, EnvelopeHeader, Layer};
use openkcm_kmip::attributes::{self, Attribute};
use openkcm_kmip::enums::{
    algorithm, block_cipher_mode, object_type, operation as op, result_reason as rr, state,
};
use openkcm_kmip::payload::{self, CipherRequest, CipherResponse, LocateRequest};
use openkcm_kmip::{tags as t, ItemContext, KmipError, OperationHandler};
use openkcm_net::{KmipService, PeerIdentity};
use openkcm_ttlv::{Item, Value};
use std::sync::Arc;

/// Operations the Core answers.
pub const CORE_OPERATIONS: &[u32] = &[
    op::DISCOVER_VERSIONS,
    op::QUERY,
    op::LOCATE,
    op::GET_ATTRIBUTES,
    op::ENCRYPT,
    op::DECRYPT,
    op::GET,
    op::REKEY,
];

pub use openkcm_kmip::attributes::ATTR_KEY_VERSION;

/// Maps a Core failure to the KMIP error a client sees. Internal details are logged, not sent.
pub fn to_kmip(e: CoreError) -> KmipError {
    match e {
        CoreError::NotFound(id) => KmipError::not_found(&id),
        CoreError::Crypto(CryptoError::AuthenticationFailed) => KmipError::crypto(
            "authentication of the wrapped key failed: it was altered or belongs to another key",
        ),
        CoreError::Crypto(c) => KmipError::crypto(c.to_string()),
        e @ (CoreError::L1Revoked(_) | CoreError::L1Unreachable(_)) => {
            KmipError::new(rr::PERMISSION_DENIED, e.to_string())
        }
        // Cryptographic Failure is defined in every KMIP version: the reason survives the edge-Core hop in 1.x.
        e @ (CoreError::KeyVersionDestroyed(_) | CoreError::KeyVersionCompromised(_)) => {
            KmipError::crypto(e.to_string())
        }
        other => {
            tracing::error!(error = %other, "core failure");
            KmipError::general("the key service failed internally; see the server log")
        }
    }
}

/// What a sealed Core answers to every key operation.
pub const SEALED_MESSAGE: &str =
    "the Crypto Core is sealed: no key operation is possible until an operator unseals it (openkcm operator unseal)";

/// The KMIP service of the Core listener: the node's Core while unsealed, "sealed" otherwise.
pub struct CoreKmipService {
    node: Arc<Node>,
}

impl CoreKmipService {
    /// A service over the Core of `node`.
    pub fn new(node: Arc<Node>) -> Self {
        Self { node }
    }
}

#[async_trait::async_trait]
impl KmipService for CoreKmipService {
    async fn handle(&self, peer: &PeerIdentity, request: &Item) -> Item {
        match self.node.core() {
            Some(core) => openkcm_kmip::process(&CoreOps { core: &core, peer }, request).await,
            None => openkcm_kmip::process(&SealedOps { peer }, request).await,
        }
    }
}

/// The sealed node: Discover Versions is answered, every other operation fails with [`SEALED_MESSAGE`].
struct SealedOps<'a> {
    peer: &'a PeerIdentity,
}

#[async_trait::async_trait]
impl OperationHandler for SealedOps<'_> {
    async fn handle(
        &self,
        ctx: &ItemContext,
        operation: u32,
        payload: &Item,
    ) -> Result<Item, KmipError> {
        if operation == op::DISCOVER_VERSIONS {
            return payload::discover_versions_response(payload);
        }
        // Who may call comes before what state the node is in.
        let e = if matches!(self.peer, PeerIdentity::Edge { .. }) {
            KmipError::new(rr::GENERAL_FAILURE, SEALED_MESSAGE)
        } else {
            KmipError::new(
                rr::PERMISSION_DENIED,
                "the Core's KMIP port serves edges only (applications use the Crypto Edge, operators the operator API)",
            )
        };
        openkcm_net::log_refusal(self.peer, ctx.version, operation, &e);
        Err(e)
    }
}

struct CoreOps<'a> {
    core: &'a Core,
    peer: &'a PeerIdentity,
}

impl CoreOps<'_> {
    /// The application an edge acts for. Applications connecting directly get no key operations here.
    fn caller(&self, ctx: &ItemContext) -> Result<(String, String), KmipError> {
        match (self.peer, &ctx.header.on_behalf_of) {
            (PeerIdentity::Edge { .. }, Some(obo)) => match PeerIdentity::application_from_str(obo)
            {
                Some(PeerIdentity::Application { tenant, service }) => Ok((tenant, service)),
                _ => Err(KmipError::invalid_field(
                    "the on-behalf-of identity must be tenant/service",
                )),
            },
            (PeerIdentity::Edge { .. }, None) => Err(KmipError::new(
                rr::PERMISSION_DENIED,
                "an edge must name the application it acts for",
            )),
            (PeerIdentity::Application { .. }, _) => Err(KmipError::new(
                rr::PERMISSION_DENIED,
                "applications use the Crypto Edge; the Core's KMIP port serves edges only",
            )),
            (PeerIdentity::Operator { .. }, _) => Err(KmipError::new(
                rr::PERMISSION_DENIED,
                "operators use the Core's operator API and have no key operations; the Core's KMIP port serves edges only",
            )),
        }
    }

    async fn l3_for(
        &self,
        tenant: &str,
        service: &str,
        uid: &str,
    ) -> Result<Arc<L3Key>, KmipError> {
        let l3 = self.core.l3(tenant, uid).await.map_err(to_kmip)?;
        if l3.service != service {
            return Err(KmipError::not_found(uid));
        }
        Ok(l3)
    }

    /// L3 `uid`'s metadata, if it belongs to this service (without unwrapping it: any state).
    async fn l3_info_for(
        &self,
        tenant: &str,
        service: &str,
        uid: &str,
    ) -> Result<L3Info, KmipError> {
        let info = self.core.l3_info(tenant, uid).await.map_err(to_kmip)?;
        if info.service != service {
            return Err(KmipError::not_found(uid));
        }
        Ok(info)
    }

    fn l3_attributes(l3: &L3Info) -> Vec<Attribute> {
        let mut attrs = vec![
            Attribute::new("Unique Identifier", Value::TextString(l3.uid.clone())),
            Attribute::new(
                "Object Type",
                Value::Enumeration(object_type::SYMMETRIC_KEY),
            ),
            Attribute::new(
                "Cryptographic Algorithm",
                Value::Enumeration(algorithm::AES),
            ),
            Attribute::new("Cryptographic Length", Value::Integer(256)),
            Attribute::new("State", Value::Enumeration(l3.state)),
            Attribute::name_value(&l3.service),
            Attribute::new(
                ATTR_KEY_VERSION,
                Value::Integer(i32::try_from(l3.version).unwrap_or(i32::MAX)),
            ),
            Attribute::new(attributes::ATTR_SERVICE_KEY, Value::Boolean(true)),
        ];
        if let Some(at) = l3.activation_date {
            attrs.push(Attribute::new("Activation Date", Value::DateTime(at)));
        }
        if let Some(at) = l3.deactivation_date {
            attrs.push(Attribute::new("Deactivation Date", Value::DateTime(at)));
        }
        attrs
    }

    fn check_header(aad: Option<&[u8]>, tenant: &str, l3: &L3Key) -> Result<(), KmipError> {
        let bad = || {
            KmipError::invalid_field(
                "the Authenticated Encryption Additional Data must be the L4 envelope header of this tenant naming this L3 version",
            )
        };
        let aad = aad.ok_or_else(bad)?;
        let (h, len): (EnvelopeHeader, usize) = EnvelopeHeader::parse(aad).map_err(|_| bad())?;
        if len != aad.len()
            || h.layer != Layer::L4
            || h.tenant != tenant
            || h.parent_id != l3.uid
            || h.parent_version != l3.version
        {
            return Err(bad());
        }
        Ok(())
    }

    /// The key of the calling edge's vault metadata ([`openkcm_kmip::EDGE_VAULT_KEY_ID`]): only to an edge asking
    /// as itself.
    fn edge_vault_key(&self, ctx: &ItemContext) -> Result<Item, KmipError> {
        let (PeerIdentity::Edge { name }, None) = (self.peer, &ctx.header.on_behalf_of) else {
            return Err(KmipError::new(
                rr::PERMISSION_DENIED,
                "only an edge, asking as itself, gets its vault key",
            ));
        };
        let key = self.core.edge_vault_key(name).map_err(to_kmip)?;
        tracing::info!(edge = %name, "vault metadata key handed to an edge");
        payload::symmetric_key_response(
            openkcm_kmip::EDGE_VAULT_KEY_ID,
            key.expose(),
            openkcm_kmip::enums::key_format_type::RAW,
        )
    }

    /// `lease` custody (DESIGN §6.3): an edge, acting for the service that owns it, gets a service key (L3) to wrap
    /// and unwrap locally for the lease time the answer names. Refused in `core` custody, and for a version that
    /// neither wraps nor unwraps any more.
    async fn lease(&self, ctx: &ItemContext, payload: &Item) -> Result<Item, KmipError> {
        let (tenant, service) = self.caller(ctx)?;
        let uid = ctx.uid(payload)?;
        let Some(ttl) = self.core.l3_lease_ttl() else {
            return Err(KmipError::new(
                rr::PERMISSION_DENIED,
                "L3 custody is core: service keys do not leave the Crypto Core (start it with --l3-custody lease to lease them to edges)",
            ));
        };
        let l3 = self.l3_for(&tenant, &service, &uid).await?;
        if !matches!(l3.state, state::ACTIVE | state::DEACTIVATED) {
            return Err(KmipError::wrong_state(format!(
                "L3 {uid:?} is {}; it is not leased",
                state::name(l3.state)
            )));
        }
        let mut answer = payload::symmetric_key_response(
            &uid,
            l3.key.expose(),
            openkcm_kmip::enums::key_format_type::RAW,
        )?;
        if let Value::Structure(children) = &mut answer.value {
            children.push(Item::new(
                openkcm_kmip::TAG_L3_LEASE_SECONDS,
                Value::Interval(u32::try_from(ttl.as_secs()).unwrap_or(u32::MAX)),
            ));
        }
        tracing::info!(
            tenant,
            service,
            l3 = %uid,
            version = l3.version,
            lease_s = ttl.as_secs(),
            "service key leased to an edge"
        );
        Ok(answer)
    }

    async fn cipher(
        &self,
        ctx: &ItemContext,
        payload: &Item,
        encrypt: bool,
    ) -> Result<Item, KmipError> {
        let (tenant, service) = self.caller(ctx)?;
        let req = CipherRequest::parse(payload)?;
        let uid = match &req.uid {
            Some(u) => u.clone(),
            None => ctx.uid(payload)?,
        };
        let l3 = self.l3_for(&tenant, &service, &uid).await?;
        if req.params.as_ref().and_then(|p| p.mode) != Some(block_cipher_mode::GCM) {
            return Err(KmipError::invalid_field(
                "service keys (L3) wrap only with AES-256-GCM",
            ));
        }
        Self::check_header(req.aad.as_deref(), &tenant, &l3)?;
        let aad = req.aad.as_deref().unwrap_or_default();
        if encrypt {
            if l3.wraps_until.is_some_and(|t| crate::now() >= t) {
                // Its scheduled successor is due: make it current, and have the edge ask again.
                let current = self
                    .core
                    .current_l3_uid(&tenant, &service)
                    .await
                    .map_err(to_kmip)?;
                return Err(KmipError::wrong_state(format!(
                    "L3 {uid:?} was succeeded by {current:?}; wrap under the current version"
                )));
            }
            if l3.state != state::ACTIVE {
                return Err(KmipError::wrong_state(format!(
                    "L3 {uid:?} is {}; only an Active version wraps new keys",
                    state::name(l3.state)
                )));
            }
            if req.data.is_empty() || req.data.len() > openkcm_crypto::MAX_L4_LEN {
                return Err(KmipError::invalid_field(
                    "an object wrapped under an L3 has 1 to 65536 bytes",
                ));
            }
            let nonce = aes::random_bytes::<12>().map_err(|e| KmipError::crypto(e.to_string()))?;
            let (ct, tag) = aes::gcm_seal(&l3.key, &nonce, aad, &req.data)
                .map_err(|e| KmipError::crypto(e.to_string()))?;
            Ok(CipherResponse {
                uid,
                data: ct,
                iv: Some(nonce.to_vec()),
                tag: Some(tag.to_vec()),
            }
            .into_item())
        } else {
            if !matches!(l3.state, state::ACTIVE | state::DEACTIVATED) {
                return Err(KmipError::wrong_state(format!(
                    "L3 {uid:?} is {}",
                    state::name(l3.state)
                )));
            }
            let iv = req
                .iv
                .as_deref()
                .ok_or_else(|| KmipError::missing("IV/Counter/Nonce"))?;
            let tag = req
                .tag
                .as_deref()
                .ok_or_else(|| KmipError::missing("Authenticated Encryption Tag"))?;
            let plain = aes::gcm_open(&l3.key, iv, aad, &req.data, tag).map_err(|e| match e {
                CryptoError::AuthenticationFailed => {
                    KmipError::crypto("authentication of the wrapped key failed: it was altered or belongs to another key")
                }
                other => KmipError::crypto(other.to_string()),
            })?;
            // The L4 is handed to the edge and leaves this process only inside the TLS stream.
            Ok(CipherResponse {
                uid,
                data: plain.expose().to_vec(),
                iv: None,
                tag: None,
            }
            .into_item())
        }
    }

    async fn locate(&self, ctx: &ItemContext, payload: &Item) -> Result<Item, KmipError> {
        let (tenant, service) = self.caller(ctx)?;
        let req = LocateRequest::parse(payload)?;
        self.core
            .ensure_service(&tenant, &service)
            .await
            .map_err(to_kmip)?;
        let mut versions = self
            .core
            .l3_versions(&tenant, &service)
            .await
            .map_err(to_kmip)?;
        // The current version first (a newer one may be waiting to become active), then newest first.
        if let Ok(current) = self.core.current_l3_uid(&tenant, &service).await {
            versions.sort_by_key(|v| v.uid != current);
        }
        let mut uids = Vec::new();
        for l3 in versions {
            let attrs = Self::l3_attributes(&l3);
            if req.attributes.iter().all(|want| {
                attrs
                    .iter()
                    .any(|have| have.name == want.name && have.value.value == want.value.value)
            }) {
                uids.push(l3.uid);
            }
        }
        let total = uids.len();
        let max = req
            .max_items
            .and_then(|m| usize::try_from(m).ok())
            .unwrap_or(usize::MAX);
        uids.truncate(max);
        Ok(payload::locate_response(
            ctx.version,
            (req.max_items.is_some() || req.offset_items.is_some()).then_some(total),
            &uids,
        ))
    }

    /// Re-key of an L3 (on-demand service key rotation, DESIGN §5.1): only the service's current version may be
    /// re-keyed, by the service itself; the answer names the new version.
    async fn rekey(&self, ctx: &ItemContext, payload: &Item) -> Result<Item, KmipError> {
        let (tenant, service) = self.caller(ctx)?;
        let uid = ctx.uid(payload)?;
        let l3 = self.l3_info_for(&tenant, &service, &uid).await?;
        let current = self
            .core
            .current_l3_uid(&tenant, &service)
            .await
            .map_err(to_kmip)?;
        if current != l3.uid {
            return Err(KmipError::new(
                rr::ILLEGAL_OPERATION,
                format!(
                    "L3 {uid:?} is version {} of service {service:?}, not its current one ({current:?}); re-key the current version",
                    l3.version
                ),
            ));
        }
        // With an Offset, the new version is PRE_ACTIVE until now + Offset, and the current one wraps until then.
        let activate_at = match payload.child(t::OFFSET).map(|o| &o.value) {
            None => None,
            Some(Value::Interval(secs))
                if i64::from(*secs) <= crate::hierarchy::MAX_ACTIVATION_DELAY_SECS =>
            {
                Some(crate::now().saturating_add(i64::from(*secs)))
            }
            Some(Value::Interval(_)) => {
                return Err(KmipError::invalid_field(format!(
                    "a service key's successor becomes active at most {} days ahead (Offset)",
                    crate::hierarchy::MAX_ACTIVATION_DELAY_SECS / 86_400
                )))
            }
            Some(_) => return Err(KmipError::invalid_field("Offset must be an Interval")),
        };
        let (new_uid, version) = self
            .core
            .rotate_l3_at(&tenant, &service, activate_at)
            .await
            .map_err(|e| match e {
                CoreError::Conflict(m) => KmipError::new(rr::ILLEGAL_OPERATION, m),
                other => to_kmip(other),
            })?;
        tracing::info!(tenant, service, from = %uid, to = %new_uid, version, "service key re-keyed through KMIP");
        Ok(Item::structure(
            t::RESPONSE_PAYLOAD,
            vec![Item::new(t::UNIQUE_IDENTIFIER, Value::TextString(new_uid))],
        ))
    }

    async fn get_attributes(&self, ctx: &ItemContext, payload: &Item) -> Result<Item, KmipError> {
        let (tenant, service) = self.caller(ctx)?;
        let uid = ctx.uid(payload)?;
        let l3 = self.l3_info_for(&tenant, &service, &uid).await?;
        let names = attributes::requested_names(payload)?;
        let attrs: Vec<Attribute> = Self::l3_attributes(&l3)
            .into_iter()
            .filter(|a| names.is_empty() || names.contains(&a.name))
            .collect();
        let mut c = vec![Item::new(t::UNIQUE_IDENTIFIER, Value::TextString(uid))];
        c.extend(attributes::to_payload_items(&attrs, ctx.version));
        Ok(Item::structure(t::RESPONSE_PAYLOAD, c))
    }
}

#[async_trait::async_trait]
impl OperationHandler for CoreOps<'_> {
    async fn handle(
        &self,
        ctx: &ItemContext,
        operation: u32,
        payload: &Item,
    ) -> Result<Item, KmipError> {
        let result = match operation {
            op::DISCOVER_VERSIONS => payload::discover_versions_response(payload),
            op::QUERY => payload::query_response(
                ctx.version,
                payload,
                CORE_OPERATIONS,
                &[object_type::SYMMETRIC_KEY],
            ),
            op::LOCATE => self.locate(ctx, payload).await,
            op::GET_ATTRIBUTES => self.get_attributes(ctx, payload).await,
            op::GET
                if ctx
                    .uid(payload)
                    .is_ok_and(|u| u == openkcm_kmip::EDGE_VAULT_KEY_ID) =>
            {
                self.edge_vault_key(ctx)
            }
            op::GET => self.lease(ctx, payload).await,
            op::ENCRYPT => self.cipher(ctx, payload, true).await,
            op::DECRYPT => self.cipher(ctx, payload, false).await,
            op::REKEY => self.rekey(ctx, payload).await,
            other => self
                .caller(ctx)
                .and(Err(KmipError::unsupported_operation(other))),
        };
        if let Err(e) = &result {
            openkcm_net::log_refusal(self.peer, ctx.version, operation, e);
        }
        result
    }
}
