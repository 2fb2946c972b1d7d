//! The in-memory backend: for tests and for the edge's default, non-persistent vault.

use std::collections::BTreeMap;

use async_trait::async_trait;
use openkcm_crypto::WrappedKey;
use tokio::sync::RwLock;

use crate::{validate, JsonRecord, KeyStore, Record, StoreError};

/// A record body, kept compact: a million wrapped keys must fit in a few hundred megabytes (DESIGN §15). The
/// metadata is its JSON text and the wrapped key its stored bytes; both are decoded again on every read.
#[derive(Clone)]
struct Stored {
    metadata: Box<[u8]>,
    blob: Option<Box<[u8]>>,
    revision: u64,
}

impl Stored {
    fn new(record: &Record, revision: u64) -> Result<Stored, StoreError> {
        Ok(Stored {
            metadata: serde_json::to_vec(&record.metadata)
                .map_err(|e| StoreError::Invalid(format!("metadata cannot be encoded: {e}")))?
                .into_boxed_slice(),
            blob: record.blob.as_ref().map(|w| w.as_bytes().into()),
            revision,
        })
    }
}

/// `(tenant, kind)` → `(id, version)` → record body.
type Table = BTreeMap<(String, String), BTreeMap<(String, u32), Stored>>;

/// A [`KeyStore`] held in process memory; everything is lost when it is dropped.
///
/// Keys are grouped by `(tenant, kind)` so that listing touches only that namespace.
#[derive(Default)]
pub struct MemoryStore {
    table: RwLock<Table>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> MemoryStore {
        MemoryStore::default()
    }
}

fn blob_of(
    tenant: &str,
    kind: &str,
    id: &str,
    version: u32,
    s: &Stored,
) -> Result<Option<WrappedKey>, StoreError> {
    s.blob
        .as_ref()
        .map(|b| {
            WrappedKey::from_stored(b.to_vec()).map_err(|e| StoreError::Corrupt {
                record: format!("{tenant}/{kind}/{id}/{version}"),
                reason: e.to_string(),
            })
        })
        .transpose()
}

fn to_record(
    tenant: &str,
    kind: &str,
    id: &str,
    version: u32,
    s: &Stored,
) -> Result<Record, StoreError> {
    let corrupt = |reason: String| StoreError::Corrupt {
        record: format!("{tenant}/{kind}/{id}/{version}"),
        reason,
    };
    Ok(Record {
        tenant: tenant.to_owned(),
        kind: kind.to_owned(),
        id: id.to_owned(),
        version,
        metadata: serde_json::from_slice(&s.metadata).map_err(|e| corrupt(e.to_string()))?,
        blob: blob_of(tenant, kind, id, version, s)?,
        revision: s.revision,
    })
}

fn ns(tenant: &str, kind: &str) -> (String, String) {
    (tenant.to_owned(), kind.to_owned())
}

#[async_trait]
impl KeyStore for MemoryStore {
    async fn get(
        &self,
        tenant: &str,
        kind: &str,
        id: &str,
        version: u32,
    ) -> Result<Option<Record>, StoreError> {
        let table = self.table.read().await;
        table
            .get(&ns(tenant, kind))
            .and_then(|m| m.get(&(id.to_owned(), version)))
            .map(|s| to_record(tenant, kind, id, version, s))
            .transpose()
    }

    async fn get_json(
        &self,
        tenant: &str,
        kind: &str,
        id: &str,
        version: u32,
    ) -> Result<Option<JsonRecord>, StoreError> {
        let table = self.table.read().await;
        let Some(s) = table
            .get(&ns(tenant, kind))
            .and_then(|m| m.get(&(id.to_owned(), version)))
        else {
            return Ok(None);
        };
        Ok(Some(JsonRecord {
            metadata: s.metadata.to_vec(),
            blob: blob_of(tenant, kind, id, version, s)?,
            revision: s.revision,
        }))
    }

    async fn put_if_absent(&self, record: &Record) -> Result<bool, StoreError> {
        validate(record)?;
        let mut table = self.table.write().await;
        let inner = table.entry(ns(&record.tenant, &record.kind)).or_default();
        let key = (record.id.clone(), record.version);
        if inner.contains_key(&key) {
            return Ok(false);
        }
        inner.insert(key, Stored::new(record, 1)?);
        Ok(true)
    }

    async fn compare_and_set(
        &self,
        record: &Record,
        expected_revision: u64,
    ) -> Result<bool, StoreError> {
        validate(record)?;
        let next = crate::next_revision(expected_revision)?;
        let mut table = self.table.write().await;
        let stored = table
            .get_mut(&ns(&record.tenant, &record.kind))
            .and_then(|m| m.get_mut(&(record.id.clone(), record.version)));
        match stored {
            Some(s) if s.revision == expected_revision => {
                *s = Stored::new(record, next)?;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn list(&self, tenant: &str, kind: &str) -> Result<Vec<Record>, StoreError> {
        let table = self.table.read().await;
        table
            .get(&ns(tenant, kind))
            .map(|m| {
                m.iter()
                    .map(|((id, version), s)| to_record(tenant, kind, id, *version, s))
                    .collect()
            })
            .unwrap_or_else(|| Ok(Vec::new()))
    }

    async fn list_tenants(&self) -> Result<Vec<String>, StoreError> {
        let table = self.table.read().await;
        let mut tenants: Vec<String> = table
            .iter()
            .filter(|(_, m)| !m.is_empty())
            .map(|((tenant, _), _)| tenant.clone())
            .collect();
        // Keys are sorted by (tenant, kind), so equal tenants are adjacent.
        tenants.dedup();
        Ok(tenants)
    }

    async fn delete(
        &self,
        tenant: &str,
        kind: &str,
        id: &str,
        version: u32,
    ) -> Result<bool, StoreError> {
        let mut table = self.table.write().await;
        let key = ns(tenant, kind);
        let Some(inner) = table.get_mut(&key) else {
            return Ok(false);
        };
        let removed = inner.remove(&(id.to_owned(), version)).is_some();
        if inner.is_empty() {
            table.remove(&key);
        }
        Ok(removed)
    }
}
