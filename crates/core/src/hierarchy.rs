//! Tenants' systems (L2) and services (L3): provisioning, lazy hydration into locked memory, and the sovereignty
//! rule of DESIGN §2.2 that decides when the IVK fast path may be used and when the customer's L1 must be asked.

use crate::keyring::Keyring;
use openkcm_crypto::{unwrap, wrap, CryptoError, EnvelopeHeader, Layer, SecretKey};
use openkcm_providers::{KeyProvider, KeyRef, ProviderError};
use openkcm_store::{KeyStore, Record, RecordKey, StoreError};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Storage kinds of the Core's records.
pub mod kind {
    /// A tenant's system: its L1 reference and link status (no key material).
    pub const SYSTEM: &str = "system";
    /// L2 wrapped by the customer's L1 (provider ciphertext).
    pub const L2_SOVEREIGN: &str = "l2-sovereign";
    /// L2 wrapped by the IVK, with `l1_verified_at`.
    pub const L2_ACTIVE: &str = "l2-active";
    /// A service: its system and current L3 version.
    pub const SERVICE: &str = "service";
    /// One L3 version, wrapped by L2.
    pub const L3: &str = "l3";
}

/// Core settings.
#[derive(Debug, Clone)]
pub struct CoreConfig {
    /// How long an L2 active binding may be used after L1 was last proven (default 1 h, minimum 1 min).
    pub sovereign_ttl: Duration,
    /// Extra time a binding stays usable while L1 is merely unreachable (default 15 min).
    pub l1_outage_grace: Duration,
    /// Whether an empty store may be initialised with a new IVK. True only when the MasterKey was just created;
    /// otherwise an empty store means lost or replaced storage and opening fails (default true, for tests).
    pub allow_new_ivk: bool,
    /// Development convenience: a client of a known tenant naming a service that does not exist yet gets the
    /// service (its L3 version 1) created under the tenant's system on first use, when the tenant has exactly one
    /// system. Off by default; production services are created explicitly.
    pub auto_provision_services: bool,
    /// L3 custody (DESIGN §6.3). `None`: `core` custody, service keys never leave the Core. `Some(ttl)`: `lease`
    /// custody, an edge may Get a service key and use it for `ttl` (at most [`MAX_L3_LEASE`]).
    pub l3_lease_ttl: Option<Duration>,
    /// How long a superseded IVK version stays GRACE (in memory) before it is DEPRECATED (default 24 h).
    pub ivk_grace_period: Duration,
    /// How long an IVK version may wrap at most (its `hard_expiry` is its creation plus this; default 90 d): an
    /// ACTIVE version past it is replaced before the next wrap, whatever the schedule says.
    pub ivk_hard_lifetime: Duration,
    /// The IVK volume trigger: rotation after this many wraps under one version (DESIGN §4; 2^32 by default).
    pub ivk_volume: crate::keyring::VolumeTrigger,
    /// Plaintext L2s (and, separately, L3 versions) kept in memory at most (default 100 000 each).
    pub key_cache_capacity: usize,
    /// A cached plaintext key unused this long leaves memory (default 1 h).
    pub key_cache_idle: Duration,
    /// How long a cached service key (L3) version is used before its record is read again (default 30 s), so that
    /// another Core node's rotation, scheduled switch, compromise or destruction of it reaches this node within
    /// that time: it then stops wrapping (or unwrapping) here too.
    pub l3_recheck: Duration,
    /// Zero-knowledge metadata (DESIGN §5.2, ADR-015): names blinded and metadata encrypted in the key store
    /// ([`crate::sealed_store`]). Default true; false keeps them in clear, as releases before it did (only to make
    /// such a store in tests).
    pub seal_metadata: bool,
}

/// Seconds since the Unix epoch, the clock the Core's records use.
pub fn unix_now() -> i64 {
    crate::now()
}

/// Batches of bindings the IVK scrubber works on at once.
pub const SCRUB_CONCURRENCY: usize = 4;
/// Bindings per scrubber batch (one batched read and three batched writes each).
pub const SCRUB_BATCH: usize = 256;

/// What one scrubber pass did (see [`Core::scrub_bindings`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct ScrubPass {
    /// Bindings re-wrapped under the ACTIVE IVK version.
    pub rewrapped: usize,
    /// Bindings due but left for a later pass (the pass's limit was reached).
    pub remaining: usize,
    /// Bindings under an older version that are younger than the scrub age (re-wrapped on use, or later).
    pub waiting: usize,
    /// Bindings that could not be re-wrapped (logged).
    pub failed: usize,
    /// When the first waiting binding becomes due (seconds since the epoch).
    pub next_due: Option<i64>,
}

impl ScrubPass {
    fn add(&mut self, other: &ScrubPass) {
        self.rewrapped += other.rewrapped;
        self.remaining += other.remaining;
        self.waiting += other.waiting;
        self.failed += other.failed;
        self.next_due = match (self.next_due, other.next_due) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
    }

    /// Whether nothing is left to do under the ACTIVE version (no binding due, waiting or failed).
    pub fn finished(&self) -> bool {
        self.remaining == 0 && self.waiting == 0 && self.failed == 0
    }
}

/// The longest an edge may hold a leased service key (DESIGN §6.3).
pub const MAX_L3_LEASE: Duration = Duration::from_secs(300);

impl Default for CoreConfig {
    fn default() -> Self {
        Self {
            sovereign_ttl: Duration::from_secs(3600),
            l1_outage_grace: Duration::from_secs(900),
            allow_new_ivk: true,
            auto_provision_services: false,
            l3_lease_ttl: None,
            ivk_grace_period: Duration::from_secs(24 * 3600),
            ivk_hard_lifetime: Duration::from_secs(90 * 24 * 3600),
            ivk_volume: crate::keyring::VolumeTrigger::default(),
            key_cache_capacity: 100_000,
            key_cache_idle: Duration::from_secs(3600),
            l3_recheck: Duration::from_secs(30),
            seal_metadata: true,
        }
    }
}

/// Failures of Core operations. Messages never contain key material.
#[derive(Debug, thiserror::Error)]
pub enum CoreError {
    /// No such object for this tenant.
    #[error("no object with unique identifier {0:?} exists")]
    NotFound(String),
    /// Storage failed.
    #[error("key storage failed: {0}")]
    Store(#[from] StoreError),
    /// A cryptographic check failed.
    #[error("{0}")]
    Crypto(#[from] CryptoError),
    /// The customer's key provider refused or failed.
    #[error("the customer's key provider failed: {0}")]
    Provider(#[from] ProviderError),
    /// A stored record is inconsistent.
    #[error("stored key data is corrupt: {0}")]
    Corrupt(String),
    /// The request conflicts with another node's concurrent change, or with the object's state.
    #[error("{0}")]
    Conflict(String),
    /// A service key version was destroyed: the data keys wrapped under it can no longer be opened.
    #[error("key version destroyed: service key {0:?} was destroyed, so the data keys wrapped under it can no longer be opened")]
    KeyVersionDestroyed(String),
    /// A key version was marked compromised: every operation with it is refused (DESIGN §5.1).
    #[error("key version compromised: {0} was marked compromised, so it neither wraps nor unwraps any more")]
    KeyVersionCompromised(String),
    /// The customer revoked L1: the system's keys are gone from this Core until L1 is re-enabled.
    #[error("the customer's root key (L1) for system {0:?} has been revoked or disabled; its keys are unavailable")]
    L1Revoked(String),
    /// L1 has been unreachable for longer than the sovereign TTL plus grace: fail closed.
    #[error("the customer's root key (L1) for system {0:?} has been unreachable for too long; refusing to serve")]
    L1Unreachable(String),
}

/// One hydrated L3 version.
pub struct L3Key {
    /// Tenant.
    pub tenant: String,
    /// System (L2 scope).
    pub system: String,
    /// Service.
    pub service: String,
    /// Unique identifier (one per version, as KMIP Re-key creates new objects).
    pub uid: String,
    /// Version number within the service.
    pub version: u32,
    /// KMIP state.
    pub state: u32,
    /// For the current version of a service with a scheduled successor: when the successor becomes active, after
    /// which this version wraps nothing new.
    pub wraps_until: Option<i64>,
    /// The key, in locked memory.
    pub key: SecretKey,
}

/// A per-system hydration lock.
type Flight = Arc<tokio::sync::Mutex<()>>;

/// The Crypto Core.
pub struct Core {
    store: Arc<dyn KeyStore>,
    l1: Arc<dyn KeyProvider>,
    ivk: Keyring,
    config: CoreConfig,
    /// Plaintext L2s by (tenant, system), and L3 versions by (tenant, unique identifier): bounded LRUs with an idle
    /// TTL (DESIGN §5).
    l2_cache: crate::cache::KeyCache<SecretKey>,
    l3_cache: crate::cache::KeyCache<L3Key>,
    /// One lock per (tenant, system): concurrent requests for a cold system wait on a single hydration, while
    /// other systems hydrate in parallel.
    hydration: Mutex<HashMap<(String, String), Flight>>,
    /// The root of the edges' vault metadata keys, derived from the MasterKey (the MasterKey itself is not kept).
    edge_vault_root: SecretKey,
}

/// How far ahead a scheduled service key version may become active (KMIP Re-key Offset): one year.
pub const MAX_ACTIVATION_DELAY_SECS: i64 = 366 * 86_400;

/// What the edges' vault metadata keys are derived from (with the edge's name).
const EDGE_VAULT_PURPOSE: &str = "openkcm/edge-vault-metadata/v1";

/// The vault metadata key of edge `edge` under MasterKey `mk` (what [`Core::edge_vault_key`] hands that edge): for
/// recovery tools and tests that read a vault with the MasterKey in hand.
pub fn edge_vault_key(mk: &SecretKey, edge: &str) -> Result<SecretKey, CoreError> {
    edge_vault_key_under(
        &openkcm_crypto::derived::derive_key(mk, EDGE_VAULT_PURPOSE)?,
        edge,
    )
}

fn edge_vault_key_under(root: &SecretKey, edge: &str) -> Result<SecretKey, CoreError> {
    Ok(openkcm_crypto::derived::derive_key(
        root,
        &format!("edge/{edge}"),
    )?)
}

fn meta_str(rec: &Record, field: &str) -> Result<String, CoreError> {
    rec.metadata
        .get(field)
        .and_then(|v| v.as_str())
        .map(str::to_owned)
        .ok_or_else(|| {
            CoreError::Corrupt(format!("{} record {:?} lacks {field}", rec.kind, rec.id))
        })
}

fn meta_i64(rec: &Record, field: &str) -> Result<i64, CoreError> {
    rec.metadata
        .get(field)
        .and_then(|v| v.as_i64())
        .ok_or_else(|| {
            CoreError::Corrupt(format!("{} record {:?} lacks {field}", rec.kind, rec.id))
        })
}

/// Whether a record's state is COMPROMISED.
fn is_compromised(rec: &Record) -> bool {
    rec.metadata["state"].as_u64() == Some(u64::from(openkcm_kmip::enums::state::COMPROMISED))
}

fn l2_key_id(system: &str) -> String {
    format!("{system}/l2")
}

fn l1_context(tenant: &str, system: &str) -> Vec<(String, String)> {
    vec![
        ("openkcm:tenant".into(), tenant.into()),
        ("openkcm:system".into(), system.into()),
        ("openkcm:purpose".into(), "l2-sovereign-binding".into()),
    ]
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Core {
    /// The Core's view of its key store (names and metadata in clear, as the Core sees them; sealed in the backend
    /// unless `seal_metadata` is off).
    pub fn store(&self) -> Arc<dyn KeyStore> {
        self.store.clone()
    }

    /// How long an edge may hold a leased service key; `None` in `core` custody (no leases).
    pub fn l3_lease_ttl(&self) -> Option<Duration> {
        self.config.l3_lease_ttl.map(|t| t.min(MAX_L3_LEASE))
    }

    /// A Core over `store`, with `mk` unsealed and `l1` as the provider of customers' root keys.
    pub async fn open(
        store: Arc<dyn KeyStore>,
        mk: &SecretKey,
        l1: Arc<dyn KeyProvider>,
        config: CoreConfig,
    ) -> Result<Self, CoreError> {
        let store: Arc<dyn KeyStore> = if config.seal_metadata {
            Arc::new(crate::sealed_store::open(store, mk).await?)
        } else {
            store
        };
        let ivk = Keyring::load_or_create(
            &store,
            mk,
            config.allow_new_ivk,
            config.ivk_grace_period,
            config.ivk_volume,
            config.ivk_hard_lifetime,
        )
        .await?;
        crate::binding_index::ensure_built(&*store).await?;
        let (capacity, idle) = (config.key_cache_capacity, config.key_cache_idle);
        Ok(Self {
            store,
            l1,
            ivk,
            config,
            l2_cache: crate::cache::KeyCache::new(capacity, idle),
            l3_cache: crate::cache::KeyCache::new(capacity, idle),
            hydration: Mutex::new(HashMap::new()),
            edge_vault_root: openkcm_crypto::derived::derive_key(mk, EDGE_VAULT_PURPOSE)?,
        })
    }

    /// The key under which edge `edge` seals its vault's metadata (zero-knowledge metadata, ADR-015): the same for
    /// every node of this cluster and across restarts, another for every edge name.
    pub fn edge_vault_key(&self, edge: &str) -> Result<SecretKey, CoreError> {
        edge_vault_key_under(&self.edge_vault_root, edge)
    }

    fn l2_active_header(
        tenant: &str,
        system: &str,
        l2_version: u32,
        ivk_version: u32,
    ) -> EnvelopeHeader {
        EnvelopeHeader {
            layer: Layer::L2,
            tenant: tenant.into(),
            // Version 1 keeps the id of the releases before L2 versions.
            key_id: if l2_version == 1 {
                l2_key_id(system)
            } else {
                format!("{}/v{l2_version}", l2_key_id(system))
            },
            parent_id: crate::keyring::parent_id(ivk_version),
            parent_version: ivk_version,
        }
    }

    /// Makes a new ACTIVE IVK version (DESIGN §4); bindings move to it when next used. Returns the new version.
    pub async fn rotate_ivk(&self) -> Result<u32, CoreError> {
        self.ivk.rotate().await
    }

    /// One scrubber pass (DESIGN §4): re-wraps, under the ACTIVE IVK, up to `limit` active bindings that are still
    /// under an older version and were wrapped at least `min_age` ago (younger ones are left to the lazy re-wrap on
    /// use). The bindings are found through the IVK binding index (one read per older version, not a scan of every
    /// tenant) and handled in batches of [`SCRUB_BATCH`], [`SCRUB_CONCURRENCY`] batches at a time, each batch one
    /// batched read and three batched writes: the new index entries, the bindings (compare-and-set), then the old
    /// entries (the index stays a superset). A binding that cannot be re-wrapped (a corrupt record, a revoked IVK
    /// version) is logged and counted, and the pass goes on. Resumable by nature: what was done is in storage, and a
    /// lost compare-and-set race with another node is harmless (that node moved the binding).
    pub async fn scrub_bindings(
        &self,
        limit: usize,
        min_age: Duration,
    ) -> Result<ScrubPass, CoreError> {
        use futures_util::StreamExt;
        use std::sync::atomic::{AtomicUsize, Ordering};
        if self.ivk.active_expired() {
            match self.ivk.rotate().await {
                Ok(v) => tracing::warn!(
                    version = v,
                    "the ACTIVE IVK passed its hard expiry: rotated before re-wrapping"
                ),
                Err(CoreError::Conflict(_)) => {}
                Err(e) => return Err(e),
            }
        }
        let (active, _) = self.ivk.active()?;
        let min_age = i64::try_from(min_age.as_secs()).unwrap_or(i64::MAX);
        let budget = AtomicUsize::new(limit);
        let mut batches = Vec::new();
        for v in self.ivk.versions() {
            if v.version == active {
                continue;
            }
            let entries = crate::binding_index::entries(&*self.store, v.version).await?;
            let mut entries = entries.into_iter().peekable();
            while entries.peek().is_some() {
                let batch: Vec<_> = entries.by_ref().take(SCRUB_BATCH).collect();
                batches.push((v.version, v.created_at, batch));
            }
        }
        let take = |n: usize| {
            let mut granted = 0;
            let _ = budget.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |b| {
                granted = b.min(n);
                Some(b - granted)
            });
            granted
        };
        let mut passes = futures_util::stream::iter(batches)
            .map(|(version, created_at, batch)| {
                self.scrub_batch(active, version, created_at, min_age, batch, &take)
            })
            .buffer_unordered(SCRUB_CONCURRENCY);
        let mut total = ScrubPass::default();
        while let Some(pass) = passes.next().await {
            total.add(&pass?);
        }
        Ok(total)
    }

    /// One batch of [`Core::scrub_bindings`]: the bindings `batch` names under IVK `version` (created at
    /// `created_at`), re-wrapped under `active` where due and within the budget `take` grants.
    async fn scrub_batch(
        &self,
        active: u32,
        version: u32,
        created_at: i64,
        min_age: i64,
        batch: Vec<crate::binding_index::Entry>,
        take: &(dyn Fn(usize) -> usize + Sync),
    ) -> Result<ScrubPass, CoreError> {
        let mut pass = ScrubPass::default();
        let known: std::collections::HashSet<u32> =
            self.ivk.versions().iter().map(|v| v.version).collect();
        let keys: Vec<RecordKey> = batch
            .iter()
            .map(|e| RecordKey {
                tenant: e.tenant.clone(),
                kind: kind::L2_ACTIVE.into(),
                id: e.system.clone(),
                version: e.l2_version,
            })
            .collect();
        // One damaged record must not stop the batch: when the batched read fails, each binding is read on its own
        // and the ones that fail are counted.
        let bindings: Vec<Result<Option<Record>, StoreError>> =
            match self.store.get_many(&keys).await {
                Ok(all) => all.into_iter().map(Ok).collect(),
                Err(_) => {
                    let mut one_by_one = Vec::with_capacity(keys.len());
                    for k in &keys {
                        one_by_one.push(self.store.get(&k.tenant, &k.kind, &k.id, k.version).await);
                    }
                    one_by_one
                }
            };
        let now = crate::now();
        // Stale entries (the binding moved on, or is gone) are dropped with the moved ones.
        let mut drop_entries = Vec::new();
        let mut due = Vec::new();
        for (entry, binding) in batch.into_iter().zip(bindings) {
            let binding = match binding {
                Ok(b) => b,
                Err(e) => {
                    tracing::error!(tenant = %entry.tenant, system = %entry.system, ivk_version = version, error = %e, "IVK scrubber: a binding cannot be read");
                    pass.failed += 1;
                    continue;
                }
            };
            let Some(binding) = binding else {
                // Not written yet (an entry precedes its binding) or destroyed: left to the deletion check.
                continue;
            };
            let names = crate::binding_index::ivk_version_of(&binding);
            if names != version {
                if known.contains(&names) {
                    // It moved on to another version: the entry is stale.
                    drop_entries.push(entry.key);
                } else {
                    // It names no IVK version this cluster has: damaged. Its entry stays (it may still be under
                    // this version), so this version cannot be deleted or revoked over it.
                    tracing::error!(tenant = %entry.tenant, system = %entry.system, ivk_version = names, "IVK scrubber: a binding names an IVK version that does not exist");
                    pass.failed += 1;
                }
                continue;
            }
            // When it was wrapped; bindings of earlier releases: no earlier than their IVK version.
            let wrapped_at = binding.metadata["wrapped_at"]
                .as_i64()
                .unwrap_or(created_at);
            let due_at = wrapped_at.saturating_add(min_age);
            if due_at > now {
                pass.waiting += 1;
                pass.next_due = Some(pass.next_due.map_or(due_at, |d: i64| d.min(due_at)));
                continue;
            }
            due.push((entry, binding));
        }
        let granted = take(due.len());
        pass.remaining += due.len() - granted;
        due.truncate(granted);
        if due.is_empty() {
            self.store.delete_many(&drop_entries).await?;
            return Ok(pass);
        }
        let old_ivk = match self.ivk.get(version).await {
            Ok(k) => k,
            Err(e) => {
                // A revoked version: nothing under it can be opened.
                tracing::error!(ivk_version = version, bindings = due.len(), error = %e, "IVK scrubber: bindings under this IVK version cannot be re-wrapped");
                pass.failed += due.len();
                self.store.delete_many(&drop_entries).await?;
                return Ok(pass);
            }
        };
        let (_, new_ivk) = self.ivk.active()?;
        let mut writes = Vec::with_capacity(due.len());
        let mut entries = Vec::with_capacity(due.len());
        let mut moving = Vec::with_capacity(due.len());
        for (entry, binding) in due {
            let rewrapped = (|| {
                let blob = binding
                    .blob
                    .as_ref()
                    .ok_or_else(|| CoreError::Corrupt("active binding has no blob".into()))?;
                let l2 = unwrap(
                    &old_ivk,
                    blob,
                    &Self::l2_active_header(
                        &entry.tenant,
                        &entry.system,
                        entry.l2_version,
                        version,
                    ),
                )?;
                let mut next = binding.clone();
                next.metadata["ivk_version"] = serde_json::json!(active);
                next.metadata["wrapped_at"] = serde_json::json!(now);
                next.blob = Some(wrap(
                    &new_ivk,
                    &Self::l2_active_header(&entry.tenant, &entry.system, entry.l2_version, active),
                    &l2,
                )?);
                Ok::<_, CoreError>(next)
            })();
            match rewrapped {
                Ok(next) => {
                    entries.push(crate::binding_index::entry(
                        active,
                        &entry.tenant,
                        &entry.system,
                        entry.l2_version,
                    ));
                    writes.push((next, binding.revision));
                    moving.push(entry.key);
                }
                Err(e) => {
                    tracing::error!(tenant = %entry.tenant, system = %entry.system, ivk_version = version, error = %e, "IVK scrubber: a binding could not be re-wrapped");
                    pass.failed += 1;
                }
            }
        }
        // The new entries before the bindings, the old ones after: the index stays a superset.
        self.store.put_many_if_absent(&entries).await?;
        let moved = self.store.compare_and_set_many(&writes).await?;
        for (done, key) in moved.into_iter().zip(moving) {
            // A lost race: another node (or the lazy re-wrap) moved it and removes the old entry itself.
            if done {
                pass.rewrapped += 1;
                drop_entries.push(key);
            }
        }
        self.store.delete_many(&drop_entries).await?;
        if pass.rewrapped > 0 {
            if let Err(e) = self.ivk.note_wraps(pass.rewrapped as u64).await {
                tracing::warn!(error = %e, "counting IVK wraps failed; the volume trigger catches up later");
            }
        }
        Ok(pass)
    }

    /// Emergency rotation (DESIGN §4): a new ACTIVE version, every binding re-wrapped under it now, then the
    /// previous versions REVOKED. Returns the new version. When some binding cannot be re-wrapped, the previous
    /// versions are left as they are (revoking them would lose that binding) and the rotation reports it.
    pub async fn rotate_ivk_emergency(&self) -> Result<u32, CoreError> {
        let version = self.ivk.rotate().await?;
        loop {
            let pass = self.scrub_bindings(1000, Duration::ZERO).await?;
            tracing::info!(
                rewrapped = pass.rewrapped,
                remaining = pass.remaining,
                failed = pass.failed,
                "emergency IVK rotation: re-wrapping bindings"
            );
            if pass.remaining == 0 && pass.failed == 0 {
                break;
            }
            if pass.rewrapped == 0 {
                return Err(CoreError::Conflict(format!(
                    "IVK version {version} is ACTIVE, but {} binding(s) could not be re-wrapped under it (see the log), \
                     so the previous versions were not revoked; fix them and rotate with --emergency again",
                    pass.failed
                )));
            }
        }
        for v in self.ivk.versions() {
            if v.version != version && v.state != crate::keyring::IvkState::Revoked {
                self.ivk.revoke(v.version).await?;
            }
        }
        Ok(version)
    }

    /// Rotates the IVK when the ACTIVE version is older than `period` (the scheduled trigger); returns the new
    /// version when it rotated.
    pub async fn rotate_ivk_if_due(&self, period: Duration) -> Result<Option<u32>, CoreError> {
        let age = crate::now().saturating_sub(self.ivk.active_created_at().unwrap_or(0));
        if age < i64::try_from(period.as_secs()).unwrap_or(i64::MAX) && !self.ivk.active_expired() {
            return Ok(None);
        }
        self.ivk.rotate().await.map(Some)
    }

    /// Deletes IVK version `version` from storage and memory (DESIGN §4): only a DEPRECATED or REVOKED version, and
    /// only when the binding index shows no L2 binding still wrapped under it (run the scrubber, or an emergency
    /// rotation, first).
    pub async fn delete_ivk_version(&self, version: u32) -> Result<(), CoreError> {
        use crate::keyring::IvkState;
        let state = self
            .ivk
            .versions()
            .into_iter()
            .find(|v| v.version == version)
            .map(|v| v.state)
            .ok_or_else(|| CoreError::NotFound(format!("IVK version {version}")))?;
        if !matches!(state, IvkState::Deprecated | IvkState::Revoked) {
            return Err(CoreError::Conflict(format!(
                "IVK version {version} is {}; only a DEPRECATED or REVOKED version can be deleted",
                format!("{state:?}").to_uppercase()
            )));
        }
        let users = crate::binding_index::users(&*self.store, version).await?;
        if users > 0 {
            return Err(CoreError::Conflict(format!(
                "{users} L2 binding(s) are still wrapped under IVK version {version}: let the scrubber re-wrap them \
                 (or rotate with --emergency) before deleting it"
            )));
        }
        self.ivk.delete(version).await
    }

    /// Drops the keys of DEPRECATED IVK versions from memory (loaded again on use); returns how many.
    pub fn forget_deprecated_ivk(&self) -> usize {
        self.ivk.forget_deprecated()
    }

    /// How many IVK versions have their key in memory.
    pub fn ivk_keys_in_memory(&self) -> usize {
        self.ivk.keys_in_memory()
    }

    /// The IVK versions and their states.
    pub fn ivk_versions(&self) -> Vec<crate::keyring::IvkVersion> {
        self.ivk.versions()
    }

    /// Unwraps an active binding under the IVK version it records; when that is not the ACTIVE version, writes it
    /// back re-wrapped under the ACTIVE one (compare-and-set: a lost race means another node did it).
    async fn open_active_binding(
        &self,
        tenant: &str,
        system: &str,
        rec: &Record,
    ) -> Result<SecretKey, CoreError> {
        let blob = rec
            .blob
            .as_ref()
            .ok_or_else(|| CoreError::Corrupt("active binding has no blob".into()))?;
        let version = crate::binding_index::ivk_version_of(rec);
        let ivk = self.ivk.get(version).await?;
        let l2 = unwrap(
            &ivk,
            blob,
            &Self::l2_active_header(tenant, system, rec.version, version),
        )?;
        let (active, _) = self.ivk.active()?;
        if version != active {
            let verified = meta_i64(rec, "l1_verified_at")?;
            match self
                .write_active_binding(tenant, system, rec.version, &l2, Some(rec), verified)
                .await
            {
                Ok(()) => tracing::debug!(
                    tenant,
                    system,
                    from = version,
                    to = active,
                    "active binding re-wrapped under the ACTIVE IVK"
                ),
                Err(e) => {
                    tracing::warn!(tenant, system, error = %e, "re-wrapping an active binding failed; it stays under IVK version {version}")
                }
            }
        }
        Ok(l2)
    }

    fn l3_header(tenant: &str, system: &str, uid: &str, l2_version: u32) -> EnvelopeHeader {
        EnvelopeHeader {
            layer: Layer::L3,
            tenant: tenant.into(),
            key_id: uid.into(),
            parent_id: l2_key_id(system),
            parent_version: l2_version,
        }
    }

    /// Creates, if absent, `tenant`'s `system` (a new L2, its sovereign binding under a new `local` L1 key and its
    /// active binding under the IVK) and `service` (L3 version 1). Idempotent.
    pub async fn provision(
        &self,
        tenant: &str,
        system: &str,
        service: &str,
    ) -> Result<(), CoreError> {
        if self
            .store
            .get(tenant, kind::SYSTEM, system, 0)
            .await?
            .is_none()
        {
            let l1_ref = self.l1.create(&format!("{tenant}.{system}")).await?;
            let l2 = SecretKey::generate()?;
            let sovereign = self
                .l1
                .encrypt(&l1_ref, l2.expose(), &l1_context(tenant, system))
                .await?;
            let now = crate::now();
            self.store
                .put_if_absent(&Record {
                    tenant: tenant.into(),
                    kind: kind::L2_SOVEREIGN.into(),
                    id: system.into(),
                    version: 1,
                    metadata: serde_json::json!({
                        "l1_provider": l1_ref.provider, "l1_key_id": l1_ref.key_id,
                        "ciphertext": hex::encode(&sovereign), "created_at": now,
                    }),
                    blob: None,
                    revision: 0,
                })
                .await?;
            self.write_active_binding(tenant, system, 1, &l2, None, crate::now())
                .await?;
            self.store
                .put_if_absent(&Record {
                    tenant: tenant.into(),
                    kind: kind::SYSTEM.into(),
                    id: system.into(),
                    version: 0,
                    metadata: serde_json::json!({
                        "l1_provider": l1_ref.provider, "l1_key_id": l1_ref.key_id,
                        "l2_version": 1, "status": "CONNECTED", "created_at": now,
                    }),
                    blob: None,
                    revision: 0,
                })
                .await?;
            tracing::info!(
                tenant,
                system,
                "provisioned system: L2 created, bound to L1 and to the IVK"
            );
        }
        if self
            .store
            .get(tenant, kind::SERVICE, service, 0)
            .await?
            .is_none()
        {
            let (l2, l2_version) = self.current_l2(tenant, system).await?;
            let uid = format!("l3-{}", uuid::Uuid::new_v4());
            let l3 = SecretKey::generate()?;
            let wrapped = wrap(&l2, &Self::l3_header(tenant, system, &uid, l2_version), &l3)?;
            self.store
                .put_if_absent(&Record {
                    tenant: tenant.into(),
                    kind: kind::L3.into(),
                    id: uid.clone(),
                    version: 1,
                    metadata: serde_json::json!({
                        "system": system, "service": service, "version": 1, "l2_version": l2_version,
                        "state": openkcm_kmip::enums::state::ACTIVE, "created_at": crate::now(),
                    }),
                    blob: Some(wrapped),
                    revision: 0,
                })
                .await?;
            let inserted = self
                .store
                .put_if_absent(&Record {
                    tenant: tenant.into(),
                    kind: kind::SERVICE.into(),
                    id: service.into(),
                    version: 0,
                    metadata: serde_json::json!({ "system": system, "current_l3": uid, "version": 1 }),
                    blob: None,
                    revision: 0,
                })
                .await?;
            if !inserted {
                self.store.delete(tenant, kind::L3, &uid, 1).await?;
            }
            tracing::info!(
                tenant,
                system,
                service,
                "provisioned service: L3 version 1 created"
            );
        }
        Ok(())
    }

    /// Writes the active binding of `tenant`'s `system` under the ACTIVE IVK, recording when L1 was last proven
    /// (`verified_at`: now after a proof, unchanged by a re-wrap). With `previous`, replaces that record
    /// (compare-and-set on its revision; a lost race means another node refreshed the binding, which is harmless);
    /// without, inserts one if absent. The IVK binding index learns of the new version first and forgets the old
    /// one only once the binding has moved (crate::binding_index).
    async fn write_active_binding(
        &self,
        tenant: &str,
        system: &str,
        l2_version: u32,
        l2: &SecretKey,
        previous: Option<&Record>,
        verified_at: i64,
    ) -> Result<(), CoreError> {
        if self.ivk.active_expired() {
            match self.ivk.rotate().await {
                Ok(v) => tracing::warn!(
                    version = v,
                    "the ACTIVE IVK passed its hard expiry: rotated before wrapping"
                ),
                // Another node rotated at the same moment.
                Err(CoreError::Conflict(_)) => {}
                Err(e) => return Err(e),
            }
        }
        let (ivk_version, ivk) = self.ivk.active()?;
        let record = Record {
            tenant: tenant.into(),
            kind: kind::L2_ACTIVE.into(),
            id: system.into(),
            version: l2_version,
            metadata: serde_json::json!({
                "ivk_version": ivk_version, "l1_verified_at": verified_at, "wrapped_at": crate::now(),
            }),
            blob: Some(wrap(
                &ivk,
                &Self::l2_active_header(tenant, system, l2_version, ivk_version),
                l2,
            )?),
            revision: 0,
        };
        let from = previous.map(crate::binding_index::ivk_version_of);
        if from != Some(ivk_version) {
            crate::binding_index::add(&*self.store, ivk_version, tenant, system, l2_version)
                .await?;
        }
        match previous {
            None => {
                self.store.put_if_absent(&record).await?;
            }
            Some(prev) => {
                let moved = self.store.compare_and_set(&record, prev.revision).await?;
                if let Some(old) = from.filter(|&v| moved && v != ivk_version) {
                    crate::binding_index::remove(&*self.store, old, tenant, system, l2_version)
                        .await?;
                }
            }
        }
        if let Err(e) = self.ivk.note_wrap().await {
            tracing::warn!(error = %e, "counting an IVK wrap failed; the volume trigger catches up later");
        }
        Ok(())
    }

    /// With `auto_provision_services`, creates `tenant`'s `service` if it does not exist and the tenant has exactly
    /// one system; otherwise does nothing.
    pub async fn ensure_service(&self, tenant: &str, service: &str) -> Result<(), CoreError> {
        if !self.config.auto_provision_services
            || self
                .store
                .get(tenant, kind::SERVICE, service, 0)
                .await?
                .is_some()
        {
            return Ok(());
        }
        let systems = self.store.list(tenant, kind::SYSTEM).await?;
        if let [only] = systems.as_slice() {
            let system = only.id.clone();
            self.provision(tenant, &system, service).await?;
        }
        Ok(())
    }

    /// The current L2 version of `tenant`'s `system`.
    async fn current_l2_version(&self, tenant: &str, system: &str) -> Result<u32, CoreError> {
        let rec = self
            .store
            .get(tenant, kind::SYSTEM, system, 0)
            .await?
            .ok_or_else(|| CoreError::NotFound(format!("{tenant}/{system}")))?;
        u32::try_from(meta_i64(&rec, "l2_version")?)
            .map_err(|_| CoreError::Corrupt("l2_version".into()))
    }

    /// The plaintext current L2 of `tenant`'s `system`, and its version.
    pub async fn current_l2(
        &self,
        tenant: &str,
        system: &str,
    ) -> Result<(Arc<SecretKey>, u32), CoreError> {
        let version = self.current_l2_version(tenant, system).await?;
        Ok((self.l2_at(tenant, system, version).await?, version))
    }

    /// The plaintext current L2 of `tenant`'s `system`, hydrating it if needed (single flight).
    pub async fn l2(&self, tenant: &str, system: &str) -> Result<Arc<SecretKey>, CoreError> {
        Ok(self.current_l2(tenant, system).await?.0)
    }

    /// The plaintext L2 version `version` of `tenant`'s `system`, hydrating it if needed (single flight per
    /// system).
    pub async fn l2_at(
        &self,
        tenant: &str,
        system: &str,
        version: u32,
    ) -> Result<Arc<SecretKey>, CoreError> {
        let name = format!("{system}\u{0}{version}");
        if let Some(k) = self.l2_cache.get(tenant, &name) {
            return Ok(k);
        }
        let flight = lock(&self.hydration)
            .entry((tenant.to_owned(), system.to_owned()))
            .or_default()
            .clone();
        let _flight = flight.lock().await;
        if let Some(k) = self.l2_cache.get(tenant, &name) {
            return Ok(k);
        }
        let (key, until) = self.hydrate_l2(tenant, system, version).await?;
        let key = Arc::new(key);
        // Cached no longer than its proof through L1 holds (the sovereign TTL): then L1 is asked again.
        self.l2_cache
            .insert_until(tenant, &name, key.clone(), until);
        Ok(key)
    }

    async fn l1_unwrap(
        &self,
        tenant: &str,
        system: &str,
        version: u32,
    ) -> Result<SecretKey, CoreError> {
        let sov = self
            .store
            .get(tenant, kind::L2_SOVEREIGN, system, version)
            .await?
            .ok_or_else(|| {
                CoreError::Corrupt(format!("system {system:?} has no sovereign binding"))
            })?;
        if is_compromised(&sov) {
            return Err(CoreError::KeyVersionCompromised(format!(
                "L2 version {version} of system {system:?}"
            )));
        }
        let ct = hex::decode(meta_str(&sov, "ciphertext")?)
            .ok()
            .ok_or_else(|| CoreError::Corrupt("sovereign binding ciphertext is not hex".into()))?;
        let key_ref = KeyRef {
            provider: meta_str(&sov, "l1_provider")?,
            key_id: meta_str(&sov, "l1_key_id")?,
            region: None,
        };
        let plain = self
            .l1
            .decrypt(&key_ref, &ct, &l1_context(tenant, system))
            .await?;
        Ok(SecretKey::from_slice(plain.expose())?)
    }

    /// The L2, and until when it may be used from memory before L1 is asked again: the end of its sovereign TTL
    /// (DESIGN §2.2), or, while L1 is unreachable within the grace, a minute (L1 is retried then).
    async fn hydrate_l2(
        &self,
        tenant: &str,
        system: &str,
        version: u32,
    ) -> Result<(SecretKey, std::time::Instant), CoreError> {
        let active = self
            .store
            .get(tenant, kind::L2_ACTIVE, system, version)
            .await?;
        let ttl = i64::try_from(self.config.sovereign_ttl.as_secs()).unwrap_or(i64::MAX);
        // (At least a second: concurrent requests that waited on this hydration use its result, and L1 is asked
        // at most once a second per system whatever the TTL.)
        let in_secs = |s: i64| {
            std::time::Instant::now() + Duration::from_secs(u64::try_from(s.max(1)).unwrap_or(1))
        };
        if let Some(rec) = &active {
            let verified = meta_i64(rec, "l1_verified_at")?;
            let left = verified.saturating_add(ttl).saturating_sub(crate::now());
            if left > 0 {
                let l2 = self.open_active_binding(tenant, system, rec).await?;
                return Ok((l2, in_secs(left)));
            }
        }
        // The sovereign TTL has passed (or the active binding is missing): prove L1 again.
        match self.l1_unwrap(tenant, system, version).await {
            Ok(l2) => {
                self.write_active_binding(
                    tenant,
                    system,
                    version,
                    &l2,
                    active.as_ref(),
                    crate::now(),
                )
                .await?;
                tracing::info!(tenant, system, "L1 re-verified; active binding refreshed");
                Ok((l2, in_secs(ttl)))
            }
            Err(CoreError::Provider(
                ProviderError::Denied(_) | ProviderError::Disabled(_) | ProviderError::NotFound(_),
            )) => {
                // Revocation: destroy the active bindings of every L2 version (one L1 holds them all), forget the
                // keys, refuse service.
                for rec in self.store.list(tenant, kind::L2_ACTIVE).await? {
                    if rec.id == system {
                        self.store
                            .delete(tenant, kind::L2_ACTIVE, system, rec.version)
                            .await?;
                        crate::binding_index::remove(
                            &*self.store,
                            crate::binding_index::ivk_version_of(&rec),
                            tenant,
                            system,
                            rec.version,
                        )
                        .await?;
                    }
                }
                self.evict_system(tenant, system);
                tracing::warn!(
                    tenant,
                    system,
                    "customer L1 revoked: active binding destroyed, system keys evicted"
                );
                Err(CoreError::L1Revoked(system.into()))
            }
            Err(CoreError::Provider(
                e @ (ProviderError::Unavailable(_) | ProviderError::RateLimited(_)),
            )) => {
                let grace = ttl.saturating_add(
                    i64::try_from(self.config.l1_outage_grace.as_secs()).unwrap_or(i64::MAX),
                );
                match &active {
                    Some(rec)
                        if crate::now().saturating_sub(meta_i64(rec, "l1_verified_at")?)
                            < grace =>
                    {
                        tracing::warn!(tenant, system, error = %e, "L1 unreachable; using active binding within grace");
                        let left = meta_i64(rec, "l1_verified_at")?
                            .saturating_add(grace)
                            .saturating_sub(crate::now());
                        let l2 = self.open_active_binding(tenant, system, rec).await?;
                        Ok((l2, in_secs(left.min(60))))
                    }
                    _ => Err(CoreError::L1Unreachable(system.into())),
                }
            }
            Err(e) => Err(e),
        }
    }

    /// Asks the customer's key provider about the L1 of `tenant`'s `system` (no key material involved).
    pub async fn l1_status(
        &self,
        tenant: &str,
        system: &str,
    ) -> Result<openkcm_providers::KeyDescription, CoreError> {
        let rec = self
            .store
            .get(tenant, kind::SYSTEM, system, 0)
            .await?
            .ok_or_else(|| CoreError::NotFound(format!("{tenant}/{system}")))?;
        let key_ref = KeyRef {
            provider: meta_str(&rec, "l1_provider")?,
            key_id: meta_str(&rec, "l1_key_id")?,
            region: None,
        };
        Ok(self.l1.describe(&key_ref).await?)
    }

    /// Drops every plaintext key of `tenant`'s `system` from memory (zeroized when the last user lets go).
    pub fn evict_system(&self, tenant: &str, system: &str) {
        let prefix = format!("{system}\u{0}");
        self.l2_cache
            .remove_where(|k, _| k.0 == tenant && k.1.starts_with(&prefix));
        self.l3_cache
            .remove_where(|_, v| v.tenant == tenant && v.system == system);
    }

    /// Drops every plaintext key from memory.
    pub fn evict_all(&self) {
        self.l2_cache.clear();
        self.l3_cache.clear();
    }

    /// The L3 version with unique identifier `uid`, if it belongs to `tenant`.
    pub async fn l3(&self, tenant: &str, uid: &str) -> Result<Arc<L3Key>, CoreError> {
        // (A cached version ends after `l3_recheck`: then it is read again, as another node may have rotated,
        // deactivated, compromised or destroyed it.)
        if let Some(k) = self.l3_cache.get(tenant, uid) {
            return Ok(k);
        }
        let rec = self
            .store
            .get(tenant, kind::L3, uid, 1)
            .await?
            .ok_or_else(|| CoreError::NotFound(uid.into()))?;
        let system = meta_str(&rec, "system")?;
        let l2_version = u32::try_from(meta_i64(&rec, "l2_version")?)
            .map_err(|_| CoreError::Corrupt("l2_version".into()))?;
        match u32::try_from(rec.metadata["state"].as_u64().unwrap_or(0)).unwrap_or(0) {
            openkcm_kmip::enums::state::DESTROYED
            | openkcm_kmip::enums::state::DESTROYED_COMPROMISED => {
                return Err(CoreError::KeyVersionDestroyed(uid.into()))
            }
            openkcm_kmip::enums::state::COMPROMISED => {
                return Err(CoreError::KeyVersionCompromised(format!(
                    "service key {uid:?}"
                )))
            }
            _ => {}
        }
        let l2 = self.l2_at(tenant, &system, l2_version).await?;
        let blob = rec
            .blob
            .as_ref()
            .ok_or_else(|| CoreError::Corrupt("L3 record has no wrapped key".into()))?;
        let key = unwrap(
            &l2,
            blob,
            &Self::l3_header(tenant, &system, uid, l2_version),
        )?;
        let service = meta_str(&rec, "service")?;
        let state = u32::try_from(meta_i64(&rec, "state")?)
            .map_err(|_| CoreError::Corrupt("state".into()))?;
        // The current version of a service with a scheduled successor wraps only until the successor's date.
        let wraps_until = if state == openkcm_kmip::enums::state::ACTIVE {
            self.store
                .get(tenant, kind::SERVICE, &service, 0)
                .await?
                .filter(|svc| svc.metadata["current_l3"].as_str() == Some(uid))
                .and_then(|svc| svc.metadata["pending_at"].as_i64())
        } else {
            None
        };
        let entry = Arc::new(L3Key {
            tenant: tenant.into(),
            system,
            service,
            wraps_until,
            uid: uid.into(),
            version: u32::try_from(meta_i64(&rec, "version")?)
                .map_err(|_| CoreError::Corrupt("version".into()))?,
            state,
            key,
        });
        self.l3_cache.insert_until(
            tenant,
            uid,
            entry.clone(),
            std::time::Instant::now() + self.config.l3_recheck,
        );
        Ok(entry)
    }

    /// The current L3 of `tenant`'s `service`.
    pub async fn current_l3(&self, tenant: &str, service: &str) -> Result<Arc<L3Key>, CoreError> {
        let uid = self.current_l3_uid(tenant, service).await?;
        self.l3(tenant, &uid).await
    }

    /// Rotates `tenant`'s `service` (DESIGN §5.1): a new ACTIVE L3 version, wrapped under the system's L2, becomes
    /// the service's current version and the previous one is DEACTIVATED (it still unwraps the keys wrapped under it,
    /// never wraps new ones). Returns the new version's unique identifier and number.
    pub async fn rotate_l3(&self, tenant: &str, service: &str) -> Result<(String, u32), CoreError> {
        self.rotate_l3_at(tenant, service, None).await
    }

    /// Like [`Core::rotate_l3`], with the new version PRE_ACTIVE until `activate_at` (seconds since the epoch) when
    /// that is in the future: the current version keeps wrapping until then, and the new one becomes current at its
    /// first use after that time (or at the next scheduled scan). A service has at most one pending version.
    pub async fn rotate_l3_at(
        &self,
        tenant: &str,
        service: &str,
        activate_at: Option<i64>,
    ) -> Result<(String, u32), CoreError> {
        use openkcm_kmip::enums::state;
        // (At most MAX_ACTIVATION_DELAY_SECS ahead: a version scheduled later would hold the service's rotation.)
        let activate_at =
            activate_at.map(|at| at.min(crate::now().saturating_add(MAX_ACTIVATION_DELAY_SECS)));
        // (A due scheduled version becomes current here, a compromised one is dropped.)
        let svc = self.service_record(tenant, service).await?;
        if let Some(pending) = svc.metadata["pending_l3"].as_str() {
            return Err(CoreError::Conflict(format!(
                "service {service:?} already has a version waiting to become active ({pending:?}): wait for its activation date, or mark it compromised (operator compromise-l3) to drop it"
            )));
        }
        let system = meta_str(&svc, "system")?;
        let version = u32::try_from(meta_i64(&svc, "version")?)
            .map_err(|_| CoreError::Corrupt("service version".into()))?
            .checked_add(1)
            .ok_or_else(|| CoreError::Corrupt("service version".into()))?;
        let pending = activate_at.filter(|&at| at > crate::now());
        let (l2, l2_version) = self.current_l2(tenant, &system).await?;
        let uid = format!("l3-{}", uuid::Uuid::new_v4());
        let l3 = SecretKey::generate()?;
        let wrapped = wrap(
            &l2,
            &Self::l3_header(tenant, &system, &uid, l2_version),
            &l3,
        )?;
        let mut metadata = serde_json::json!({
            "system": system, "service": service, "version": version, "l2_version": l2_version,
            "state": if pending.is_some() { state::PRE_ACTIVE } else { state::ACTIVE },
            "created_at": crate::now(),
        });
        if let Some(at) = pending {
            metadata["activation_date"] = serde_json::json!(at);
        }
        self.store
            .put_if_absent(&Record {
                tenant: tenant.into(),
                kind: kind::L3.into(),
                id: uid.clone(),
                version: 1,
                metadata,
                blob: Some(wrapped),
                revision: 0,
            })
            .await?;
        let mut next = svc.clone();
        next.metadata["version"] = serde_json::json!(version);
        match pending {
            Some(at) => {
                next.metadata["pending_l3"] = serde_json::json!(uid);
                next.metadata["pending_at"] = serde_json::json!(at);
            }
            None => next.metadata["current_l3"] = serde_json::json!(uid),
        }
        if !self.store.compare_and_set(&next, svc.revision).await? {
            self.store.delete(tenant, kind::L3, &uid, 1).await?;
            return Err(CoreError::Conflict(format!(
                "service {service:?} was rotated by another request at the same time; try again"
            )));
        }
        match pending {
            Some(at) => {
                // The current version learns when it stops wrapping when it is next loaded.
                self.l3_cache.remove(tenant, &meta_str(&svc, "current_l3")?);
                tracing::info!(tenant, service, version, l3 = %uid, activate_at = at, "service key rotation scheduled: new L3 version PRE_ACTIVE");
            }
            None => {
                self.deactivate_l3(tenant, &meta_str(&svc, "current_l3")?, crate::now())
                    .await?;
                tracing::info!(tenant, service, version, l3 = %uid, "service key rotated: new L3 version");
            }
        }
        Ok((uid, version))
    }

    /// Makes the previous current version stop wrapping as of `at` (a lost race means another writer changed it).
    async fn deactivate_l3(&self, tenant: &str, uid: &str, at: i64) -> Result<(), CoreError> {
        if let Some(old) = self.store.get(tenant, kind::L3, uid, 1).await? {
            if old.metadata["state"].as_u64() == Some(u64::from(openkcm_kmip::enums::state::ACTIVE))
            {
                let mut deactivated = old.clone();
                deactivated.metadata["state"] =
                    serde_json::json!(openkcm_kmip::enums::state::DEACTIVATED);
                deactivated.metadata["deactivated_at"] = serde_json::json!(at);
                self.store
                    .compare_and_set(&deactivated, old.revision)
                    .await?;
            }
        }
        self.l3_cache.remove(tenant, uid);
        Ok(())
    }

    /// The service record of `tenant`'s `service`, after making its pending version current if its activation date
    /// has come (compare-and-set: another node doing it at the same time is harmless).
    async fn service_record(&self, tenant: &str, service: &str) -> Result<Record, CoreError> {
        let svc = self
            .store
            .get(tenant, kind::SERVICE, service, 0)
            .await?
            .ok_or_else(|| CoreError::NotFound(format!("{tenant}/{service}")))?;
        let Some(pending) = svc.metadata["pending_l3"].as_str().map(str::to_owned) else {
            return Ok(svc);
        };
        let Some(rec) = self.store.get(tenant, kind::L3, &pending, 1).await? else {
            return Ok(svc);
        };
        let pre_active = rec.metadata["state"].as_u64()
            == Some(u64::from(openkcm_kmip::enums::state::PRE_ACTIVE));
        if pre_active && rec.metadata["activation_date"].as_i64().unwrap_or(0) > crate::now() {
            return Ok(svc);
        }
        let previous = meta_str(&svc, "current_l3")?;
        let mut next = svc.clone();
        if let Some(m) = next.metadata.as_object_mut() {
            m.remove("pending_l3");
            m.remove("pending_at");
        }
        if pre_active {
            let mut active = rec.clone();
            active.metadata["state"] = serde_json::json!(openkcm_kmip::enums::state::ACTIVE);
            if !self.store.compare_and_set(&active, rec.revision).await? {
                // Another node activated it, or it was marked compromised meanwhile: decide on what is stored now.
                return Box::pin(self.service_record(tenant, service)).await;
            }
            next.metadata["current_l3"] = serde_json::json!(pending);
        } else if rec.metadata["state"].as_u64()
            != Some(u64::from(openkcm_kmip::enums::state::ACTIVE))
        {
            // Marked compromised while it waited: it never becomes current.
            if self.store.compare_and_set(&next, svc.revision).await? {
                tracing::warn!(tenant, service, l3 = %pending, "a scheduled service key version was compromised before it became active: dropped");
            }
            return Box::pin(self.service_record(tenant, service)).await;
        } else {
            next.metadata["current_l3"] = serde_json::json!(pending);
        }
        if self.store.compare_and_set(&next, svc.revision).await? {
            // It stopped wrapping at its successor's activation date (the switch happens at the first use after).
            let at = rec.metadata["activation_date"]
                .as_i64()
                .unwrap_or_else(crate::now);
            self.deactivate_l3(tenant, &previous, at).await?;
            self.l3_cache.remove(tenant, &pending);
            tracing::info!(tenant, service, l3 = %pending, "scheduled service key version is now ACTIVE and current");
        }
        // Read again: this node's change, or another node's.
        Box::pin(self.service_record(tenant, service)).await
    }

    /// The unique identifier of the current L3 of `tenant`'s `service` (nothing unwrapped).
    pub async fn current_l3_uid(&self, tenant: &str, service: &str) -> Result<String, CoreError> {
        meta_str(&self.service_record(tenant, service).await?, "current_l3")
    }

    /// Rotates the L2 of `tenant`'s `system` (DESIGN §5.1): a new L2 version, bound to the customer's L1 (the same
    /// L1 key) and to the IVK, becomes current; new service key versions are wrapped under it. Older L2 versions keep
    /// unwrapping the service keys under them until `rewrap_system` moves those. Returns the new version.
    pub async fn rotate_l2(&self, tenant: &str, system: &str) -> Result<u32, CoreError> {
        let sys = self
            .store
            .get(tenant, kind::SYSTEM, system, 0)
            .await?
            .ok_or_else(|| CoreError::NotFound(format!("{tenant}/{system}")))?;
        let current = u32::try_from(meta_i64(&sys, "l2_version")?)
            .map_err(|_| CoreError::Corrupt("l2_version".into()))?;
        let version = current
            .checked_add(1)
            .ok_or_else(|| CoreError::Corrupt("l2_version".into()))?;
        let l1_ref = KeyRef {
            provider: meta_str(&sys, "l1_provider")?,
            key_id: meta_str(&sys, "l1_key_id")?,
            region: None,
        };
        let l2 = SecretKey::generate()?;
        // Proving L1 is part of the rotation: a revoked L1 cannot bind a new L2.
        let sovereign = self
            .l1
            .encrypt(&l1_ref, l2.expose(), &l1_context(tenant, system))
            .await?;
        let inserted = self
            .store
            .put_if_absent(&Record {
                tenant: tenant.into(),
                kind: kind::L2_SOVEREIGN.into(),
                id: system.into(),
                version,
                metadata: serde_json::json!({
                    "l1_provider": l1_ref.provider, "l1_key_id": l1_ref.key_id,
                    "ciphertext": hex::encode(&sovereign), "created_at": crate::now(),
                }),
                blob: None,
                revision: 0,
            })
            .await?;
        if !inserted {
            return Err(CoreError::Conflict(format!(
                "L2 version {version} of system {system:?} was made by another node at the same time"
            )));
        }
        self.write_active_binding(tenant, system, version, &l2, None, crate::now())
            .await?;
        let mut next = sys.clone();
        next.metadata["l2_version"] = serde_json::json!(version);
        if !self.store.compare_and_set(&next, sys.revision).await? {
            self.store
                .delete(tenant, kind::L2_ACTIVE, system, version)
                .await?;
            crate::binding_index::remove(
                &*self.store,
                self.ivk.active()?.0,
                tenant,
                system,
                version,
            )
            .await?;
            self.store
                .delete(tenant, kind::L2_SOVEREIGN, system, version)
                .await?;
            return Err(CoreError::Conflict(format!(
                "system {system:?} changed while its L2 was rotated; rotate again"
            )));
        }
        tracing::info!(
            tenant,
            system,
            version,
            "L2 rotated: new service key versions are wrapped under it"
        );
        Ok(version)
    }

    /// Rotates the L2 of every system whose current L2 version is older than `rotate_after` (the scheduled trigger,
    /// DESIGN §5.1); returns how many it rotated. A system whose L1 refuses is skipped (logged).
    pub async fn rotate_due_l2(&self, rotate_after: Duration) -> Result<usize, CoreError> {
        let limit = i64::try_from(rotate_after.as_secs()).unwrap_or(i64::MAX);
        let mut rotated = 0;
        for tenant in self.store.list_tenants().await? {
            for sys in self.store.list(&tenant, kind::SYSTEM).await? {
                let version = u32::try_from(meta_i64(&sys, "l2_version")?).unwrap_or(1);
                let Some(sov) = self
                    .store
                    .get(&tenant, kind::L2_SOVEREIGN, &sys.id, version)
                    .await?
                else {
                    continue;
                };
                let created = sov.metadata["created_at"].as_i64().unwrap_or(0);
                if crate::now().saturating_sub(created) >= limit {
                    match self.rotate_l2(&tenant, &sys.id).await {
                        Ok(_) => rotated += 1,
                        Err(e) => {
                            tracing::warn!(tenant, system = %sys.id, error = %e, "scheduled L2 rotation failed; retried later")
                        }
                    }
                }
            }
        }
        Ok(rotated)
    }

    /// Deep re-key (ACD): re-wraps every service key version (L3) of `tenant`'s `system` that is still under an
    /// older L2 version under the current one (compare-and-set per record). Returns how many it re-wrapped.
    pub async fn rewrap_system(&self, tenant: &str, system: &str) -> Result<usize, CoreError> {
        let (l2, current) = self.current_l2(tenant, system).await?;
        let mut done = 0;
        for rec in self.store.list(tenant, kind::L3).await? {
            // A destroyed version has no key left to re-wrap.
            if meta_str(&rec, "system")? != system || rec.blob.is_none() {
                continue;
            }
            let from = u32::try_from(meta_i64(&rec, "l2_version")?)
                .map_err(|_| CoreError::Corrupt("l2_version".into()))?;
            if from == current {
                continue;
            }
            let old = self.l2_at(tenant, system, from).await?;
            let blob = rec
                .blob
                .as_ref()
                .ok_or_else(|| CoreError::Corrupt("L3 record has no wrapped key".into()))?;
            let l3 = unwrap(&old, blob, &Self::l3_header(tenant, system, &rec.id, from))?;
            let mut next = rec.clone();
            next.blob = Some(wrap(
                &l2,
                &Self::l3_header(tenant, system, &rec.id, current),
                &l3,
            )?);
            next.metadata["l2_version"] = serde_json::json!(current);
            if self.store.compare_and_set(&next, rec.revision).await? {
                self.l3_cache.remove(tenant, &rec.id);
                done += 1;
            }
        }
        tracing::info!(
            tenant,
            system,
            rewrapped = done,
            l2_version = current,
            "service keys re-wrapped under the current L2"
        );
        Ok(done)
    }

    /// Deletes the active binding of L2 version `version` of `tenant`'s `system`, if any, and its index entry.
    async fn drop_active_binding(
        &self,
        tenant: &str,
        system: &str,
        version: u32,
    ) -> Result<(), CoreError> {
        if let Some(binding) = self
            .store
            .get(tenant, kind::L2_ACTIVE, system, version)
            .await?
        {
            self.store
                .delete(tenant, kind::L2_ACTIVE, system, version)
                .await?;
            crate::binding_index::remove(
                &*self.store,
                crate::binding_index::ivk_version_of(&binding),
                tenant,
                system,
                version,
            )
            .await?;
        }
        Ok(())
    }

    /// The L2 versions of `tenant`'s `system` that service key versions are wrapped under, with how many each.
    pub async fn l2_versions_in_use(
        &self,
        tenant: &str,
        system: &str,
    ) -> Result<std::collections::BTreeMap<u32, usize>, CoreError> {
        let mut used = std::collections::BTreeMap::new();
        for rec in self.store.list(tenant, kind::L3).await? {
            // A destroyed version has no key left to be wrapped.
            if meta_str(&rec, "system")? == system && rec.blob.is_some() {
                let v = u32::try_from(meta_i64(&rec, "l2_version")?)
                    .map_err(|_| CoreError::Corrupt("l2_version".into()))?;
                *used.entry(v).or_insert(0) += 1;
            }
        }
        Ok(used)
    }

    /// Destroys L2 version `version` of `tenant`'s `system` (its sovereign and active bindings): refused for the
    /// current version and while any service key version is still wrapped under it (run `rewrap_system` first).
    pub async fn destroy_l2_version(
        &self,
        tenant: &str,
        system: &str,
        version: u32,
    ) -> Result<(), CoreError> {
        if self.current_l2_version(tenant, system).await? == version {
            return Err(CoreError::Conflict(format!(
                "L2 version {version} is the current one: rotate the L2 first"
            )));
        }
        let users = self
            .l2_versions_in_use(tenant, system)
            .await?
            .get(&version)
            .copied()
            .unwrap_or(0);
        if users > 0 {
            return Err(CoreError::Conflict(format!(
                "{users} service key version(s) are still wrapped under L2 version {version}: re-wrap the system first"
            )));
        }
        let existed = self
            .store
            .delete(tenant, kind::L2_SOVEREIGN, system, version)
            .await?;
        self.drop_active_binding(tenant, system, version).await?;
        if !existed {
            return Err(CoreError::NotFound(format!(
                "{tenant}/{system} L2 version {version}"
            )));
        }
        self.l2_cache
            .remove(tenant, &format!("{system}\u{0}{version}"));
        tracing::warn!(tenant, system, version, "L2 version destroyed");
        Ok(())
    }

    /// Destroys version `version` of `tenant`'s `service` key (domain shredding, DESIGN §5.1): its key material is
    /// deleted and every data key wrapped under it becomes unreadable ("key version destroyed"). Refused for the
    /// current version. Returns the destroyed version's unique identifier. Copies in memory go with it here; an
    /// edge's cached data keys expire within its cache time.
    pub async fn destroy_l3_version(
        &self,
        tenant: &str,
        service: &str,
        version: u32,
    ) -> Result<String, CoreError> {
        let svc = self.service_record(tenant, service).await?;
        let current = meta_str(&svc, "current_l3")?;
        let rec = self.l3_record(tenant, service, version).await?;
        if rec.id == current {
            return Err(CoreError::Conflict(format!(
                "version {version} is the current key of service {service:?}: rotate it first"
            )));
        }
        if svc.metadata["pending_l3"].as_str() == Some(rec.id.as_str()) {
            return Err(CoreError::Conflict(format!(
                "version {version} of service {service:?} is waiting to become active; it cannot be destroyed"
            )));
        }
        let mut destroyed = rec.clone();
        destroyed.blob = None;
        destroyed.metadata["state"] = serde_json::json!(if is_compromised(&rec) {
            openkcm_kmip::enums::state::DESTROYED_COMPROMISED
        } else {
            openkcm_kmip::enums::state::DESTROYED
        });
        destroyed.metadata["destroyed_at"] = serde_json::json!(crate::now());
        if !self.store.compare_and_set(&destroyed, rec.revision).await? {
            return Err(CoreError::Conflict(format!(
                "service key {:?} changed while being destroyed; try again",
                rec.id
            )));
        }
        self.l3_cache.remove(tenant, &rec.id);
        tracing::warn!(tenant, service, version, l3 = %rec.id, "service key version destroyed: its data keys are unreadable");
        Ok(rec.id)
    }

    /// The L3 record of version `version` of `tenant`'s `service`.
    async fn l3_record(
        &self,
        tenant: &str,
        service: &str,
        version: u32,
    ) -> Result<Record, CoreError> {
        for rec in self.store.list(tenant, kind::L3).await? {
            if meta_str(&rec, "service")? == service
                && u32::try_from(meta_i64(&rec, "version")?).ok() == Some(version)
            {
                return Ok(rec);
            }
        }
        Err(CoreError::NotFound(format!(
            "{tenant}/{service} version {version}"
        )))
    }

    /// Marks version `version` of `tenant`'s `service` key COMPROMISED (DESIGN §5.1): from then on it neither wraps
    /// nor unwraps ("key version compromised"), here and at every edge that asks. The current version is rotated
    /// first, so the service keeps a usable key. Data keys still wrapped under it become unreadable: to keep them,
    /// rotate first and let them move (a Get re-wraps a data key under the current version) before marking it.
    /// Returns the marked version's unique identifier.
    pub async fn compromise_l3(
        &self,
        tenant: &str,
        service: &str,
        version: u32,
    ) -> Result<String, CoreError> {
        use openkcm_kmip::enums::state;
        let rec = self.l3_record(tenant, service, version).await?;
        let svc = self.service_record(tenant, service).await?;
        if meta_str(&svc, "current_l3")? == rec.id {
            match svc.metadata["pending_l3"].as_str() {
                // A successor is scheduled: it becomes current now instead of at its date.
                Some(pending) => {
                    self.activate_scheduled_now(tenant, service, pending)
                        .await?
                }
                None => {
                    self.rotate_l3(tenant, service).await?;
                }
            }
        }
        // Read again: the rotation made it DEACTIVATED.
        let rec = self.l3_record(tenant, service, version).await?;
        let was = u32::try_from(meta_i64(&rec, "state")?).unwrap_or(0);
        if matches!(
            was,
            state::DESTROYED | state::DESTROYED_COMPROMISED | state::COMPROMISED
        ) {
            return Err(CoreError::Conflict(format!(
                "service key {:?} is already {}",
                rec.id,
                state::name(was)
            )));
        }
        let mut marked = rec.clone();
        marked.metadata["state"] = serde_json::json!(state::COMPROMISED);
        marked.metadata["compromised_at"] = serde_json::json!(crate::now());
        if !self.store.compare_and_set(&marked, rec.revision).await? {
            return Err(CoreError::Conflict(format!(
                "service key {:?} changed while being marked compromised; try again",
                rec.id
            )));
        }
        self.l3_cache.remove(tenant, &rec.id);
        tracing::warn!(tenant, service, version, l3 = %rec.id, "service key version marked COMPROMISED: it neither wraps nor unwraps any more");
        // A scheduled version marked compromised is dropped from the service now (it never becomes current).
        self.service_record(tenant, service).await?;
        Ok(rec.id)
    }

    /// Makes the scheduled version `pending` of `tenant`'s `service` current now rather than at its activation date.
    async fn activate_scheduled_now(
        &self,
        tenant: &str,
        service: &str,
        pending: &str,
    ) -> Result<(), CoreError> {
        if let Some(rec) = self.store.get(tenant, kind::L3, pending, 1).await? {
            let mut due = rec.clone();
            due.metadata["activation_date"] = serde_json::json!(crate::now());
            // A lost race: another writer activated or marked it; what is stored decides below.
            self.store.compare_and_set(&due, rec.revision).await?;
        }
        self.service_record(tenant, service).await?;
        Ok(())
    }

    /// Marks L2 version `version` of `tenant`'s `system` COMPROMISED (DESIGN §5.1). The current version is rotated
    /// first, and every service key still under the marked version is re-wrapped under the current one (deep
    /// re-key), so no service key is lost; then the version's active binding is destroyed and its sovereign binding
    /// is refused from then on ("key version compromised"). The service keys it wrapped were exposed with it: rotate
    /// them too. Returns how many service key versions were re-wrapped.
    pub async fn compromise_l2(
        &self,
        tenant: &str,
        system: &str,
        version: u32,
    ) -> Result<usize, CoreError> {
        let sov = self
            .store
            .get(tenant, kind::L2_SOVEREIGN, system, version)
            .await?
            .ok_or_else(|| {
                CoreError::NotFound(format!("{tenant}/{system} L2 version {version}"))
            })?;
        if is_compromised(&sov) {
            return Err(CoreError::Conflict(format!(
                "L2 version {version} of system {system:?} is already compromised"
            )));
        }
        if self.current_l2_version(tenant, system).await? == version {
            self.rotate_l2(tenant, system).await?;
        }
        let rewrapped = self.rewrap_system(tenant, system).await?;
        let sov = self
            .store
            .get(tenant, kind::L2_SOVEREIGN, system, version)
            .await?
            .ok_or_else(|| {
                CoreError::NotFound(format!("{tenant}/{system} L2 version {version}"))
            })?;
        let mut marked = sov.clone();
        marked.metadata["state"] = serde_json::json!(openkcm_kmip::enums::state::COMPROMISED);
        marked.metadata["compromised_at"] = serde_json::json!(crate::now());
        if !self.store.compare_and_set(&marked, sov.revision).await? {
            return Err(CoreError::Conflict(format!(
                "L2 version {version} of system {system:?} changed while being marked compromised; try again"
            )));
        }
        self.drop_active_binding(tenant, system, version).await?;
        self.l2_cache
            .remove(tenant, &format!("{system}\u{0}{version}"));
        tracing::warn!(
            tenant,
            system,
            version,
            rewrapped,
            "L2 version marked COMPROMISED: its service keys were re-wrapped under the current version"
        );
        Ok(rewrapped)
    }

    /// Rotates every service of every tenant whose current L3 is older than `rotate_after` (the scheduled trigger);
    /// returns how many it rotated.
    pub async fn rotate_due_l3(&self, rotate_after: Duration) -> Result<usize, CoreError> {
        let limit = i64::try_from(rotate_after.as_secs()).unwrap_or(i64::MAX);
        let mut rotated = 0;
        for tenant in self.store.list_tenants().await? {
            for listed in self.store.list(&tenant, kind::SERVICE).await? {
                // A version whose activation date has come becomes current first; one still waiting is the rotation.
                let svc = self.service_record(&tenant, &listed.id).await?;
                if svc.metadata.get("pending_l3").is_some() {
                    continue;
                }
                let current = meta_str(&svc, "current_l3")?;
                let Some(l3) = self.store.get(&tenant, kind::L3, &current, 1).await? else {
                    continue;
                };
                let created = l3.metadata["created_at"].as_i64().unwrap_or(0);
                if crate::now().saturating_sub(created) >= limit {
                    match self.rotate_l3(&tenant, &svc.id).await {
                        Ok(_) => rotated += 1,
                        Err(e) => {
                            tracing::warn!(tenant, service = %svc.id, error = %e, "scheduled L3 rotation failed; retried later")
                        }
                    }
                }
            }
        }
        Ok(rotated)
    }

    /// Pre-warm (DESIGN §5): hydrates every system's L2 and every service's current L3 of `tenant`, so that the
    /// first requests after a start or a failover find them in memory. Returns (systems, services) hydrated; a
    /// system whose L1 refuses is skipped (logged), the others are warmed.
    pub async fn prewarm(&self, tenant: &str) -> Result<(usize, usize), CoreError> {
        let listed = self.store.list(tenant, kind::SYSTEM).await?;
        if listed.is_empty() {
            return Err(CoreError::NotFound(format!(
                "tenant {tenant:?} (it has no systems)"
            )));
        }
        let mut systems = 0;
        for rec in listed {
            match self.l2(tenant, &rec.id).await {
                Ok(_) => systems += 1,
                Err(e) => {
                    tracing::warn!(tenant, system = %rec.id, error = %e, "pre-warm: system skipped")
                }
            }
        }
        let mut services = 0;
        for rec in self.store.list(tenant, kind::SERVICE).await? {
            match self.current_l3(tenant, &rec.id).await {
                Ok(_) => services += 1,
                Err(e) => {
                    tracing::warn!(tenant, service = %rec.id, error = %e, "pre-warm: service skipped")
                }
            }
        }
        tracing::info!(tenant, systems, services, "pre-warmed");
        Ok((systems, services))
    }

    /// How many plaintext L2s and L3 versions are in memory.
    pub fn cached_keys(&self) -> (usize, usize) {
        (self.l2_cache.len(), self.l3_cache.len())
    }

    /// Every L3 version of `tenant`'s `service` (metadata only, nothing unwrapped), newest first.
    pub async fn l3_versions(&self, tenant: &str, service: &str) -> Result<Vec<L3Info>, CoreError> {
        let mut out = Vec::new();
        for rec in self.store.list(tenant, kind::L3).await? {
            if meta_str(&rec, "service")? == service {
                out.push(L3Info::from_record(&rec)?);
            }
        }
        out.sort_by_key(|v| std::cmp::Reverse(v.version));
        Ok(out)
    }

    /// What is known about L3 `uid` of `tenant` without unwrapping it (any state, destroyed ones included).
    /// A due scheduled version is made current first; the current version of a service with a scheduled successor
    /// reports the successor's activation date as its deactivation date.
    pub async fn l3_info(&self, tenant: &str, uid: &str) -> Result<L3Info, CoreError> {
        let read = || async {
            self.store
                .get(tenant, kind::L3, uid, 1)
                .await?
                .ok_or_else(|| CoreError::NotFound(uid.into()))
        };
        let service = meta_str(&read().await?, "service")?;
        let svc = self.service_record(tenant, &service).await?;
        let mut info = L3Info::from_record(&read().await?)?;
        if svc.metadata["current_l3"].as_str() == Some(uid) {
            info.deactivation_date = svc.metadata["pending_at"].as_i64();
        }
        Ok(info)
    }
}

/// An L3 version's metadata (no key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct L3Info {
    /// Unique identifier.
    pub uid: String,
    /// Service.
    pub service: String,
    /// Version number within the service.
    pub version: u32,
    /// KMIP state.
    pub state: u32,
    /// When a PRE_ACTIVE version becomes active (seconds since the epoch).
    pub activation_date: Option<i64>,
    /// When the version stopped wrapping, or, for the current version of a service with a scheduled successor,
    /// when it will (seconds since the epoch).
    pub deactivation_date: Option<i64>,
}

impl L3Info {
    fn from_record(rec: &Record) -> Result<Self, CoreError> {
        Ok(Self {
            activation_date: rec.metadata["activation_date"].as_i64(),
            deactivation_date: rec.metadata["deactivated_at"].as_i64(),
            uid: rec.id.clone(),
            service: meta_str(rec, "service")?,
            version: u32::try_from(meta_i64(rec, "version")?)
                .map_err(|_| CoreError::Corrupt("version".into()))?,
            state: u32::try_from(meta_i64(rec, "state")?)
                .map_err(|_| CoreError::Corrupt("state".into()))?,
        })
    }
}
