//! IVK versions (DESIGN §4): rotation is one write and leaves every key readable; a binding under an older version
//! is re-wrapped under the ACTIVE one when next used (and a lost compare-and-set race is harmless); a Core started
//! later reads every version; a stored IVK field changed behind the Core's back is reported, never used.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use openkcm_core::hierarchy::kind;
use openkcm_core::keyring::{IvkState, IVK_ID, KIND_IVK};
use openkcm_core::seal::file::CLUSTER_TENANT;
use openkcm_core::{Core, CoreConfig, CoreError};
use openkcm_crypto::SecretKey;
use openkcm_providers::local::LocalProvider;
use openkcm_store::{KeyStore, MemoryStore};
use std::sync::Arc;

async fn open(
    store: &Arc<dyn KeyStore>,
    mk: &SecretKey,
    dir: &std::path::Path,
    first: bool,
) -> Result<Core, CoreError> {
    let l1 = Arc::new(LocalProvider::new(dir.to_path_buf()));
    let config = CoreConfig {
        allow_new_ivk: first,
        ..CoreConfig::default()
    };
    Core::open(store.clone(), mk, l1, config).await
}

/// The Core's view of `raw` (names and metadata sealed in `raw`, clear here).
async fn view(raw: &Arc<dyn KeyStore>, mk: &SecretKey) -> Arc<dyn KeyStore> {
    Arc::new(
        openkcm_core::sealed_store::open(raw.clone(), mk)
            .await
            .unwrap(),
    )
}

/// One scrubber pass with no minimum age: (re-wrapped, remaining).
async fn scrub(core: &Core, limit: usize) -> (usize, usize) {
    let pass = core
        .scrub_bindings(limit, std::time::Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(pass.failed, 0, "{pass:?}");
    (pass.rewrapped, pass.remaining)
}

async fn binding_ivk_version(store: &Arc<dyn KeyStore>, system: &str) -> u64 {
    store
        .get("acme", kind::L2_ACTIVE, system, 1)
        .await
        .unwrap()
        .unwrap()
        .metadata["ivk_version"]
        .as_u64()
        .unwrap()
}

#[tokio::test]
async fn rotation_keeps_every_key_and_moves_bindings_lazily() {
    let dir = tempfile::tempdir().unwrap();
    let raw: Arc<dyn KeyStore> = Arc::new(MemoryStore::new());
    let mk = SecretKey::generate().unwrap();
    let store = view(&raw, &mk).await;
    let core = open(&raw, &mk, dir.path(), true).await.unwrap();
    core.provision("acme", "sys-a", "billing").await.unwrap();
    core.provision("acme", "sys-b", "payroll").await.unwrap();
    let a = *core
        .current_l3("acme", "billing")
        .await
        .unwrap()
        .key
        .expose();
    let b = *core
        .current_l3("acme", "payroll")
        .await
        .unwrap()
        .key
        .expose();
    assert_eq!(binding_ivk_version(&store, "sys-a").await, 1);

    // One write: a new record, nothing else changes.
    let before = store.list(CLUSTER_TENANT, KIND_IVK).await.unwrap();
    assert_eq!(core.rotate_ivk().await.unwrap(), 2);
    let after = store.list(CLUSTER_TENANT, KIND_IVK).await.unwrap();
    assert_eq!(after.len(), before.len() + 1);
    assert_eq!(
        after[0].revision, before[0].revision,
        "version 1 was rewritten"
    );
    let states: Vec<(u32, IvkState)> = core
        .ivk_versions()
        .iter()
        .map(|v| (v.version, v.state))
        .collect();
    assert_eq!(states, [(1, IvkState::Grace), (2, IvkState::Active)]);

    // Bindings move to version 2 when next used, not before; the keys are the same.
    assert_eq!(binding_ivk_version(&store, "sys-a").await, 1);
    core.evict_all();
    assert_eq!(
        *core
            .current_l3("acme", "billing")
            .await
            .unwrap()
            .key
            .expose(),
        a
    );
    assert_eq!(binding_ivk_version(&store, "sys-a").await, 2);
    assert_eq!(binding_ivk_version(&store, "sys-b").await, 1);
    // New systems are bound under version 2.
    core.provision("acme", "sys-c", "crm").await.unwrap();
    assert_eq!(binding_ivk_version(&store, "sys-c").await, 2);
    drop(core);

    // A Core started later knows every version and reads sys-b (still under version 1).
    let core = open(&raw, &mk, dir.path(), false).await.unwrap();
    assert_eq!(
        *core
            .current_l3("acme", "payroll")
            .await
            .unwrap()
            .key
            .expose(),
        b
    );
    assert_eq!(binding_ivk_version(&store, "sys-b").await, 2);
    assert_eq!(core.ivk_versions().len(), 2);
}

#[tokio::test]
async fn a_second_core_rotating_is_seen_and_a_lost_rewrap_race_is_harmless() {
    let dir = tempfile::tempdir().unwrap();
    let raw: Arc<dyn KeyStore> = Arc::new(MemoryStore::new());
    let mk = SecretKey::generate().unwrap();
    let store = view(&raw, &mk).await;
    let one = open(&raw, &mk, dir.path(), true).await.unwrap();
    one.provision("acme", "sys-a", "billing").await.unwrap();
    let key = *one
        .current_l3("acme", "billing")
        .await
        .unwrap()
        .key
        .expose();
    let two = open(&raw, &mk, dir.path(), false).await.unwrap();
    // Node two rotates; node one writes bindings under version 2 only after it rotates itself, but it can read
    // bindings node two re-wrapped under version 2 (faulted in from storage).
    assert_eq!(two.rotate_ivk().await.unwrap(), 2);
    two.evict_all();
    assert_eq!(
        *two.current_l3("acme", "billing")
            .await
            .unwrap()
            .key
            .expose(),
        key
    );
    assert_eq!(binding_ivk_version(&store, "sys-a").await, 2);
    one.evict_all();
    assert_eq!(
        *one.current_l3("acme", "billing")
            .await
            .unwrap()
            .key
            .expose(),
        key
    );
    // Node one rotating next makes version 3, not a second version 2.
    assert_eq!(one.rotate_ivk().await.unwrap(), 3);
    // Both nodes re-wrapping the same binding at once: one compare-and-set wins, both serve the key.
    one.evict_all();
    two.evict_all();
    let (x, y) = tokio::join!(
        one.current_l3("acme", "billing"),
        two.current_l3("acme", "billing")
    );
    assert_eq!(*x.unwrap().key.expose(), key);
    assert_eq!(*y.unwrap().key.expose(), key);
}

#[tokio::test]
async fn a_tampered_ivk_record_is_reported_and_not_used() {
    let dir = tempfile::tempdir().unwrap();
    let raw: Arc<dyn KeyStore> = Arc::new(MemoryStore::new());
    let mk = SecretKey::generate().unwrap();
    let store = view(&raw, &mk).await;
    let core = open(&raw, &mk, dir.path(), true).await.unwrap();
    core.rotate_ivk().await.unwrap();
    drop(core);
    type Edit = fn(&mut serde_json::Value);
    let edits: [(&str, Edit); 4] = [
        ("created_at", |m| m["created_at"] = serde_json::json!(1)),
        ("revoked", |m| m["revoked"] = serde_json::json!(true)),
        ("hard_expiry", |m| {
            m["hard_expiry"] = serde_json::json!(i64::MAX)
        }),
        ("hard_expiry removed", |m| {
            m.as_object_mut().unwrap().remove("hard_expiry");
        }),
    ];
    for (field, edit) in edits {
        let mut rec = store
            .get(CLUSTER_TENANT, KIND_IVK, IVK_ID, 2)
            .await
            .unwrap()
            .unwrap();
        let original = rec.clone();
        assert!(rec.metadata["hard_expiry"].is_i64(), "{:?}", rec.metadata);
        edit(&mut rec.metadata);
        assert!(store
            .compare_and_set(&rec, original.revision)
            .await
            .unwrap());
        let e = open(&raw, &mk, dir.path(), false).await.err().unwrap();
        assert!(e.to_string().contains("integrity check"), "{field}: {e}");
        let mut back = original.clone();
        back.revision = 0;
        assert!(store
            .compare_and_set(&back, original.revision + 1)
            .await
            .unwrap());
    }
    // Restored: it opens again.
    assert!(open(&raw, &mk, dir.path(), false).await.is_ok());
}

#[tokio::test]
async fn a_version_one_record_of_an_earlier_release_gets_its_mac() {
    use openkcm_core::seal::file::MASTER_KEY_ID;
    use openkcm_crypto::{wrap, EnvelopeHeader, Layer};
    let dir = tempfile::tempdir().unwrap();
    let raw: Arc<dyn KeyStore> = Arc::new(MemoryStore::new());
    let mk = SecretKey::generate().unwrap();
    // The record as earlier releases wrote it: in clear, with state and creation time, no MAC.
    let ivk = SecretKey::generate().unwrap();
    let header = EnvelopeHeader {
        layer: Layer::Ivk,
        tenant: CLUSTER_TENANT.into(),
        key_id: format!("{IVK_ID}/v1"),
        parent_id: MASTER_KEY_ID.into(),
        parent_version: 1,
    };
    let old = openkcm_store::Record {
        tenant: CLUSTER_TENANT.into(),
        kind: KIND_IVK.into(),
        id: IVK_ID.into(),
        version: 1,
        metadata: serde_json::json!({ "state": "ACTIVE", "created_at": 1_700_000_000 }),
        blob: Some(wrap(&mk, &header, &ivk).unwrap()),
        revision: 0,
    };
    assert!(raw.put_if_absent(&old).await.unwrap());
    let core = open(&raw, &mk, dir.path(), false).await.unwrap();
    core.provision("acme", "sys-a", "billing").await.unwrap();
    // Opening sealed it (zero-knowledge metadata): no clear copy is left.
    assert!(raw
        .get(CLUSTER_TENANT, KIND_IVK, IVK_ID, 1)
        .await
        .unwrap()
        .is_none());
    let store = view(&raw, &mk).await;
    let rec = store
        .get(CLUSTER_TENANT, KIND_IVK, IVK_ID, 1)
        .await
        .unwrap()
        .unwrap();
    assert!(rec.metadata["mac"].is_string(), "{}", rec.metadata);
    assert_eq!(rec.metadata["created_at"], 1_700_000_000);
    drop(core);
    // With the MAC in place, it opens again, and an edit is caught.
    assert!(open(&raw, &mk, dir.path(), false).await.is_ok());
    // A record without a MAC wrapped by another MasterKey is not vouched for.
    let other = SecretKey::generate().unwrap();
    let store2: Arc<dyn KeyStore> = Arc::new(MemoryStore::new());
    let mut foreign = old.clone();
    foreign.blob = Some(wrap(&other, &header, &ivk).unwrap());
    assert!(store2.put_if_absent(&foreign).await.unwrap());
    assert!(open(&store2, &mk, dir.path(), false).await.is_err());
}

#[tokio::test]
async fn the_scrubber_moves_bindings_at_its_pace_and_emergency_rotation_revokes_the_old_versions() {
    let dir = tempfile::tempdir().unwrap();
    let raw: Arc<dyn KeyStore> = Arc::new(MemoryStore::new());
    let mk = SecretKey::generate().unwrap();
    let store = view(&raw, &mk).await;
    let core = open(&raw, &mk, dir.path(), true).await.unwrap();
    let mut keys = Vec::new();
    for s in ["sys-a", "sys-b", "sys-c"] {
        core.provision("acme", s, &format!("{s}-svc"))
            .await
            .unwrap();
        keys.push(
            *core
                .current_l3("acme", &format!("{s}-svc"))
                .await
                .unwrap()
                .key
                .expose(),
        );
    }
    // Scheduled trigger: not due with a long period, due with none.
    assert_eq!(
        core.rotate_ivk_if_due(std::time::Duration::from_secs(3600))
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        core.rotate_ivk_if_due(std::time::Duration::ZERO)
            .await
            .unwrap(),
        Some(2)
    );
    // Bindings younger than the scrub age wait (they move when used); the pass says when the first is due.
    let young = core
        .scrub_bindings(10, std::time::Duration::from_secs(3600))
        .await
        .unwrap();
    assert_eq!((young.rewrapped, young.remaining, young.waiting), (0, 0, 3));
    let due = young.next_due.unwrap() - openkcm_core::hierarchy::unix_now();
    assert!((3590..=3600).contains(&due), "{young:?}");
    assert!(!young.finished());
    // Two per pass: two, then the last one.
    assert_eq!(scrub(&core, 2).await, (2, 1));
    assert_eq!(scrub(&core, 2).await, (1, 0));
    assert_eq!(scrub(&core, 2).await, (0, 0));
    for s in ["sys-a", "sys-b", "sys-c"] {
        assert_eq!(binding_ivk_version(&store, s).await, 2);
    }

    // Emergency: version 3, every binding under it at once, versions 1 and 2 revoked; keys unchanged.
    assert_eq!(core.rotate_ivk_emergency().await.unwrap(), 3);
    for s in ["sys-a", "sys-b", "sys-c"] {
        assert_eq!(binding_ivk_version(&store, s).await, 3);
    }
    let states: Vec<IvkState> = core.ivk_versions().iter().map(|v| v.state).collect();
    assert_eq!(
        states,
        [IvkState::Revoked, IvkState::Revoked, IvkState::Active]
    );
    core.evict_all();
    for (i, s) in ["sys-a", "sys-b", "sys-c"].iter().enumerate() {
        let key = core.current_l3("acme", &format!("{s}-svc")).await.unwrap();
        assert_eq!(*key.key.expose(), keys[i]);
    }
    drop(core);
    // The revocation is stored (with its MAC): a restarted Core knows it.
    let core = open(&raw, &mk, dir.path(), false).await.unwrap();
    let states: Vec<IvkState> = core.ivk_versions().iter().map(|v| v.state).collect();
    assert_eq!(
        states,
        [IvkState::Revoked, IvkState::Revoked, IvkState::Active]
    );
}

#[tokio::test]
async fn the_key_cache_is_bounded_and_prewarm_fills_it() {
    let dir = tempfile::tempdir().unwrap();
    let raw: Arc<dyn KeyStore> = Arc::new(MemoryStore::new());
    let mk = SecretKey::generate().unwrap();
    let l1 = Arc::new(LocalProvider::new(dir.path().to_path_buf()));
    let config = CoreConfig {
        key_cache_capacity: 2,
        ..CoreConfig::default()
    };
    let core = Core::open(raw.clone(), &mk, l1, config).await.unwrap();
    for s in ["sys-a", "sys-b", "sys-c"] {
        core.provision("acme", s, &format!("{s}-svc"))
            .await
            .unwrap();
        core.current_l3("acme", &format!("{s}-svc")).await.unwrap();
    }
    let (l2, l3) = core.cached_keys();
    assert!(l2 <= 2 && l3 <= 2, "{l2} L2s, {l3} L3s cached");
    core.evict_all();
    assert_eq!(core.cached_keys(), (0, 0));
    assert_eq!(core.prewarm("acme").await.unwrap(), (3, 3));
    assert_eq!(core.cached_keys(), (2, 2));
    assert!(matches!(
        core.prewarm("nobody").await,
        Err(CoreError::NotFound(_))
    ));
}

#[tokio::test]
async fn l3_rotation_makes_a_new_active_version_and_the_old_one_only_unwraps() {
    let dir = tempfile::tempdir().unwrap();
    let raw: Arc<dyn KeyStore> = Arc::new(MemoryStore::new());
    let mk = SecretKey::generate().unwrap();
    let core = open(&raw, &mk, dir.path(), true).await.unwrap();
    core.provision("acme", "sys-a", "billing").await.unwrap();
    let old = core.current_l3("acme", "billing").await.unwrap();
    let (old_uid, old_key) = (old.uid.clone(), *old.key.expose());
    drop(old);
    let (uid, version) = core.rotate_l3("acme", "billing").await.unwrap();
    assert_eq!(version, 2);
    assert_ne!(uid, old_uid);
    let current = core.current_l3("acme", "billing").await.unwrap();
    assert_eq!((current.uid.as_str(), current.version), (uid.as_str(), 2));
    assert_ne!(*current.key.expose(), old_key);
    // The old version still opens (for the keys wrapped under it), now Deactivated.
    let previous = core.l3("acme", &old_uid).await.unwrap();
    assert_eq!(*previous.key.expose(), old_key);
    assert_eq!(previous.state, openkcm_kmip::enums::state::DEACTIVATED);
    let newest = &core.l3_versions("acme", "billing").await.unwrap()[0];
    assert_eq!((&newest.uid, newest.version), (&uid, 2));
    // Scheduled: not due within a day, due at once with no period.
    assert_eq!(
        core.rotate_due_l3(std::time::Duration::from_secs(86_400))
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        core.rotate_due_l3(std::time::Duration::ZERO).await.unwrap(),
        1
    );
    assert_eq!(core.current_l3("acme", "billing").await.unwrap().version, 3);
    assert!(matches!(
        core.rotate_l3("acme", "nope").await,
        Err(CoreError::NotFound(_))
    ));
}

#[tokio::test]
async fn l2_rotation_rewrap_and_destroy_of_the_old_version() {
    let dir = tempfile::tempdir().unwrap();
    let raw: Arc<dyn KeyStore> = Arc::new(MemoryStore::new());
    let mk = SecretKey::generate().unwrap();
    let store = view(&raw, &mk).await;
    let core = open(&raw, &mk, dir.path(), true).await.unwrap();
    core.provision("acme", "sys", "billing").await.unwrap();
    let billing = *core
        .current_l3("acme", "billing")
        .await
        .unwrap()
        .key
        .expose();
    assert_eq!(core.rotate_l2("acme", "sys").await.unwrap(), 2);
    // New service keys are wrapped under L2 version 2; the old one stays under version 1 and opens.
    core.provision("acme", "sys", "payroll").await.unwrap();
    let l2_of = |id: String| {
        let store = store.clone();
        async move {
            store
                .get("acme", kind::L3, &id, 1)
                .await
                .unwrap()
                .unwrap()
                .metadata["l2_version"]
                .as_u64()
                .unwrap()
        }
    };
    let payroll = core.current_l3("acme", "payroll").await.unwrap();
    assert_eq!(l2_of(payroll.uid.clone()).await, 2);
    let billing_uid = core
        .current_l3("acme", "billing")
        .await
        .unwrap()
        .uid
        .clone();
    assert_eq!(l2_of(billing_uid.clone()).await, 1);
    // Version 1 cannot be destroyed while a service key is under it.
    let e = core.destroy_l2_version("acme", "sys", 1).await.unwrap_err();
    assert!(e.to_string().contains("still wrapped"), "{e}");
    assert!(core.destroy_l2_version("acme", "sys", 2).await.is_err());
    // Deep re-key: everything moves to version 2, same L3 bytes; then version 1 can go.
    assert_eq!(core.rewrap_system("acme", "sys").await.unwrap(), 1);
    assert_eq!(core.rewrap_system("acme", "sys").await.unwrap(), 0);
    assert_eq!(l2_of(billing_uid).await, 2);
    core.destroy_l2_version("acme", "sys", 1).await.unwrap();
    assert!(store
        .get("acme", kind::L2_SOVEREIGN, "sys", 1)
        .await
        .unwrap()
        .is_none());
    core.evict_all();
    assert_eq!(
        *core
            .current_l3("acme", "billing")
            .await
            .unwrap()
            .key
            .expose(),
        billing
    );
    drop(core);
    // A restarted Core reads everything under version 2.
    let core = open(&raw, &mk, dir.path(), false).await.unwrap();
    assert_eq!(
        *core
            .current_l3("acme", "billing")
            .await
            .unwrap()
            .key
            .expose(),
        billing
    );
    assert!(core.current_l3("acme", "payroll").await.is_ok());
    // Scheduled: not due within a day, due at once with no period.
    assert_eq!(
        core.rotate_due_l2(std::time::Duration::from_secs(86_400))
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        core.rotate_due_l2(std::time::Duration::ZERO).await.unwrap(),
        1
    );
    assert_eq!(core.rotate_l2("acme", "sys").await.unwrap(), 4);
}

#[tokio::test]
async fn the_volume_trigger_rotates_and_deprecated_keys_leave_memory_until_used() {
    let dir = tempfile::tempdir().unwrap();
    let raw: Arc<dyn KeyStore> = Arc::new(MemoryStore::new());
    let mk = SecretKey::generate().unwrap();
    let store = view(&raw, &mk).await;
    let l1 = Arc::new(LocalProvider::new(dir.path().to_path_buf()));
    let config = CoreConfig {
        ivk_volume: openkcm_core::keyring::VolumeTrigger { limit: 4, batch: 2 },
        ivk_grace_period: std::time::Duration::ZERO,
        ..CoreConfig::default()
    };
    let core = Core::open(raw.clone(), &mk, l1, config).await.unwrap();
    // Each new system wraps one binding under the ACTIVE IVK; the fourth wrap reaches the limit.
    for s in ["s1", "s2", "s3", "s4"] {
        core.provision("acme", s, &format!("{s}-svc"))
            .await
            .unwrap();
    }
    let versions = core.ivk_versions();
    assert_eq!(versions.len(), 2, "{versions:?}");
    let usage = store
        .get(
            CLUSTER_TENANT,
            openkcm_core::keyring::KIND_IVK_USAGE,
            IVK_ID,
            1,
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(usage.metadata["wraps"], 4);
    // With no grace period, version 1 is DEPRECATED at once: its key leaves memory and comes back on use.
    assert_eq!(core.forget_deprecated_ivk(), 1);
    assert_eq!(core.ivk_keys_in_memory(), 1);
    core.evict_all();
    assert!(core.current_l3("acme", "s1-svc").await.is_ok());
    assert_eq!(core.ivk_keys_in_memory(), 2);
}

/// A store that counts the calls that would scan every tenant.
struct ScanCounter {
    inner: MemoryStore,
    scans: std::sync::atomic::AtomicUsize,
}

#[async_trait::async_trait]
impl KeyStore for ScanCounter {
    async fn get(
        &self,
        tenant: &str,
        kind: &str,
        id: &str,
        version: u32,
    ) -> Result<Option<openkcm_store::Record>, openkcm_store::StoreError> {
        self.inner.get(tenant, kind, id, version).await
    }
    async fn put_if_absent(
        &self,
        record: &openkcm_store::Record,
    ) -> Result<bool, openkcm_store::StoreError> {
        self.inner.put_if_absent(record).await
    }
    async fn compare_and_set(
        &self,
        record: &openkcm_store::Record,
        expected: u64,
    ) -> Result<bool, openkcm_store::StoreError> {
        self.inner.compare_and_set(record, expected).await
    }
    async fn list(
        &self,
        tenant: &str,
        kind: &str,
    ) -> Result<Vec<openkcm_store::Record>, openkcm_store::StoreError> {
        // Every tenant's bindings, or (under zero-knowledge metadata) the tenant directory.
        if kind == openkcm_core::hierarchy::kind::L2_ACTIVE || kind == "tenant" {
            self.scans.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
        self.inner.list(tenant, kind).await
    }
    async fn list_tenants(&self) -> Result<Vec<String>, openkcm_store::StoreError> {
        self.scans.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.inner.list_tenants().await
    }
    async fn delete(
        &self,
        tenant: &str,
        kind: &str,
        id: &str,
        version: u32,
    ) -> Result<bool, openkcm_store::StoreError> {
        self.inner.delete(tenant, kind, id, version).await
    }
}

#[tokio::test]
async fn a_deprecated_ivk_version_is_deleted_only_once_no_binding_uses_it_by_an_index_not_a_scan() {
    let dir = tempfile::tempdir().unwrap();
    let counter = Arc::new(ScanCounter {
        inner: MemoryStore::new(),
        scans: std::sync::atomic::AtomicUsize::new(0),
    });
    let raw: Arc<dyn KeyStore> = counter.clone();
    let mk = SecretKey::generate().unwrap();
    let store = view(&raw, &mk).await;
    let config = || CoreConfig {
        ivk_grace_period: std::time::Duration::ZERO,
        ..CoreConfig::default()
    };
    let l1 = || Arc::new(LocalProvider::new(dir.path().to_path_buf()));
    let core = Core::open(raw.clone(), &mk, l1(), config()).await.unwrap();
    let tenants = ["t1", "t2", "t3"];
    let mut keys = Vec::new();
    for t in tenants {
        core.provision(t, "sys", "svc").await.unwrap();
        keys.push(*core.current_l3(t, "svc").await.unwrap().key.expose());
    }
    assert_eq!(core.rotate_ivk().await.unwrap(), 2);
    let refused = |e: CoreError| match e {
        CoreError::Conflict(m) => m,
        other => panic!("expected a refusal, got {other}"),
    };
    // The ACTIVE version is never deleted; the DEPRECATED one not while bindings use it.
    let m = refused(core.delete_ivk_version(2).await.unwrap_err());
    assert!(m.contains("ACTIVE"), "{m}");
    let scans = counter.scans.load(std::sync::atomic::Ordering::SeqCst);
    let m = refused(core.delete_ivk_version(1).await.unwrap_err());
    assert!(m.contains("3 L2 binding(s)"), "{m}");
    // One binding moves when it is used: two are left.
    core.evict_all();
    core.current_l3("t1", "svc").await.unwrap();
    let m = refused(core.delete_ivk_version(1).await.unwrap_err());
    assert!(m.contains("2 L2 binding(s)"), "{m}");
    assert_eq!(
        counter.scans.load(std::sync::atomic::Ordering::SeqCst),
        scans,
        "deciding whether a version is in use scanned the tenants' bindings"
    );
    // A crash after the index learned of a binding but before the binding was written leaves a stale entry: it is
    // checked and dropped, never trusted.
    openkcm_core::binding_index::add(&*store, 1, "t9", "ghost", 1)
        .await
        .unwrap();
    let m = refused(core.delete_ivk_version(1).await.unwrap_err());
    assert!(m.contains("2 L2 binding(s)"), "{m}");
    // Scrubbed: deleted, from storage and memory; every key still opens.
    assert_eq!(scrub(&core, 100).await, (2, 0));
    core.delete_ivk_version(1).await.unwrap();
    assert!(store
        .get(CLUSTER_TENANT, KIND_IVK, IVK_ID, 1)
        .await
        .unwrap()
        .is_none());
    let versions: Vec<u32> = core.ivk_versions().iter().map(|v| v.version).collect();
    assert_eq!(versions, [2]);
    assert!(matches!(
        core.delete_ivk_version(1).await,
        Err(CoreError::NotFound(_))
    ));
    drop(core);
    let core = Core::open(
        raw.clone(),
        &mk,
        l1(),
        CoreConfig {
            allow_new_ivk: false,
            ..config()
        },
    )
    .await
    .unwrap();
    for (t, key) in tenants.iter().zip(&keys) {
        assert_eq!(core.current_l3(t, "svc").await.unwrap().key.expose(), key);
    }
    // A store written before the index existed gets it built once at start: version 2 is then known to be in use.
    assert_eq!(core.rotate_ivk().await.unwrap(), 3);
    drop(core);
    for rec in store.list(CLUSTER_TENANT, "ivk-ref-2").await.unwrap() {
        store
            .delete(CLUSTER_TENANT, &rec.kind, &rec.id, rec.version)
            .await
            .unwrap();
    }
    store
        .delete(CLUSTER_TENANT, "ivk-ref-index", "ivk-ref-index", 0)
        .await
        .unwrap();
    let core = Core::open(
        raw.clone(),
        &mk,
        l1(),
        CoreConfig {
            allow_new_ivk: false,
            ..config()
        },
    )
    .await
    .unwrap();
    let m = refused(core.delete_ivk_version(2).await.unwrap_err());
    assert!(m.contains("3 L2 binding(s)"), "{m}");
}

#[tokio::test]
async fn a_binding_the_scrubber_cannot_rewrap_is_reported_and_emergency_rotation_keeps_old_versions(
) {
    let dir = tempfile::tempdir().unwrap();
    let raw: Arc<dyn KeyStore> = Arc::new(MemoryStore::new());
    let mk = SecretKey::generate().unwrap();
    let store = view(&raw, &mk).await;
    let core = open(&raw, &mk, dir.path(), true).await.unwrap();
    for t in ["t1", "t2", "t3"] {
        core.provision(t, "sys", "svc").await.unwrap();
    }
    assert_eq!(core.rotate_ivk().await.unwrap(), 2);
    // t2's binding names an IVK version that does not exist (a damaged record).
    let mut bad = store
        .get("t2", kind::L2_ACTIVE, "sys", 1)
        .await
        .unwrap()
        .unwrap();
    bad.metadata["ivk_version"] = serde_json::json!(7);
    assert!(store.compare_and_set(&bad, bad.revision).await.unwrap());
    let pass = core
        .scrub_bindings(100, std::time::Duration::ZERO)
        .await
        .unwrap();
    assert_eq!((pass.rewrapped, pass.failed), (2, 1), "{pass:?}");
    // Revoking version 1 now could lose t2's key: the emergency rotation refuses to.
    let err = core.rotate_ivk_emergency().await.unwrap_err().to_string();
    assert!(
        err.contains("1 binding(s) could not be re-wrapped"),
        "{err}"
    );
    assert!(core
        .ivk_versions()
        .iter()
        .all(|v| v.state != IvkState::Revoked));
}

#[tokio::test]
async fn an_active_ivk_past_its_hard_expiry_is_replaced_before_it_wraps_again() {
    let dir = tempfile::tempdir().unwrap();
    let raw: Arc<dyn KeyStore> = Arc::new(MemoryStore::new());
    let mk = SecretKey::generate().unwrap();
    let store = view(&raw, &mk).await;
    let l1 = Arc::new(LocalProvider::new(dir.path().to_path_buf()));
    let config = CoreConfig {
        ivk_hard_lifetime: std::time::Duration::ZERO,
        ..CoreConfig::default()
    };
    let core = Core::open(raw.clone(), &mk, l1, config).await.unwrap();
    let v1 = &core.ivk_versions()[0];
    assert_eq!(v1.hard_expiry, Some(v1.created_at));
    // The scheduled check rotates an expired version whatever the period says.
    assert_eq!(
        core.rotate_ivk_if_due(std::time::Duration::from_secs(3600))
            .await
            .unwrap(),
        Some(2)
    );
    // A wrap under an expired ACTIVE version rotates first: the new binding is under version 3.
    core.provision("acme", "sys-a", "svc").await.unwrap();
    assert_eq!(binding_ivk_version(&store, "sys-a").await, 3);
}

#[tokio::test]
async fn a_compromised_l3_version_is_refused_and_the_service_moves_on() {
    use openkcm_kmip::enums::state;
    let dir = tempfile::tempdir().unwrap();
    let raw: Arc<dyn KeyStore> = Arc::new(MemoryStore::new());
    let mk = SecretKey::generate().unwrap();
    let store = view(&raw, &mk).await;
    let core = open(&raw, &mk, dir.path(), true).await.unwrap();
    core.provision("acme", "sys", "svc").await.unwrap();
    let v1 = core.current_l3("acme", "svc").await.unwrap().uid.clone();
    // Marking the current version rotates first: the service has a usable key at once.
    assert_eq!(core.compromise_l3("acme", "svc", 1).await.unwrap(), v1);
    let current = core.current_l3("acme", "svc").await.unwrap();
    assert_eq!((current.version, current.state), (2, state::ACTIVE));
    core.evict_all();
    let e = core.l3("acme", &v1).await.err().unwrap();
    assert!(matches!(e, CoreError::KeyVersionCompromised(_)), "{e}");
    assert!(e.to_string().contains("key version compromised"), "{e}");
    assert!(matches!(
        core.compromise_l3("acme", "svc", 1).await,
        Err(CoreError::Conflict(_))
    ));
    assert!(matches!(
        core.compromise_l3("acme", "svc", 9).await,
        Err(CoreError::NotFound(_))
    ));
    // Destroyed later, it stays marked as compromised.
    core.destroy_l3_version("acme", "svc", 1).await.unwrap();
    let rec = store.get("acme", kind::L3, &v1, 1).await.unwrap().unwrap();
    assert_eq!(
        rec.metadata["state"],
        serde_json::json!(state::DESTROYED_COMPROMISED)
    );
    assert!(rec.blob.is_none());
    assert!(matches!(
        core.l3("acme", &v1).await,
        Err(CoreError::KeyVersionDestroyed(_))
    ));
}

#[tokio::test]
async fn a_compromised_l2_version_is_refused_after_its_service_keys_moved() {
    let dir = tempfile::tempdir().unwrap();
    let raw: Arc<dyn KeyStore> = Arc::new(MemoryStore::new());
    let mk = SecretKey::generate().unwrap();
    let store = view(&raw, &mk).await;
    let core = open(&raw, &mk, dir.path(), true).await.unwrap();
    core.provision("acme", "sys", "svc").await.unwrap();
    let first = core.current_l3("acme", "svc").await.unwrap();
    let (v1, k1) = (first.uid.clone(), *first.key.expose());
    let (v2, _) = core.rotate_l3("acme", "svc").await.unwrap();
    let k2 = *core.l3("acme", &v2).await.unwrap().key.expose();
    // L2 version 1 is current: it is rotated, both service key versions move to version 2, then it is refused.
    assert_eq!(core.compromise_l2("acme", "sys", 1).await.unwrap(), 2);
    assert!(store
        .get("acme", kind::L2_ACTIVE, "sys", 1)
        .await
        .unwrap()
        .is_none());
    core.evict_all();
    assert_eq!(core.l3("acme", &v1).await.unwrap().key.expose(), &k1);
    assert_eq!(core.l3("acme", &v2).await.unwrap().key.expose(), &k2);
    let e = core.l2_at("acme", "sys", 1).await.err().unwrap();
    assert!(matches!(e, CoreError::KeyVersionCompromised(_)), "{e}");
    assert!(matches!(
        core.compromise_l2("acme", "sys", 1).await,
        Err(CoreError::Conflict(_))
    ));
    // New service key versions go under the new L2.
    let (v3, _) = core.rotate_l3("acme", "svc").await.unwrap();
    let rec = store.get("acme", kind::L3, &v3, 1).await.unwrap().unwrap();
    assert_eq!(rec.metadata["l2_version"], 2);
    // A destroyed service key version holds nothing to re-wrap: it neither stops a deep re-key nor keeps an old L2
    // version alive.
    core.destroy_l3_version("acme", "svc", 1).await.unwrap();
    assert_eq!(core.rotate_l2("acme", "sys").await.unwrap(), 3);
    assert_eq!(core.rewrap_system("acme", "sys").await.unwrap(), 2);
    let in_use = core.l2_versions_in_use("acme", "sys").await.unwrap();
    assert_eq!(in_use.into_iter().collect::<Vec<_>>(), [(3, 2)]);
    core.destroy_l2_version("acme", "sys", 2).await.unwrap();
}

#[tokio::test]
async fn a_scheduled_l3_version_is_pre_active_until_its_activation_date() {
    use openkcm_kmip::enums::state;
    let dir = tempfile::tempdir().unwrap();
    let raw: Arc<dyn KeyStore> = Arc::new(MemoryStore::new());
    let mk = SecretKey::generate().unwrap();
    let core = open(&raw, &mk, dir.path(), true).await.unwrap();
    core.provision("acme", "sys", "svc").await.unwrap();
    let v1 = core.current_l3("acme", "svc").await.unwrap().uid.clone();
    let at = openkcm_core::hierarchy::unix_now() + 1;
    let (v2, n) = core.rotate_l3_at("acme", "svc", Some(at)).await.unwrap();
    assert_eq!(n, 2);
    // Until then: version 1 stays current and ACTIVE, version 2 is PRE_ACTIVE and neither wraps nor is current.
    assert_eq!(core.current_l3_uid("acme", "svc").await.unwrap(), v1);
    let pending = core.l3_info("acme", &v2).await.unwrap();
    assert_eq!(
        (pending.state, pending.activation_date),
        (state::PRE_ACTIVE, Some(at))
    );
    // The current version says when it stops wrapping (KMIP Deactivation Date), in its metadata and its loaded key.
    assert_eq!(
        core.l3_info("acme", &v1).await.unwrap().deactivation_date,
        Some(at)
    );
    assert_eq!(
        core.current_l3("acme", "svc").await.unwrap().wraps_until,
        Some(at)
    );
    assert!(matches!(
        core.rotate_l3("acme", "svc").await,
        Err(CoreError::Conflict(_))
    ));
    assert!(matches!(
        core.destroy_l3_version("acme", "svc", 2).await,
        Err(CoreError::Conflict(_))
    ));
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    // Its first use after the date makes it current; version 1 only unwraps from then on.
    let current = core.current_l3("acme", "svc").await.unwrap();
    assert_eq!(
        (current.uid.as_str(), current.state),
        (v2.as_str(), state::ACTIVE)
    );
    assert_eq!(
        core.l3_info("acme", &v1).await.unwrap().state,
        state::DEACTIVATED
    );
    // A scheduled version compromised while it waits never becomes current.
    let (v3, _) = core
        .rotate_l3_at(
            "acme",
            "svc",
            Some(openkcm_core::hierarchy::unix_now() + 3600),
        )
        .await
        .unwrap();
    core.compromise_l3("acme", "svc", 3).await.unwrap();
    assert_eq!(core.current_l3_uid("acme", "svc").await.unwrap(), v2);
    assert_eq!(
        core.l3_info("acme", &v3).await.unwrap().state,
        state::COMPROMISED
    );
    // And the service can be rotated again.
    let (v4, _) = core.rotate_l3("acme", "svc").await.unwrap();
    assert_eq!(core.current_l3_uid("acme", "svc").await.unwrap(), v4);
}

#[tokio::test]
async fn the_scrubber_works_in_batches_within_its_limit_and_leaves_no_entry_behind() {
    let dir = tempfile::tempdir().unwrap();
    let raw: Arc<dyn KeyStore> = Arc::new(MemoryStore::new());
    let mk = SecretKey::generate().unwrap();
    let core = open(&raw, &mk, dir.path(), true).await.unwrap();
    // More bindings than one batch holds.
    let n = openkcm_core::hierarchy::SCRUB_BATCH + 44;
    for i in 0..n {
        core.provision(&format!("t{i:03}"), "sys", "svc")
            .await
            .unwrap();
    }
    let mut keys = Vec::with_capacity(n);
    for i in 0..n {
        let l3 = core.current_l3(&format!("t{i:03}"), "svc").await.unwrap();
        keys.push(l3.key.expose().to_vec());
    }
    assert_eq!(core.rotate_ivk().await.unwrap(), 2);
    // The limit holds across batches worked on at once.
    assert_eq!(scrub(&core, 100).await, (100, n - 100));
    assert_eq!(scrub(&core, usize::MAX).await, (n - 100, 0));
    assert_eq!(scrub(&core, usize::MAX).await, (0, 0));
    // Every binding is under version 2, and the index names none under version 1.
    let store = view(&raw, &mk).await;
    assert_eq!(
        openkcm_core::binding_index::users(&*store, 1)
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        openkcm_core::binding_index::users(&*store, 2)
            .await
            .unwrap(),
        n
    );
    // And every key is the same after a restart (nothing cached).
    drop(core);
    let core = open(&raw, &mk, dir.path(), false).await.unwrap();
    for (i, key) in keys.iter().enumerate() {
        let l3 = core.current_l3(&format!("t{i:03}"), "svc").await.unwrap();
        assert_eq!(l3.key.expose(), key.as_slice());
    }
}

#[tokio::test]
async fn a_binding_that_cannot_be_read_does_not_stop_the_scrubber() {
    let dir = tempfile::tempdir().unwrap();
    let raw: Arc<dyn KeyStore> = Arc::new(MemoryStore::new());
    let mk = SecretKey::generate().unwrap();
    let core = open(&raw, &mk, dir.path(), true).await.unwrap();
    for t in ["t1", "t2", "t3"] {
        core.provision(t, "sys", "svc").await.unwrap();
    }
    assert_eq!(core.rotate_ivk().await.unwrap(), 2);
    // t2's sealed row is damaged in the backend: it no longer opens.
    let sealed = openkcm_core::sealed_store::open(raw.clone(), &mk)
        .await
        .unwrap();
    let mut row = raw
        .list(&sealed.tenant_index("t2"), kind::L2_ACTIVE)
        .await
        .unwrap()
        .remove(0);
    let text = row.metadata["sealed"].as_str().unwrap().to_owned();
    row.metadata["sealed"] = serde_json::json!(format!("AAAA{text}"));
    assert!(raw.compare_and_set(&row, row.revision).await.unwrap());
    // The others move; the damaged one is counted (and logged), and the pass completes.
    let pass = core
        .scrub_bindings(100, std::time::Duration::ZERO)
        .await
        .unwrap();
    assert_eq!((pass.rewrapped, pass.failed), (2, 1), "{pass:?}");
    // An emergency rotation refuses to revoke version 1 over it, with how many.
    let err = core.rotate_ivk_emergency().await.unwrap_err().to_string();
    assert!(
        err.contains("1 binding(s) could not be re-wrapped"),
        "{err}"
    );
}

#[tokio::test]
async fn another_nodes_rotation_and_compromise_reach_this_nodes_cached_service_key() {
    use openkcm_kmip::enums::state;
    let dir = tempfile::tempdir().unwrap();
    let raw: Arc<dyn KeyStore> = Arc::new(MemoryStore::new());
    let mk = SecretKey::generate().unwrap();
    let node = |first: bool| {
        let l1 = Arc::new(LocalProvider::new(dir.path().to_path_buf()));
        let config = CoreConfig {
            allow_new_ivk: first,
            l3_recheck: std::time::Duration::from_secs(1),
            ..CoreConfig::default()
        };
        Core::open(raw.clone(), &mk, l1, config)
    };
    let a = node(true).await.unwrap();
    a.provision("acme", "sys", "svc").await.unwrap();
    let b = node(false).await.unwrap();
    let v1 = b.current_l3("acme", "svc").await.unwrap();
    assert_eq!(v1.state, state::ACTIVE);
    // Node A rotates: node B still holds version 1 as ACTIVE until its recheck time has passed, then sees it
    // DEACTIVATED (it no longer wraps there either).
    a.rotate_l3("acme", "svc").await.unwrap();
    assert_eq!(b.l3("acme", &v1.uid).await.unwrap().state, state::ACTIVE);
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let again = b.l3("acme", &v1.uid).await.unwrap();
    assert_eq!(again.state, state::DEACTIVATED);
    assert_eq!(again.key.expose(), v1.key.expose());
    // Node A marks it compromised: node B refuses it after the recheck time.
    a.compromise_l3("acme", "svc", 1).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert!(matches!(
        b.l3("acme", &v1.uid).await,
        Err(CoreError::KeyVersionCompromised(_))
    ));
}
