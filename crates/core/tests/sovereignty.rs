//! The sovereignty rule of DESIGN §2.2 with the dev `local` L1 provider: within the sovereign TTL the IVK fast
//! path serves; past it L1 is asked again, and a disabled L1 revokes the system until it is re-enabled.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use openkcm_core::hierarchy::kind;
use openkcm_core::{Core, CoreConfig, CoreError};
use openkcm_crypto::SecretKey;
use openkcm_providers::local::LocalProvider;
use openkcm_store::{KeyStore, MemoryStore};
use std::sync::Arc;
use std::time::Duration;

async fn core(dir: &std::path::Path, ttl: Duration) -> (Arc<Core>, Arc<dyn KeyStore>) {
    let store: Arc<dyn KeyStore> = Arc::new(MemoryStore::new());
    let mk = SecretKey::generate().unwrap();
    let l1 = Arc::new(LocalProvider::new(dir.to_path_buf()));
    let config = CoreConfig {
        sovereign_ttl: ttl,
        l1_outage_grace: Duration::ZERO,
        allow_new_ivk: true,
        auto_provision_services: false,
        l3_lease_ttl: None,
        ..CoreConfig::default()
    };
    let core = Arc::new(Core::open(store.clone(), &mk, l1, config).await.unwrap());
    core.provision("acme", "acme-system", "billing")
        .await
        .unwrap();
    let view = core.store();
    (core, view)
}

fn disable(dir: &std::path::Path) {
    std::fs::rename(
        dir.join("acme.acme-system.key"),
        dir.join("acme.acme-system.key.disabled"),
    )
    .unwrap();
}

fn enable(dir: &std::path::Path) {
    std::fs::rename(
        dir.join("acme.acme-system.key.disabled"),
        dir.join("acme.acme-system.key"),
    )
    .unwrap();
}

#[tokio::test]
async fn a_disabled_l1_revokes_the_system_once_the_sovereign_ttl_has_passed() {
    let dir = tempfile::tempdir().unwrap();
    let (core, store) = core(dir.path(), Duration::ZERO).await;
    let l3 = core.current_l3("acme", "billing").await.unwrap();
    let l3_bytes = *l3.key.expose();
    drop(l3);

    disable(dir.path());
    core.evict_all();
    let err = core.current_l3("acme", "billing").await.err().unwrap();
    assert!(
        matches!(err, CoreError::L1Revoked(ref s) if s == "acme-system"),
        "{err}"
    );
    // The active binding is destroyed: nothing but L1 can bring the keys back.
    assert!(store
        .get("acme", kind::L2_ACTIVE, "acme-system", 1)
        .await
        .unwrap()
        .is_none());

    enable(dir.path());
    let l3 = core.current_l3("acme", "billing").await.unwrap();
    assert_eq!(
        *l3.key.expose(),
        l3_bytes,
        "re-enabling L1 restores the same keys"
    );
    assert!(store
        .get("acme", kind::L2_ACTIVE, "acme-system", 1)
        .await
        .unwrap()
        .is_some());
}

#[tokio::test]
async fn within_the_sovereign_ttl_the_ivk_fast_path_does_not_call_l1() {
    let dir = tempfile::tempdir().unwrap();
    let (core, _store) = core(dir.path(), Duration::from_secs(3600)).await;
    disable(dir.path());
    core.evict_all();
    // L1 is disabled, but the binding was proven less than an hour ago: still served (fast path).
    assert!(core.current_l3("acme", "billing").await.is_ok());
}

#[tokio::test]
async fn another_tenant_cannot_name_an_l3() {
    let dir = tempfile::tempdir().unwrap();
    let (core, _store) = core(dir.path(), Duration::from_secs(3600)).await;
    let uid = core
        .current_l3("acme", "billing")
        .await
        .unwrap()
        .uid
        .clone();
    assert!(matches!(
        core.l3("globex", &uid).await,
        Err(CoreError::NotFound(_))
    ));
}

/// The real local provider, counting decrypt calls.
struct Counting {
    inner: LocalProvider,
    decrypts: std::sync::atomic::AtomicUsize,
}

#[async_trait::async_trait]
impl openkcm_providers::KeyProvider for Counting {
    fn name(&self) -> &str {
        self.inner.name()
    }
    async fn describe(
        &self,
        key: &openkcm_providers::KeyRef,
    ) -> Result<openkcm_providers::KeyDescription, openkcm_providers::ProviderError> {
        self.inner.describe(key).await
    }
    async fn encrypt(
        &self,
        key: &openkcm_providers::KeyRef,
        plaintext: &[u8],
        context: &[(String, String)],
    ) -> Result<Vec<u8>, openkcm_providers::ProviderError> {
        self.inner.encrypt(key, plaintext, context).await
    }
    async fn decrypt(
        &self,
        key: &openkcm_providers::KeyRef,
        ciphertext: &[u8],
        context: &[(String, String)],
    ) -> Result<openkcm_crypto::SecretBytes, openkcm_providers::ProviderError> {
        self.decrypts
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.inner.decrypt(key, ciphertext, context).await
    }
    async fn create(
        &self,
        key_id: &str,
    ) -> Result<openkcm_providers::KeyRef, openkcm_providers::ProviderError> {
        self.inner.create(key_id).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_for_a_cold_system_hydrate_once() {
    let dir = tempfile::tempdir().unwrap();
    let l1 = Arc::new(Counting {
        inner: LocalProvider::new(dir.path().to_path_buf()),
        decrypts: Default::default(),
    });
    let store: Arc<dyn KeyStore> = Arc::new(MemoryStore::new());
    let mk = SecretKey::generate().unwrap();
    let config = CoreConfig {
        sovereign_ttl: Duration::ZERO,
        l1_outage_grace: Duration::ZERO,
        allow_new_ivk: true,
        auto_provision_services: false,
        l3_lease_ttl: None,
        ..CoreConfig::default()
    };
    let core = Arc::new(Core::open(store, &mk, l1.clone(), config).await.unwrap());
    core.provision("acme", "acme-system", "billing")
        .await
        .unwrap();
    core.evict_all();
    let before = l1.decrypts.load(std::sync::atomic::Ordering::SeqCst);
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let core = core.clone();
            tokio::spawn(async move {
                core.current_l3("acme", "billing")
                    .await
                    .map(|k| k.uid.clone())
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    assert_eq!(
        l1.decrypts.load(std::sync::atomic::Ordering::SeqCst) - before,
        1,
        "one L1 call for 16 requests"
    );
}

#[tokio::test]
async fn a_hot_system_is_proved_again_through_l1_when_its_sovereign_ttl_ends() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn KeyStore> = Arc::new(MemoryStore::new());
    let mk = SecretKey::generate().unwrap();
    let l1 = Arc::new(LocalProvider::new(dir.path().to_path_buf()));
    let config = CoreConfig {
        sovereign_ttl: Duration::from_secs(2),
        l1_outage_grace: Duration::ZERO,
        l3_recheck: Duration::from_millis(200),
        ..CoreConfig::default()
    };
    let core = Core::open(store, &mk, l1, config).await.unwrap();
    core.provision("acme", "acme-system", "billing")
        .await
        .unwrap();
    // Used all the time, never evicted: still served while the proof holds, even with L1 disabled meanwhile.
    assert!(core.current_l3("acme", "billing").await.is_ok());
    disable(dir.path());
    assert!(core.current_l3("acme", "billing").await.is_ok());
    // Once the TTL is over, the next use asks L1 (no eviction needed) and finds it disabled.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let err = loop {
        match core.current_l3("acme", "billing").await {
            Err(e) => break e,
            Ok(_) if std::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Ok(_) => panic!("still served 5 s after a 2 s sovereign TTL with L1 disabled"),
        }
    };
    assert!(matches!(err, CoreError::L1Revoked(_)), "{err}");
    enable(dir.path());
    assert!(core.current_l3("acme", "billing").await.is_ok());
}
