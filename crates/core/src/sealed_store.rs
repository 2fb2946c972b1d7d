//! Zero-knowledge metadata of the Core's key store (DESIGN §5.2, ADR-015): the Core's records go through an
//! [`openkcm_store::sealed::SealedStore`] keyed by two keys derived from the MasterKey (see that module for what a
//! dump of the backend shows).
//!
//! A store written by a release before sealed metadata holds clear records; [`open`] moves them into the sealed form
//! once (each record written sealed, then its clear copy deleted; resumable after a crash). A store holding records
//! that another MasterKey sealed is refused: it is another cluster's.

use crate::seal::file::CLUSTER_TENANT;
use crate::CoreError;
use openkcm_crypto::{derived, SecretKey};
use openkcm_store::KeyStore;
use std::sync::Arc;

pub use openkcm_store::sealed::SealedStore;

const ENCRYPTION_PURPOSE: &str = "openkcm/metadata-encryption/v1";
const INDEX_PURPOSE: &str = "openkcm/metadata-blind-index/v1";
/// The kinds an earlier release wrote (the IVK binding index kinds `ivk-ref-<N>` are found from the IVK versions).
const CLEAR_KINDS: &[&str] = &[
    crate::hierarchy::kind::SYSTEM,
    crate::hierarchy::kind::L2_SOVEREIGN,
    crate::hierarchy::kind::L2_ACTIVE,
    crate::hierarchy::kind::SERVICE,
    crate::hierarchy::kind::L3,
    crate::keyring::KIND_IVK,
    crate::keyring::KIND_IVK_USAGE,
    "ivk-ref-index",
];

/// The sealed view of `inner` under the metadata keys of `mk`, after moving the clear records of an earlier release
/// into the sealed form (once).
///
/// A store is of an earlier release while its clear IVK records exist; they are moved last, so a crash part way
/// leaves them and the next start finishes the move. Nothing is written to a store without them.
pub async fn open(inner: Arc<dyn KeyStore>, mk: &SecretKey) -> Result<SealedStore, CoreError> {
    let store = SealedStore::new(
        inner,
        derived::derive_key(mk, ENCRYPTION_PURPOSE)?,
        derived::derive_key(mk, INDEX_PURPOSE)?,
    );
    let clear_ivk = store
        .inner()
        .list(CLUSTER_TENANT, crate::keyring::KIND_IVK)
        .await?;
    if !clear_ivk.is_empty() {
        let mut kinds: Vec<String> = CLEAR_KINDS.iter().map(|k| (*k).to_owned()).collect();
        kinds.extend(clear_ivk.iter().map(|r| format!("ivk-ref-{}", r.version)));
        // The IVK itself goes last.
        kinds.retain(|k| k != crate::keyring::KIND_IVK);
        kinds.push(crate::keyring::KIND_IVK.to_owned());
        let moved = store
            .seal_clear_records(&kinds, &[], &[CLUSTER_TENANT])
            .await?;
        tracing::info!(
            records = moved,
            "key store: the clear names and metadata of an earlier release are now sealed (zero-knowledge metadata)"
        );
    }
    let foreign = store.foreign_tenants(&[]).await?;
    if foreign > 0 {
        return Err(CoreError::Corrupt(format!(
            "the key store holds records that this MasterKey did not seal ({foreign} namespace(s), tenants and \
             internal ones): it is another cluster's storage (or the MasterKey was replaced), so it holds keys this \
             node cannot open; point the node at its own storage or restore its MasterKey"
        )));
    }
    Ok(store)
}
