//! The internal versioned key (IVK, DESIGN §4): wraps the L2 active bindings so that the Core can unwrap L2
//! without calling the customer's KMS on every cache miss.
//!
//! Versions: each IVK version is one record (`ivk`/`ivk`/version N), its key wrapped by the MasterKey. The newest
//! version that is not revoked is ACTIVE and wraps every new binding; older versions unwrap the bindings still under
//! them and are GRACE for `grace_period` after their successor was made, DEPRECATED afterwards (loaded on use).
//! Rotation is one write (the new version); nothing about older versions is rewritten, so it costs the same whatever
//! the number of tenants, and bindings move to the new version lazily, when they are next used (the Core re-wraps
//! them with compare-and-set).
//!
//! Integrity: each record carries an HMAC-SHA-256, under a key derived from the MasterKey, of its version, creation
//! time, revocation flag and wrapped key. A record whose fields were edited in storage is reported, never used.

use crate::seal::file::{CLUSTER_TENANT, MASTER_KEY_ID};
use crate::CoreError;
use openkcm_crypto::{unwrap, wrap, EnvelopeHeader, Layer, SecretKey};
use openkcm_store::{KeyStore, Record};
use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

/// Storage kind of IVK records.
pub const KIND_IVK: &str = "ivk";
/// Key id of the IVK in envelope headers and storage.
pub const IVK_ID: &str = "ivk";
/// Storage kind of the per-version wrap counts (the volume trigger).
pub const KIND_IVK_USAGE: &str = "ivk-usage";
/// Purpose of the MK-derived key of the records' integrity MAC.
const MAC_PURPOSE: &str = "openkcm/ivk-record-mac/v1";

/// The state of an IVK version (DESIGN §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum IvkState {
    /// Wraps new bindings.
    Active,
    /// Superseded less than `grace_period` ago: kept in memory, unwraps.
    Grace,
    /// Superseded longer ago: unwraps, loaded on use.
    Deprecated,
    /// Revoked: never used.
    Revoked,
}

/// One IVK version as the operator sees it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct IvkVersion {
    /// Version number.
    pub version: u32,
    /// Its state now.
    pub state: IvkState,
    /// When it was made (seconds since the epoch).
    pub created_at: i64,
    /// After when it wraps nothing new (seconds since the epoch; none for versions of earlier releases).
    pub hard_expiry: Option<i64>,
}

struct Loaded {
    /// None once a DEPRECATED version was dropped from memory (loaded again on use).
    key: Option<Arc<SecretKey>>,
    created_at: i64,
    /// After this time the version wraps nothing new (records of earlier releases have none).
    hard_expiry: Option<i64>,
    revoked: bool,
}

/// The IVK versions of this Core.
pub struct Keyring {
    store: Arc<dyn KeyStore>,
    /// The MasterKey, to wrap new versions and unwrap old ones (locked memory; dropped with the Core at seal).
    mk: SecretKey,
    mac_key: SecretKey,
    grace: std::time::Duration,
    /// How long a new version may wrap before it must be replaced (its hard expiry is creation + this).
    hard_lifetime: i64,
    versions: RwLock<BTreeMap<u32, Loaded>>,
    /// Wraps under the ACTIVE version not yet added to its stored count.
    pending_wraps: std::sync::atomic::AtomicU64,
    /// Wraps after which the IVK rotates (2^32 by default).
    volume_limit: u64,
    /// Wraps counted in memory before the stored count is updated.
    usage_batch: u64,
}

/// Limits of the IVK volume trigger (DESIGN §4).
#[derive(Debug, Clone, Copy)]
pub struct VolumeTrigger {
    /// Wraps under one version after which the IVK rotates.
    pub limit: u64,
    /// Wraps counted in memory between updates of the stored count.
    pub batch: u64,
}

impl Default for VolumeTrigger {
    fn default() -> Self {
        Self {
            limit: 1 << 32,
            batch: 1024,
        }
    }
}

fn header(version: u32) -> EnvelopeHeader {
    EnvelopeHeader {
        layer: Layer::Ivk,
        tenant: CLUSTER_TENANT.into(),
        key_id: format!("{IVK_ID}/v{version}"),
        parent_id: MASTER_KEY_ID.into(),
        parent_version: 1,
    }
}

/// The id that envelope headers of keys wrapped by IVK `version` name as their parent.
pub fn parent_id(version: u32) -> String {
    format!("{IVK_ID}/v{version}")
}

fn read<T>(l: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn write<T>(l: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Keyring {
    /// What the integrity MAC of a record covers.
    /// Records of earlier releases carry no hard expiry; their MAC input is the same without it, and a record
    /// with a hard expiry is authenticated under a different label, so removing the field does not verify.
    fn mac_input(
        version: u32,
        created_at: i64,
        hard_expiry: Option<i64>,
        revoked: bool,
        blob: &[u8],
    ) -> Vec<u8> {
        let mut data = Vec::with_capacity(blob.len() + 48);
        match hard_expiry {
            None => data.extend_from_slice(b"openkcm-ivk-record\0"),
            Some(_) => data.extend_from_slice(b"openkcm-ivk-record/v2\0"),
        }
        data.extend_from_slice(&version.to_be_bytes());
        data.extend_from_slice(&created_at.to_be_bytes());
        if let Some(expiry) = hard_expiry {
            data.extend_from_slice(&expiry.to_be_bytes());
        }
        data.push(u8::from(revoked));
        data.extend_from_slice(blob);
        data
    }

    fn mac(
        &self,
        version: u32,
        created_at: i64,
        hard_expiry: Option<i64>,
        revoked: bool,
        blob: &[u8],
    ) -> String {
        let data = Self::mac_input(version, created_at, hard_expiry, revoked, blob);
        hex_encode(&openkcm_crypto::aes::hmac_sha256(
            self.mac_key.expose(),
            &data,
        ))
    }

    /// Checks and unwraps one stored version.
    fn open_record(&self, rec: &Record) -> Result<Loaded, CoreError> {
        let corrupt = |why: &str| {
            CoreError::Corrupt(format!(
                "IVK version {} in the Core storage {why}: it is not used (restore the Core storage from a backup)",
                rec.version
            ))
        };
        let blob = rec
            .blob
            .as_ref()
            .ok_or_else(|| corrupt("has no wrapped key"))?;
        let created_at = rec.metadata["created_at"]
            .as_i64()
            .ok_or_else(|| corrupt("has no creation time"))?;
        let revoked = rec.metadata["revoked"].as_bool().unwrap_or(false);
        let hard_expiry = match rec.metadata.get("hard_expiry") {
            None => None,
            Some(v) => Some(
                v.as_i64()
                    .ok_or_else(|| corrupt("has a hard expiry that is not a time"))?,
            ),
        };
        let mac = rec.metadata["mac"]
            .as_str()
            .ok_or_else(|| corrupt("has no integrity MAC"))?;
        let tag = hex_decode(mac).ok_or_else(|| corrupt("has an integrity MAC that is not hex"))?;
        let data = Self::mac_input(
            rec.version,
            created_at,
            hard_expiry,
            revoked,
            blob.as_bytes(),
        );
        // Constant-time comparison.
        if openkcm_crypto::aes::hmac_sha2_verify(256, self.mac_key.expose(), &data, &tag)
            != Some(true)
        {
            return Err(corrupt(
                "fails its integrity check (a stored field was changed)",
            ));
        }
        let key = unwrap(&self.mk, blob, &header(rec.version))?;
        Ok(Loaded {
            key: Some(Arc::new(key)),
            created_at,
            hard_expiry,
            revoked,
        })
    }

    fn record(
        &self,
        version: u32,
        created_at: i64,
        hard_expiry: i64,
        key: &SecretKey,
    ) -> Result<Record, CoreError> {
        let blob = wrap(&self.mk, &header(version), key)?;
        let mac = self.mac(
            version,
            created_at,
            Some(hard_expiry),
            false,
            blob.as_bytes(),
        );
        Ok(Record {
            tenant: CLUSTER_TENANT.into(),
            kind: KIND_IVK.into(),
            id: IVK_ID.into(),
            version,
            metadata: serde_json::json!({
                "created_at": created_at, "hard_expiry": hard_expiry, "revoked": false, "mac": mac,
            }),
            blob: Some(blob),
            revision: 0,
        })
    }

    /// Loads every IVK version, creating version 1 if the store has none.
    ///
    /// With `allow_create` false (the MasterKey existed before this start), a store without an IVK means the Core
    /// storage was lost or replaced: that is an error, never a reason to start a new, empty hierarchy. A version 1
    /// written before records carried a MAC gets its MAC now (its key is authenticated by the MasterKey wrap).
    pub async fn load_or_create(
        store: &Arc<dyn KeyStore>,
        mk: &SecretKey,
        allow_create: bool,
        grace: std::time::Duration,
        volume: VolumeTrigger,
        hard_lifetime: std::time::Duration,
    ) -> Result<Self, CoreError> {
        let ring = Keyring {
            store: store.clone(),
            mk: SecretKey::from_slice(mk.expose())?,
            mac_key: openkcm_crypto::derived::derive_key(mk, MAC_PURPOSE)?,
            grace,
            hard_lifetime: i64::try_from(hard_lifetime.as_secs()).unwrap_or(i64::MAX),
            versions: RwLock::new(BTreeMap::new()),
            pending_wraps: std::sync::atomic::AtomicU64::new(0),
            volume_limit: volume.limit.max(1),
            usage_batch: volume.batch.max(1),
        };
        let records = store.list(CLUSTER_TENANT, KIND_IVK).await?;
        if records.is_empty() {
            if !allow_create {
                return Err(CoreError::Corrupt(
                    "the Core storage holds no IVK although the MasterKey already exists: the Core database is missing \
                     or was replaced. Restore it from a backup (with its -wal file), or start over with a new data directory"
                        .into(),
                ));
            }
            let key = SecretKey::generate()?;
            let created_at = crate::now();
            let hard_expiry = created_at.saturating_add(ring.hard_lifetime);
            let record = ring.record(1, created_at, hard_expiry, &key)?;
            if !store.put_if_absent(&record).await? {
                // Another node created it first: use theirs.
                return Box::pin(Self::load_or_create(
                    store,
                    mk,
                    false,
                    grace,
                    volume,
                    hard_lifetime,
                ))
                .await;
            }
            write(&ring.versions).insert(
                1,
                Loaded {
                    key: Some(Arc::new(key)),
                    created_at,
                    hard_expiry: Some(hard_expiry),
                    revoked: false,
                },
            );
            return Ok(ring);
        }
        for rec in records {
            let rec = if rec.version == 1 && rec.metadata.get("mac").is_none() {
                ring.add_mac(rec).await?
            } else {
                rec
            };
            let loaded = ring.open_record(&rec)?;
            write(&ring.versions).insert(rec.version, loaded);
        }
        if ring.active_version().is_none() {
            return Err(CoreError::Corrupt(
                "every IVK version is revoked: no key can wrap new bindings".into(),
            ));
        }
        Ok(ring)
    }

    /// Gives the version-1 record of an earlier release its integrity MAC.
    async fn add_mac(&self, rec: Record) -> Result<Record, CoreError> {
        let blob = rec
            .blob
            .as_ref()
            .ok_or_else(|| CoreError::Corrupt("the IVK record has no wrapped key".into()))?;
        // The wrap authenticates the key; check it opens before vouching for the record.
        unwrap(&self.mk, blob, &header(1))?;
        let created_at = rec.metadata["created_at"]
            .as_i64()
            .unwrap_or_else(crate::now);
        let mut updated = rec.clone();
        updated.metadata = serde_json::json!({
            "created_at": created_at,
            "revoked": false,
            "mac": self.mac(1, created_at, None, false, blob.as_bytes()),
        });
        self.store.compare_and_set(&updated, rec.revision).await?;
        tracing::info!("IVK version 1 now carries its integrity MAC");
        Ok(updated)
    }

    fn active_version(&self) -> Option<u32> {
        read(&self.versions)
            .iter()
            .rev()
            .find(|(_, l)| !l.revoked)
            .map(|(v, _)| *v)
    }

    /// The ACTIVE version and its key.
    pub fn active(&self) -> Result<(u32, Arc<SecretKey>), CoreError> {
        let versions = read(&self.versions);
        versions
            .iter()
            .rev()
            .find(|(_, l)| !l.revoked)
            .and_then(|(v, l)| Some((*v, l.key.clone()?)))
            .ok_or_else(|| CoreError::Corrupt("no ACTIVE IVK version".into()))
    }

    /// The key of `version`, loading it from storage if another node made it since this one started.
    pub async fn get(&self, version: u32) -> Result<Arc<SecretKey>, CoreError> {
        if let Some(l) = read(&self.versions).get(&version) {
            if l.revoked {
                return Err(CoreError::Corrupt(format!(
                    "IVK version {version} is revoked: bindings under it are not used"
                )));
            }
            if let Some(key) = &l.key {
                return Ok(key.clone());
            }
        }
        let rec = self
            .store
            .get(CLUSTER_TENANT, KIND_IVK, IVK_ID, version)
            .await?
            .ok_or_else(|| {
                CoreError::Corrupt(format!("IVK version {version} is not in the Core storage"))
            })?;
        let loaded = self.open_record(&rec)?;
        let key = loaded
            .key
            .clone()
            .ok_or_else(|| CoreError::Corrupt("IVK record opened without a key".into()))?;
        write(&self.versions).insert(version, loaded);
        Ok(key)
    }

    /// Drops the keys of DEPRECATED versions from memory (they are loaded again when a binding under them is used);
    /// returns how many it dropped.
    pub fn forget_deprecated(&self) -> usize {
        let deprecated: Vec<u32> = self
            .versions()
            .into_iter()
            .filter(|v| v.state == IvkState::Deprecated)
            .map(|v| v.version)
            .collect();
        let mut versions = write(&self.versions);
        let mut dropped = 0;
        for v in deprecated {
            if let Some(l) = versions.get_mut(&v) {
                if l.key.take().is_some() {
                    dropped += 1;
                }
            }
        }
        dropped
    }

    /// How many IVK versions have their key in memory.
    pub fn keys_in_memory(&self) -> usize {
        read(&self.versions)
            .values()
            .filter(|l| l.key.is_some())
            .count()
    }

    /// Counts one wrap under the ACTIVE version (DESIGN §4 volume trigger): every `usage_batch` wraps the count is
    /// added to the version's stored usage (compare-and-set, shared by every node), and once it reaches
    /// `volume_limit` the IVK rotates. Returns the new version when it rotated.
    pub async fn note_wrap(&self) -> Result<Option<u32>, CoreError> {
        self.note_wraps(1).await
    }

    /// [`Keyring::note_wrap`] for `n` wraps at once.
    pub async fn note_wraps(&self, n: u64) -> Result<Option<u32>, CoreError> {
        use std::sync::atomic::Ordering;
        let pending = self.pending_wraps.fetch_add(n, Ordering::Relaxed) + n;
        if pending < self.usage_batch {
            return Ok(None);
        }
        let batch = self.pending_wraps.swap(0, Ordering::Relaxed);
        if batch == 0 {
            return Ok(None);
        }
        let (active, _) = self.active()?;
        let total = loop {
            match self
                .store
                .get(CLUSTER_TENANT, KIND_IVK_USAGE, IVK_ID, active)
                .await?
            {
                None => {
                    let rec = Record {
                        tenant: CLUSTER_TENANT.into(),
                        kind: KIND_IVK_USAGE.into(),
                        id: IVK_ID.into(),
                        version: active,
                        metadata: serde_json::json!({ "wraps": batch }),
                        blob: None,
                        revision: 0,
                    };
                    if self.store.put_if_absent(&rec).await? {
                        break batch;
                    }
                }
                Some(rec) => {
                    let total = rec.metadata["wraps"]
                        .as_u64()
                        .unwrap_or(0)
                        .saturating_add(batch);
                    let mut next = rec.clone();
                    next.metadata = serde_json::json!({ "wraps": total });
                    if self.store.compare_and_set(&next, rec.revision).await? {
                        break total;
                    }
                }
            }
        };
        if total >= self.volume_limit {
            tracing::warn!(
                version = active,
                wraps = total,
                "IVK volume limit reached: rotating"
            );
            return match self.rotate().await {
                Ok(v) => Ok(Some(v)),
                // Another node rotated at the same moment: the limit is handled.
                Err(CoreError::Conflict(_)) => Ok(None),
                Err(e) => Err(e),
            };
        }
        Ok(None)
    }

    /// Makes a new ACTIVE version (one write); the previous one passes to GRACE. Returns the new version.
    pub async fn rotate(&self) -> Result<u32, CoreError> {
        // Versions other nodes made count too: the new one is after the newest stored.
        let newest_stored = self
            .store
            .list(CLUSTER_TENANT, KIND_IVK)
            .await?
            .iter()
            .map(|r| r.version)
            .max()
            .unwrap_or(0);
        let newest_known = read(&self.versions)
            .keys()
            .next_back()
            .copied()
            .unwrap_or(0);
        let version = newest_stored.max(newest_known) + 1;
        let key = SecretKey::generate()?;
        let created_at = crate::now();
        let hard_expiry = created_at.saturating_add(self.hard_lifetime);
        if !self
            .store
            .put_if_absent(&self.record(version, created_at, hard_expiry, &key)?)
            .await?
        {
            return Err(CoreError::Conflict(format!(
                "IVK version {version} was made by another node at the same time; rotate again if needed"
            )));
        }
        write(&self.versions).insert(
            version,
            Loaded {
                key: Some(Arc::new(key)),
                created_at,
                hard_expiry: Some(hard_expiry),
                revoked: false,
            },
        );
        tracing::info!(
            version,
            "IVK rotated: new bindings are wrapped under the new version"
        );
        Ok(version)
    }

    /// Marks `version` REVOKED (a write with a new MAC): it is never used again. The ACTIVE version cannot be
    /// revoked; bindings still under `version` must have been re-wrapped first (see `Core::rotate_ivk_emergency`).
    pub async fn revoke(&self, version: u32) -> Result<(), CoreError> {
        if self.active()?.0 == version {
            return Err(CoreError::Conflict(format!(
                "IVK version {version} is ACTIVE: rotate before revoking it"
            )));
        }
        let rec = self
            .store
            .get(CLUSTER_TENANT, KIND_IVK, IVK_ID, version)
            .await?
            .ok_or_else(|| CoreError::NotFound(format!("{IVK_ID}/v{version}")))?;
        let loaded = self.open_record(&rec)?;
        let blob = rec
            .blob
            .as_ref()
            .ok_or_else(|| CoreError::Corrupt("the IVK record has no wrapped key".into()))?;
        let mut revoked = rec.clone();
        revoked.metadata = serde_json::json!({
            "created_at": loaded.created_at,
            "revoked": true,
            "mac": self.mac(version, loaded.created_at, loaded.hard_expiry, true, blob.as_bytes()),
        });
        if let Some(expiry) = loaded.hard_expiry {
            revoked.metadata["hard_expiry"] = serde_json::json!(expiry);
        }
        if !self.store.compare_and_set(&revoked, rec.revision).await? {
            return Err(CoreError::Conflict(format!(
                "IVK version {version} changed while being revoked; try again"
            )));
        }
        if let Some(l) = write(&self.versions).get_mut(&version) {
            l.revoked = true;
        }
        tracing::warn!(version, "IVK version revoked");
        Ok(())
    }

    /// Deletes `version`'s record and wrap count from storage and forgets it. The caller checks that nothing is
    /// wrapped under it any more (`Core::delete_ivk_version`); the ACTIVE version is never deleted.
    pub async fn delete(&self, version: u32) -> Result<(), CoreError> {
        if self.active()?.0 == version {
            return Err(CoreError::Conflict(format!(
                "IVK version {version} is ACTIVE and cannot be deleted"
            )));
        }
        if !self
            .store
            .delete(CLUSTER_TENANT, KIND_IVK, IVK_ID, version)
            .await?
        {
            return Err(CoreError::NotFound(format!("IVK version {version}")));
        }
        self.store
            .delete(CLUSTER_TENANT, KIND_IVK_USAGE, IVK_ID, version)
            .await?;
        write(&self.versions).remove(&version);
        tracing::warn!(
            version,
            "IVK version deleted: nothing was wrapped under it any more"
        );
        Ok(())
    }

    /// Whether the ACTIVE version is past its hard expiry (it must be replaced before it wraps again).
    pub fn active_expired(&self) -> bool {
        let now = crate::now();
        read(&self.versions)
            .iter()
            .rev()
            .find(|(_, l)| !l.revoked)
            .and_then(|(_, l)| l.hard_expiry)
            .is_some_and(|e| now >= e)
    }

    /// When the ACTIVE version was made (seconds since the epoch).
    pub fn active_created_at(&self) -> Option<i64> {
        let versions = read(&self.versions);
        versions
            .iter()
            .rev()
            .find(|(_, l)| !l.revoked)
            .map(|(_, l)| l.created_at)
    }

    /// Every known version with its state now.
    pub fn versions(&self) -> Vec<IvkVersion> {
        let versions = read(&self.versions);
        let active = versions
            .iter()
            .rev()
            .find(|(_, l)| !l.revoked)
            .map(|(v, _)| *v);
        let grace = i64::try_from(self.grace.as_secs()).unwrap_or(i64::MAX);
        let now = crate::now();
        versions
            .iter()
            .map(|(v, l)| {
                // Superseded when the next version was made.
                let superseded = versions.range(v + 1..).next().map(|(_, n)| n.created_at);
                let state = if l.revoked {
                    IvkState::Revoked
                } else if Some(*v) == active {
                    IvkState::Active
                } else if superseded.is_some_and(|s| now.saturating_sub(s) < grace) {
                    IvkState::Grace
                } else {
                    IvkState::Deprecated
                };
                IvkVersion {
                    version: *v,
                    state,
                    created_at: l.created_at,
                    hard_expiry: l.hard_expiry,
                }
            })
            .collect()
    }
}

fn hex_decode(text: &str) -> Option<Vec<u8>> {
    hex::decode(text).ok()
}

fn hex_encode(bytes: &[u8]) -> String {
    hex::encode(bytes)
}
