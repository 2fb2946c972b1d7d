//! Key storage for OpenKCM: one record type and one async trait ([`KeyStore`]) that serve both the
//! Crypto Core's key storage interface (DESIGN §5.2) and the Crypto Edge's vault (DESIGN §6.2),
//! with an in-memory backend ([`MemoryStore`]), an embedded SQLite backend ([`SqliteStore`]) and a PostgreSQL
//! backend ([`PostgresStore`]) that several Core processes can share, and an OpenBao/Vault KV v2 backend
//! ([`OpenBaoStore`]).
//!
//! This crate must never accept or return plaintext key material: a [`Record`]'s only key field is
//! an [`openkcm_crypto::WrappedKey`], which only the wrap function or a validating constructor can
//! build, and blobs read back from a backend go through [`openkcm_crypto::WrappedKey::from_stored`]
//! so a corrupt row is an error, never a panic. It must never let one tenant's call read or
//! change another tenant's records, and it never interprets metadata or performs cryptography.
//!
//! ```
//! use openkcm_store::{KeyStore, MemoryStore, Record};
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let store = MemoryStore::new();
//! let record = Record {
//!     tenant: "acme".into(),
//!     kind: "system".into(),
//!     id: "billing".into(),
//!     version: 0,
//!     metadata: serde_json::json!({ "status": "CONNECTED" }),
//!     blob: None,
//!     revision: 0,
//! };
//! assert!(store.put_if_absent(&record).await?);
//! let stored = store.get("acme", "system", "billing", 0).await?.unwrap();
//! assert_eq!(stored.revision, 1);
//! # Ok::<(), openkcm_store::StoreError>(())
//! # }).unwrap();
//! ```

#![warn(missing_docs)]

mod memory;
mod openbao;
mod postgres;
pub mod sealed;
mod sql;
mod sqlite;
#[cfg(feature = "testing")]
pub mod testing;

use async_trait::async_trait;
use openkcm_crypto::WrappedKey;

pub use memory::MemoryStore;
pub use openbao::OpenBaoStore;
pub use postgres::PostgresStore;
pub use sqlite::SqliteStore;

/// One stored item: a key version (with its wrapped blob) or a piece of state without one.
///
/// `(tenant, kind, id, version)` is the primary key. `revision` is managed by the store: it is 1
/// after [`KeyStore::put_if_absent`] and goes up by one with every successful
/// [`KeyStore::compare_and_set`]; the value a caller puts in it on write is ignored.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// Tenant namespace; never empty.
    pub tenant: String,
    /// Record kind chosen by the caller (for example `"l3"`, `"l4"`, `"ivk"`); never empty.
    pub kind: String,
    /// Identifier within the tenant and kind; never empty.
    pub id: String,
    /// Version of the item (0 for unversioned state).
    pub version: u32,
    /// Caller-defined JSON metadata, stored as is.
    pub metadata: serde_json::Value,
    /// The wrapped key, if this record holds one. Plaintext keys cannot be stored.
    pub blob: Option<WrappedKey>,
    /// Optimistic-concurrency revision (see the type documentation).
    pub revision: u64,
}

/// The primary key of a record, for the batch operations of [`KeyStore`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RecordKey {
    /// Tenant namespace.
    pub tenant: String,
    /// Record kind.
    pub kind: String,
    /// Identifier within the tenant and kind.
    pub id: String,
    /// Version.
    pub version: u32,
}

impl RecordKey {
    /// The key of `record`.
    pub fn of(record: &Record) -> Self {
        Self {
            tenant: record.tenant.clone(),
            kind: record.kind.clone(),
            id: record.id.clone(),
            version: record.version,
        }
    }
}

/// A record read with its metadata left as JSON text, for a caller that decodes the metadata into its own type:
/// one parse instead of two (JSON text to [`serde_json::Value`] to the caller's type) on a hot read path.
#[derive(Debug, Clone, PartialEq)]
pub struct JsonRecord {
    /// The metadata, as the JSON text the store holds.
    pub metadata: Vec<u8>,
    /// The wrapped key, if the record holds one.
    pub blob: Option<WrappedKey>,
    /// The record's revision (see [`Record`]).
    pub revision: u64,
}

/// Storage errors. Messages are sentences and never contain key material.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The backend (database, file system) failed.
    #[error(
        "the key store backend failed: {0}; check that the database is reachable and writable"
    )]
    Backend(String),

    /// A stored record could not be decoded.
    #[error(
        "the stored record {record} is corrupt: {reason}; restore it from a backup or delete it"
    )]
    Corrupt {
        /// `tenant/kind/id/version` of the bad record.
        record: String,
        /// What is wrong with it.
        reason: String,
    },

    /// The caller passed a record the store cannot accept.
    #[error("the record was rejected: {0}")]
    Invalid(String),
}

/// Storage of wrapped keys and key state, namespaced by tenant.
///
/// Implementations must be linearizable per record: `put_if_absent` and `compare_and_set` are
/// atomic with respect to each other, so two racing writers never both succeed.
#[async_trait]
pub trait KeyStore: Send + Sync {
    /// The record with this primary key, if any.
    async fn get(
        &self,
        tenant: &str,
        kind: &str,
        id: &str,
        version: u32,
    ) -> Result<Option<Record>, StoreError>;

    /// Like [`KeyStore::get`], with the metadata returned as JSON text. Backends that hold JSON text override this
    /// to skip decoding it; the default encodes what [`KeyStore::get`] returns.
    async fn get_json(
        &self,
        tenant: &str,
        kind: &str,
        id: &str,
        version: u32,
    ) -> Result<Option<JsonRecord>, StoreError> {
        let Some(record) = self.get(tenant, kind, id, version).await? else {
            return Ok(None);
        };
        let metadata = serde_json::to_vec(&record.metadata).map_err(|e| StoreError::Corrupt {
            record: record_name(tenant, kind, id, version),
            reason: format!("its metadata cannot be encoded ({e})"),
        })?;
        Ok(Some(JsonRecord {
            metadata,
            blob: record.blob,
            revision: record.revision,
        }))
    }

    /// Inserts `record` unless one with the same primary key exists; returns whether it was
    /// inserted. The stored revision is 1.
    async fn put_if_absent(&self, record: &Record) -> Result<bool, StoreError>;

    /// Replaces the stored record's metadata and blob if its revision is `expected_revision`;
    /// returns whether it did. On success the stored revision is `expected_revision + 1`. A
    /// missing record is not created (returns `false`).
    async fn compare_and_set(
        &self,
        record: &Record,
        expected_revision: u64,
    ) -> Result<bool, StoreError>;

    /// All records of `tenant` and `kind`, ordered by id (bytewise), then version.
    async fn list(&self, tenant: &str, kind: &str) -> Result<Vec<Record>, StoreError>;

    /// Every tenant that has at least one record, sorted.
    async fn list_tenants(&self) -> Result<Vec<String>, StoreError>;

    /// Deletes the record with this primary key; returns whether one existed.
    async fn delete(
        &self,
        tenant: &str,
        kind: &str,
        id: &str,
        version: u32,
    ) -> Result<bool, StoreError>;

    /// Batch form of [`KeyStore::get`]: one answer per key, in order. Backends that can read many rows in one round
    /// trip override it; the default asks one by one.
    async fn get_many(&self, keys: &[RecordKey]) -> Result<Vec<Option<Record>>, StoreError> {
        let mut out = Vec::with_capacity(keys.len());
        for k in keys {
            out.push(self.get(&k.tenant, &k.kind, &k.id, k.version).await?);
        }
        Ok(out)
    }

    /// Batch form of [`KeyStore::put_if_absent`]: whether each record was inserted, in order. Each insert is atomic
    /// on its own, the batch is not (a failure part way may leave the first ones written). A key repeated in the
    /// batch is inserted once.
    async fn put_many_if_absent(&self, records: &[Record]) -> Result<Vec<bool>, StoreError> {
        let mut out = Vec::with_capacity(records.len());
        for r in records {
            out.push(self.put_if_absent(r).await?);
        }
        Ok(out)
    }

    /// Batch form of [`KeyStore::compare_and_set`] (record, expected revision): whether each was replaced, in order.
    /// Each replacement is atomic on its own, the batch is not. Keys must not repeat within a batch.
    async fn compare_and_set_many(&self, items: &[(Record, u64)]) -> Result<Vec<bool>, StoreError> {
        let mut out = Vec::with_capacity(items.len());
        for (r, expected) in items {
            out.push(self.compare_and_set(r, *expected).await?);
        }
        Ok(out)
    }

    /// Batch form of [`KeyStore::delete`]: whether each record existed, in order. Keys must not repeat within a
    /// batch.
    async fn delete_many(&self, keys: &[RecordKey]) -> Result<Vec<bool>, StoreError> {
        let mut out = Vec::with_capacity(keys.len());
        for k in keys {
            out.push(self.delete(&k.tenant, &k.kind, &k.id, k.version).await?);
        }
        Ok(out)
    }
}

/// Rejects records whose key fields are empty.
pub(crate) fn validate(record: &Record) -> Result<(), StoreError> {
    for (name, value) in [
        ("tenant", &record.tenant),
        ("kind", &record.kind),
        ("id", &record.id),
    ] {
        if value.is_empty() {
            return Err(StoreError::Invalid(format!("its {name} is empty")));
        }
    }
    Ok(())
}

/// `tenant/kind/id/version`, for error messages.
pub(crate) fn record_name(tenant: &str, kind: &str, id: &str, version: u32) -> String {
    format!("{tenant}/{kind}/{id}/{version}")
}

/// The revision a record gets when a compare-and-set against `expected` succeeds.
pub(crate) fn next_revision(expected: u64) -> Result<u64, StoreError> {
    expected
        .checked_add(1)
        .ok_or_else(|| StoreError::Invalid("its expected revision is at the maximum".to_owned()))
}
