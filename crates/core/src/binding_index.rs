//! The index of which IVK version wraps which L2 active binding (DESIGN §4: "a DEPRECATED IVK is not deletable
//! while any L2 binding still references it" — answered by an index lookup, not a scan of every tenant).
//!
//! One entry per (IVK version, tenant, system, L2 version), stored under the cluster namespace with the kind
//! `ivk-ref-<version>`, so the entries of one version are one `list`. Entries carry no key material.
//!
//! The index is kept a superset of the truth without transactions: an entry is written *before* the binding that
//! it names is written under that IVK version, and removed only *after* the binding has moved off it. A crash
//! between the two leaves a stale entry, never a missing one; stale entries are checked against the binding (and
//! dropped) when a version is about to be deleted.

use crate::seal::file::CLUSTER_TENANT;
use crate::CoreError;
use openkcm_store::{KeyStore, Record, RecordKey};

/// Kind of the marker record saying the index covers every binding (it was built, or the store began with it).
const KIND_BUILT: &str = "ivk-ref-index";

fn kind(ivk_version: u32) -> String {
    format!("ivk-ref-{ivk_version}")
}

/// The entry id of `tenant`'s `system`: length-prefixed so that no two (tenant, system) pairs share one.
fn entry_id(tenant: &str, system: &str) -> String {
    format!("{}:{tenant}{system}", tenant.len())
}

/// The (tenant, system) an entry id names.
fn parse_entry_id(id: &str) -> Option<(&str, &str)> {
    let (len, rest) = id.split_once(':')?;
    let len: usize = len.parse().ok()?;
    (rest.is_char_boundary(len) && len <= rest.len()).then(|| rest.split_at(len))
}

/// The entry saying that `tenant`'s `system` L2 version `l2_version` is (about to be) wrapped under `ivk_version`.
pub fn entry(ivk_version: u32, tenant: &str, system: &str, l2_version: u32) -> Record {
    Record {
        tenant: CLUSTER_TENANT.into(),
        kind: kind(ivk_version),
        id: entry_id(tenant, system),
        version: l2_version,
        metadata: serde_json::json!({}),
        blob: None,
        revision: 0,
    }
}

/// One binding the index names under an IVK version.
pub struct Entry {
    /// The tenant.
    pub tenant: String,
    /// The system.
    pub system: String,
    /// The L2 version.
    pub l2_version: u32,
    /// The entry's own key (to delete it).
    pub key: RecordKey,
}

/// Every binding the index names under IVK `ivk_version` (a superset of those wrapped under it), in one read.
pub async fn entries(store: &dyn KeyStore, ivk_version: u32) -> Result<Vec<Entry>, CoreError> {
    store
        .list(CLUSTER_TENANT, &kind(ivk_version))
        .await?
        .into_iter()
        .map(|e| {
            let (tenant, system) = parse_entry_id(&e.id).ok_or_else(|| {
                CoreError::Corrupt(format!(
                    "the IVK binding index holds a malformed entry {:?}",
                    e.id
                ))
            })?;
            Ok(Entry {
                tenant: tenant.to_owned(),
                system: system.to_owned(),
                l2_version: e.version,
                key: RecordKey::of(&e),
            })
        })
        .collect()
}

/// Records that `tenant`'s `system` L2 version `l2_version` is about to be wrapped under IVK `ivk_version`.
pub async fn add(
    store: &dyn KeyStore,
    ivk_version: u32,
    tenant: &str,
    system: &str,
    l2_version: u32,
) -> Result<(), CoreError> {
    store
        .put_if_absent(&entry(ivk_version, tenant, system, l2_version))
        .await?;
    Ok(())
}

/// Records that the binding no longer uses IVK `ivk_version` (it moved, or was destroyed).
pub async fn remove(
    store: &dyn KeyStore,
    ivk_version: u32,
    tenant: &str,
    system: &str,
    l2_version: u32,
) -> Result<(), CoreError> {
    store
        .delete(
            CLUSTER_TENANT,
            &kind(ivk_version),
            &entry_id(tenant, system),
            l2_version,
        )
        .await?;
    Ok(())
}

/// The IVK version an active binding record names (1 for bindings written before versions were recorded).
pub fn ivk_version_of(binding: &Record) -> u32 {
    binding
        .metadata
        .get("ivk_version")
        .and_then(serde_json::Value::as_u64)
        .and_then(|v| u32::try_from(v).ok())
        .unwrap_or(1)
}

/// How many active bindings are still wrapped under IVK `ivk_version`, by the index; entries the bindings
/// contradict (stale after a crash or a lost race) are dropped on the way. Costs one read per entry of that version.
pub async fn users(store: &dyn KeyStore, ivk_version: u32) -> Result<usize, CoreError> {
    let mut users = 0;
    for entry in store.list(CLUSTER_TENANT, &kind(ivk_version)).await? {
        let Some((tenant, system)) = parse_entry_id(&entry.id) else {
            return Err(CoreError::Corrupt(format!(
                "the IVK binding index holds a malformed entry {:?}",
                entry.id
            )));
        };
        let binding = store
            .get(
                tenant,
                crate::hierarchy::kind::L2_ACTIVE,
                system,
                entry.version,
            )
            .await?;
        if binding.is_some_and(|b| ivk_version_of(&b) == ivk_version) {
            users += 1;
        } else {
            store
                .delete(CLUSTER_TENANT, &entry.kind, &entry.id, entry.version)
                .await?;
        }
    }
    Ok(users)
}

/// Makes sure the index covers every binding: on a store that predates it, one full pass adds an entry for every
/// active binding, then a marker records that this never has to happen again. Returns how many entries it added.
pub async fn ensure_built(store: &dyn KeyStore) -> Result<usize, CoreError> {
    if store
        .get(CLUSTER_TENANT, KIND_BUILT, KIND_BUILT, 0)
        .await?
        .is_some()
    {
        return Ok(0);
    }
    let mut added = 0;
    for tenant in store.list_tenants().await? {
        if tenant == CLUSTER_TENANT {
            continue;
        }
        for binding in store
            .list(&tenant, crate::hierarchy::kind::L2_ACTIVE)
            .await?
        {
            add(
                store,
                ivk_version_of(&binding),
                &tenant,
                &binding.id,
                binding.version,
            )
            .await?;
            added += 1;
        }
    }
    store
        .put_if_absent(&Record {
            tenant: CLUSTER_TENANT.into(),
            kind: KIND_BUILT.into(),
            id: KIND_BUILT.into(),
            version: 0,
            metadata: serde_json::json!({ "built_at": crate::now(), "entries": added }),
            blob: None,
            revision: 0,
        })
        .await?;
    if added > 0 {
        tracing::info!(
            entries = added,
            "IVK binding index built for the bindings stored before it existed"
        );
    }
    Ok(added)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_ids_are_unambiguous_and_parse_back() {
        assert_ne!(entry_id("ab", "c"), entry_id("a", "bc"));
        assert_eq!(parse_entry_id(&entry_id("ab", "c/x")), Some(("ab", "c/x")));
        assert_eq!(
            parse_entry_id(&entry_id("tenant:1", "")),
            Some(("tenant:1", ""))
        );
        for bad in ["", "x", "9:ab", "a:b", "1:"] {
            assert_eq!(parse_entry_id(bad), None, "{bad:?}");
        }
    }
}
