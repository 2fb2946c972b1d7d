//! Two Core processes on one PostgreSQL database (DESIGN §5.2), each with its own connection pool: for a while both
//! provision services, rotate the IVK, the system key (L2) and service keys (L3), re-wrap the system's service keys
//! under its current L2 (deep re-key), scrub and wrap data keys at the same time; afterwards
//! every data key wrapped by either opens with the service key version it names, from either Core and from a third
//! one started afterwards. Concurrent rotations may lose a compare-and-set race (a Conflict), never a record.
//! Outside CI the test is skipped, loudly, when PostgreSQL is not reachable; in CI (CI=true) that is a failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use openkcm_core::{Core, CoreConfig, CoreError};
use openkcm_crypto::{unwrap, wrap, EnvelopeHeader, Layer, SecretKey, WrappedKey};
use openkcm_providers::local::LocalProvider;
use openkcm_store::testing::TestDatabase;
use openkcm_store::{KeyStore, PostgresStore};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// One wrapped data key and the plaintext it must give back.
struct Made {
    service: String,
    wrapped: WrappedKey,
    plain: [u8; 32],
}

async fn worker(core: Arc<Core>, id: usize, until: Instant) -> Vec<Made> {
    let mut made = Vec::new();
    let mut n = 0usize;
    while Instant::now() < until {
        n += 1;
        let service = format!("svc-{}", n % 4);
        match n % 12 {
            0 => match core.rotate_ivk().await {
                Ok(_) | Err(CoreError::Conflict(_)) => {}
                Err(e) => panic!("rotate IVK: {e}"),
            },
            1 => match core.rotate_l3("acme", &service).await {
                Ok(_) | Err(CoreError::Conflict(_)) => {}
                Err(e) => panic!("rotate L3: {e}"),
            },
            2 => {
                core.scrub_bindings(10, std::time::Duration::ZERO)
                    .await
                    .unwrap();
            }
            3 => core.evict_all(),
            4 => match core.rotate_l2("acme", "acme-system").await {
                Ok(_) | Err(CoreError::Conflict(_)) => {}
                Err(e) => panic!("rotate L2: {e}"),
            },
            5 => {
                core.rewrap_system("acme", "acme-system").await.unwrap();
            }
            _ => {
                // Wrap a data key under the service's current L3, as the Core's Encrypt does for an edge.
                let l3 = core.current_l3("acme", &service).await.unwrap();
                let plain = *SecretKey::generate().unwrap().expose();
                let header = EnvelopeHeader {
                    layer: Layer::L4,
                    tenant: "acme".into(),
                    key_id: format!("l4-{id}-{n}"),
                    parent_id: l3.uid.clone(),
                    parent_version: l3.version,
                };
                let wrapped =
                    wrap(&l3.key, &header, &SecretKey::from_slice(&plain).unwrap()).unwrap();
                made.push(Made {
                    service,
                    wrapped,
                    plain,
                });
            }
        }
    }
    made
}

async fn check(core: &Core, made: &[Made]) {
    for m in made {
        let h = m.wrapped.header_ref();
        let l3 = core.l3("acme", &h.parent_id).await.unwrap();
        assert_eq!(l3.service, m.service);
        let key = unwrap(&l3.key, &m.wrapped, h).unwrap();
        assert_eq!(
            key.expose(),
            &m.plain,
            "a data key does not open to its bytes"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_cores_rotate_rewrap_and_create_concurrently_without_losing_a_record() {
    let Some(db) = TestDatabase::create("two Cores on one database").await else {
        return;
    };
    let url = db.url.clone();
    let dir = tempfile::tempdir().unwrap();
    let mk = SecretKey::generate().unwrap();
    let open = |first: bool| {
        let url = url.clone();
        let l1 = Arc::new(LocalProvider::new(dir.path().to_path_buf()));
        let mk = SecretKey::from_slice(mk.expose()).unwrap();
        async move {
            let store: Arc<dyn KeyStore> = Arc::new(PostgresStore::open(&url).await.unwrap());
            let config = CoreConfig {
                allow_new_ivk: first,
                ..CoreConfig::default()
            };
            Arc::new(Core::open(store, &mk, l1, config).await.unwrap())
        }
    };
    let one = open(true).await;
    for s in 0..4 {
        one.provision("acme", "acme-system", &format!("svc-{s}"))
            .await
            .unwrap();
    }
    let two = open(false).await;
    let until = Instant::now() + Duration::from_secs(4);
    let (a, b) = tokio::join!(
        tokio::spawn(worker(one.clone(), 1, until)),
        tokio::spawn(worker(two.clone(), 2, until))
    );
    let mut made = a.unwrap();
    made.extend(b.unwrap());
    assert!(made.len() > 50, "only {} data keys were made", made.len());
    one.evict_all();
    two.evict_all();
    check(&one, &made).await;
    check(&two, &made).await;
    let third = open(false).await;
    check(&third, &made).await;
    // The rotations happened (not all lost to races) and a final re-wrap leaves every old L2 version unused.
    let sys = third
        .l2_versions_in_use("acme", "acme-system")
        .await
        .unwrap();
    third.rewrap_system("acme", "acme-system").await.unwrap();
    let after = third
        .l2_versions_in_use("acme", "acme-system")
        .await
        .unwrap();
    assert_eq!(after.len(), 1, "{after:?}");
    check(&third, &made).await;
    eprintln!(
        "two cores: {} data keys, IVK versions {}, L2 versions in use before the last re-wrap {sys:?}, all open",
        made.len(),
        third.ivk_versions().len()
    );
    drop((one, two, third));
    db.drop_now().await;
}
