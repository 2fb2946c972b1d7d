//! Zero-knowledge metadata (DESIGN §5.2, ADR-015): a view of a key store in which nothing that names a tenant's
//! business reaches the backend in clear. The Crypto Core keeps its hierarchy in one, the edge its vault of data keys.
//!
//! [`SealedStore`] wraps any [`KeyStore`] and, with two keys its owner derives from the MasterKey,
//! * replaces every tenant name and record id by a blind index, `z` and 32 hex digits of an HMAC-SHA-256 (the id's
//!   index is keyed by its tenant and kind too, so equal ids of two tenants do not match);
//! * stores the record's id, metadata and wrapped blob as one AES-256-GCM ciphertext, bound by its authenticated
//!   data to the row it is in (tenant, kind, id and version indexes), so a row copied or moved elsewhere does not
//!   open;
//! * keeps a directory of tenant names, each encrypted, so that the tenants can still be listed.
//!
//! Record kinds and versions stay in clear: they describe the hierarchy, not the customer. A dump of the backend
//! yields blind indexes, kinds, version numbers, revisions and ciphertext. Lookups by name are lookups by its blind
//! index. Revisions pass through unchanged, so compare-and-set works as before.
//!
//! A store written before it was sealed holds clear records; [`SealedStore::seal_clear_records`] moves them into the
//! sealed form, and [`SealedStore::foreign_tenants`] finds records sealed under another key.

use crate::{KeyStore, Record, RecordKey, StoreError};
use async_trait::async_trait;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use openkcm_crypto::{aes, SecretKey, WrappedKey};
use std::collections::HashSet;
use std::sync::{Arc, Mutex};

/// The directory's kind.
const KIND_DIRECTORY: &str = "tenant";

/// A key store with names blinded and metadata encrypted (see the module documentation).
pub struct SealedStore {
    inner: Arc<dyn KeyStore>,
    encryption: SecretKey,
    index: SecretKey,
    /// Tenants whose directory entry is known to exist.
    listed: Mutex<HashSet<String>>,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Sealed {
    id: String,
    #[serde(rename = "m")]
    metadata: serde_json::Value,
    #[serde(rename = "b", default, skip_serializing_if = "Option::is_none")]
    blob: Option<String>,
}

fn corrupt(tenant: &str, kind: &str, id: &str, version: u32, why: &str) -> StoreError {
    StoreError::Corrupt {
        record: format!("{tenant}/{kind}/{id}/{version}"),
        reason: format!(
            "{why}: it was edited, moved from another row, or written by another cluster"
        ),
    }
}

impl SealedStore {
    /// The sealed view of `inner` under `encryption` (AES-256-GCM of the records) and `index` (HMAC key of the
    /// blind indexes). Nothing is read or written until the store is used.
    pub fn new(inner: Arc<dyn KeyStore>, encryption: SecretKey, index: SecretKey) -> Self {
        Self {
            inner,
            encryption,
            index,
            listed: Mutex::new(HashSet::new()),
        }
    }

    /// The backend under the sealed view.
    pub fn inner(&self) -> &Arc<dyn KeyStore> {
        &self.inner
    }

    fn blind(&self, label: &str, parts: &[&str]) -> String {
        let mut data = Vec::with_capacity(64);
        data.extend_from_slice(label.as_bytes());
        for p in parts {
            data.push(0);
            data.extend_from_slice(p.as_bytes());
        }
        let mac = aes::hmac_sha256(self.index.expose(), &data);
        format!("z{}", hex::encode(&mac[..16]))
    }

    /// The blind index of a tenant name.
    pub fn tenant_index(&self, tenant: &str) -> String {
        self.blind("tenant", &[tenant])
    }

    fn id_index(&self, tenant: &str, kind: &str, id: &str) -> String {
        self.blind("id", &[tenant, kind, id])
    }

    fn directory(&self) -> String {
        self.blind("directory", &[])
    }

    fn aad(tenant: &str, kind: &str, id: &str, version: u32) -> Vec<u8> {
        format!("openkcm-sealed-record\0{tenant}\0{kind}\0{id}\0{version}").into_bytes()
    }

    fn encrypt(&self, aad: &[u8], plaintext: &[u8]) -> Result<String, StoreError> {
        let crypto = |e: openkcm_crypto::CryptoError| StoreError::Invalid(e.to_string());
        let nonce = aes::random_bytes::<12>().map_err(crypto)?;
        let (mut ct, tag) =
            aes::gcm_seal(&self.encryption, &nonce, aad, plaintext).map_err(crypto)?;
        ct.extend_from_slice(&tag);
        let mut out = nonce.to_vec();
        out.extend_from_slice(&ct);
        Ok(B64.encode(out))
    }

    fn decrypt(&self, aad: &[u8], text: &str) -> Option<openkcm_crypto::SecretBytes> {
        let raw = B64.decode(text).ok()?;
        if raw.len() < 12 + 16 {
            return None;
        }
        let (nonce, rest) = raw.split_at(12);
        let (ct, tag) = rest.split_at(rest.len() - 16);
        aes::gcm_open(&self.encryption, nonce, aad, ct, tag).ok()
    }

    fn seal(&self, record: &Record) -> Result<Record, StoreError> {
        // Empty names are refused as every backend refuses them (their blind index would not be empty).
        crate::validate(record)?;
        let tenant = self.tenant_index(&record.tenant);
        let id = self.id_index(&record.tenant, &record.kind, &record.id);
        let plain = serde_json::to_vec(&Sealed {
            id: record.id.clone(),
            metadata: record.metadata.clone(),
            blob: record.blob.as_ref().map(|b| B64.encode(b.as_bytes())),
        })
        .map_err(|e| StoreError::Invalid(format!("its metadata cannot be serialised: {e}")))?;
        let plain = openkcm_crypto::SecretBytes::new(plain);
        let sealed = self.encrypt(
            &Self::aad(&tenant, &record.kind, &id, record.version),
            plain.expose(),
        )?;
        Ok(Record {
            tenant,
            kind: record.kind.clone(),
            id,
            version: record.version,
            metadata: serde_json::json!({ "sealed": sealed }),
            blob: None,
            revision: record.revision,
        })
    }

    fn unseal(&self, tenant: &str, stored: &Record) -> Result<Record, StoreError> {
        let bad = |why: &str| {
            corrupt(
                &stored.tenant,
                &stored.kind,
                &stored.id,
                stored.version,
                why,
            )
        };
        let text = stored.metadata["sealed"]
            .as_str()
            .ok_or_else(|| bad("it is not in the sealed form"))?;
        let plain = self
            .decrypt(
                &Self::aad(&stored.tenant, &stored.kind, &stored.id, stored.version),
                text,
            )
            .ok_or_else(|| bad("it does not authenticate under this cluster's metadata key"))?;
        let sealed: Sealed = serde_json::from_slice(plain.expose())
            .map_err(|_| bad("its sealed content is not a record"))?;
        let blob = sealed
            .blob
            .map(|b| {
                B64.decode(b)
                    .ok()
                    .and_then(|bytes| WrappedKey::from_stored(bytes).ok())
                    .ok_or_else(|| bad("its wrapped key is invalid"))
            })
            .transpose()?;
        Ok(Record {
            tenant: tenant.to_owned(),
            kind: stored.kind.clone(),
            id: sealed.id,
            version: stored.version,
            metadata: sealed.metadata,
            blob,
            revision: stored.revision,
        })
    }

    /// The backend's key of the record `key` names.
    fn blind_key(&self, key: &RecordKey) -> RecordKey {
        RecordKey {
            tenant: self.tenant_index(&key.tenant),
            kind: key.kind.clone(),
            id: self.id_index(&key.tenant, &key.kind, &key.id),
            version: key.version,
        }
    }

    /// The record in `stored` (read for `tenant`'s `id`), which must name that id: a row cannot stand in for another.
    fn opened(&self, tenant: &str, id: &str, stored: &Record) -> Result<Record, StoreError> {
        let record = self.unseal(tenant, stored)?;
        if record.id != id {
            return Err(corrupt(
                &stored.tenant,
                &stored.kind,
                &stored.id,
                stored.version,
                "it names another record",
            ));
        }
        Ok(record)
    }

    /// Makes sure `tenant` is in the directory (one write the first time this process sees it).
    async fn list_tenant(&self, tenant: &str) -> Result<(), StoreError> {
        let index = self.tenant_index(tenant);
        if lock(&self.listed).contains(&index) {
            return Ok(());
        }
        let directory = self.directory();
        let entry = Record {
            tenant: directory.clone(),
            kind: KIND_DIRECTORY.into(),
            id: index.clone(),
            version: 0,
            metadata: serde_json::json!({
                "name": self.encrypt(&Self::aad(&directory, KIND_DIRECTORY, &index, 0), tenant.as_bytes())?,
            }),
            blob: None,
            revision: 0,
        };
        self.inner.put_if_absent(&entry).await?;
        lock(&self.listed).insert(index);
        Ok(())
    }

    /// Moves clear records (written before the store was sealed) into the sealed form: for every tenant of the
    /// backend that is neither in the directory nor in `skip`, then for the tenants in `last`, each record of the
    /// `kinds` (in that order) that is not sealed yet is written sealed and then its clear copy deleted, so a crash
    /// part way is finished by the next call. Returns how many records moved.
    pub async fn seal_clear_records(
        &self,
        kinds: &[String],
        skip: &[&str],
        last: &[&str],
    ) -> Result<usize, StoreError> {
        let directory = self.directory();
        let ours = self.our_tenants().await?;
        let mut tenants: Vec<String> = self
            .inner
            .list_tenants()
            .await?
            .into_iter()
            .filter(|t| {
                *t != directory
                    && !ours.contains(t)
                    && !skip.contains(&t.as_str())
                    && !last.contains(&t.as_str())
            })
            .collect();
        tenants.extend(last.iter().map(|t| (*t).to_owned()));
        let mut moved = 0usize;
        for tenant in &tenants {
            for kind in kinds {
                for record in self.inner.list(tenant, kind).await? {
                    if record.metadata.get("sealed").is_some() {
                        continue;
                    }
                    self.list_tenant(tenant).await?;
                    self.inner.put_if_absent(&self.seal(&record)?).await?;
                    self.inner
                        .delete(tenant, kind, &record.id, record.version)
                        .await?;
                    moved += 1;
                }
            }
        }
        Ok(moved)
    }

    /// How many tenants of the backend, other than those in `allowed`, are not in this key's directory: records
    /// sealed under another key (another cluster's storage), or clear ones not moved.
    pub async fn foreign_tenants(&self, allowed: &[&str]) -> Result<usize, StoreError> {
        let directory = self.directory();
        let ours = self.our_tenants().await?;
        Ok(self
            .inner
            .list_tenants()
            .await?
            .into_iter()
            .filter(|t| *t != directory && !ours.contains(t) && !allowed.contains(&t.as_str()))
            .count())
    }

    /// The blind indexes of the tenants in this MasterKey's directory.
    async fn our_tenants(&self) -> Result<HashSet<String>, StoreError> {
        Ok(self
            .inner
            .list(&self.directory(), KIND_DIRECTORY)
            .await?
            .into_iter()
            .map(|r| r.id)
            .collect())
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[async_trait]
impl KeyStore for SealedStore {
    async fn get(
        &self,
        tenant: &str,
        kind: &str,
        id: &str,
        version: u32,
    ) -> Result<Option<Record>, StoreError> {
        let t = self.tenant_index(tenant);
        self.inner
            .get(&t, kind, &self.id_index(tenant, kind, id), version)
            .await?
            .map(|stored| self.opened(tenant, id, &stored))
            .transpose()
    }

    async fn get_many(&self, keys: &[RecordKey]) -> Result<Vec<Option<Record>>, StoreError> {
        let blinded: Vec<RecordKey> = keys.iter().map(|k| self.blind_key(k)).collect();
        let rows = self.inner.get_many(&blinded).await?;
        keys.iter()
            .zip(rows)
            .map(|(k, row)| {
                row.map(|stored| self.opened(&k.tenant, &k.id, &stored))
                    .transpose()
            })
            .collect()
    }

    async fn put_many_if_absent(&self, records: &[Record]) -> Result<Vec<bool>, StoreError> {
        let mut sealed = Vec::with_capacity(records.len());
        for r in records {
            crate::validate(r)?;
            self.list_tenant(&r.tenant).await?;
            sealed.push(self.seal(r)?);
        }
        self.inner.put_many_if_absent(&sealed).await
    }

    async fn compare_and_set_many(&self, items: &[(Record, u64)]) -> Result<Vec<bool>, StoreError> {
        let sealed = items
            .iter()
            .map(|(r, expected)| Ok((self.seal(r)?, *expected)))
            .collect::<Result<Vec<_>, StoreError>>()?;
        self.inner.compare_and_set_many(&sealed).await
    }

    async fn delete_many(&self, keys: &[RecordKey]) -> Result<Vec<bool>, StoreError> {
        let blinded: Vec<RecordKey> = keys.iter().map(|k| self.blind_key(k)).collect();
        self.inner.delete_many(&blinded).await
    }

    async fn put_if_absent(&self, record: &Record) -> Result<bool, StoreError> {
        crate::validate(record)?;
        self.list_tenant(&record.tenant).await?;
        self.inner.put_if_absent(&self.seal(record)?).await
    }

    async fn compare_and_set(
        &self,
        record: &Record,
        expected_revision: u64,
    ) -> Result<bool, StoreError> {
        self.inner
            .compare_and_set(&self.seal(record)?, expected_revision)
            .await
    }

    async fn list(&self, tenant: &str, kind: &str) -> Result<Vec<Record>, StoreError> {
        let mut out = self
            .inner
            .list(&self.tenant_index(tenant), kind)
            .await?
            .iter()
            .map(|stored| self.unseal(tenant, stored))
            .collect::<Result<Vec<_>, _>>()?;
        out.sort_by(|a, b| (a.id.as_bytes(), a.version).cmp(&(b.id.as_bytes(), b.version)));
        Ok(out)
    }

    /// Every tenant that has a record, sorted: the directory's names whose blind index has rows (the directory
    /// keeps a tenant's entry after its last record is deleted).
    async fn list_tenants(&self) -> Result<Vec<String>, StoreError> {
        let directory = self.directory();
        let present: HashSet<String> = self.inner.list_tenants().await?.into_iter().collect();
        let mut names = Vec::new();
        for entry in self.inner.list(&directory, KIND_DIRECTORY).await? {
            if !present.contains(&entry.id) {
                continue;
            }
            let bad = || {
                corrupt(
                    &directory,
                    KIND_DIRECTORY,
                    &entry.id,
                    0,
                    "its tenant name does not open",
                )
            };
            let text = entry.metadata["name"].as_str().ok_or_else(bad)?;
            let name = self
                .decrypt(&Self::aad(&directory, KIND_DIRECTORY, &entry.id, 0), text)
                .ok_or_else(bad)?;
            let name = String::from_utf8(name.expose().to_vec()).map_err(|_| bad())?;
            if self.tenant_index(&name) != entry.id {
                return Err(bad());
            }
            names.push(name);
        }
        names.sort();
        Ok(names)
    }

    async fn delete(
        &self,
        tenant: &str,
        kind: &str,
        id: &str,
        version: u32,
    ) -> Result<bool, StoreError> {
        self.inner
            .delete(
                &self.tenant_index(tenant),
                kind,
                &self.id_index(tenant, kind, id),
                version,
            )
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MemoryStore;

    fn record(tenant: &str, id: &str, note: &str) -> Record {
        Record {
            tenant: tenant.into(),
            kind: "service".into(),
            id: id.into(),
            version: 0,
            metadata: serde_json::json!({ "note": note }),
            blob: None,
            revision: 0,
        }
    }

    #[tokio::test]
    async fn rows_read_back_and_a_row_moved_elsewhere_does_not_open() {
        let inner = Arc::new(MemoryStore::new());
        let store = SealedStore::new(
            inner.clone(),
            SecretKey::generate().unwrap(),
            SecretKey::generate().unwrap(),
        );
        assert!(store
            .put_if_absent(&record("acme", "b", "second"))
            .await
            .unwrap());
        assert!(store
            .put_if_absent(&record("acme", "a", "first"))
            .await
            .unwrap());
        assert!(store
            .put_if_absent(&record("beta", "a", "other"))
            .await
            .unwrap());
        // Clear names back, in id order, with the store's revisions.
        let listed = store.list("acme", "service").await.unwrap();
        let ids: Vec<&str> = listed.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(ids, ["a", "b"]);
        assert_eq!(listed[0].metadata["note"], "first");
        assert_eq!(listed[0].revision, 1);
        assert_eq!(store.list_tenants().await.unwrap(), ["acme", "beta"]);
        // Equal ids of two tenants have different indexes.
        let t_acme = store.tenant_index("acme");
        let t_beta = store.tenant_index("beta");
        let acme_a = &inner.list(&t_acme, "service").await.unwrap();
        let beta_a = &inner.list(&t_beta, "service").await.unwrap();
        assert!(acme_a.iter().all(|r| beta_a.iter().all(|s| s.id != r.id)));
        // Copy beta's row into acme's row "a": it no longer opens.
        let target = store.id_index("acme", "service", "a");
        let mut moved = beta_a[0].clone();
        moved.tenant = t_acme.clone();
        moved.id = target.clone();
        assert!(inner.compare_and_set(&moved, 1).await.unwrap());
        let err = store.get("acme", "service", "a", 0).await.unwrap_err();
        assert!(matches!(err, StoreError::Corrupt { .. }), "{err}");
        assert!(err.to_string().contains("does not authenticate"), "{err}");
        // Compare-and-set and delete go through to the same row.
        let mut b = store.get("acme", "service", "b", 0).await.unwrap().unwrap();
        b.metadata = serde_json::json!({ "note": "changed" });
        assert!(store.compare_and_set(&b, 1).await.unwrap());
        assert_eq!(
            store
                .get("acme", "service", "b", 0)
                .await
                .unwrap()
                .unwrap()
                .metadata["note"],
            "changed"
        );
        assert!(store.delete("acme", "service", "b", 0).await.unwrap());
        assert!(store
            .get("acme", "service", "b", 0)
            .await
            .unwrap()
            .is_none());
    }
}
