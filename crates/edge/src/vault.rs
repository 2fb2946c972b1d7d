//! A persistent edge vault: guarded against being silently replaced, and sealed so that its rows name nothing.
//!
//! The vault is the only copy of the wrapped data keys. On first use it receives a marker record and a marker file
//! is written beside it; later, a vault without its record (deleted, emptied or swapped database) is refused instead
//! of being used as an empty vault.
//!
//! [`SealedVault`] keeps a persistent vault's records in the sealed form of [`openkcm_store::sealed`]: tenant names
//! and key identifiers blinded, every key's attributes (names, labels, custom attributes, state) and its wrapped key
//! (whose envelope header names the tenant) under AES-256-GCM. The key comes from the Core, derived from the
//! MasterKey for this edge's name, so a dump of the vault alone shows no tenant, key name or label (ADR-015).

use crate::CoreLink;
use openkcm_crypto::{derived, SecretKey};
use openkcm_store::sealed::SealedStore;
use openkcm_store::{JsonRecord, KeyStore, Record, StoreError};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Why a vault cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ClaimError {
    /// The vault lost its marker record although the marker file says it held keys.
    #[error(
        "{vault} is missing, empty or was replaced, although this edge stored keys in it: restore it from a backup \
         (with its -wal file if the backup has one), or delete {} to start again with an empty vault (every data key \
         is then lost)",
        marker.display()
    )]
    Replaced {
        /// What the vault is (for a file-backed vault, its path).
        vault: String,
        /// The marker file.
        marker: PathBuf,
    },
    /// The vault could not be read or written.
    #[error("{0}")]
    Store(#[from] StoreError),
    /// The marker file could not be written.
    #[error("cannot write {path}: {cause}")]
    Marker {
        /// The marker file.
        path: PathBuf,
        /// The I/O error.
        cause: std::io::Error,
    },
}

const TENANT: &str = "_edge";
const KIND: &str = "meta";
const ID: &str = "vault";

/// Claims `vault` (described as `name` in errors) for this edge: marks a new vault, accepts a marked one, refuses one
/// that lost its mark while the file `marker` exists.
pub async fn claim_vault(
    vault: &dyn KeyStore,
    name: &str,
    marker: &Path,
) -> Result<(), ClaimError> {
    if vault.get(TENANT, KIND, ID, 0).await?.is_none() {
        if marker.exists() {
            return Err(ClaimError::Replaced {
                vault: name.to_owned(),
                marker: marker.to_path_buf(),
            });
        }
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let record = Record {
            tenant: TENANT.into(),
            kind: KIND.into(),
            id: ID.into(),
            version: 0,
            metadata: serde_json::json!({ "created_at": now }),
            blob: None,
            revision: 0,
        };
        vault.put_if_absent(&record).await?;
    }
    if !marker.exists() {
        std::fs::write(marker, b"").map_err(|cause| ClaimError::Marker {
            path: marker.to_path_buf(),
            cause,
        })?;
    }
    Ok(())
}

/// The kinds of records an edge keeps in its vault (besides its marker, which names nothing).
const SEALED_KINDS: &[&str] = &["l4"];

/// A persistent vault whose records are sealed under a key from the Core (see the module documentation). The key is
/// asked for at the first use (the Core may still be sealed when the edge starts); a vault an earlier release wrote
/// in clear is sealed then, once.
pub struct SealedVault {
    inner: Arc<dyn KeyStore>,
    core: Arc<CoreLink>,
    sealed: tokio::sync::OnceCell<SealedStore>,
}

impl SealedVault {
    /// `inner`, sealed under the vault key the Core gives this edge through `core`.
    pub fn new(inner: Arc<dyn KeyStore>, core: Arc<CoreLink>) -> Self {
        Self {
            inner,
            core,
            sealed: tokio::sync::OnceCell::new(),
        }
    }

    /// `inner` as the edge whose vault key is `key` sees it (nothing read, nothing moved): for recovery tools and
    /// tests that read a vault with the key in hand.
    pub fn sealed_view(
        inner: Arc<dyn KeyStore>,
        key: &SecretKey,
    ) -> Result<SealedStore, StoreError> {
        let derive = |purpose| {
            derived::derive_key(key, purpose).map_err(|e| StoreError::Invalid(e.to_string()))
        };
        Ok(SealedStore::new(
            inner,
            derive("openkcm/edge-vault/encryption")?,
            derive("openkcm/edge-vault/blind-index")?,
        ))
    }

    async fn store(&self) -> Result<&SealedStore, StoreError> {
        self.sealed
            .get_or_try_init(|| async {
                let key = self.core.vault_key().await.map_err(|e| {
                    StoreError::Backend(format!(
                        "the vault's metadata key comes from the Crypto Core, which did not give it ({})",
                        e.message
                    ))
                })?;
                let store = Self::sealed_view(self.inner.clone(), &key)?;
                let kinds: Vec<String> = SEALED_KINDS.iter().map(|k| (*k).to_owned()).collect();
                let moved = store.seal_clear_records(&kinds, &[TENANT], &[]).await?;
                if moved > 0 {
                    tracing::info!(
                        records = moved,
                        "edge vault: the clear records of an earlier release are now sealed (zero-knowledge metadata)"
                    );
                }
                let foreign = store.foreign_tenants(&[TENANT]).await?;
                if foreign > 0 {
                    return Err(StoreError::Corrupt {
                        record: "edge vault".into(),
                        reason: format!(
                            "it holds records sealed under another vault key ({foreign} namespace(s)): another \
                             edge's or another cluster's vault (an edge's vault key follows its name and the \
                             cluster's MasterKey)"
                        ),
                    });
                }
                Ok(store)
            })
            .await
    }
}

#[async_trait::async_trait]
impl KeyStore for SealedVault {
    async fn get(
        &self,
        tenant: &str,
        kind: &str,
        id: &str,
        version: u32,
    ) -> Result<Option<Record>, StoreError> {
        self.store().await?.get(tenant, kind, id, version).await
    }

    async fn get_json(
        &self,
        tenant: &str,
        kind: &str,
        id: &str,
        version: u32,
    ) -> Result<Option<JsonRecord>, StoreError> {
        self.store()
            .await?
            .get_json(tenant, kind, id, version)
            .await
    }

    async fn put_if_absent(&self, record: &Record) -> Result<bool, StoreError> {
        self.store().await?.put_if_absent(record).await
    }

    async fn compare_and_set(
        &self,
        record: &Record,
        expected_revision: u64,
    ) -> Result<bool, StoreError> {
        self.store()
            .await?
            .compare_and_set(record, expected_revision)
            .await
    }

    async fn list(&self, tenant: &str, kind: &str) -> Result<Vec<Record>, StoreError> {
        self.store().await?.list(tenant, kind).await
    }

    async fn list_tenants(&self) -> Result<Vec<String>, StoreError> {
        self.store().await?.list_tenants().await
    }

    async fn delete(
        &self,
        tenant: &str,
        kind: &str,
        id: &str,
        version: u32,
    ) -> Result<bool, StoreError> {
        self.store().await?.delete(tenant, kind, id, version).await
    }
}
