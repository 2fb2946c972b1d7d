//! The PostgreSQL backend against the machine's PostgreSQL (127.0.0.1:5432, or `OPENKCM_POSTGRES_URL` naming a
//! database the test may create databases from): the shared behaviour every backend has, plus what only a shared
//! database shows — two stores (two Core processes) racing on one record, concurrent first starts running the
//! migrations once, the hash partitions, and a newer schema refused. Each test works in a database of its own,
//! dropped at the end. Outside CI the tests are skipped, loudly, when PostgreSQL is not reachable; in CI (CI=true)
//! that is a failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use openkcm_crypto::{wrap, EnvelopeHeader, Layer, SecretKey};
use openkcm_store::{KeyStore, PostgresStore, Record, StoreError};
use sqlx::Connection;

mod shared;

use openkcm_store::testing::TestDatabase as TestDb;

fn record(tenant: &str, id: &str, n: u32) -> Record {
    let kek = SecretKey::generate().unwrap();
    let key = SecretKey::generate().unwrap();
    let header = EnvelopeHeader {
        layer: Layer::L3,
        tenant: tenant.into(),
        key_id: id.into(),
        parent_id: "sys".into(),
        parent_version: 1,
    };
    Record {
        tenant: tenant.into(),
        kind: "l3".into(),
        id: id.into(),
        version: 1,
        metadata: serde_json::json!({ "n": n }),
        blob: Some(wrap(&kek, &header, &key).unwrap()),
        revision: 0,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_store_has_the_shared_behaviour() {
    let Some(db) = TestDb::create("the shared KeyStore behaviour").await else {
        return;
    };
    let store = PostgresStore::open(&db.url).await.unwrap();
    shared::run(Arc::new(store.clone())).await;
    store.close().await;
    db.drop_now().await;
}

/// The sealed view over PostgreSQL: the batch forms (one statement each) through blind indexes and sealed rows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sealed_postgres_store_has_the_shared_behaviour() {
    let Some(db) = TestDb::create("the shared KeyStore behaviour, sealed").await else {
        return;
    };
    let store = PostgresStore::open(&db.url).await.unwrap();
    let sealed = openkcm_store::sealed::SealedStore::new(
        Arc::new(store.clone()),
        openkcm_crypto::SecretKey::generate().unwrap(),
        openkcm_crypto::SecretKey::generate().unwrap(),
    );
    shared::run(Arc::new(sealed)).await;
    store.close().await;
    db.drop_now().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_stores_on_one_database_start_race_and_agree() {
    let Some(db) = TestDb::create("two stores on one database").await else {
        return;
    };
    // Two first starts at once: the migrations run once (the advisory lock), both stores work.
    let (a, b) = tokio::join!(PostgresStore::open(&db.url), PostgresStore::open(&db.url));
    let (a, b): (Arc<dyn KeyStore>, Arc<dyn KeyStore>) =
        (Arc::new(a.unwrap()), Arc::new(b.unwrap()));
    // The table is partitioned by tenant hash.
    let mut conn = sqlx::PgConnection::connect(&db.url).await.unwrap();
    let parts: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_inherits WHERE inhparent = 'openkcm_records'::regclass",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!(parts, 16);
    let versions: i64 = sqlx::query_scalar("SELECT count(*) FROM openkcm_schema")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(versions, 1, "the migration ran more than once");

    // Many tenants created through both stores, then racing updates of the same records from both.
    let mut tasks = Vec::new();
    for i in 0..64u32 {
        let store = if i % 2 == 0 { a.clone() } else { b.clone() };
        tasks.push(tokio::spawn(async move {
            store
                .put_if_absent(&record(&format!("tenant-{i}"), "svc", i))
                .await
                .unwrap()
        }));
    }
    for t in tasks {
        assert!(t.await.unwrap());
    }
    let mut tasks = Vec::new();
    for writer in 0..32u32 {
        let store = if writer % 2 == 0 {
            a.clone()
        } else {
            b.clone()
        };
        tasks.push(tokio::spawn(async move {
            // Read-modify-write with compare-and-set until it lands, as the Core's lazy re-wrap does.
            loop {
                let current = store
                    .get("tenant-7", "l3", "svc", 1)
                    .await
                    .unwrap()
                    .unwrap();
                let n = current.metadata["n"].as_u64().unwrap();
                let mut next = current.clone();
                next.metadata = serde_json::json!({ "n": n + 1 });
                if store
                    .compare_and_set(&next, current.revision)
                    .await
                    .unwrap()
                {
                    return;
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let end = a.get("tenant-7", "l3", "svc", 1).await.unwrap().unwrap();
    assert_eq!(end.metadata["n"], 7 + 32, "an update was lost");
    assert_eq!(end.revision, 33);
    assert_eq!(b.list_tenants().await.unwrap().len(), 64);
    drop((a, b));

    // A database of a newer OpenKCM is refused with a sentence.
    sqlx::query("INSERT INTO openkcm_schema (version) VALUES (99)")
        .execute(&mut conn)
        .await
        .unwrap();
    let e = PostgresStore::open(&db.url).await.err().unwrap();
    assert!(
        matches!(&e, StoreError::Backend(m) if m.contains("newer than this program")),
        "{e}"
    );
    conn.close().await.unwrap();
    db.drop_now().await;
}

#[tokio::test]
async fn a_bad_address_or_password_is_a_sentence_without_the_password() {
    let e = PostgresStore::open("not a url").await.err().unwrap();
    assert!(matches!(e, StoreError::Invalid(_)), "{e}");
    let e = PostgresStore::open("postgres://openkcm:s3cr3t-pw@127.0.0.1:1/openkcm")
        .await
        .err()
        .unwrap();
    let text = e.to_string();
    assert!(text.contains("127.0.0.1:1/openkcm"), "{text}");
    assert!(!text.contains("s3cr3t-pw"), "the password leaked: {text}");
}
