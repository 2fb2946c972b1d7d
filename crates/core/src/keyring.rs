//! The internal versioned key (IVK, DESIGN §4): wraps the L2 active bindings so that the Core can unwrap L2
//! without calling the customer's KMS on every cache miss. This first version keeps one ACTIVE IVK (version 1);
//! rotation, GRACE/DEPRECATED states and the integrity MAC arrive with the key-hierarchy-over-time work.

use crate::seal::file::{CLUSTER_TENANT, MASTER_KEY_ID};
use crate::CoreError;
use openkcm_crypto::{unwrap, wrap, EnvelopeHeader, Layer, SecretKey};
use openkcm_store::{KeyStore, Record};
use std::sync::Arc;

/// Storage kind of IVK records.
pub const KIND_IVK: &str = "ivk";
/// Key id of the IVK in envelope headers and storage.
pub const IVK_ID: &str = "ivk";

/// The unwrapped ACTIVE IVK.
pub struct Keyring {
    /// Version of the ACTIVE IVK.
    pub version: u32,
    /// The key, in locked memory.
    pub key: SecretKey,
}

impl Keyring {
    /// The id that envelope headers of keys wrapped by this IVK name as their parent.
    pub fn parent_id(&self) -> String {
        format!("{IVK_ID}/v{}", self.version)
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

impl Keyring {
    /// Loads the ACTIVE IVK, creating version 1 if the store has none.
    ///
    /// With `allow_create` false (the MasterKey existed before this start), a store without an IVK means the Core
    /// storage was lost or replaced: that is an error, never a reason to start a new, empty hierarchy.
    pub async fn load_or_create(
        store: &Arc<dyn KeyStore>,
        mk: &SecretKey,
        allow_create: bool,
    ) -> Result<Self, CoreError> {
        if let Some(rec) = store.get(CLUSTER_TENANT, KIND_IVK, IVK_ID, 1).await? {
            let blob = rec
                .blob
                .ok_or_else(|| CoreError::Corrupt("the IVK record has no wrapped key".into()))?;
            let key = unwrap(mk, &blob, &header(1))?;
            return Ok(Self { version: 1, key });
        }
        if !allow_create {
            return Err(CoreError::Corrupt(
                "the Core storage holds no IVK although the MasterKey already exists: the Core database is missing \
                 or was replaced. Restore it from a backup (with its -wal file), or start over with a new data directory"
                    .into(),
            ));
        }
        let key = SecretKey::generate()?;
        let record = Record {
            tenant: CLUSTER_TENANT.into(),
            kind: KIND_IVK.into(),
            id: IVK_ID.into(),
            version: 1,
            metadata: serde_json::json!({ "state": "ACTIVE", "created_at": crate::now() }),
            blob: Some(wrap(mk, &header(1), &key)?),
            revision: 0,
        };
        if !store.put_if_absent(&record).await? {
            // Another node created it first: use theirs.
            return Box::pin(Self::load_or_create(store, mk, false)).await;
        }
        Ok(Self { version: 1, key })
    }
}
