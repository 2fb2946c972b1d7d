//! The edge's KMIP operations for applications.

use crate::core_link::CoreLink;
use crate::meta::{ExtraAttr, L4Meta};
use crate::objects;
use openkcm_crypto::{aes, WrappedKey};
use openkcm_kmip::attributes::{self, Attribute};
use openkcm_kmip::enums::{
    algorithm, block_cipher_mode as bcm, object_type, operation as op, padding_method,
    result_reason as rr, revocation_reason, state, usage_mask,
};
use openkcm_kmip::payload::{
    self, CipherRequest, CipherResponse, CryptoParams, LocateRequest, RevokeRequest,
};
use openkcm_kmip::{tags as t, ItemContext, KmipError, OperationHandler};
use openkcm_net::{KmipService, PeerIdentity};
use openkcm_store::{KeyStore, Record};
use openkcm_ttlv::{Item, Value};
use std::sync::Arc;

/// Operations the edge answers itself; every other operation is proxied to the Core.
pub const EDGE_OPERATIONS: &[u32] = &[
    op::DISCOVER_VERSIONS,
    op::QUERY,
    op::CREATE,
    op::REGISTER,
    op::REKEY,
    op::DERIVE_KEY,
    op::HASH,
    op::OBTAIN_LEASE,
    op::CHECK,
    op::GET_USAGE_ALLOCATION,
    op::MAC,
    op::MAC_VERIFY,
    op::RNG_RETRIEVE,
    op::RNG_SEED,
    op::GET,
    op::GET_ATTRIBUTES,
    op::GET_ATTRIBUTE_LIST,
    op::ADD_ATTRIBUTE,
    op::MODIFY_ATTRIBUTE,
    op::DELETE_ATTRIBUTE,
    op::SET_ATTRIBUTE,
    op::LOCATE,
    op::ACTIVATE,
    op::REVOKE,
    op::DESTROY,
    op::ENCRYPT,
    op::DECRYPT,
    op::CREATE_SPLIT_KEY,
    op::JOIN_SPLIT_KEY,
    op::ARCHIVE,
    op::RECOVER,
    op::POLL,
    op::CANCEL,
];

/// Operations queued when the client allows asynchronous answers (Asynchronous Indicator): they are run when the
/// client polls, and can be cancelled until then.
const ASYNC_OPERATIONS: &[u32] = &[op::LOCATE, op::ARCHIVE, op::RECOVER];
/// Queued operations kept at most (beyond, operations are answered at once) and for how long unpolled.
const MAX_PENDING: usize = 1024;
const PENDING_TTL: std::time::Duration = std::time::Duration::from_secs(600);
/// Queued operations one client (tenant and service) may hold, so that one client cannot fill the queue.
const MAX_PENDING_PER_CALLER: usize = 64;
/// Largest request payload that is queued (bytes); a larger one is answered at once.
const MAX_PENDING_PAYLOAD: usize = 64 << 10;

/// An operation queued for a client that allowed asynchronous answers.
struct PendingOp {
    tenant: String,
    service: String,
    principal: Option<String>,
    operation: u32,
    payload: Item,
    version: openkcm_kmip::ProtocolVersion,
    header: openkcm_kmip::RequestHeader,
    queued: std::time::Instant,
}

/// Object Group Member: Group Member Fresh / Group Member Default.
const GROUP_MEMBER_FRESH: u32 = 1;
const GROUP_MEMBER_DEFAULT: u32 = 2;
/// The object group whose fresh members the server makes on demand.
const DEFAULT_GROUP: &str = "default";
/// `payload` with its Unique Identifier set to `uid` (an ID Placeholder resolved here, where it is known).
fn with_uid(payload: &Item, uid: &str) -> Item {
    let mut out = payload.clone();
    if let Value::Structure(children) = &mut out.value {
        children.retain(|i| i.tag != t::UNIQUE_IDENTIFIER);
        children.insert(
            0,
            Item::new(t::UNIQUE_IDENTIFIER, Value::TextString(uid.to_owned())),
        );
    }
    out
}

/// How the Core names service keys (L3); no object of the edge's vault has such an identifier.
const L3_UID_PREFIX: &str = "l3-";

/// Every state but Destroyed (and Destroyed Compromised): the object still has its value.
const NOT_DESTROYED: &[u32] = &[
    state::PRE_ACTIVE,
    state::ACTIVE,
    state::DEACTIVATED,
    state::COMPROMISED,
];
/// Attributes a client may keep on one object (beyond those the server keeps in fields): a bound on the work every
/// Get Attributes and Locate does, and on the size of a record.
const MAX_CLIENT_ATTRIBUTES: usize = 256;

fn too_many_attributes() -> KmipError {
    KmipError::invalid_field(format!(
        "an object carries at most {MAX_CLIENT_ATTRIBUTES} attributes of the client's (custom attributes, object groups, links …)"
    ))
}

/// Templates one Create or Register may name (each is looked up by name).
const MAX_TEMPLATES_PER_REQUEST: usize = 16;
/// Put Function: New.
const PUT_FUNCTION_NEW: u32 = 0x01;
/// Secret Data Type of joined secret data: Seed.
const SECRET_DATA_TYPE_SEED: u32 = 0x02;
/// Storage Status Mask: On-line Storage.
const STORAGE_ONLINE: i32 = 1;
/// Storage Status Mask: Archival Storage.
const STORAGE_ARCHIVAL: i32 = 2;
/// Storage Status Mask: Destroyed Storage (KMIP 2.0).
const STORAGE_DESTROYED: i32 = 4;

/// Refuses with Permission Denied unless the object's Cryptographic Usage Mask allows `what`.
fn require_usage(meta: &L4Meta, uid: &str, bit: i32, what: &str) -> Result<(), KmipError> {
    if meta.usage_mask & bit == 0 {
        return Err(KmipError::new(
            rr::PERMISSION_DENIED,
            format!("key {uid:?} does not allow {what} (Cryptographic Usage Mask)"),
        ));
    }
    Ok(())
}

/// Derivation Method: HASH.
const DERIVATION_HASH: u32 = 0x02;

/// The SHA-2 size of a Hashing Algorithm value (SHA-256 6, SHA-384 7, SHA-512 8).
fn sha2_by_enum(alg: u32) -> Option<u32> {
    match alg {
        6 => Some(256),
        7 => Some(384),
        8 => Some(512),
        _ => None,
    }
}

/// Result Reason: Key Value Not Present (KMIP 1.2).
const KEY_VALUE_NOT_PRESENT: u32 = 0x13;

/// Result Reasons Sensitive and Not Extractable (KMIP 1.4).
const RR_SENSITIVE: u32 = 0x16;
const RR_NOT_EXTRACTABLE: u32 = 0x17;

/// Key Wrap Type: As Registered.
const KEY_WRAP_TYPE_AS_REGISTERED: u32 = 2;

/// Usage Limits Unit: Byte.
const USAGE_UNIT_BYTE: u32 = 1;

/// Vault record kind of data keys.
const KIND_L4: &str = "l4";

/// Attributes only the server sets.
const SERVER_ONLY: &[&str] = &[
    "Unique Identifier",
    "State",
    "Initial Date",
    "Last Change Date",
    "Destroy Date",
    "Compromise Date",
    "Revocation Reason",
    "Object Type",
    "Compromise Occurrence Date",
    "Digest",
    "Archive Date",
    "Key Value Present",
    "Lease Time",
    "Always Sensitive",
    "Never Extractable",
];

/// Standard attributes a key may carry several instances of; every other attribute may appear once.
const MULTI_VALUED: &[&str] = &[
    "Name",
    "Object Group",
    "Link",
    "Alternative Name",
    "Application Specific Information",
];

/// The Crypto Edge.
pub struct Edge {
    vault: Arc<dyn KeyStore>,
    core: Arc<CoreLink>,
    /// Whether Encrypt/Decrypt may use legacy algorithms (Triple DES).
    legacy_crypto: bool,
    /// The credentials a request header may carry (`--kmip-credentials`); None: credentials are not checked and
    /// give no rights.
    credentials: Option<Arc<crate::credentials::KmipCredentials>>,
    /// Streamed Encrypt/Decrypt operations in progress, by Correlation Value.
    streams: std::sync::Mutex<std::collections::HashMap<Vec<u8>, StreamState>>,
    /// Serialises Locates with an Object Group Member (Fresh / Default): choosing the member and recording that it
    /// was handed out is one step, so concurrent clients get the round robin in turn and one on-demand member.
    group_locate: tokio::sync::Mutex<()>,
    /// Unwrapped L4 keys, so hot keys cost no Core round trip (`core` custody, DESIGN §6.3).
    l4_cache: crate::l4_cache::L4Cache,
    /// Set while the Core is known to be sealed: every operation but Discover Versions and Query is refused, even
    /// those the edge could answer from its vault alone (attributes, Locate, Revoke, Destroy).
    core_sealed: std::sync::atomic::AtomicBool,
    /// Server-to-client Put and Notify messages (`--notify-endpoint`).
    notifier: Arc<crate::notify::Notifier>,
    /// Operations queued for clients that allowed asynchronous answers, by Asynchronous Correlation Value.
    pending: std::sync::Mutex<std::collections::HashMap<Vec<u8>, PendingOp>>,
}

/// Seconds since the Unix epoch.
pub(crate) fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

fn vault_err(e: openkcm_store::StoreError) -> KmipError {
    tracing::error!(error = %e, "edge vault failure");
    KmipError::general("the key vault failed; see the server log")
}

/// A stored L4: record and decoded attributes. `meta` is authoritative: `record.metadata` is left `Null` by
/// [`Edge::load`], and writers serialise `meta` into it.
struct Stored {
    record: Record,
    meta: L4Meta,
}

impl Edge {
    /// An edge over `vault`, reaching the Core through `core`.
    pub fn new(vault: Arc<dyn KeyStore>, core: CoreLink) -> Self {
        Self {
            vault,
            core: Arc::new(core),
            legacy_crypto: false,
            credentials: None,
            streams: std::sync::Mutex::new(std::collections::HashMap::new()),
            group_locate: tokio::sync::Mutex::new(()),
            l4_cache: crate::l4_cache::L4Cache::new(
                crate::l4_cache::DEFAULT_TTL,
                crate::l4_cache::DEFAULT_CAPACITY,
            ),
            core_sealed: std::sync::atomic::AtomicBool::new(false),
            pending: std::sync::Mutex::new(std::collections::HashMap::new()),
            notifier: Arc::new(crate::notify::Notifier::default()),
        }
    }

    /// Seals the vault's records under a key from the Core (zero-knowledge metadata, [`crate::SealedVault`]), for a
    /// persistent vault (a memory vault never reaches storage).
    pub fn with_sealed_vault(mut self) -> Self {
        self.vault = Arc::new(crate::SealedVault::new(
            self.vault.clone(),
            self.core.clone(),
        ));
        self
    }

    /// Opens the vault now rather than at the first request (for a sealed vault: gets its key from the Core, seals
    /// an earlier release's clear records, refuses a vault sealed under another key), so that a start can fail
    /// with the reason. Needs an unsealed Core.
    pub async fn open_vault(&self) -> Result<(), openkcm_store::StoreError> {
        self.vault.list_tenants().await.map(|_| ())
    }

    /// Records whether the Core is sealed. Sealing also forgets every plaintext key the edge holds.
    pub fn set_core_sealed(&self, sealed: bool) {
        self.core_sealed
            .store(sealed, std::sync::atomic::Ordering::SeqCst);
        if sealed {
            self.forget_all_keys();
        }
    }

    /// Accepts KMIP request credentials (Username and Password, Device) from `credentials`.
    pub fn with_credentials(mut self, credentials: crate::credentials::KmipCredentials) -> Self {
        self.credentials = Some(Arc::new(credentials));
        self
    }

    /// Keeps unwrapped L4 keys for `ttl` (at most `capacity` of them); a zero `ttl` turns the cache off, so every
    /// use of a key unwraps it through the Core.
    pub fn with_l4_cache(mut self, ttl: std::time::Duration, capacity: usize) -> Self {
        self.l4_cache = crate::l4_cache::L4Cache::new(ttl, capacity);
        self
    }

    /// Forgets every plaintext key this edge holds (cached data keys and leased service keys), zeroizing them: the
    /// Core was sealed, and nothing may be served from memory until it is unsealed.
    pub fn forget_all_keys(&self) {
        self.l4_cache.purge_all();
        self.core.purge_all_leases();
    }

    /// L4 cache lookups since start: (served from the cache, unwrapped through the Core).
    pub fn l4_cache_stats(&self) -> (u64, u64) {
        self.l4_cache.stats()
    }

    /// Sends Put and Notify messages through `notifier` (see [`crate::notify`]).
    pub fn with_notifier(mut self, notifier: crate::notify::Notifier) -> Self {
        self.notifier = Arc::new(notifier);
        self
    }

    /// Allows (or not) Encrypt and Decrypt with Triple DES keys. Off by default: legacy algorithms are only for
    /// reading data older systems wrote.
    pub fn with_legacy_crypto(mut self, enabled: bool) -> Self {
        self.legacy_crypto = enabled;
        self
    }

    async fn load(&self, tenant: &str, service: &str, uid: &str) -> Result<Stored, KmipError> {
        if uid.starts_with(L3_UID_PREFIX) {
            return Err(KmipError::new(
                rr::PERMISSION_DENIED,
                format!(
                    "{uid:?} names a service key: service keys never leave the Crypto Core; an application may read \
                     its attributes, find it (Locate with {}) and re-key it",
                    openkcm_kmip::attributes::ATTR_SERVICE_KEY
                ),
            ));
        }
        // The metadata is decoded once, from the stored JSON text straight into `L4Meta` (the hot path of every
        // operation on a key).
        let raw = self
            .vault
            .get_json(tenant, KIND_L4, uid, 0)
            .await
            .map_err(vault_err)?
            .ok_or_else(|| KmipError::not_found(uid))?;
        let meta: L4Meta = serde_json::from_slice(&raw.metadata).map_err(|e| {
            tracing::error!(uid, error = %e, "corrupt L4 metadata");
            KmipError::general("stored key attributes are corrupt; see the server log")
        })?;
        let record = Record {
            tenant: tenant.to_owned(),
            kind: KIND_L4.to_owned(),
            id: uid.to_owned(),
            version: 0,
            metadata: serde_json::Value::Null,
            blob: raw.blob,
            revision: raw.revision,
        };
        // Identity-bound authorization: another service's key does not exist for this caller.
        if meta.service != service {
            return Err(KmipError::not_found(uid));
        }
        // An object created under a credential is that principal's alone.
        if !owner_may_use(&meta) {
            return Err(KmipError::new(
                rr::PERMISSION_DENIED,
                format!("access denied: object {uid:?} belongs to another credential"),
            ));
        }
        Ok(Stored { record, meta })
    }

    /// Applies `change` to the stored key and writes it with compare-and-set, re-reading and re-checking when
    /// another request changed the key in between (so concurrent requests are serialised, not failed).
    async fn update<F>(
        &self,
        tenant: &str,
        service: &str,
        uid: &str,
        change: F,
    ) -> Result<(), KmipError>
    where
        F: Fn(&mut Stored, i64) -> Result<(), KmipError> + Send + Sync,
    {
        for _ in 0..16 {
            let mut stored = self.load(tenant, service, uid).await?;
            let revision = stored.record.revision;
            let mut before = stored.record.clone();
            before.metadata = serde_json::to_value(&stored.meta)
                .map_err(|e| KmipError::general(e.to_string()))?;
            let state_before = stored.meta.state;
            change(&mut stored, now())?;
            // A new state or a new (or no) wrapped key drops the unwrapped copy: a destroyed or compromised key
            // leaves memory at once. Other changes keep it (every use re-reads the record and its state anyway).
            let drop_cached =
                stored.meta.state != state_before || stored.record.blob != before.blob;
            let mut record = stored.record.clone();
            record.metadata = serde_json::to_value(&stored.meta)
                .map_err(|e| KmipError::general(e.to_string()))?;
            if self
                .vault
                .compare_and_set(&record, revision)
                .await
                .map_err(vault_err)?
            {
                if drop_cached {
                    self.l4_cache.purge(tenant, uid);
                }
                journal(tenant, uid, Some(before));
                return Ok(());
            }
        }
        Err(KmipError::general(
            "the key is being changed by many requests at once; retry the operation",
        ))
    }

    /// The plaintext key of a stored L4 that may be served, checked against its record.
    async fn key_of(
        &self,
        tenant: &str,
        service: &str,
        uid: &str,
        stored: &Stored,
    ) -> Result<openkcm_crypto::SecretBytes, KmipError> {
        refuse_template(&stored.meta, uid, "a cryptographic operation")?;
        refuse_archived(&stored.meta, uid)?;
        if stored.meta.key_value_absent {
            return Err(KmipError::new(
                KEY_VALUE_NOT_PRESENT,
                format!(
                    "key {uid:?} was registered without its Key Value (see its Key Value Location)"
                ),
            ));
        }
        let wrapped: &WrappedKey = stored.record.blob.as_ref().ok_or_else(|| {
            KmipError::new(
                rr::OBJECT_DESTROYED,
                format!("key {uid:?} has been destroyed"),
            )
        })?;
        let h = wrapped.header_ref();
        if h.tenant != tenant || h.key_id != uid || h.layer != openkcm_crypto::Layer::L4 {
            tracing::warn!(uid, "wrapped key header does not match its vault record");
            return Err(KmipError::crypto(format!(
                "the wrapped key stored for {uid:?} belongs to another tenant or key; refusing to unwrap it"
            )));
        }
        if let Some(key) = self.l4_cache.get(tenant, uid, wrapped) {
            return Ok(key);
        }
        let key = self.core.unwrap(tenant, service, wrapped).await.map_err(|e| {
            if e.reason == rr::ITEM_NOT_FOUND {
                tracing::error!(uid, "the Core does not know the service key that wrapped this key");
                KmipError::crypto(format!(
                    "key {uid:?} cannot be unwrapped: the Crypto Core does not know the service key version that \
                     wrapped it (was the Core's storage lost or replaced?)"
                ))
            } else {
                e
            }
        })?;
        // Envelope rotation (DESIGN §6): a key still wrapped under a service key that was rotated is re-wrapped under
        // the current one, same key bytes, and written back with compare-and-set (a lost race is harmless).
        if self.core.rotated_away(tenant, service, &h.parent_id).await {
            if let Some(rewrapped) = self.rewrap(tenant, service, uid, stored, &key).await {
                self.l4_cache.put(tenant, uid, &rewrapped, &key);
                return Ok(key);
            }
        }
        self.l4_cache.put(tenant, uid, wrapped, &key);
        Ok(key)
    }

    /// Re-wraps `key` under the service's current L3 and stores it in place of `stored`'s wrapped key, unless the
    /// record changed meanwhile. Returns the new wrapped key when it was stored.
    async fn rewrap(
        &self,
        tenant: &str,
        service: &str,
        uid: &str,
        stored: &Stored,
        key: &openkcm_crypto::SecretBytes,
    ) -> Option<WrappedKey> {
        let rewrapped = match self.core.wrap(tenant, service, uid, key.expose()).await {
            Ok(w) => w,
            Err(e) => {
                tracing::warn!(tenant, uid, error = %e.message, "re-wrapping a key under the current service key failed; it stays as it is");
                return None;
            }
        };
        let mut record = stored.record.clone();
        record.metadata = serde_json::to_value(&stored.meta).ok()?;
        record.blob = Some(rewrapped.clone());
        match self
            .vault
            .compare_and_set(&record, stored.record.revision)
            .await
        {
            Ok(true) => {
                tracing::debug!(tenant, uid, "key re-wrapped under the current service key");
                Some(rewrapped)
            }
            Ok(false) => None,
            Err(e) => {
                tracing::warn!(tenant, uid, error = %e, "storing a re-wrapped key failed; it stays as it is");
                None
            }
        }
    }

    /// Takes `bytes` (Byte unit) or one use (Object unit) from the object's Usage Limits, if it has any; refuses
    /// with Permission Denied when not enough is left.
    async fn consume_usage(
        &self,
        tenant: &str,
        service: &str,
        uid: &str,
        bytes: usize,
        what: &str,
    ) -> Result<(), KmipError> {
        self.update(tenant, service, uid, |stored, _| {
            let Some((total, count, unit)) = stored.meta.usage_limits() else {
                return Ok(());
            };
            let amount = if unit == USAGE_UNIT_BYTE { i64::try_from(bytes).unwrap_or(i64::MAX) } else { 1 };
            if amount > count {
                return Err(KmipError::new(
                    rr::PERMISSION_DENIED,
                    format!("key {uid:?} has used up its Usage Limits ({count} of {total} left, {what} needs {amount})"),
                ));
            }
            stored.meta.set_usage_limits(total, count - amount, unit);
            Ok(())
        })
        .await
    }

    fn require_state(
        meta: &L4Meta,
        uid: &str,
        allowed: &[u32],
        what: &str,
    ) -> Result<(), KmipError> {
        let s = meta.effective_state(now());
        if matches!(s, state::DESTROYED | state::DESTROYED_COMPROMISED) && !allowed.contains(&s) {
            return Err(KmipError::new(
                rr::OBJECT_DESTROYED,
                format!("key {uid:?} has been destroyed"),
            ));
        }
        if allowed.contains(&s) {
            Ok(())
        } else {
            Err(KmipError::wrong_state(format!(
                "key {uid:?} is {}; {what}",
                state::name(s)
            )))
        }
    }
}

/// The KMIP service of the edge listener.
pub struct EdgeKmipService {
    edge: Arc<Edge>,
}

impl EdgeKmipService {
    /// A service over `edge`.
    pub fn new(edge: Arc<Edge>) -> Self {
        Self { edge }
    }
}

#[async_trait::async_trait]
impl KmipService for EdgeKmipService {
    async fn handle(&self, peer: &PeerIdentity, request: &Item) -> Item {
        let ops = EdgeOps {
            edge: &self.edge,
            peer,
        };
        // A credential in the header names a principal within this identity (checked against --kmip-credentials).
        let principal = match &self.edge.credentials {
            Some(c) => match c.principal(request) {
                Ok(p) => p,
                Err(e) => {
                    let version = request
                        .child(t::REQUEST_HEADER)
                        .and_then(|h| h.child(t::PROTOCOL_VERSION))
                        .and_then(|v| openkcm_kmip::ProtocolVersion::from_item(v).ok())
                        .map(openkcm_kmip::negotiate)
                        .unwrap_or(openkcm_kmip::ProtocolVersion::new(1, 0));
                    openkcm_net::log_refusal(peer, version, 0, &e);
                    return openkcm_kmip::error_response(version, e);
                }
            },
            None => None,
        };
        // A batch that asks for Undo runs with a journal of the vault writes it makes, so a failure can roll them
        // back.
        let undo = request
            .child(t::REQUEST_HEADER)
            .and_then(|h| h.child(t::BATCH_ERROR_CONTINUATION_OPTION))
            .and_then(Item::as_enum)
            == Some(openkcm_kmip::enums::batch_error_continuation::UNDO);
        let run = async {
            if undo {
                UNDO_JOURNAL
                    .scope(
                        std::sync::Mutex::new(Vec::new()),
                        openkcm_kmip::process(&ops, request),
                    )
                    .await
            } else {
                openkcm_kmip::process(&ops, request).await
            }
        };
        PRINCIPAL.scope(principal, run).await
    }
}

/// A vault write made by the current message: the record as it was before (None: the message created it).
struct JournalEntry {
    tenant: String,
    id: String,
    previous: Option<Record>,
}

tokio::task_local! {
    /// The writes of a batch that may have to be undone (set only for batches that ask for Undo).
    static UNDO_JOURNAL: std::sync::Mutex<Vec<JournalEntry>>;
    /// The credential principal of the message being handled (None: no credential).
    static PRINCIPAL: Option<String>;
}

/// The credential principal of the current message.
fn current_principal() -> Option<String> {
    PRINCIPAL.try_with(Clone::clone).ok().flatten()
}

/// Whether the current message's principal may use an object (its owner, if it has one).
fn owner_may_use(meta: &L4Meta) -> bool {
    meta.owner.is_none() || meta.owner == current_principal()
}

/// Notes a vault write for Undo, keeping only the first state of each record.
fn journal(tenant: &str, id: &str, previous: Option<Record>) {
    let _ = UNDO_JOURNAL.try_with(|j| {
        if let Ok(mut j) = j.lock() {
            if !j.iter().any(|e| e.tenant == tenant && e.id == id) {
                j.push(JournalEntry {
                    tenant: tenant.into(),
                    id: id.into(),
                    previous,
                });
            }
        }
    });
}

struct EdgeOps<'a> {
    edge: &'a Edge,
    peer: &'a PeerIdentity,
}

impl EdgeOps<'_> {
    fn caller(&self) -> Result<(&str, &str), KmipError> {
        match self.peer {
            PeerIdentity::Application { tenant, service } => Ok((tenant, service)),
            PeerIdentity::Edge { .. } => Err(KmipError::new(
                rr::PERMISSION_DENIED,
                "edge identities cannot use data keys",
            )),
            PeerIdentity::Operator { .. } => Err(KmipError::new(
                rr::PERMISSION_DENIED,
                "operator identities cannot use data keys",
            )),
        }
    }

    async fn create(&self, ctx: &ItemContext, payload: &Item) -> Result<Item, KmipError> {
        let (tenant, service) = self.caller()?;
        let ot = payload
            .child(t::OBJECT_TYPE)
            .and_then(Item::as_enum)
            .ok_or_else(|| KmipError::missing("Object Type"))?;
        if ot != object_type::SYMMETRIC_KEY {
            return Err(KmipError::invalid_field(
                "Create makes symmetric keys only (Object Type Symmetric Key)",
            ));
        }
        let now = now();
        let mut meta = L4Meta::new_aes(service, now);
        let attrs = self.requested_attributes(ctx, payload).await?;
        let (alg, len) = Self::client_attributes(attrs, &mut meta, now)?;
        let alg = alg.unwrap_or(algorithm::AES);
        let len = match (alg, len) {
            (_, Some(l)) => l,
            (algorithm::AES, None) => 256,
            _ => return Err(KmipError::missing("Cryptographic Length")),
        };
        if meta
            .extra
            .iter()
            .any(|e| e.name == "Random Number Generator")
        {
            return Err(KmipError::invalid_field(
                "the Random Number Generator of a key the server generates is set by the server",
            ));
        }
        let material = objects::generate(alg, len)?;
        meta.server_generated = true;
        meta.algorithm = alg;
        meta.length = len;
        let uid = self.store_new(tenant, service, meta, &material).await?;
        // Per-request records are the audit trail's job (DESIGN §11); the operations log keeps them at debug.
        tracing::debug!(tenant, service, uid, "created data key");
        self.notify_new(ctx, &uid).await;
        Ok(Item::structure(
            t::RESPONSE_PAYLOAD,
            vec![
                Item::new(
                    t::OBJECT_TYPE,
                    Value::Enumeration(object_type::SYMMETRIC_KEY),
                ),
                Item::new(t::UNIQUE_IDENTIFIER, Value::TextString(uid)),
            ],
        ))
    }

    async fn register(&self, ctx: &ItemContext, payload: &Item) -> Result<Item, KmipError> {
        let (tenant, service) = self.caller()?;
        if payload.child(t::OBJECT_TYPE).and_then(Item::as_enum) == Some(object_type::TEMPLATE) {
            return self.register_template(ctx, payload).await;
        }
        let attrs = self.requested_attributes(ctx, payload).await?;
        let mut reg = objects::parse_register(payload)?;
        let registered_wrapping = match reg.wrapping.take() {
            Some(data) => {
                // Registered wrapped: unwrap with the caller's key-encryption key so that the key can be used, and
                // keep how it was wrapped for Get As Registered.
                let spec = objects::parse_wrapping(&data)?;
                let kek = self
                    .wrapping_key(
                        tenant,
                        service,
                        &spec.kek_uid,
                        usage_mask::WRAP_KEY | usage_mask::UNWRAP_KEY,
                    )
                    .await?;
                reg.material = aes::key_unwrap(kek.expose(), reg.material.expose(), spec.padded)
                    .map_err(|e| {
                        KmipError::crypto(format!(
                            "unwrapping the registered key with {:?} failed: {e}",
                            spec.kek_uid
                        ))
                    })?;
                // "s:" marks a Key Value that came as a structure holding the Key Material.
                let form = if reg.wrapped_in_key_material {
                    "s:"
                } else {
                    ""
                };
                Some(format!(
                    "{form}{}",
                    hex::encode(openkcm_ttlv::encode(&spec.data))
                ))
            }
            None => None,
        };
        let now = now();
        let mut meta = L4Meta::new_aes(service, now);
        meta.object_type = reg.object_type;
        meta.key_value_absent = !reg.value_present;
        // The Original Creation Date of a registered object is the client's to give (none otherwise).
        meta.original_creation_date = None;
        meta.registered_wrapping = registered_wrapping;
        meta.key_format = reg.key_format;
        meta.data_type = reg.data_type;
        // Without a Cryptographic Usage Mask a registered object gets none: it can be stored and returned, and
        // is used for a cryptographic operation only once a mask allowing it is set.
        meta.usage_mask = 0;
        let (alg, len) = Self::client_attributes(attrs, &mut meta, now)?;
        meta.split = reg.split;
        if reg.object_type == object_type::SPLIT_KEY {
            // A part carries the algorithm and length of the key it is part of, when the client gives them.
            meta.algorithm = reg.algorithm.or(alg).unwrap_or(0);
            meta.length = reg.length.or(len).unwrap_or(0);
        } else if reg.object_type == object_type::SYMMETRIC_KEY {
            meta.algorithm = reg.algorithm.or(alg).unwrap_or(0);
            if reg.value_present {
                objects::check_material_len(meta.algorithm, reg.material.len())?;
            }
            meta.length = reg
                .length
                .or(len)
                .unwrap_or(i32::try_from(reg.material.len() * 8).unwrap_or(0));
        } else {
            meta.algorithm = 0;
            meta.length = 0;
        }
        let uid = self.store_new(tenant, service, meta, &reg.material).await?;
        tracing::debug!(tenant, service, uid, "registered object");
        self.notify_new(ctx, &uid).await;
        Ok(payload::uid_payload(t::RESPONSE_PAYLOAD, &uid))
    }

    /// The attributes a Create or Register applies: those of the Templates its Template-Attribute names (KMIP
    /// 1.x), in order, then the request's own. A single-valued attribute given by a later source replaces the
    /// earlier one (the request's attributes take precedence over its Templates'); the instances of a
    /// multi-instance attribute (Object Group, Link, custom x-… attributes …) add up.
    async fn requested_attributes(
        &self,
        ctx: &ItemContext,
        payload: &Item,
    ) -> Result<Vec<Attribute>, KmipError> {
        let (own, templates) = attributes::from_payload_with_templates(payload)?;
        if templates.is_empty() {
            return Ok(own);
        }
        if ctx.version.is_v2() {
            return Err(KmipError::invalid_field(
                "KMIP 2.x has no Templates; send the attributes themselves",
            ));
        }
        if templates.len() > MAX_TEMPLATES_PER_REQUEST {
            return Err(KmipError::invalid_field(format!(
                "a request may name at most {MAX_TEMPLATES_PER_REQUEST} Templates"
            )));
        }
        for (i, name) in templates.iter().enumerate() {
            if templates[..i].contains(name) {
                return Err(KmipError::invalid_field(format!(
                    "the Template {name:?} is named twice"
                )));
            }
        }
        let mut merged: Vec<Attribute> = Vec::new();
        let mut sources = Vec::with_capacity(templates.len() + 1);
        for name in &templates {
            sources.push(self.template_named(name).await?.template_attributes());
        }
        sources.push(own);
        for source in sources {
            merged.retain(|a| is_multi(&a.name) || !source.iter().any(|b| b.name == a.name));
            merged.extend(source);
            if merged.len() > MAX_CLIENT_ATTRIBUTES + 32 {
                return Err(too_many_attributes());
            }
        }
        Ok(merged)
    }

    /// The caller's live Template called `name`.
    async fn template_named(&self, name: &str) -> Result<L4Meta, KmipError> {
        let (tenant, service) = self.caller()?;
        // Templates are rare (deprecated since KMIP 1.3): a scan of the caller's objects, not an index.
        for record in self
            .edge
            .vault
            .list(tenant, KIND_L4)
            .await
            .map_err(vault_err)?
        {
            let Ok(meta) = serde_json::from_value::<L4Meta>(record.metadata) else {
                continue;
            };
            if meta.object_type == object_type::TEMPLATE
                && meta.service == service
                && meta.archive_date.is_none()
                && !matches!(meta.state, state::DESTROYED | state::DESTROYED_COMPROMISED)
                && owner_may_use(&meta)
                && meta.names.iter().any(|n| n == name)
            {
                return Ok(meta);
            }
        }
        Err(KmipError::new(
            rr::ITEM_NOT_FOUND,
            format!("no Template named {name:?}"),
        ))
    }

    /// Register of a Template (KMIP 1.x): a named set of attributes that later Create and Register requests apply
    /// by naming it. It holds no key material and has no lifecycle of its own; Destroy removes it.
    async fn register_template(
        &self,
        ctx: &ItemContext,
        payload: &Item,
    ) -> Result<Item, KmipError> {
        let (tenant, service) = self.caller()?;
        if ctx.version.is_v2() {
            return Err(KmipError::invalid_field(
                "KMIP 2.0 removed Template objects; send the attributes with each request",
            ));
        }
        let template = payload
            .child(t::TEMPLATE)
            .ok_or_else(|| KmipError::missing("Template"))?;
        let mut names = Vec::new();
        let mut kept = Vec::new();
        let (own, referenced) = attributes::from_payload_with_templates(payload)?;
        if !referenced.is_empty() {
            return Err(KmipError::invalid_field(
                "a Template cannot be registered from other Templates",
            ));
        }
        let mut given = Vec::new();
        for a in template.children_with(t::ATTRIBUTE) {
            given.push(Attribute::from_v1(a)?);
        }
        let now = now();
        // The attributes must be ones an object could be given: checked as if applied to a key now.
        let mut scratch = L4Meta::new_aes(service, now);
        Self::client_attributes(given.clone(), &mut scratch, now)?;
        Self::client_attributes(own.clone(), &mut scratch, now)?;
        // A Name inside the Template names the Template itself (it is never given to the objects made with it).
        for a in given {
            if a.name == "Name" {
                names.push(a.name_text().unwrap_or_default().to_owned());
            } else {
                kept.push(ExtraAttr::of(&a));
            }
        }
        // The Template-Attribute of the request holds the Template object's own attributes (Name, x-…).
        let mut own_extra = Vec::new();
        for a in own {
            if a.name == "Name" {
                names.push(a.name_text().unwrap_or_default().to_owned());
            } else {
                own_extra.push(ExtraAttr::of(&a));
            }
        }
        if names.is_empty() {
            return Err(KmipError::missing(
                "Name (Create and Register refer to a Template by its Name)",
            ));
        }
        for name in &names {
            if self.template_named(name).await.is_ok() {
                return Err(KmipError::invalid_field(format!(
                    "a Template named {name:?} already exists"
                )));
            }
        }
        let mut meta = L4Meta::new_aes(service, now);
        meta.object_type = object_type::TEMPLATE;
        meta.key_value_absent = true;
        meta.algorithm = 0;
        meta.length = 0;
        meta.usage_mask = 0;
        meta.names = names;
        meta.extra = own_extra;
        meta.template = kept;
        let uid = self
            .store_new(
                tenant,
                service,
                meta,
                &openkcm_crypto::SecretBytes::new(Vec::new()),
            )
            .await?;
        tracing::debug!(tenant, service, uid, "registered template");
        Ok(payload::uid_payload(t::RESPONSE_PAYLOAD, &uid))
    }

    /// The caller and object `uid`, when the caller has a notify endpoint (else nothing is built or sent).
    async fn notify_target(&self, uid: &str) -> Option<(&str, &str, Stored)> {
        let (tenant, service) = self.caller().ok()?;
        if !self.edge.notifier.wants(tenant, service) {
            return None;
        }
        let stored = self.edge.load(tenant, service, uid).await.ok()?;
        Some((tenant, service, stored))
    }

    /// Put (Put Function New) of a new object to the caller's notify endpoint, if one is configured. Templates,
    /// split key parts, and keys that are sensitive or not extractable are not sent.
    async fn notify_new(&self, ctx: &ItemContext, uid: &str) {
        let Some((tenant, service, stored)) = self.notify_target(uid).await else {
            return;
        };
        let m = &stored.meta;
        if !matches!(
            m.object_type,
            object_type::SYMMETRIC_KEY | object_type::SECRET_DATA | object_type::OPAQUE_OBJECT
        ) || m.sensitive
            || m.not_extractable
            || m.key_value_absent
            || m.split.is_some()
        {
            tracing::debug!(
                tenant,
                service,
                uid,
                "no Put for this object (not a plain extractable object)"
            );
            return;
        }
        let put = async {
            let material = self.edge.key_of(tenant, service, uid, &stored).await?;
            let object = objects::get_response(
                uid,
                m.object_type,
                material.expose(),
                m.algorithm,
                m.length,
                m.key_format,
                None,
                m.data_type,
                None,
            )?;
            let mut children = vec![
                Item::new(t::UNIQUE_IDENTIFIER, Value::TextString(uid.to_owned())),
                Item::new(t::PUT_FUNCTION, Value::Enumeration(PUT_FUNCTION_NEW)),
            ];
            children.extend(object.children().get(2).cloned());
            // The attributes Get Attributes returns, less the description of the server's generator and the
            // protection flags at their defaults (not sensitive, extractable).
            let attrs: Vec<Attribute> = m
                .attributes_for(uid, now(), ctx.version)
                .into_iter()
                .filter(|a| {
                    !matches!(
                        (a.name.as_str(), &a.value.value),
                        ("Random Number Generator", _)
                            | (
                                "Sensitive" | "Always Sensitive" | "Never Extractable",
                                Value::Boolean(false)
                            )
                            | ("Extractable", Value::Boolean(true))
                    )
                })
                .collect();
            children.extend(attributes::to_payload_items(&attrs, ctx.version));
            Ok::<_, KmipError>(Item::structure(t::REQUEST_PAYLOAD, children))
        };
        match put.await {
            Ok(payload) => self
                .edge
                .notifier
                .send(tenant, service, ctx.version, op::PUT, payload),
            Err(e) => {
                tracing::error!(tenant, service, uid, error = %e.message, "the Put of a new object could not be built: it is not sent")
            }
        }
    }

    /// Notify of the attributes `names` (their current values) of object `uid` to the caller's notify endpoint.
    async fn notify_changed(&self, ctx: &ItemContext, uid: &str, names: &[&str]) {
        let Some((tenant, service, stored)) = self.notify_target(uid).await else {
            return;
        };
        let attrs: Vec<Attribute> = stored
            .meta
            .attributes_for(uid, now(), ctx.version)
            .into_iter()
            .filter(|a| names.contains(&a.name.as_str()))
            .collect();
        let mut children = vec![Item::new(
            t::UNIQUE_IDENTIFIER,
            Value::TextString(uid.to_owned()),
        )];
        children.extend(attributes::to_payload_items(&attrs, ctx.version));
        self.edge.notifier.send(
            tenant,
            service,
            ctx.version,
            op::NOTIFY,
            Item::structure(t::REQUEST_PAYLOAD, children),
        );
    }

    /// Wraps `material` under the service's L3 and stores it with `meta`; returns the new identifier.
    async fn store_new(
        &self,
        tenant: &str,
        service: &str,
        mut meta: L4Meta,
        material: &openkcm_crypto::SecretBytes,
    ) -> Result<String, KmipError> {
        let uid = uuid::Uuid::new_v4().to_string();
        meta.owner = current_principal();
        // A key registered without its value (kept elsewhere) has no digest and nothing to wrap.
        let wrapped = if meta.key_value_absent {
            None
        } else {
            meta.digest = Some(hex::encode(objects::digest(
                meta.object_type,
                meta.key_format,
                material.expose(),
            )));
            Some(
                self.edge
                    .core
                    .wrap(tenant, service, &uid, material.expose())
                    .await?,
            )
        };
        let record = Record {
            tenant: tenant.into(),
            kind: KIND_L4.into(),
            id: uid.clone(),
            version: 0,
            metadata: serde_json::to_value(&meta).map_err(|e| KmipError::general(e.to_string()))?,
            blob: wrapped,
            revision: 0,
        };
        if !self
            .edge
            .vault
            .put_if_absent(&record)
            .await
            .map_err(vault_err)?
        {
            return Err(KmipError::general(
                "a key with the generated identifier already exists; retry",
            ));
        }
        if let Some(w) = &record.blob {
            // A new key is usually used at once (Get, Encrypt): keep it unwrapped.
            self.edge.l4_cache.put(tenant, &uid, w, material);
        }
        journal(tenant, &uid, None);
        Ok(uid)
    }

    /// Applies the client's attributes (Template-Attribute or Attributes) to `meta`; returns the Cryptographic
    /// Algorithm and Length given, which the caller checks against the object.
    fn client_attributes(
        attrs: Vec<Attribute>,
        meta: &mut L4Meta,
        now: i64,
    ) -> Result<(Option<u32>, Option<i32>), KmipError> {
        let mut alg = None;
        let mut len = None;
        let mut seen: Vec<String> = Vec::new();
        for a in attrs {
            if openkcm_kmip::attribute_names::tag_for_name(&a.name).is_none()
                && !a.name.starts_with("x-")
            {
                return Err(KmipError::invalid_field(if a.name.starts_with("y-") {
                    format!(
                        "attribute {:?}: names starting with y- are reserved for servers",
                        a.name
                    )
                } else {
                    format!(
                        "attribute {:?} is not a KMIP attribute; custom attributes start with x-",
                        a.name
                    )
                }));
            }
            if seen.contains(&a.name) && !is_multi(&a.name) {
                return Err(KmipError::invalid_field(format!(
                    "attribute {:?} may be given only once",
                    a.name
                )));
            }
            seen.push(a.name.clone());
            let bad_type = |what: &str| {
                KmipError::invalid_field(format!("attribute {:?} must be {what}", a.name))
            };
            match a.name.as_str() {
                "Cryptographic Algorithm" => {
                    alg = Some(
                        a.value
                            .as_enum()
                            .ok_or_else(|| bad_type("an Enumeration"))?,
                    )
                }
                "Cryptographic Length" => {
                    len = Some(a.value.as_i32().ok_or_else(|| bad_type("an Integer"))?)
                }
                "Cryptographic Usage Mask" => {
                    meta.usage_mask = a.value.as_i32().ok_or_else(|| bad_type("an Integer"))?
                }
                "Name"
                    if a.name_text().is_some_and(|n| {
                        n.trim().is_empty() || n.chars().any(char::is_control) || n.len() > 1024
                    }) =>
                {
                    return Err(KmipError::invalid_field(
                        "a Name must have visible characters, no control characters, and at most 1024 bytes",
                    ))
                }
                "Name" => meta.names.push(
                    a.name_text()
                        .ok_or_else(|| bad_type("a Name structure"))?
                        .to_owned(),
                ),
                "Fresh" => meta.fresh = a.value.as_bool().ok_or_else(|| bad_type("a Boolean"))?,
                "Sensitive" => {
                    meta.sensitive = a.value.as_bool().ok_or_else(|| bad_type("a Boolean"))?;
                    meta.always_sensitive = meta.sensitive;
                }
                "Extractable" => {
                    meta.not_extractable = !a.value.as_bool().ok_or_else(|| bad_type("a Boolean"))?;
                    meta.never_extractable = meta.not_extractable;
                }
                "Original Creation Date" => {
                    meta.original_creation_date =
                        Some(a.value.as_datetime().ok_or_else(|| bad_type("a Date-Time"))?)
                }
                "Activation Date" => {
                    meta.activation_date = Some(
                        a.value
                            .as_datetime()
                            .ok_or_else(|| bad_type("a Date-Time"))?,
                    )
                }
                "Deactivation Date" => {
                    meta.deactivation_date = Some(
                        a.value
                            .as_datetime()
                            .ok_or_else(|| bad_type("a Date-Time"))?,
                    )
                }
                "Usage Limits" => {
                    let (total, count, unit) = parse_usage_limits(&a.value)?;
                    meta.set_usage_limits(total, count, unit);
                }
                n if SERVER_ONLY.contains(&n) => {
                    return Err(KmipError::invalid_field(format!(
                        "attribute {n:?} is set by the server, not the client"
                    )))
                }
                _ => meta.extra.push(ExtraAttr {
                    name: a.name.clone(),
                    value_ttlv: hex::encode(openkcm_ttlv::encode(&a.value)),
                }),
            }
        }
        if meta.extra.len() > MAX_CLIENT_ATTRIBUTES || meta.names.len() > MAX_CLIENT_ATTRIBUTES {
            return Err(too_many_attributes());
        }
        if let (Some(a), Some(d)) = (meta.activation_date, meta.deactivation_date) {
            if d < a {
                return Err(KmipError::invalid_field(
                    "the Deactivation Date is earlier than the Activation Date",
                ));
            }
        }
        if meta.activation_date.is_some_and(|d| d <= now) {
            meta.state = state::ACTIVE;
        }
        Ok((alg, len))
    }

    async fn edit_attribute(
        &self,
        ctx: &ItemContext,
        payload: &Item,
        operation: u32,
    ) -> Result<Item, KmipError> {
        let (tenant, service) = self.caller()?;
        let uid = ctx.uid(payload)?;
        let v2_attr = |tag: u32, what: &str| -> Result<Attribute, KmipError> {
            let holder = payload.child(tag).ok_or_else(|| KmipError::missing(what))?;
            let first = holder
                .children()
                .first()
                .ok_or_else(|| KmipError::missing(what))?;
            Attribute::from_v2(first)
        };
        // (attribute to write, or name/index to delete; for 2.x the current value locating the instance)
        let (edit, mut attr, current): (Option<Edit>, Attribute, Option<Attribute>) = if ctx
            .version
            .is_v2()
        {
            match operation {
                op::ADD_ATTRIBUTE => (
                    Some(Edit::Add),
                    v2_attr(t::NEW_ATTRIBUTE, "New Attribute")?,
                    None,
                ),
                op::SET_ATTRIBUTE => (
                    Some(Edit::Set),
                    v2_attr(t::NEW_ATTRIBUTE, "New Attribute")?,
                    None,
                ),
                op::MODIFY_ATTRIBUTE => {
                    let current = payload
                        .child(t::CURRENT_ATTRIBUTE)
                        .map(|_| v2_attr(t::CURRENT_ATTRIBUTE, "Current Attribute"))
                        .transpose()?;
                    (
                        Some(Edit::Modify),
                        v2_attr(t::NEW_ATTRIBUTE, "New Attribute")?,
                        current,
                    )
                }
                _ => {
                    if payload.child(t::CURRENT_ATTRIBUTE).is_some() {
                        let c = v2_attr(t::CURRENT_ATTRIBUTE, "Current Attribute")?;
                        (None, c.clone(), Some(c))
                    } else {
                        let r = payload.child(t::ATTRIBUTE_REFERENCE).ok_or_else(|| {
                            KmipError::missing("Current Attribute or Attribute Reference")
                        })?;
                        let name = match &r.value {
                            Value::Enumeration(tag) => {
                                openkcm_kmip::attribute_names::name_for_tag(*tag)
                                    .ok_or_else(|| {
                                        KmipError::invalid_field(
                                            "the Attribute Reference names no attribute",
                                        )
                                    })?
                                    .to_owned()
                            }
                            _ => r
                                .child(t::ATTRIBUTE_NAME)
                                .and_then(Item::as_text)
                                .ok_or_else(|| {
                                    KmipError::missing("Attribute Name in the Attribute Reference")
                                })?
                                .to_owned(),
                        };
                        (
                            None,
                            Attribute {
                                name,
                                index: None,
                                value: Item::new(t::ATTRIBUTE_VALUE, Value::Structure(vec![])),
                            },
                            None,
                        )
                    }
                }
            }
        } else if operation == op::DELETE_ATTRIBUTE {
            let name = payload
                .child(t::ATTRIBUTE_NAME)
                .and_then(Item::as_text)
                .ok_or_else(|| KmipError::missing("Attribute Name"))?
                .to_owned();
            let index = payload.child(t::ATTRIBUTE_INDEX).and_then(Item::as_i32);
            (
                None,
                Attribute {
                    name,
                    index,
                    value: Item::new(t::ATTRIBUTE_VALUE, Value::Structure(vec![])),
                },
                None,
            )
        } else {
            let a = payload
                .child(t::ATTRIBUTE)
                .ok_or_else(|| KmipError::missing("Attribute"))?;
            let edit = if operation == op::ADD_ATTRIBUTE {
                Edit::Add
            } else {
                Edit::Modify
            };
            (Some(edit), Attribute::from_v1(a)?, None)
        };
        if let Some(cur) = &current {
            // 2.x names the instance by its value: find its index.
            let stored = self.edge.load(tenant, service, &uid).await?;
            let pos = stored
                .meta
                .attributes(&uid, now())
                .into_iter()
                .filter(|a| a.name == cur.name)
                .position(|a| a.value.value == cur.value.value)
                .ok_or_else(|| {
                    KmipError::new(
                        rr::ITEM_NOT_FOUND,
                        format!(
                            "the object has no {:?} with the given current value",
                            cur.name
                        ),
                    )
                })?;
            attr.index = Some(pos as i32);
        }
        let result: std::sync::Mutex<Option<Attribute>> = std::sync::Mutex::new(None);
        self.edge
            .update(tenant, service, &uid, |stored, now| {
                refuse_archived(&stored.meta, &uid)?;
                let out = match edit {
                    Some(e) => apply_edit(&mut stored.meta, &attr, e, now)?,
                    None => delete_attr(&mut stored.meta, &attr.name, attr.index, &uid, now)?,
                };
                if let Ok(mut r) = result.lock() {
                    *r = Some(out);
                }
                Ok(())
            })
            .await?;
        let changed: &[&str] = match edit {
            Some(_) => &[attr.name.as_str(), "Last Change Date"],
            None => &["Last Change Date"],
        };
        self.notify_changed(ctx, &uid, changed).await;
        let mut children = vec![Item::new(t::UNIQUE_IDENTIFIER, Value::TextString(uid))];
        if !ctx.version.is_v2() {
            if let Some(a) = result.lock().ok().and_then(|mut r| r.take()) {
                children.push(a.to_v1());
            }
        }
        Ok(Item::structure(t::RESPONSE_PAYLOAD, children))
    }

    /// Re-key: a new key of the same algorithm and length with fresh material, the old key's attributes (names,
    /// usage, custom attributes) plus those of the request, dates shifted by Offset, and Replacement/Replaced
    /// Object links between the two.
    async fn rekey(&self, ctx: &ItemContext, payload: &Item) -> Result<Item, KmipError> {
        let (tenant, service) = self.caller()?;
        let uid = ctx.uid(payload)?;
        if uid.starts_with(L3_UID_PREFIX) {
            // A service key (L3) lives in the Core: Re-key of it is the service's on-demand rotation there.
            let answer = self
                .edge
                .core
                .proxy(
                    tenant,
                    service,
                    ctx.version,
                    op::REKEY,
                    &with_uid(payload, &uid),
                )
                .await?;
            self.edge.core.forget_current_l3(tenant, service);
            return Ok(answer);
        }
        let old = self.edge.load(tenant, service, &uid).await?;
        refuse_archived(&old.meta, &uid)?;
        if old.meta.object_type != object_type::SYMMETRIC_KEY
            || !old.meta.server_generated && old.meta.algorithm == 0
        {
            return Err(KmipError::new(
                rr::ILLEGAL_OPERATION,
                format!("object {uid:?} is not a symmetric key with a known algorithm; it cannot be re-keyed"),
            ));
        }
        Edge::require_state(
            &old.meta,
            &uid,
            NOT_DESTROYED,
            "a destroyed key cannot be re-keyed",
        )?;
        let offset = match payload.child(t::OFFSET) {
            None => 0,
            Some(o) => match o.value {
                Value::Interval(v) => i64::from(v),
                _ => return Err(KmipError::invalid_field("Offset must be an Interval")),
            },
        };
        let now = now();
        let mut meta = L4Meta::new_aes(service, now);
        meta.algorithm = old.meta.algorithm;
        meta.length = old.meta.length;
        meta.usage_mask = old.meta.usage_mask;
        meta.names = old.meta.names.clone();
        meta.extra = old
            .meta
            .extra
            .iter()
            .filter(|e| e.name != "Link")
            .cloned()
            .collect();
        // The replacement keeps the protection of the key it replaces (KMIP: these attributes carry over).
        meta.sensitive = old.meta.sensitive;
        meta.always_sensitive = old.meta.always_sensitive;
        meta.not_extractable = old.meta.not_extractable;
        meta.never_extractable = old.meta.never_extractable;
        meta.original_creation_date = old
            .meta
            .original_creation_date
            .or(Some(old.meta.initial_date));
        meta.server_generated = true;
        // Dates: the new key starts Offset after now, keeping the old key's active lifetime.
        if old.meta.activation_date.is_some() || payload.child(t::OFFSET).is_some() {
            let start = now + offset;
            meta.activation_date = Some(start);
            if let (Some(a), Some(d)) = (old.meta.activation_date, old.meta.deactivation_date) {
                meta.deactivation_date = Some(start + (d - a).max(0));
            }
        }
        // Attributes of the request add to (or, for single-valued ones, replace) the copied ones.
        let mut requested = L4Meta::new_aes(service, now);
        requested.names.clear();
        let (alg, len) =
            Self::client_attributes(attributes::from_payload(payload)?, &mut requested, now)?;
        if alg.is_some_and(|a| a != meta.algorithm) || len.is_some_and(|l| l != meta.length) {
            return Err(KmipError::invalid_field(
                "Re-key keeps the key's Cryptographic Algorithm and Length",
            ));
        }
        meta.names.extend(requested.names);
        meta.extra.extend(requested.extra);
        if requested.activation_date.is_some() {
            meta.activation_date = requested.activation_date;
        }
        if requested.deactivation_date.is_some() {
            meta.deactivation_date = requested.deactivation_date;
        }
        if meta.activation_date.is_some_and(|d| d <= now) {
            meta.state = state::ACTIVE;
        }
        let link = |kind: u32, to: &str| ExtraAttr {
            name: "Link".into(),
            value_ttlv: hex::encode(openkcm_ttlv::encode(&Item::structure(
                t::ATTRIBUTE_VALUE,
                vec![
                    Item::new(t::LINK_TYPE, Value::Enumeration(kind)),
                    Item::new(t::LINKED_OBJECT_IDENTIFIER, Value::TextString(to.into())),
                ],
            ))),
        };
        const REPLACEMENT_OBJECT_LINK: u32 = 0x0106;
        const REPLACED_OBJECT_LINK: u32 = 0x0107;
        meta.extra.push(link(REPLACED_OBJECT_LINK, &uid));
        let material = objects::generate(meta.algorithm, meta.length)?;
        let new_uid = self.store_new(tenant, service, meta, &material).await?;
        drop(material);
        let link_to_new = link(REPLACEMENT_OBJECT_LINK, &new_uid);
        self.edge
            .update(tenant, service, &uid, |stored, now| {
                stored
                    .meta
                    .extra
                    .retain(|e| !(e.name == "Link" && e.value_ttlv == link_to_new.value_ttlv));
                stored.meta.extra.push(link_to_new.clone());
                // KMIP: the names move to the replacement key.
                stored.meta.names.clear();
                stored.meta.last_change_date = now;
                Ok(())
            })
            .await?;
        tracing::info!(tenant, service, uid, new_uid, "re-keyed data key");
        Ok(payload::uid_payload(t::RESPONSE_PAYLOAD, &new_uid))
    }

    /// MAC and MAC Verify with HMAC-SHA-256/384/512 keys (the key's algorithm, or the request's Cryptographic
    /// Parameters when the key does not name one).
    async fn mac(
        &self,
        ctx: &ItemContext,
        payload: &Item,
        verify: bool,
    ) -> Result<Item, KmipError> {
        let (tenant, service) = self.caller()?;
        let uid = ctx.uid(payload)?;
        let stored = self.edge.load(tenant, service, &uid).await?;
        let allowed: &[u32] = if verify {
            &[state::ACTIVE, state::DEACTIVATED, state::COMPROMISED]
        } else {
            &[state::ACTIVE]
        };
        Edge::require_state(
            &stored.meta,
            &uid,
            allowed,
            "the key's state does not allow this MAC operation",
        )?;
        if verify {
            require_usage(&stored.meta, &uid, usage_mask::MAC_VERIFY, "MAC Verify")?;
        } else {
            require_usage(&stored.meta, &uid, usage_mask::MAC_GENERATE, "MAC Generate")?;
        }
        // The MAC algorithm: the request's Cryptographic Parameters, else those stored with the key, else the
        // key's own algorithm (an HMAC key).
        let params = CryptoParams::parse(payload)?.unwrap_or_default();
        let stored_alg = stored
            .meta
            .extra_value("Cryptographic Parameters")
            .and_then(|v| v.child(t::CRYPTOGRAPHIC_ALGORITHM).and_then(Item::as_enum));
        let alg = params
            .algorithm
            .or(stored_alg)
            .unwrap_or(stored.meta.algorithm);
        let bits = match alg {
            objects::alg::HMAC_SHA256 => 256,
            objects::alg::HMAC_SHA384 => 384,
            objects::alg::HMAC_SHA512 => 512,
            // HMAC with SHA-1, SHA-224 or MD5: weak hashes, refused whatever the legacy_crypto setting.
            objects::alg::HMAC_SHA1 | objects::alg::HMAC_SHA224 | objects::alg::HMAC_MD5 => {
                return Err(KmipError::crypto(
                    "HMAC with SHA-1, SHA-224 or MD5 is refused by policy: use HMAC-SHA-256, -384 or -512",
                ))
            }
            other => {
                return Err(KmipError::invalid_field(format!(
                    "MAC supports HMAC-SHA-256/384/512; algorithm 0x{other:X} is not a MAC algorithm this server \
                     offers (name one in the Cryptographic Parameters)"
                )))
            }
        };
        let data = payload
            .child(t::DATA)
            .and_then(Item::as_bytes)
            .ok_or_else(|| KmipError::missing("Data"))?;
        let material = self.edge.key_of(tenant, service, &uid, &stored).await?;
        let mut children = vec![Item::new(t::UNIQUE_IDENTIFIER, Value::TextString(uid))];
        if verify {
            let tag = payload
                .child(t::MAC_DATA)
                .and_then(Item::as_bytes)
                .ok_or_else(|| KmipError::missing("MAC Data"))?;
            let ok = aes::hmac_sha2_verify(bits, material.expose(), data, tag).unwrap_or(false);
            // Validity Indicator: 1 Valid, 2 Invalid.
            children.push(Item::new(
                t::VALIDITY_INDICATOR,
                Value::Enumeration(if ok { 1 } else { 2 }),
            ));
        } else {
            let tag = aes::hmac_sha2(bits, material.expose(), data)
                .ok_or_else(|| KmipError::general("unsupported HMAC size"))?;
            children.push(Item::new(t::MAC_DATA, Value::ByteString(tag)));
        }
        Ok(Item::structure(t::RESPONSE_PAYLOAD, children))
    }

    /// RNG Retrieve: random bytes from the server's DRBG (aws-lc CTR_DRBG), at most 1 MiB per request.
    fn rng_retrieve(payload: &Item) -> Result<Item, KmipError> {
        let n = payload
            .child(t::DATA_LENGTH)
            .and_then(Item::as_i32)
            .ok_or_else(|| KmipError::missing("Data Length"))?;
        if !(1..=1 << 20).contains(&n) {
            return Err(KmipError::invalid_field(
                "Data Length must be 1 to 1048576 bytes",
            ));
        }
        let mut buf = vec![0u8; n as usize];
        aes::fill_random(&mut buf).map_err(|e| KmipError::crypto(e.to_string()))?;
        Ok(Item::structure(
            t::RESPONSE_PAYLOAD,
            vec![Item::new(t::DATA, Value::ByteString(buf))],
        ))
    }

    /// Obtain Lease: a lease of Lease Time on an object that may be used (not Compromised, Deactivated or
    /// Destroyed).
    async fn obtain_lease(&self, ctx: &ItemContext, payload: &Item) -> Result<Item, KmipError> {
        let (tenant, service) = self.caller()?;
        let uid = ctx.uid(payload)?;
        let stored = self.edge.load(tenant, service, &uid).await?;
        refuse_archived(&stored.meta, &uid)?;
        let s = stored.meta.effective_state(now());
        if !matches!(s, state::PRE_ACTIVE | state::ACTIVE) {
            return Err(KmipError::new(
                rr::PERMISSION_DENIED,
                format!("object {uid:?} is {}; no lease is given", state::name(s)),
            ));
        }
        Ok(Item::structure(
            t::RESPONSE_PAYLOAD,
            vec![
                Item::new(t::UNIQUE_IDENTIFIER, Value::TextString(uid)),
                Item::new(t::LEASE_TIME, Value::Interval(crate::meta::LEASE_TIME_SECS)),
                Item::new(
                    t::LAST_CHANGE_DATE,
                    Value::DateTime(stored.meta.last_change_date),
                ),
            ],
        ))
    }

    /// Check (would the object allow this use?) and Get Usage Allocation (reserve part of its Usage Limits).
    async fn check_or_allocate(
        &self,
        ctx: &ItemContext,
        payload: &Item,
        allocate: bool,
    ) -> Result<Item, KmipError> {
        let (tenant, service) = self.caller()?;
        let uid = ctx.uid(payload)?;
        let stored = self.edge.load(tenant, service, &uid).await?;
        refuse_template(&stored.meta, &uid, "Check")?;
        refuse_archived(&stored.meta, &uid)?;
        let wanted = payload.child(t::USAGE_LIMITS_COUNT).and_then(Item::as_i64);
        if allocate {
            let n = wanted.ok_or_else(|| KmipError::missing("Usage Limits Count"))?;
            if n <= 0 {
                return Err(KmipError::invalid_field(
                    "the Usage Limits Count to allocate must be positive",
                ));
            }
            if stored.meta.usage_limits().is_none() {
                return Err(KmipError::new(
                    rr::PERMISSION_DENIED,
                    format!("object {uid:?} has no Usage Limits to allocate from"),
                ));
            }
            self.edge
                .update(tenant, service, &uid, |s, _| {
                    let (total, count, unit) = s.meta.usage_limits().unwrap_or((0, 0, 0));
                    if n < 0 || n > count {
                        return Err(KmipError::new(
                            rr::PERMISSION_DENIED,
                            format!("unable to allocate {n}: {count} of {total} left"),
                        ));
                    }
                    s.meta.set_usage_limits(total, count - n, unit);
                    Ok(())
                })
                .await?;
        } else {
            if let (Some(n), Some((total, count, _))) = (wanted, stored.meta.usage_limits()) {
                if n > count {
                    return Err(KmipError::new(
                        rr::PERMISSION_DENIED,
                        format!("Check: {n} exceeds what is left of the Usage Limits ({count} of {total})"),
                    ));
                }
            }
            if let Some(mask) = payload
                .child(t::CRYPTOGRAPHIC_USAGE_MASK)
                .and_then(Item::as_i32)
            {
                if mask & !stored.meta.usage_mask != 0 {
                    return Err(KmipError::new(
                        rr::PERMISSION_DENIED,
                        "Check: the object's Cryptographic Usage Mask does not allow that use",
                    ));
                }
            }
            let s = stored.meta.effective_state(now());
            if matches!(s, state::DESTROYED | state::DESTROYED_COMPROMISED) {
                return Err(KmipError::new(
                    rr::OBJECT_DESTROYED,
                    format!("object {uid:?} has been destroyed"),
                ));
            }
        }
        Ok(payload::uid_payload(t::RESPONSE_PAYLOAD, &uid))
    }

    /// The material of a key-encryption key of the caller: an Active AES key whose usage mask allows `usage`.
    async fn wrapping_key(
        &self,
        tenant: &str,
        service: &str,
        kek_uid: &str,
        usage: i32,
    ) -> Result<openkcm_crypto::SecretBytes, KmipError> {
        let kek = self.edge.load(tenant, service, kek_uid).await?;
        Edge::require_state(
            &kek.meta,
            kek_uid,
            &[state::ACTIVE],
            "only an Active key wraps or unwraps keys",
        )?;
        if kek.meta.object_type != object_type::SYMMETRIC_KEY
            || kek.meta.algorithm != algorithm::AES
        {
            return Err(KmipError::invalid_field(format!(
                "wrapping key {kek_uid:?} is not an AES key"
            )));
        }
        require_usage(&kek.meta, kek_uid, usage, "key wrapping")?;
        self.edge.key_of(tenant, service, kek_uid, &kek).await
    }

    /// Hash (KMIP 1.2): SHA-256, SHA-384 or SHA-512 of the Data; older hashes are refused by policy.
    fn hash(payload: &Item) -> Result<Item, KmipError> {
        let alg = payload
            .child(t::CRYPTOGRAPHIC_PARAMETERS)
            .and_then(|p| p.child(t::HASHING_ALGORITHM))
            .and_then(Item::as_enum)
            .ok_or_else(|| {
                KmipError::missing("Hashing Algorithm (in the Cryptographic Parameters)")
            })?;
        let data = payload
            .child(t::DATA)
            .and_then(Item::as_bytes)
            .ok_or_else(|| KmipError::missing("Data"))?;
        let digest = sha2_by_enum(alg)
            .and_then(|bits| aes::sha2(bits, data))
            .ok_or_else(|| {
                KmipError::crypto(format!(
                "Hashing Algorithm 0x{alg:X} is refused by policy: use SHA-256, SHA-384 or SHA-512"
            ))
            })?;
        Ok(Item::structure(
            t::RESPONSE_PAYLOAD,
            vec![Item::new(t::DATA, Value::ByteString(digest))],
        ))
    }

    /// Derive Key with the HASH method: the new key is the SHA-2 digest of the base key's material, truncated to
    /// the requested Cryptographic Length.
    async fn derive_key(&self, payload: &Item) -> Result<Item, KmipError> {
        let (tenant, service) = self.caller()?;
        let ot = payload
            .child(t::OBJECT_TYPE)
            .and_then(Item::as_enum)
            .ok_or_else(|| KmipError::missing("Object Type"))?;
        if ot != object_type::SYMMETRIC_KEY {
            return Err(KmipError::invalid_field(
                "Derive Key makes symmetric keys only",
            ));
        }
        let bases: Vec<&str> = payload
            .children_with(t::UNIQUE_IDENTIFIER)
            .filter_map(Item::as_text)
            .collect();
        let [base] = bases.as_slice() else {
            return Err(KmipError::invalid_field(
                "the HASH derivation takes exactly one base key (Unique Identifier)",
            ));
        };
        let method = payload
            .child(t::DERIVATION_METHOD)
            .and_then(Item::as_enum)
            .ok_or_else(|| KmipError::missing("Derivation Method"))?;
        if method != DERIVATION_HASH {
            return Err(KmipError::new(
                rr::FEATURE_NOT_SUPPORTED,
                format!("Derivation Method 0x{method:X} is not supported; use HASH"),
            ));
        }
        let hash = payload
            .child(t::DERIVATION_PARAMETERS)
            .and_then(|p| p.child(t::CRYPTOGRAPHIC_PARAMETERS))
            .and_then(|p| p.child(t::HASHING_ALGORITHM))
            .and_then(Item::as_enum)
            .ok_or_else(|| {
                KmipError::missing("Hashing Algorithm (in the Derivation Parameters)")
            })?;
        let bits = sha2_by_enum(hash).ok_or_else(|| {
            KmipError::crypto(format!("Hashing Algorithm 0x{hash:X} is refused by policy: use SHA-256, SHA-384 or SHA-512"))
        })?;
        let stored = self.edge.load(tenant, service, base).await?;
        Edge::require_state(
            &stored.meta,
            base,
            &[state::ACTIVE],
            "only an Active key derives keys",
        )?;
        require_usage(&stored.meta, base, usage_mask::DERIVE_KEY, "Derive Key")?;
        let now = now();
        let mut meta = L4Meta::new_aes(service, now);
        let (alg, len) =
            Self::client_attributes(attributes::from_payload(payload)?, &mut meta, now)?;
        let alg = alg.ok_or_else(|| KmipError::missing("Cryptographic Algorithm"))?;
        let len = len.ok_or_else(|| KmipError::missing("Cryptographic Length"))?;
        let n = objects::key_bytes(alg, len)?;
        let material = self.edge.key_of(tenant, service, base, &stored).await?;
        let mut digest =
            aes::sha2(bits, material.expose()).ok_or_else(|| KmipError::general("hash failed"))?;
        drop(material);
        if n > digest.len() {
            zeroize::Zeroize::zeroize(&mut digest);
            return Err(KmipError::invalid_field(format!(
                "a {len}-bit key cannot be derived from a {bits}-bit hash"
            )));
        }
        digest.truncate(n);
        let derived = openkcm_crypto::SecretBytes::new(digest);
        meta.algorithm = alg;
        meta.length = len;
        let uid = self.store_new(tenant, service, meta, &derived).await?;
        tracing::info!(tenant, service, base, uid, "derived key");
        Ok(payload::uid_payload(t::RESPONSE_PAYLOAD, &uid))
    }

    async fn get(&self, ctx: &ItemContext, payload: &Item) -> Result<Item, KmipError> {
        let (tenant, service) = self.caller()?;
        let uid = ctx.uid(payload)?;
        let format = payload::requested_key_format_opt(payload)?;
        let stored = self.edge.load(tenant, service, &uid).await?;
        hide_template_from_v2(ctx, &stored.meta, &uid)?;
        Edge::require_state(
            &stored.meta,
            &uid,
            NOT_DESTROYED,
            "a destroyed object is not served",
        )?;
        refuse_archived(&stored.meta, &uid)?;
        if stored.meta.object_type == object_type::TEMPLATE {
            let m = &stored.meta;
            // The attributes the Template gives; its own (Names, …) are read with Get Attributes.
            let attrs: Vec<Item> = m
                .template_attributes()
                .iter()
                .map(Attribute::to_v1)
                .collect();
            return Ok(Item::structure(
                t::RESPONSE_PAYLOAD,
                vec![
                    Item::new(t::OBJECT_TYPE, Value::Enumeration(object_type::TEMPLATE)),
                    Item::new(t::UNIQUE_IDENTIFIER, Value::TextString(uid)),
                    Item::structure(t::TEMPLATE, attrs),
                ],
            ));
        }
        if stored.meta.key_value_absent {
            // Registered without its value: the Key Block carries no Key Value.
            let m = &stored.meta;
            let mut block = vec![Item::new(
                t::KEY_FORMAT_TYPE,
                Value::Enumeration(m.key_format.unwrap_or(1)),
            )];
            objects::push_algorithm_length(&mut block, m.algorithm, m.length);
            return Ok(Item::structure(
                t::RESPONSE_PAYLOAD,
                vec![
                    Item::new(t::OBJECT_TYPE, Value::Enumeration(m.object_type)),
                    Item::new(t::UNIQUE_IDENTIFIER, Value::TextString(uid)),
                    Item::structure(t::SYMMETRIC_KEY, vec![Item::structure(t::KEY_BLOCK, block)]),
                ],
            ));
        }
        let material = self.edge.key_of(tenant, service, &uid, &stored).await?;
        if let Some(split) = &stored.meta.split {
            if payload.child(t::KEY_WRAPPING_SPECIFICATION).is_some() {
                return Err(KmipError::new(
                    rr::FEATURE_NOT_SUPPORTED,
                    "a Split Key part is returned unwrapped; wrap the joined key instead",
                ));
            }
            return Ok(Item::structure(
                t::RESPONSE_PAYLOAD,
                vec![
                    Item::new(t::OBJECT_TYPE, Value::Enumeration(object_type::SPLIT_KEY)),
                    Item::new(t::UNIQUE_IDENTIFIER, Value::TextString(uid)),
                    objects::split_key_object(
                        split,
                        material.expose(),
                        stored.meta.algorithm,
                        stored.meta.length,
                    ),
                ],
            ));
        }
        if stored.meta.fresh {
            // Served once: no longer Fresh (KMIP 1.1).
            self.edge
                .update(tenant, service, &uid, |s, _| {
                    s.meta.fresh = false;
                    Ok(())
                })
                .await?;
        }
        // Key Wrapping Specification, or As Registered for a key registered wrapped.
        let as_registered = stored
            .meta
            .registered_wrapping
            .as_deref()
            .is_some_and(|h| h.starts_with("s:"));
        let wrap_item = match payload.child(t::KEY_WRAPPING_SPECIFICATION) {
            Some(spec) => Some(spec.clone()),
            None if payload.child(t::KEY_WRAP_TYPE).and_then(Item::as_enum)
                == Some(KEY_WRAP_TYPE_AS_REGISTERED) =>
            {
                stored
                    .meta
                    .registered_wrapping
                    .as_deref()
                    .and_then(|h| hex::decode(h.trim_start_matches("s:")).ok())
                    .and_then(|b| openkcm_ttlv::decode(&b, &openkcm_ttlv::Limits::default()).ok())
            }
            None => None,
        };
        // Sensitive keys leave the server only wrapped; non-Extractable ones never.
        if stored.meta.not_extractable {
            return Err(KmipError::new(
                RR_NOT_EXTRACTABLE,
                format!("key {uid:?} is not Extractable: its value never leaves the server"),
            ));
        }
        if stored.meta.sensitive && wrap_item.is_none() {
            return Err(KmipError::new(
                RR_SENSITIVE,
                format!("key {uid:?} is Sensitive: Get returns it only wrapped (give a Key Wrapping Specification)"),
            ));
        }
        let wrapped = match wrap_item {
            Some(item) => {
                let spec = objects::parse_wrapping(&item)?;
                let kek = self
                    .wrapping_key(tenant, service, &spec.kek_uid, usage_mask::WRAP_KEY)
                    .await?;
                let n = material.len();
                if !spec.padded && (n < 16 || !n.is_multiple_of(8)) {
                    return Err(KmipError::invalid_field(format!(
                        "NIST Key Wrap (RFC 3394) wraps 16 bytes or more in multiples of 8; this object has {n} \
                         bytes: use AES Key Wrap with Padding (RFC 5649)"
                    )));
                }
                let w =
                    aes::key_wrap(kek.expose(), material.expose(), spec.padded).map_err(|e| {
                        KmipError::crypto(format!(
                            "wrapping {uid:?} under {:?} failed: {e}",
                            spec.kek_uid
                        ))
                    })?;
                let structured =
                    payload.child(t::KEY_WRAPPING_SPECIFICATION).is_none() && as_registered;
                Some((w, spec.data, structured))
            }
            None => None,
        };
        let m = &stored.meta;
        objects::get_response(
            &uid,
            m.object_type,
            material.expose(),
            m.algorithm,
            m.length,
            m.key_format,
            format,
            m.data_type,
            wrapped,
        )
    }

    async fn get_attribute_list(
        &self,
        ctx: &ItemContext,
        payload: &Item,
    ) -> Result<Item, KmipError> {
        let (tenant, service) = self.caller()?;
        let uid = ctx.uid(payload)?;
        let stored = self.edge.load(tenant, service, &uid).await?;
        hide_template_from_v2(ctx, &stored.meta, &uid)?;
        let mut names: Vec<String> = stored
            .meta
            .attributes_for(&uid, now(), ctx.version)
            .into_iter()
            .map(|a| a.name)
            .collect();
        names.dedup();
        let mut c = vec![Item::new(t::UNIQUE_IDENTIFIER, Value::TextString(uid))];
        c.extend(
            names
                .iter()
                .map(|n| attributes::reference_item(n, ctx.version)),
        );
        Ok(Item::structure(t::RESPONSE_PAYLOAD, c))
    }

    async fn get_attributes(&self, ctx: &ItemContext, payload: &Item) -> Result<Item, KmipError> {
        let (tenant, service) = self.caller()?;
        let uid = ctx.uid(payload)?;
        if uid.starts_with(L3_UID_PREFIX) {
            // A service key's attributes (state, version) are the Core's.
            return self
                .edge
                .core
                .proxy(
                    tenant,
                    service,
                    ctx.version,
                    op::GET_ATTRIBUTES,
                    &with_uid(payload, &uid),
                )
                .await;
        }
        let stored = self.edge.load(tenant, service, &uid).await?;
        hide_template_from_v2(ctx, &stored.meta, &uid)?;
        let names = attributes::requested_names(payload)?;
        let attrs: Vec<Attribute> = stored
            .meta
            .attributes_for(&uid, now(), ctx.version)
            .into_iter()
            .filter(|a| names.is_empty() || names.contains(&a.name))
            .collect();
        let mut c = vec![Item::new(t::UNIQUE_IDENTIFIER, Value::TextString(uid))];
        c.extend(attributes::to_payload_items(&attrs, ctx.version));
        Ok(Item::structure(t::RESPONSE_PAYLOAD, c))
    }

    async fn locate(&self, ctx: &ItemContext, payload: &Item) -> Result<Item, KmipError> {
        let (tenant, service) = self.caller()?;
        let req = LocateRequest::parse(payload)?;
        if req
            .attributes
            .iter()
            .any(|a| a.name == openkcm_kmip::attributes::ATTR_SERVICE_KEY)
        {
            // The application's service keys are the Core's.
            return self
                .edge
                .core
                .proxy(tenant, service, ctx.version, op::LOCATE, payload)
                .await;
        }
        let group_member = payload
            .child(t::OBJECT_GROUP_MEMBER)
            .and_then(Item::as_enum);
        let _group_turn = match group_member {
            Some(_) => Some(self.edge.group_locate.lock().await),
            None => None,
        };
        // Storage Status Mask: live objects are on-line (bit 1), none is archived (bit 2), and destroyed ones keep
        // their attributes (bit 4, KMIP 2.0). Without a mask, on-line objects only.
        let mask = payload
            .child(t::STORAGE_STATUS_MASK)
            .and_then(Item::as_i32)
            .unwrap_or(STORAGE_ONLINE);
        let want_online = mask & STORAGE_ONLINE != 0;
        let want_destroyed = mask & STORAGE_DESTROYED != 0;
        let want_archived = mask & STORAGE_ARCHIVAL != 0;
        let now = now();
        // Two filters on the same Date-Time attribute are a range (KMIP Locate); other filters match exactly.
        let mut ranges: Vec<(String, i64, i64)> = Vec::new();
        let mut exact: Vec<&Attribute> = Vec::new();
        for want in &req.attributes {
            let same: Vec<&Attribute> = req
                .attributes
                .iter()
                .filter(|a| a.name == want.name)
                .collect();
            match (same.as_slice(), &want.value.value) {
                ([x, y], Value::DateTime(_)) => {
                    if !ranges.iter().any(|r| r.0 == want.name) {
                        let (Some(p), Some(q)) = (x.value.as_datetime(), y.value.as_datetime())
                        else {
                            return Err(KmipError::invalid_field(
                                "a date range needs two Date-Times",
                            ));
                        };
                        ranges.push((want.name.clone(), p.min(q), p.max(q)));
                    }
                }
                _ => exact.push(want),
            }
        }
        let mut found: Vec<(u64, u64, String)> = Vec::new();
        for record in self
            .edge
            .vault
            .list(tenant, KIND_L4)
            .await
            .map_err(vault_err)?
        {
            let Ok(meta) = serde_json::from_value::<L4Meta>(record.metadata.clone()) else {
                continue;
            };
            let destroyed = matches!(meta.state, state::DESTROYED | state::DESTROYED_COMPROMISED);
            let archived = meta.archive_date.is_some() && !destroyed;
            if meta.service != service
                || (destroyed && !want_destroyed)
                || (archived && !want_archived)
                || (!destroyed && !archived && !want_online)
                || !owner_may_use(&meta)
                || (ctx.version.is_v2() && meta.object_type == object_type::TEMPLATE)
            {
                continue;
            }
            if group_member == Some(GROUP_MEMBER_FRESH) && !meta.fresh {
                continue;
            }
            let attrs = meta.attributes_for(&record.id, now, ctx.version);
            let matches = exact.iter().all(|want| {
                attrs
                    .iter()
                    .any(|have| have.name == want.name && have.value.value == want.value.value)
            }) && ranges.iter().all(|(name, lo, hi)| {
                attrs.iter().any(|have| {
                    have.name == *name
                        && have
                            .value
                            .as_datetime()
                            .is_some_and(|d| (*lo..=*hi).contains(&d))
                })
            });
            if matches {
                found.push((
                    meta.created_nanos,
                    meta.last_located_nanos.unwrap_or(0),
                    record.id,
                ));
            }
        }
        match group_member {
            // Fresh members in the order they were made; Default members round robin (least recently handed out).
            Some(GROUP_MEMBER_FRESH) => {
                found.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.2.cmp(&b.2)))
            }
            Some(GROUP_MEMBER_DEFAULT) => found.sort_by(|a, b| {
                a.1.cmp(&b.1)
                    .then(a.0.cmp(&b.0))
                    .then_with(|| a.2.cmp(&b.2))
            }),
            // Newest first, as clients locating by name usually want the latest key.
            _ => found.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.2.cmp(&b.2))),
        }
        // The default group always has a fresh member: one is made on demand (an AES-256 key).
        let in_default_group = req
            .attributes
            .iter()
            .any(|a| a.name == "Object Group" && a.value.as_text() == Some(DEFAULT_GROUP));
        if found.is_empty() && group_member == Some(GROUP_MEMBER_FRESH) && in_default_group {
            let mut meta = L4Meta::new_aes(service, now);
            meta.server_generated = true;
            meta.extra.push(ExtraAttr {
                name: "Object Group".into(),
                value_ttlv: hex::encode(openkcm_ttlv::encode(&Item::new(
                    t::ATTRIBUTE_VALUE,
                    Value::TextString(DEFAULT_GROUP.into()),
                ))),
            });
            let material = objects::generate(algorithm::AES, 256)?;
            let uid = self.store_new(tenant, service, meta, &material).await?;
            found.push((0, 0, uid));
        }
        let total = found.len();
        let offset = req
            .offset_items
            .and_then(|o| usize::try_from(o).ok())
            .unwrap_or(0);
        let max = req
            .max_items
            .and_then(|m| usize::try_from(m).ok())
            .unwrap_or(usize::MAX);
        let uids: Vec<String> = found
            .into_iter()
            .skip(offset)
            .take(max)
            .map(|(_, _, id)| id)
            .collect();
        if group_member == Some(GROUP_MEMBER_DEFAULT) {
            let stamp = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
                .unwrap_or(0);
            for uid in &uids {
                self.edge
                    .update(tenant, service, uid, |s, _| {
                        s.meta.last_located_nanos = Some(stamp);
                        Ok(())
                    })
                    .await?;
            }
        }
        Ok(payload::locate_response(
            ctx.version,
            (req.max_items.is_some() || req.offset_items.is_some()).then_some(total),
            &uids,
        ))
    }

    async fn activate(&self, ctx: &ItemContext, payload: &Item) -> Result<Item, KmipError> {
        let (tenant, service) = self.caller()?;
        let uid = ctx.uid(payload)?;
        self.edge
            .update(tenant, service, &uid, |stored, now| {
                refuse_template(&stored.meta, &uid, "Activate")?;
                refuse_archived(&stored.meta, &uid)?;
                let current = stored.meta.effective_state(now);
                if current != state::PRE_ACTIVE {
                    return Err(KmipError::wrong_state(format!(
                        "key {uid:?} is {}; only a Pre-Active key can be activated",
                        state::name(current)
                    )));
                }
                stored.meta.state = state::ACTIVE;
                stored.meta.activation_date =
                    Some(stored.meta.activation_date.map_or(now, |d| d.min(now)));
                stored.meta.last_change_date = now;
                Ok(())
            })
            .await?;
        Ok(payload::uid_payload(t::RESPONSE_PAYLOAD, &uid))
    }

    async fn revoke(&self, ctx: &ItemContext, payload: &Item) -> Result<Item, KmipError> {
        let (tenant, service) = self.caller()?;
        let uid = ctx.uid(payload)?;
        let req = RevokeRequest::parse(payload)?;
        if !(revocation_reason::UNSPECIFIED..=7).contains(&req.code) {
            return Err(KmipError::invalid_field(format!(
                "Revocation Reason Code {} is not defined (1 Unspecified … 7 Privilege Withdrawn)",
                req.code
            )));
        }
        let compromise_reason = matches!(
            req.code,
            revocation_reason::KEY_COMPROMISE | revocation_reason::CA_COMPROMISE
        );
        if compromise_reason && req.compromise_occurrence.is_none() {
            return Err(KmipError::missing(
                "Compromise Occurrence Date (required when the reason is a compromise)",
            ));
        }
        if !compromise_reason && req.compromise_occurrence.is_some() {
            return Err(KmipError::invalid_field(
                "a Compromise Occurrence Date is given only with a Key Compromise or CA Compromise reason",
            ));
        }
        if req.compromise_occurrence.is_some_and(|d| d > now() + 60) {
            return Err(KmipError::invalid_field(
                "the Compromise Occurrence Date is in the future",
            ));
        }
        self.edge
            .update(tenant, service, &uid, |stored, now| {
                refuse_template(&stored.meta, &uid, "Revoke")?;
                refuse_archived(&stored.meta, &uid)?;
                let current = stored.meta.effective_state(now);
                if matches!(current, state::DESTROYED | state::DESTROYED_COMPROMISED) {
                    return Err(KmipError::new(
                        rr::OBJECT_DESTROYED,
                        format!("key {uid:?} is destroyed"),
                    ));
                }
                if compromise_reason {
                    stored.meta.state = state::COMPROMISED;
                    stored.meta.compromise_date = Some(now);
                    stored.meta.compromise_occurrence_date = req.compromise_occurrence;
                } else {
                    if current == state::COMPROMISED {
                        return Err(KmipError::wrong_state(format!(
                            "key {uid:?} is already compromised"
                        )));
                    }
                    stored.meta.state = state::DEACTIVATED;
                    stored.meta.deactivation_date = Some(now);
                }
                stored.meta.revocation_reason = Some(req.code);
                stored.meta.revocation_message.clone_from(&req.message);
                stored.meta.last_change_date = now;
                Ok(())
            })
            .await?;
        let compromise = compromise_reason;
        tracing::info!(tenant, service, uid, compromise, "revoked data key");
        Ok(payload::uid_payload(t::RESPONSE_PAYLOAD, &uid))
    }

    /// Create Split Key (KMIP 1.2): splits an existing symmetric key or secret data into Split Key parts, `threshold`
    /// of which rebuild it; returns the parts' identifiers in Key Part Identifier order.
    async fn create_split_key(&self, ctx: &ItemContext, payload: &Item) -> Result<Item, KmipError> {
        let (tenant, service) = self.caller()?;
        if payload.child(t::OBJECT_TYPE).and_then(Item::as_enum) != Some(object_type::SPLIT_KEY) {
            return Err(KmipError::invalid_field(
                "Create Split Key makes objects of Object Type Split Key",
            ));
        }
        let uid = ctx.uid(payload).map_err(|_| {
            KmipError::missing(
                "Unique Identifier (the key to split; this server splits existing keys)",
            )
        })?;
        let int = |tag, what: &str| {
            payload
                .child(tag)
                .and_then(Item::as_i32)
                .ok_or_else(|| KmipError::missing(what))
        };
        let parts = int(t::SPLIT_KEY_PARTS, "Split Key Parts")?;
        let threshold = int(t::SPLIT_KEY_THRESHOLD, "Split Key Threshold")?;
        let method_code = payload
            .child(t::SPLIT_KEY_METHOD)
            .and_then(Item::as_enum)
            .ok_or_else(|| KmipError::missing("Split Key Method"))?;
        let method = objects::split_method(method_code)?;
        let stored = self.edge.load(tenant, service, &uid).await?;
        if !matches!(
            stored.meta.object_type,
            object_type::SYMMETRIC_KEY | object_type::SECRET_DATA
        ) {
            return Err(KmipError::invalid_field(format!(
                "{uid:?} is not a symmetric key or secret data: only those are split"
            )));
        }
        Edge::require_state(
            &stored.meta,
            &uid,
            NOT_DESTROYED,
            "a destroyed key cannot be split",
        )?;
        // Parts are returned in the clear: a key that must not leave the server in the clear is not split.
        if stored.meta.not_extractable {
            return Err(KmipError::new(
                RR_NOT_EXTRACTABLE,
                format!("key {uid:?} is not Extractable: it is not split into parts that leave the server"),
            ));
        }
        if stored.meta.sensitive {
            return Err(KmipError::new(
                RR_SENSITIVE,
                format!("key {uid:?} is Sensitive: it is not split into parts that leave the server in the clear"),
            ));
        }
        let material = self.edge.key_of(tenant, service, &uid, &stored).await?;
        let count = |v: i32| usize::try_from(v).unwrap_or(0);
        let pieces = openkcm_crypto::split_key::split(
            material.expose(),
            count(parts),
            count(threshold),
            method,
        )
        .map_err(|e| KmipError::invalid_field(e.to_string()))?;
        let attrs = self.requested_attributes(ctx, payload).await?;
        let now = now();
        let split_id = uuid::Uuid::new_v4().to_string();
        let mut ids = Vec::with_capacity(pieces.len());
        for (i, piece) in pieces.iter().enumerate() {
            let mut meta = L4Meta::new_aes(service, now);
            meta.usage_mask = 0;
            Self::client_attributes(attrs.clone(), &mut meta, now)?;
            meta.object_type = object_type::SPLIT_KEY;
            meta.algorithm = stored.meta.algorithm;
            meta.length = stored.meta.length;
            meta.key_format = Some(openkcm_kmip::enums::key_format_type::RAW);
            meta.server_generated = true;
            meta.split = Some(objects::SplitInfo {
                parts,
                part: i32::try_from(i + 1).unwrap_or(i32::MAX),
                threshold,
                method: method_code,
                split_id: Some(split_id.clone()),
            });
            let id = self.store_new(tenant, service, meta, piece).await?;
            ids.push(Item::new(t::UNIQUE_IDENTIFIER, Value::TextString(id)));
        }
        tracing::debug!(tenant, service, uid, parts, threshold, "split key");
        Ok(Item::structure(t::RESPONSE_PAYLOAD, ids))
    }

    /// Join Split Key (KMIP 1.2): rebuilds a symmetric key or secret data from at least the threshold of its parts.
    async fn join_split_key(&self, ctx: &ItemContext, payload: &Item) -> Result<Item, KmipError> {
        let (tenant, service) = self.caller()?;
        let ot = payload
            .child(t::OBJECT_TYPE)
            .and_then(Item::as_enum)
            .ok_or_else(|| KmipError::missing("Object Type"))?;
        if !matches!(ot, object_type::SYMMETRIC_KEY | object_type::SECRET_DATA) {
            return Err(KmipError::invalid_field(
                "Join Split Key makes a Symmetric Key or Secret Data",
            ));
        }
        let uids: Vec<String> = payload
            .children_with(t::UNIQUE_IDENTIFIER)
            .map(|u| {
                u.as_text().map(str::to_owned).ok_or_else(|| {
                    KmipError::invalid_field("Unique Identifier must be a Text String")
                })
            })
            .collect::<Result<_, _>>()?;
        if uids.is_empty() {
            return Err(KmipError::missing(
                "Unique Identifier (the Split Key parts to join)",
            ));
        }
        let mut split: Option<objects::SplitInfo> = None;
        let mut pieces = Vec::with_capacity(uids.len());
        let mut algorithm = 0;
        for uid in &uids {
            let stored = self.edge.load(tenant, service, uid).await?;
            let Some(info) = stored.meta.split.clone() else {
                return Err(KmipError::invalid_field(format!(
                    "{uid:?} is not a Split Key"
                )));
            };
            if split.as_ref().is_some_and(|s| {
                (s.parts, s.threshold, s.method, &s.split_id)
                    != (info.parts, info.threshold, info.method, &info.split_id)
            }) {
                return Err(KmipError::invalid_field(
                    "the Split Key parts disagree on their parts, threshold or method: they are not parts of one key",
                ));
            }
            if !pieces.is_empty() && stored.meta.algorithm != algorithm {
                return Err(KmipError::invalid_field(
                    "the Split Key parts name different algorithms: they are not parts of one key",
                ));
            }
            algorithm = stored.meta.algorithm;
            let part = info.part;
            split = Some(info);
            let material = self.edge.key_of(tenant, service, uid, &stored).await?;
            pieces.push((u8::try_from(part).unwrap_or(0), material));
        }
        let info = split.ok_or_else(|| KmipError::missing("Unique Identifier"))?;
        let threshold = usize::try_from(info.threshold).unwrap_or(usize::MAX);
        let picked: Vec<(u8, &[u8])> = pieces.iter().map(|(x, m)| (*x, m.expose())).collect();
        let joined = openkcm_crypto::split_key::join(
            &picked,
            threshold,
            objects::split_method(info.method)?,
        )
        .map_err(|e| match e {
            openkcm_crypto::split_key::SplitKeyError::TooFewParts { .. } => {
                KmipError::crypto(e.to_string())
            }
            other => KmipError::invalid_field(other.to_string()),
        })?;
        let attrs = self.requested_attributes(ctx, payload).await?;
        let now = now();
        let mut meta = L4Meta::new_aes(service, now);
        let (alg, len) = Self::client_attributes(attrs, &mut meta, now)?;
        meta.object_type = ot;
        meta.key_format = Some(openkcm_kmip::enums::key_format_type::RAW);
        if ot == object_type::SYMMETRIC_KEY {
            meta.algorithm = alg.unwrap_or(algorithm);
            objects::check_material_len(meta.algorithm, joined.len())?;
            if let Some(l) = len {
                if !objects::length_matches(Some(meta.algorithm), l, joined.len()) {
                    return Err(KmipError::invalid_field(format!(
                        "Cryptographic Length {l} does not match the {} bytes the parts join to",
                        joined.len()
                    )));
                }
            }
            meta.length = len.unwrap_or(i32::try_from(joined.len() * 8).unwrap_or(0));
        } else {
            meta.algorithm = 0;
            meta.length = 0;
            meta.key_format = Some(openkcm_kmip::enums::key_format_type::OPAQUE);
            meta.data_type = Some(SECRET_DATA_TYPE_SEED);
        }
        let uid = self.store_new(tenant, service, meta, &joined).await?;
        tracing::debug!(tenant, service, uid, parts = uids.len(), "joined split key");
        Ok(payload::uid_payload(t::RESPONSE_PAYLOAD, &uid))
    }

    /// Archive (`archive`) moves an object to archival storage: it keeps its attributes, is found by Locate only
    /// with the Archival Storage mask, and is neither served nor used until Recover brings it back on-line.
    async fn archive(
        &self,
        ctx: &ItemContext,
        payload: &Item,
        archive: bool,
    ) -> Result<Item, KmipError> {
        let (tenant, service) = self.caller()?;
        let uid = ctx.uid(payload)?;
        self.edge
            .update(tenant, service, &uid, |stored, now| {
                if matches!(
                    stored.meta.state,
                    state::DESTROYED | state::DESTROYED_COMPROMISED
                ) {
                    return Err(KmipError::new(
                        rr::OBJECT_DESTROYED,
                        format!("object {uid:?} is destroyed"),
                    ));
                }
                stored.meta.archive_date = archive.then_some(now);
                stored.meta.last_change_date = now;
                Ok(())
            })
            .await?;
        if archive {
            // An archived key is not used: its plaintext does not stay cached either.
            self.edge.l4_cache.purge(tenant, &uid);
        }
        Ok(payload::uid_payload(t::RESPONSE_PAYLOAD, &uid))
    }

    /// The queued operation `acv` names, taken off the queue; only the client that queued it may have it.
    fn take_pending(&self, acv: &[u8]) -> Result<PendingOp, KmipError> {
        let (tenant, service) = self.caller()?;
        let unknown = || {
            KmipError::invalid_field(
                "the Asynchronous Correlation Value names no operation this client has queued (it was polled, cancelled or expired)",
            )
        };
        let mut pending = self.edge.pending.lock().map_err(|_| {
            KmipError::general("the queue of asynchronous operations is unavailable")
        })?;
        let mine = pending.get(acv).is_some_and(|p| {
            p.tenant == tenant
                && p.service == service
                && p.principal == current_principal()
                && p.queued.elapsed() < PENDING_TTL
        });
        if !mine {
            return Err(unknown());
        }
        pending.remove(acv).ok_or_else(unknown)
    }

    /// Cancel: a queued operation is dropped before it ran.
    fn cancel(&self, payload: &Item) -> Result<Item, KmipError> {
        let acv = async_correlation_value(payload)?;
        self.take_pending(&acv)?;
        Ok(Item::structure(
            t::RESPONSE_PAYLOAD,
            vec![
                Item::new(t::ASYNCHRONOUS_CORRELATION_VALUE, Value::ByteString(acv)),
                Item::new(
                    t::CANCELLATION_RESULT,
                    Value::Enumeration(openkcm_kmip::enums::cancellation_result::CANCELED),
                ),
            ],
        ))
    }

    async fn destroy(&self, ctx: &ItemContext, payload: &Item) -> Result<Item, KmipError> {
        let (tenant, service) = self.caller()?;
        let uid = ctx.uid(payload)?;
        self.edge
            .update(tenant, service, &uid, |stored, now| {
                let next = match stored.meta.effective_state(now) {
                    state::PRE_ACTIVE | state::DEACTIVATED => state::DESTROYED,
                    state::COMPROMISED => state::DESTROYED_COMPROMISED,
                    state::ACTIVE => {
                        return Err(KmipError::wrong_state(format!(
                            "key {uid:?} is Active; revoke it before destroying it"
                        )))
                    }
                    _ => {
                        return Err(KmipError::new(
                            rr::OBJECT_DESTROYED,
                            format!("key {uid:?} is already destroyed"),
                        ))
                    }
                };
                stored.meta.state = next;
                stored.meta.destroy_date = Some(now);
                stored.meta.last_change_date = now;
                // Crypto-shredding: the wrapped key is removed; only the attributes remain as a tombstone.
                stored.record.blob = None;
                Ok(())
            })
            .await?;
        tracing::info!(tenant, service, uid, "destroyed data key");
        self.notify_changed(ctx, &uid, &["Last Change Date", "State"])
            .await;
        Ok(payload::uid_payload(t::RESPONSE_PAYLOAD, &uid))
    }

    /// Triple DES Encrypt/Decrypt (ECB or CBC, PKCS5 or no padding), only with `legacy_crypto`.
    fn tdes(
        &self,
        uid: String,
        params: &CryptoParams,
        req: &CipherRequest,
        key: &[u8],
        encrypt: bool,
    ) -> Result<Item, KmipError> {
        let mode = params.mode.unwrap_or(bcm::CBC);
        if mode != bcm::CBC && mode != bcm::ECB {
            return Err(KmipError::invalid_field(
                "Triple DES supports ECB and CBC only",
            ));
        }
        let pkcs5 = match params.padding {
            Some(padding_method::PKCS5) => true,
            Some(padding_method::NONE) => false,
            None => mode == bcm::CBC,
            Some(other) => {
                return Err(KmipError::invalid_field(format!(
                    "Padding Method 0x{other:X} is not supported for Triple DES; use None or PKCS5"
                )))
            }
        };
        let iv: Option<[u8; 8]> = match (&req.iv, mode) {
            (Some(_), bcm::ECB) => {
                return Err(KmipError::invalid_field("ECB takes no IV/Counter/Nonce"))
            }
            (Some(iv), _) => Some(
                iv.as_slice()
                    .try_into()
                    .map_err(|_| KmipError::invalid_field("a Triple DES IV is 8 bytes"))?,
            ),
            (None, bcm::CBC) if encrypt => {
                let mut iv = [0u8; 8];
                aes::fill_random(&mut iv).map_err(|e| KmipError::crypto(e.to_string()))?;
                Some(iv)
            }
            (None, bcm::CBC) => {
                return Err(KmipError::new(
                    rr::INVALID_MESSAGE,
                    "Decrypt in CBC mode needs the IV/Counter/Nonce used to encrypt",
                ))
            }
            (None, _) => None,
        };
        let out = openkcm_crypto::legacy::tdes_crypt(key, iv.as_ref(), pkcs5, &req.data, encrypt)
            .map_err(|e| match e {
            openkcm_crypto::CryptoError::InvalidCiphertextLength { .. } => {
                KmipError::invalid_field(e.to_string())
            }
            other => KmipError::crypto(other.to_string()),
        })?;
        Ok(CipherResponse {
            uid,
            data: out.expose().to_vec(),
            iv: if encrypt && req.iv.is_none() {
                iv.map(|v| v.to_vec())
            } else {
                None
            },
            tag: None,
        }
        .into_item())
    }

    async fn cipher(
        &self,
        ctx: &ItemContext,
        payload: &Item,
        encrypt: bool,
    ) -> Result<Item, KmipError> {
        let (tenant, service) = self.caller()?;
        let req = CipherRequest::parse(payload)?;
        let uid = match &req.uid {
            Some(u) => u.clone(),
            None => ctx.uid(payload)?,
        };
        let stored = self.edge.load(tenant, service, &uid).await?;
        if stored.meta.object_type != object_type::SYMMETRIC_KEY {
            return Err(KmipError::new(
                rr::ILLEGAL_OPERATION,
                format!("object {uid:?} is not a symmetric key: it does not encrypt or decrypt"),
            ));
        }
        // KMIP: only an Active key protects new data; a Deactivated or Compromised key still processes
        // (decrypts) what it protected before.
        let allowed: &[u32] = if encrypt {
            &[state::ACTIVE]
        } else {
            &[state::ACTIVE, state::DEACTIVATED, state::COMPROMISED]
        };
        Edge::require_state(
            &stored.meta,
            &uid,
            allowed,
            if encrypt {
                "only an Active key encrypts"
            } else {
                "only an Active, Deactivated or Compromised key decrypts"
            },
        )?;
        if encrypt {
            require_usage(&stored.meta, &uid, usage_mask::ENCRYPT, "Encrypt")?;
        } else {
            require_usage(&stored.meta, &uid, usage_mask::DECRYPT, "Decrypt")?;
        }
        // Protect Stop Date: no new protection after it; Process Start Date: no processing before it.
        let date_of = |name: &str| stored.meta.extra_value(name).and_then(|i| i.as_datetime());
        let now_s = now();
        if encrypt && date_of("Protect Stop Date").is_some_and(|d| now_s > d) {
            return Err(KmipError::new(
                rr::PERMISSION_DENIED,
                format!("key {uid:?} is past its Protect Stop Date: it no longer encrypts"),
            ));
        }
        if !encrypt && date_of("Process Start Date").is_some_and(|d| now_s < d) {
            return Err(KmipError::new(
                rr::PERMISSION_DENIED,
                format!("key {uid:?} is before its Process Start Date: it does not decrypt yet"),
            ));
        }
        if encrypt && stored.meta.usage_limits().is_some() {
            self.edge
                .consume_usage(tenant, service, &uid, req.data.len(), "this encryption")
                .await?;
        }
        let material = self.edge.key_of(tenant, service, &uid, &stored).await?;
        // The request's Cryptographic Parameters, completed by those stored with the key (KMIP: the key's
        // attribute supplies what the request leaves out).
        let stored_params = stored
            .meta
            .extra_value("Cryptographic Parameters")
            .and_then(|v| {
                CryptoParams::parse(&Item::structure(
                    t::REQUEST_PAYLOAD,
                    vec![Item::new(t::CRYPTOGRAPHIC_PARAMETERS, v.value)],
                ))
                .ok()
                .flatten()
            })
            .unwrap_or_default();
        let given = req.params.clone().unwrap_or_default();
        let params = CryptoParams {
            mode: given.mode.or(stored_params.mode),
            padding: given.padding.or(stored_params.padding),
            algorithm: given.algorithm.or(stored_params.algorithm),
            random_iv: given.random_iv.or(stored_params.random_iv),
            tag_length: given.tag_length.or(stored_params.tag_length),
            iv_length: given.iv_length.or(stored_params.iv_length),
        };
        if params.algorithm.is_some_and(|a| a != stored.meta.algorithm) {
            return Err(KmipError::invalid_field(
                "the Cryptographic Algorithm of the parameters is not the key's",
            ));
        }
        match stored.meta.algorithm {
            algorithm::AES => {}
            objects::alg::TRIPLE_DES if self.edge.legacy_crypto => {
                return self.tdes(uid, &params, &req, material.expose(), encrypt);
            }
            objects::alg::TRIPLE_DES => {
                return Err(KmipError::crypto(format!(
                    "key {uid:?} is a Triple DES key: Encrypt and Decrypt with legacy algorithms are refused by \
                     policy (legacy_crypto is off; the operator can enable it)"
                )))
            }
            other => {
                return Err(KmipError::crypto(format!(
                    "key {uid:?} has algorithm 0x{other:X}: Encrypt and Decrypt use AES (and, with legacy_crypto, \
                     Triple DES) only; this algorithm is refused by policy"
                )))
            }
        }
        // Default mode: GCM where the protocol can carry its tag (1.4+), else CBC with PKCS5 padding.
        let mode = params.mode.unwrap_or(if ctx.version.has_aead_fields() {
            bcm::GCM
        } else {
            bcm::CBC
        });
        let key = material.expose();
        let init = payload.child(t::INIT_INDICATOR).and_then(Item::as_bool) == Some(true);
        let last = payload.child(t::FINAL_INDICATOR).and_then(Item::as_bool) == Some(true);
        let correlation = payload
            .child(t::CORRELATION_VALUE)
            .and_then(Item::as_bytes)
            .map(<[u8]>::to_vec);
        if init || correlation.is_some() {
            let stream = StreamRequest {
                init,
                last,
                correlation,
            };
            return self.edge.stream(
                tenant,
                service,
                uid,
                ctx.version,
                &params,
                mode,
                key,
                req,
                encrypt,
                stream,
            );
        }
        Ok(aes_once(ctx.version, &params, mode, key, &req, encrypt, uid)?.into_item())
    }
}

/// One AES Encrypt or Decrypt of a whole message.
fn aes_once(
    version: openkcm_kmip::ProtocolVersion,
    params: &CryptoParams,
    mode: u32,
    key: &[u8],
    req: &CipherRequest,
    encrypt: bool,
    uid: String,
) -> Result<CipherResponse, KmipError> {
    let crypto = |e: openkcm_crypto::CryptoError| match e {
        openkcm_crypto::CryptoError::InvalidNonce { .. }
        | openkcm_crypto::CryptoError::InvalidTag { .. }
        | openkcm_crypto::CryptoError::InvalidCiphertextLength { .. } => {
            KmipError::invalid_field(e.to_string())
        }
        other => KmipError::crypto(other.to_string()),
    };
    match mode {
        bcm::CBC | bcm::ECB | bcm::CTR => {
            let aes_mode = match mode {
                bcm::CBC => aes::AesMode::Cbc,
                bcm::ECB => aes::AesMode::Ecb,
                _ => aes::AesMode::Ctr,
            };
            // CBC without a Padding Method keeps this server's default (PKCS5); ECB and CTR default to none.
            let pkcs7 = match params.padding {
                Some(padding_method::PKCS5) => true,
                Some(padding_method::NONE) => false,
                None => mode == bcm::CBC,
                Some(other) => {
                    return Err(KmipError::invalid_field(format!(
                        "Padding Method 0x{other:X} is not supported for AES; use None or PKCS5"
                    )))
                }
            };
            if pkcs7 && mode == bcm::CTR {
                return Err(KmipError::invalid_field("CTR mode takes no padding"));
            }
            let needs_iv = mode != bcm::ECB;
            let iv: Option<[u8; 16]> = match &req.iv {
                Some(_) if !needs_iv => {
                    return Err(KmipError::invalid_field("ECB takes no IV/Counter/Nonce"))
                }
                Some(iv) => Some(iv.as_slice().try_into().map_err(|_| {
                    KmipError::invalid_field(
                        "the IV/Counter/Nonce must be 16 bytes for AES CBC and CTR",
                    )
                })?),
                None if needs_iv && encrypt => Some(aes::random_bytes::<16>().map_err(crypto)?),
                // The profiles expect Invalid Message for a decryption without the IV its mode needs.
                None if needs_iv => {
                    return Err(KmipError::new(
                        rr::INVALID_MESSAGE,
                        "Decrypt in CBC or CTR mode needs the IV/Counter/Nonce used to encrypt",
                    ))
                }
                None => None,
            };
            let generated = req.iv.is_none() && needs_iv;
            if encrypt && !pkcs7 && mode != bcm::CTR && !req.data.len().is_multiple_of(16) {
                return Err(KmipError::invalid_field(format!(
                    "without padding, ECB and CBC encrypt whole 16-byte blocks; {} bytes were given (ask for PKCS5 \
                     padding, or use CTR or GCM)",
                    req.data.len()
                )));
            }
            let out = aes::aes_crypt(key, aes_mode, pkcs7, iv.as_ref(), &req.data, encrypt)
                .map_err(crypto)?;
            Ok(CipherResponse {
                uid,
                data: out.expose().to_vec(),
                iv: if encrypt && generated {
                    iv.map(|v| v.to_vec())
                } else {
                    None
                },
                tag: None,
            })
        }
        bcm::GCM => {
            if !version.has_aead_fields() {
                return Err(KmipError::new(
                    rr::FEATURE_NOT_SUPPORTED,
                    "GCM needs KMIP 1.4 or later, which carries the Authenticated Encryption Tag",
                ));
            }
            let aad = req.aad.as_deref().unwrap_or_default();
            if encrypt {
                let tag_len = match params.tag_length {
                    None => 16,
                    Some(l @ 12..=16) => l as usize,
                    // The GCM profile cases expect General Failure for a tag length GCM does not define.
                    Some(l) => {
                        return Err(KmipError::general(format!(
                            "a GCM Tag Length of {l} bytes is not supported (12 to 16)"
                        )))
                    }
                };
                let generated = req.iv.is_none();
                let iv = match &req.iv {
                    Some(iv) => iv.clone(),
                    None => {
                        let bits = params.iv_length.unwrap_or(96);
                        if bits % 8 != 0 || !(64..=512).contains(&bits) {
                            return Err(KmipError::invalid_field(format!(
                                    "an IV Length of {bits} bits is not supported for GCM (64 to 512, whole bytes)"
                                )));
                        }
                        let mut iv = vec![0u8; bits as usize / 8];
                        aes::fill_random(&mut iv).map_err(crypto)?;
                        iv
                    }
                };
                let (ct, tag) = if iv.len() == 12 && tag_len == 16 {
                    let (ct, tag) = aes::gcm_seal_any(key, &iv, aad, &req.data).map_err(crypto)?;
                    (ct, tag.to_vec())
                } else {
                    let (ct, tag) = aes::gcm_general(key, &iv, aad, &req.data, None, tag_len)
                        .map_err(crypto)?;
                    (ct.expose().to_vec(), tag)
                };
                Ok(CipherResponse {
                    uid,
                    data: ct,
                    iv: generated.then_some(iv),
                    tag: Some(tag),
                })
            } else {
                let iv = req.iv.as_deref().ok_or_else(|| {
                    KmipError::new(
                        rr::INVALID_MESSAGE,
                        "GCM decryption needs the IV/Counter/Nonce used to encrypt",
                    )
                })?;
                let tag = req
                    .tag
                    .as_deref()
                    .ok_or_else(|| KmipError::missing("Authenticated Encryption Tag"))?;
                if params
                    .tag_length
                    .is_some_and(|l| usize::try_from(l).ok() != Some(tag.len()))
                {
                    return Err(KmipError::invalid_field(
                        "the Authenticated Encryption Tag is not as long as the Tag Length says",
                    ));
                }
                let pt = if iv.len() == 12 && tag.len() == 16 {
                    aes::gcm_open_any(key, iv, aad, &req.data, tag).map_err(crypto)?
                } else {
                    aes::gcm_general(key, iv, aad, &req.data, Some(tag), tag.len())
                        .map_err(crypto)?
                        .0
                };
                Ok(CipherResponse {
                    uid,
                    data: pt.expose().to_vec(),
                    iv: None,
                    tag: None,
                })
            }
        }
        other => Err(KmipError::invalid_field(format!(
            "block cipher mode 0x{other:X} is not supported; use ECB, CBC, CTR or GCM"
        ))),
    }
}

#[async_trait::async_trait]
impl OperationHandler for EdgeOps<'_> {
    async fn handle(
        &self,
        ctx: &ItemContext,
        operation: u32,
        payload: &Item,
    ) -> Result<Item, KmipError> {
        let sealed = self
            .edge
            .core_sealed
            .load(std::sync::atomic::Ordering::SeqCst);
        let result = match operation {
            op::DISCOVER_VERSIONS => payload::discover_versions_response(payload),
            op::QUERY if !sealed => {
                // Only what this version defines and this edge serves.
                let ops: Vec<u32> = EDGE_OPERATIONS
                    .iter()
                    .copied()
                    .filter(|o| {
                        openkcm_kmip::enums::operation::introduced_in(*o).is_some_and(|v| v <= ctx.version)
                    })
                    .collect();
                let mut types = vec![
                    object_type::SYMMETRIC_KEY,
                    object_type::SECRET_DATA,
                    object_type::OPAQUE_OBJECT,
                    object_type::SPLIT_KEY,
                ];
                if !ctx.version.is_v2() {
                    types.push(object_type::TEMPLATE);
                }
                payload::query_response(ctx.version, payload, &ops, &types)
            }
            _ if sealed => self.caller().and(Err(KmipError::new(
                rr::GENERAL_FAILURE,
                "the Crypto Core is sealed: no key operation is possible until an operator unseals it (openkcm operator unseal)",
            ))),
            op::CREATE => self.create(ctx, payload).await,
            op::REGISTER => self.register(ctx, payload).await,
            op::REKEY => self.rekey(ctx, payload).await,
            op::HASH => Self::hash(payload),
            op::DERIVE_KEY => self.derive_key(payload).await,
            op::OBTAIN_LEASE => self.obtain_lease(ctx, payload).await,
            op::CHECK => self.check_or_allocate(ctx, payload, false).await,
            op::GET_USAGE_ALLOCATION => self.check_or_allocate(ctx, payload, true).await,
            op::MAC => self.mac(ctx, payload, false).await,
            op::MAC_VERIFY => self.mac(ctx, payload, true).await,
            op::RNG_RETRIEVE => Self::rng_retrieve(payload),
            op::RNG_SEED => Err(KmipError::new(
                rr::PERMISSION_DENIED,
                "RNG Seed is refused by policy: the server's generator is seeded by the operating system and takes no client entropy",
            )),
            op::ADD_ATTRIBUTE | op::MODIFY_ATTRIBUTE | op::DELETE_ATTRIBUTE | op::SET_ATTRIBUTE => {
                self.edit_attribute(ctx, payload, operation).await
            }
            op::GET => self.get(ctx, payload).await,
            op::GET_ATTRIBUTES => self.get_attributes(ctx, payload).await,
            op::GET_ATTRIBUTE_LIST => self.get_attribute_list(ctx, payload).await,
            op::LOCATE => self.locate(ctx, payload).await,
            op::ACTIVATE => self.activate(ctx, payload).await,
            op::REVOKE => self.revoke(ctx, payload).await,
            op::DESTROY => self.destroy(ctx, payload).await,
            op::CREATE_SPLIT_KEY => self.create_split_key(ctx, payload).await,
            op::JOIN_SPLIT_KEY => self.join_split_key(ctx, payload).await,
            op::ARCHIVE => self.archive(ctx, payload, true).await,
            op::RECOVER => self.archive(ctx, payload, false).await,
            op::CANCEL => self.cancel(payload),
            op::ENCRYPT => self.cipher(ctx, payload, true).await,
            op::DECRYPT => self.cipher(ctx, payload, false).await,
            other => {
                let (tenant, service) = self.caller()?;
                self.edge
                    .core
                    .proxy(tenant, service, ctx.version, other, payload)
                    .await
            }
        };
        if let Err(e) = &result {
            openkcm_net::log_refusal(self.peer, ctx.version, operation, e);
        }
        result
    }

    async fn defer(&self, ctx: &ItemContext, operation: u32, payload: &Item) -> Option<Vec<u8>> {
        if !ASYNC_OPERATIONS.contains(&operation)
            || openkcm_ttlv::encoded_len(payload) > MAX_PENDING_PAYLOAD
            || self
                .edge
                .core_sealed
                .load(std::sync::atomic::Ordering::SeqCst)
        {
            return None;
        }
        let (tenant, service) = self.caller().ok()?;
        // Archive and Recover of the ID Placeholder's object: the identifier is resolved now (the placeholder
        // belongs to this batch); without one the operation is answered at once (and fails there).
        let mut payload = payload.clone();
        if operation != op::LOCATE && payload.child(t::UNIQUE_IDENTIFIER).is_none() {
            let uid = ctx.uid(&payload).ok()?;
            if let Value::Structure(children) = &mut payload.value {
                children.insert(0, Item::new(t::UNIQUE_IDENTIFIER, Value::TextString(uid)));
            }
        }
        let acv = uuid::Uuid::new_v4().as_bytes().get(..8)?.to_vec();
        let mut pending = self.edge.pending.lock().ok()?;
        pending.retain(|_, p| p.queued.elapsed() < PENDING_TTL);
        let mine = pending
            .values()
            .filter(|p| p.tenant == tenant && p.service == service)
            .count();
        if pending.len() >= MAX_PENDING || mine >= MAX_PENDING_PER_CALLER {
            // A full queue: the operation is answered at once, which KMIP always allows.
            return None;
        }
        pending.insert(
            acv.clone(),
            PendingOp {
                tenant: tenant.to_owned(),
                service: service.to_owned(),
                principal: current_principal(),
                operation,
                payload,
                version: ctx.version,
                header: ctx.header.clone(),
                queued: std::time::Instant::now(),
            },
        );
        Some(acv)
    }

    async fn poll(
        &self,
        _ctx: &ItemContext,
        payload: &Item,
    ) -> Result<(u32, Result<Item, KmipError>), KmipError> {
        let acv = async_correlation_value(payload)?;
        let queued = self.take_pending(&acv)?;
        let ctx = ItemContext {
            version: queued.version,
            header: queued.header,
            id_placeholder: None,
        };
        let result = self.handle(&ctx, queued.operation, &queued.payload).await;
        Ok((queued.operation, result))
    }

    fn can_undo(&self) -> bool {
        UNDO_JOURNAL.try_with(|_| ()).is_ok()
    }

    /// Restores every record this message changed, newest change first, and deletes those it created.
    async fn undo(&self) -> Result<(), KmipError> {
        let entries = UNDO_JOURNAL
            .try_with(|j| {
                j.lock()
                    .map(|mut j| std::mem::take(&mut *j))
                    .unwrap_or_default()
            })
            .map_err(|_| KmipError::general("no undo journal"))?;
        for e in entries.into_iter().rev() {
            self.edge.l4_cache.purge(&e.tenant, &e.id);
            match e.previous {
                None => {
                    self.edge
                        .vault
                        .delete(&e.tenant, KIND_L4, &e.id, 0)
                        .await
                        .map_err(vault_err)?;
                }
                Some(previous) => {
                    let current = self
                        .edge
                        .vault
                        .get(&e.tenant, KIND_L4, &e.id, 0)
                        .await
                        .map_err(vault_err)?
                        .ok_or_else(|| {
                            KmipError::general(format!("object {:?} vanished during undo", e.id))
                        })?;
                    if !self
                        .edge
                        .vault
                        .compare_and_set(&previous, current.revision)
                        .await
                        .map_err(vault_err)?
                    {
                        return Err(KmipError::general(format!(
                            "object {:?} changed again while the batch was being undone",
                            e.id
                        )));
                    }
                }
            }
        }
        Ok(())
    }
}

/// How an attribute edit treats an existing instance.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Edit {
    /// Add Attribute: a new instance (an error for a single-valued attribute already present).
    Add,
    /// Modify Attribute: replace an existing instance.
    Modify,
    /// Set Attribute (2.x): replace or create.
    Set,
}

/// Attributes a client may never set or change after creation (besides [`SERVER_ONLY`]).
const READ_ONLY: &[&str] = &[
    "Random Number Generator",
    "Object Type",
    "Cryptographic Algorithm",
    "Cryptographic Length",
    "Always Sensitive",
    "Never Extractable",
];

fn is_multi(name: &str) -> bool {
    MULTI_VALUED.contains(&name) || name.starts_with("x-")
}

fn check_editable(name: &str) -> Result<(), KmipError> {
    if SERVER_ONLY.contains(&name) || READ_ONLY.contains(&name) {
        return Err(KmipError::new(
            rr::PERMISSION_DENIED,
            format!("attribute {name:?} is set by the server and cannot be changed by a client"),
        ));
    }
    if name.starts_with("y-") {
        return Err(KmipError::new(
            rr::PERMISSION_DENIED,
            format!("attribute {name:?}: names starting with y- are reserved for servers"),
        ));
    }
    if openkcm_kmip::attribute_names::tag_for_name(name).is_none() && !name.starts_with("x-") {
        return Err(KmipError::invalid_field(format!(
            "attribute {name:?} is not a KMIP attribute; custom attributes start with x-"
        )));
    }
    Ok(())
}

/// Reads a Usage Limits value: Total (required), Count (defaults to Total), Unit (required).
fn parse_usage_limits(v: &Item) -> Result<(i64, i64, u32), KmipError> {
    let total = v
        .child(t::USAGE_LIMITS_TOTAL)
        .and_then(Item::as_i64)
        .ok_or_else(|| {
            KmipError::invalid_field("Usage Limits needs a Usage Limits Total (Long Integer)")
        })?;
    let unit = v
        .child(t::USAGE_LIMITS_UNIT)
        .and_then(Item::as_enum)
        .ok_or_else(|| KmipError::invalid_field("Usage Limits needs a Usage Limits Unit"))?;
    let count = v
        .child(t::USAGE_LIMITS_COUNT)
        .and_then(Item::as_i64)
        .unwrap_or(total);
    if total < 0 || count < 0 || count > total {
        return Err(KmipError::invalid_field(
            "Usage Limits counts are never negative and the Count never exceeds the Total",
        ));
    }
    Ok((total, count, unit))
}

/// A destroyed object's attributes are a tombstone: they are read, not changed.
/// The Asynchronous Correlation Value of a Poll or Cancel request.
fn async_correlation_value(payload: &Item) -> Result<Vec<u8>, KmipError> {
    payload
        .child(t::ASYNCHRONOUS_CORRELATION_VALUE)
        .and_then(Item::as_bytes)
        .map(<[u8]>::to_vec)
        .ok_or_else(|| KmipError::missing("Asynchronous Correlation Value"))
}

/// KMIP 2.x has no Templates: to a 2.x client a Template does not exist.
fn hide_template_from_v2(ctx: &ItemContext, meta: &L4Meta, uid: &str) -> Result<(), KmipError> {
    if ctx.version.is_v2() && meta.object_type == object_type::TEMPLATE {
        return Err(KmipError::not_found(uid));
    }
    Ok(())
}

/// An archived object is used or served only after Recover.
fn refuse_archived(meta: &L4Meta, uid: &str) -> Result<(), KmipError> {
    if meta.archive_date.is_some() {
        return Err(KmipError::new(
            rr::OBJECT_ARCHIVED,
            format!("object {uid:?} is archived; Recover it first"),
        ));
    }
    Ok(())
}

/// A Template has no key and no lifecycle: operations on keys refuse it.
fn refuse_template(meta: &L4Meta, uid: &str, what: &str) -> Result<(), KmipError> {
    if meta.object_type == object_type::TEMPLATE {
        return Err(KmipError::invalid_field(format!(
            "{uid:?} is a Template: {what} applies to keys and other cryptographic objects, not to Templates"
        )));
    }
    Ok(())
}

fn refuse_destroyed(meta: &L4Meta) -> Result<(), KmipError> {
    if matches!(
        meta.state,
        openkcm_kmip::enums::state::DESTROYED | openkcm_kmip::enums::state::DESTROYED_COMPROMISED
    ) {
        return Err(KmipError::new(
            rr::OBJECT_DESTROYED,
            "the object is destroyed: its attributes no longer change",
        ));
    }
    Ok(())
}

fn date_field<'m>(meta: &'m mut L4Meta, name: &str) -> Option<&'m mut Option<i64>> {
    match name {
        "Activation Date" => Some(&mut meta.activation_date),
        "Deactivation Date" => Some(&mut meta.deactivation_date),
        _ => None,
    }
}

/// Applies one attribute edit to `meta`; returns the attribute as stored (with its index when not the first).
fn apply_edit(
    meta: &mut L4Meta,
    a: &Attribute,
    edit: Edit,
    now: i64,
) -> Result<Attribute, KmipError> {
    let name = a.name.as_str();
    check_editable(name)?;
    refuse_destroyed(meta)?;
    let index = a.index.unwrap_or(0);
    if index < 0 {
        return Err(KmipError::invalid_field(
            "an Attribute Index is never negative",
        ));
    }
    let idx = index as usize;
    let bad_type =
        |what: &str| KmipError::invalid_field(format!("attribute {name:?} must be {what}"));
    let missing = || {
        KmipError::new(
            rr::ITEM_NOT_FOUND,
            format!("the object has no attribute {name:?} with index {index}"),
        )
    };
    let exists = |what: &str| {
        KmipError::new(
            rr::ILLEGAL_OPERATION,
            format!("the object already has {what} {name:?}; use Modify Attribute"),
        )
    };
    let mut out = Attribute {
        name: name.to_owned(),
        index: None,
        value: a.value.clone(),
    };
    match name {
        "Name" => {
            let text = a
                .name_text()
                .filter(|n| {
                    !n.trim().is_empty() && !n.chars().any(char::is_control) && n.len() <= 1024
                })
                .ok_or_else(|| bad_type("a Name structure with visible text"))?
                .to_owned();
            match edit {
                Edit::Add => {
                    meta.names.push(text);
                    let i = meta.names.len() - 1;
                    out.index = (i > 0).then_some(i as i32);
                }
                Edit::Modify | Edit::Set => {
                    if edit == Edit::Set && meta.names.is_empty() {
                        meta.names.push(text);
                    } else {
                        *meta.names.get_mut(idx).ok_or_else(missing)? = text;
                        out.index = (idx > 0).then_some(idx as i32);
                    }
                }
            }
        }
        "Cryptographic Usage Mask" => {
            let v = a.value.as_i32().ok_or_else(|| bad_type("an Integer"))?;
            if edit == Edit::Add {
                return Err(exists("an attribute"));
            }
            meta.usage_mask = v;
        }
        "Fresh" => {
            return Err(KmipError::new(
                rr::PERMISSION_DENIED,
                "Fresh is set by the server after creation",
            ))
        }
        // Sensitive may only become true, Extractable only false (KMIP 1.4): protection is never lifted.
        "Sensitive" => {
            let v = a.value.as_bool().ok_or_else(|| bad_type("a Boolean"))?;
            if edit == Edit::Add {
                return Err(exists("an attribute"));
            }
            if !v && meta.sensitive {
                return Err(KmipError::new(
                    rr::PERMISSION_DENIED,
                    "a Sensitive key cannot be made non-Sensitive",
                ));
            }
            meta.sensitive = v;
        }
        "Extractable" => {
            let v = a.value.as_bool().ok_or_else(|| bad_type("a Boolean"))?;
            if edit == Edit::Add {
                return Err(exists("an attribute"));
            }
            if v && meta.not_extractable {
                return Err(KmipError::new(
                    rr::PERMISSION_DENIED,
                    "a non-Extractable key cannot be made Extractable",
                ));
            }
            meta.not_extractable = !v;
        }
        "Usage Limits" => {
            let (total, count, unit) = parse_usage_limits(&a.value)?;
            match (edit, meta.usage_limits().is_some()) {
                (Edit::Add, true) => return Err(exists("an attribute")),
                (Edit::Modify, false) => return Err(missing()),
                _ => {}
            }
            meta.set_usage_limits(total, count, unit);
            out.value = crate::meta::usage_limits_item(total, count, unit);
        }
        n if date_field(meta, n).is_some() => {
            let v = a
                .value
                .as_datetime()
                .ok_or_else(|| bad_type("a Date-Time"))?;
            let state = meta.effective_state(now);
            let field = date_field(meta, n).ok_or_else(missing)?;
            match (edit, field.is_some()) {
                (Edit::Add, true) => return Err(exists("an attribute")),
                (Edit::Modify, false) => return Err(missing()),
                _ => {}
            }
            // A date that has taken effect is history: only a Pre-Active object's dates may change.
            if field.is_some() && state != openkcm_kmip::enums::state::PRE_ACTIVE {
                return Err(KmipError::wrong_state(format!(
                    "{n} can change only while the object is Pre-Active"
                )));
            }
            *field = Some(v);
            if n == "Activation Date"
                && v <= now
                && meta.state == openkcm_kmip::enums::state::PRE_ACTIVE
            {
                meta.state = openkcm_kmip::enums::state::ACTIVE;
            }
        }
        _ => {
            if meta.extra.len() >= MAX_CLIENT_ATTRIBUTES && edit != Edit::Modify {
                return Err(too_many_attributes());
            }
            let encoded = hex::encode(openkcm_ttlv::encode(&a.value));
            let positions: Vec<usize> = meta
                .extra
                .iter()
                .enumerate()
                .filter(|(_, e)| e.name == name)
                .map(|(i, _)| i)
                .collect();
            match edit {
                Edit::Add => {
                    if !positions.is_empty() && !is_multi(name) {
                        return Err(exists("an attribute"));
                    }
                    meta.extra.push(ExtraAttr {
                        name: name.to_owned(),
                        value_ttlv: encoded,
                    });
                    out.index = (!positions.is_empty()).then_some(positions.len() as i32);
                }
                Edit::Modify | Edit::Set => match positions.get(idx) {
                    Some(&p) => {
                        if let Some(e) = meta.extra.get_mut(p) {
                            e.value_ttlv = encoded;
                        }
                        out.index = (idx > 0).then_some(idx as i32);
                    }
                    None if edit == Edit::Set && positions.is_empty() => {
                        meta.extra.push(ExtraAttr {
                            name: name.to_owned(),
                            value_ttlv: encoded,
                        })
                    }
                    None => return Err(missing()),
                },
            }
        }
    }
    meta.last_change_date = now;
    Ok(out)
}

/// Deletes one instance of an attribute; returns it.
fn delete_attr(
    meta: &mut L4Meta,
    name: &str,
    index: Option<i32>,
    uid: &str,
    now: i64,
) -> Result<Attribute, KmipError> {
    check_editable(name)?;
    refuse_destroyed(meta)?;
    let idx = usize::try_from(index.unwrap_or(0))
        .map_err(|_| KmipError::invalid_field("an Attribute Index is never negative"))?;
    let missing = || {
        KmipError::new(
            rr::ITEM_NOT_FOUND,
            format!("the object has no attribute {name:?} with index {idx}"),
        )
    };
    let current: Vec<Attribute> = meta
        .attributes(uid, now)
        .into_iter()
        .filter(|a| a.name == name)
        .collect();
    let mut deleted = current.get(idx).cloned().ok_or_else(missing)?;
    deleted.index = (idx > 0).then_some(idx as i32);
    match name {
        "Name" => {
            if idx < meta.names.len() {
                meta.names.remove(idx);
            } else {
                return Err(missing());
            }
        }
        "Cryptographic Usage Mask" => {
            return Err(KmipError::new(
                rr::PERMISSION_DENIED,
                "the Cryptographic Usage Mask cannot be deleted",
            ))
        }
        n if date_field(meta, n).is_some() => {
            if meta.effective_state(now) != openkcm_kmip::enums::state::PRE_ACTIVE {
                return Err(KmipError::wrong_state(format!(
                    "{n} can be deleted only while the object is Pre-Active"
                )));
            }
            if let Some(f) = date_field(meta, n) {
                *f = None;
            }
        }
        _ => {
            let p = meta
                .extra
                .iter()
                .enumerate()
                .filter(|(_, e)| e.name == name)
                .map(|(i, _)| i)
                .nth(idx)
                .ok_or_else(missing)?;
            meta.extra.remove(p);
        }
    }
    meta.last_change_date = now;
    Ok(deleted)
}

/// The streaming fields of an Encrypt/Decrypt request (KMIP 1.3+).
pub(crate) struct StreamRequest {
    init: bool,
    last: bool,
    correlation: Option<Vec<u8>>,
}

/// A streamed Encrypt/Decrypt in progress: what the client sent so far and how much output it already has.
struct StreamState {
    tenant: String,
    service: String,
    uid: String,
    encrypt: bool,
    params: CryptoParams,
    mode: u32,
    iv: Option<Vec<u8>>,
    iv_generated: bool,
    aad: Option<Vec<u8>>,
    data: Vec<u8>,
    emitted: usize,
    started: std::time::Instant,
}

impl Drop for StreamState {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.data);
    }
}

/// Bytes one stream may carry in total.
const STREAM_MAX_BYTES: usize = 1 << 20;
/// Streams one identity may have open at once.
const STREAMS_PER_IDENTITY: usize = 32;
/// A stream not finished within this time is dropped.
const STREAM_TTL: std::time::Duration = std::time::Duration::from_secs(300);

impl Edge {
    /// One step of a streamed Encrypt/Decrypt: Init starts a stream (answered with a Correlation Value), later
    /// requests name it; each answer carries the output the data so far allows (whole blocks for ECB/CBC, all of it
    /// for CTR and GCM encryption; GCM decryption releases plaintext only once the tag verifies), Final finishes.
    #[allow(clippy::too_many_arguments)]
    fn stream(
        &self,
        tenant: &str,
        service: &str,
        uid: String,
        version: openkcm_kmip::ProtocolVersion,
        params: &CryptoParams,
        mode: u32,
        key: &[u8],
        req: CipherRequest,
        encrypt: bool,
        s: StreamRequest,
    ) -> Result<Item, KmipError> {
        let mut streams = self
            .streams
            .lock()
            .map_err(|_| KmipError::general("stream table unavailable"))?;
        streams.retain(|_, st| st.started.elapsed() < STREAM_TTL);
        let (id, mut st) = if s.init {
            let open = streams
                .values()
                .filter(|st| st.tenant == tenant && st.service == service)
                .count();
            if open >= STREAMS_PER_IDENTITY {
                return Err(KmipError::new(
                    rr::PERMISSION_DENIED,
                    format!("at most {STREAMS_PER_IDENTITY} streamed operations may be open at once; finish one first"),
                ));
            }
            // The IV is fixed at the start (client's, or made now for encryption).
            let (iv, iv_generated) = match (&req.iv, mode) {
                (Some(iv), _) => (Some(iv.clone()), false),
                (None, bcm::ECB) => (None, false),
                (None, bcm::GCM) if encrypt => {
                    let mut iv = vec![0u8; 12];
                    aes::fill_random(&mut iv).map_err(|e| KmipError::crypto(e.to_string()))?;
                    (Some(iv), true)
                }
                (None, _) if encrypt => {
                    let mut iv = vec![0u8; 16];
                    aes::fill_random(&mut iv).map_err(|e| KmipError::crypto(e.to_string()))?;
                    (Some(iv), true)
                }
                (None, _) => return Err(KmipError::new(
                    rr::INVALID_MESSAGE,
                    "a streamed decryption in this mode needs the IV/Counter/Nonce used to encrypt",
                )),
            };
            let mut id = vec![0u8; 16];
            aes::fill_random(&mut id).map_err(|e| KmipError::crypto(e.to_string()))?;
            let st = StreamState {
                tenant: tenant.into(),
                service: service.into(),
                uid: uid.clone(),
                encrypt,
                params: params.clone(),
                mode,
                iv,
                iv_generated,
                aad: req.aad.clone(),
                data: Vec::new(),
                emitted: 0,
                started: std::time::Instant::now(),
            };
            (id, st)
        } else {
            let id = s.correlation.clone().unwrap_or_default();
            let st = streams.remove(&id).ok_or_else(|| {
                KmipError::invalid_field("the Correlation Value names no open streamed operation")
            })?;
            if st.tenant != tenant
                || st.service != service
                || st.uid != uid
                || st.encrypt != encrypt
            {
                // Put it back: another caller's stream is not touched by a mismatched request.
                let owner_ok = st.tenant == tenant && st.service == service;
                streams.insert(id, st);
                return Err(KmipError::invalid_field(if owner_ok {
                    "the Correlation Value belongs to a stream of another key or operation"
                } else {
                    "the Correlation Value names no open streamed operation"
                }));
            }
            (id, st)
        };
        if st.data.len() + req.data.len() > STREAM_MAX_BYTES {
            return Err(KmipError::invalid_field(format!(
                "a streamed operation carries at most {STREAM_MAX_BYTES} bytes"
            )));
        }
        st.data.extend_from_slice(&req.data);
        let whole = |data: Vec<u8>, tag: Option<Vec<u8>>, params: &CryptoParams| CipherRequest {
            uid: None,
            params: Some(params.clone()),
            data,
            iv: st.iv.clone(),
            aad: st.aad.clone(),
            tag,
        };
        let (out, tag) = if s.last {
            let r = aes_once(
                version,
                &st.params,
                st.mode,
                key,
                &whole(st.data.clone(), req.tag.clone(), &st.params),
                st.encrypt,
                uid.clone(),
            )?;
            (r.data, r.tag)
        } else {
            // Output the prefix that is already final.
            let block = 16;
            let ready = match (st.mode, st.encrypt) {
                (bcm::ECB | bcm::CBC, true) => st.data.len() / block * block,
                // Decryption with padding keeps the last block back: it may hold the padding.
                (bcm::ECB | bcm::CBC, false) => st.data.len().saturating_sub(1) / block * block,
                (bcm::GCM, false) => 0,
                _ => st.data.len(),
            };
            if ready <= st.emitted {
                (Vec::new(), None)
            } else {
                let mut unpadded = st.params.clone();
                unpadded.padding = Some(padding_method::NONE);
                let prefix = st.data.get(..ready).unwrap_or_default().to_vec();
                let r = if st.mode == bcm::GCM {
                    aes_once(
                        version,
                        &st.params,
                        st.mode,
                        key,
                        &whole(prefix, None, &st.params),
                        true,
                        uid.clone(),
                    )?
                } else {
                    aes_once(
                        version,
                        &unpadded,
                        st.mode,
                        key,
                        &whole(prefix, None, &unpadded),
                        st.encrypt,
                        uid.clone(),
                    )?
                };
                (r.data, None)
            }
        };
        let fresh = out.get(st.emitted..).unwrap_or_default().to_vec();
        st.emitted = st.emitted.max(out.len());
        let mut children = vec![Item::new(t::UNIQUE_IDENTIFIER, Value::TextString(uid))];
        if !fresh.is_empty() {
            children.push(Item::new(t::DATA, Value::ByteString(fresh)));
        }
        if s.init && st.iv_generated {
            if let Some(iv) = &st.iv {
                children.push(Item::new(
                    t::IV_COUNTER_NONCE,
                    Value::ByteString(iv.clone()),
                ));
            }
        }
        if !s.last {
            children.push(Item::new(
                t::CORRELATION_VALUE,
                Value::ByteString(id.clone()),
            ));
            streams.insert(id, st);
        }
        if let Some(tag) = tag {
            children.push(Item::new(
                t::AUTHENTICATED_ENCRYPTION_TAG,
                Value::ByteString(tag),
            ));
        }
        Ok(Item::structure(t::RESPONSE_PAYLOAD, children))
    }
}
