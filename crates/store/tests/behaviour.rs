//! Behaviour every `KeyStore` backend must share, run against each backend, plus SQLite-only
//! persistence and corruption handling.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use openkcm_store::{KeyStore, MemoryStore, SqliteStore, StoreError};

mod shared;
use shared::record;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_store_shared_behaviour() {
    shared::run(Arc::new(MemoryStore::new())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_store_shared_behaviour() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("keys.db"))
        .await
        .unwrap();
    shared::run(Arc::new(store)).await;
}

/// The sealed view (zero-knowledge metadata) keeps every promise of the trait, the batch forms included.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sealed_store_shared_behaviour() {
    let sealed = openkcm_store::sealed::SealedStore::new(
        Arc::new(MemoryStore::new()),
        openkcm_crypto::SecretKey::generate().unwrap(),
        openkcm_crypto::SecretKey::generate().unwrap(),
    );
    shared::run(Arc::new(sealed)).await;
}

#[tokio::test]
async fn sqlite_store_persists_across_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("vault.db");
    let r = record("p", "l4", "k", 3);
    {
        let store = SqliteStore::open(&path).await.unwrap();
        assert!(store.put_if_absent(&r).await.unwrap());
        let mut updated = r.clone();
        updated.metadata = serde_json::json!({ "state": "REVOKED" });
        assert!(store.compare_and_set(&updated, 1).await.unwrap());
        store.close().await;
    }
    let store = SqliteStore::open(&path).await.unwrap();
    let got = store.get("p", "l4", "k", 3).await.unwrap().unwrap();
    assert_eq!(got.revision, 2);
    assert_eq!(got.metadata, serde_json::json!({ "state": "REVOKED" }));
    assert_eq!(got.blob, r.blob);
    assert_eq!(store.list_tenants().await.unwrap(), vec!["p".to_string()]);
    // Opening again runs no migration twice.
    let again = SqliteStore::open(&path).await.unwrap();
    assert_eq!(again.list("p", "l4").await.unwrap().len(), 1);
}

#[tokio::test]
async fn sqlite_store_uses_wal_and_records_the_schema_version() {
    use sqlx::Connection;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("wal.db");
    let store = SqliteStore::open(&path).await.unwrap();
    store.close().await;
    let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(mode, "wal");
    let version: i64 = sqlx::query_scalar("PRAGMA user_version")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(version, 1);
}

#[tokio::test]
async fn sqlite_store_reports_a_corrupt_blob_as_corrupt_not_a_panic() {
    use sqlx::Connection;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("corrupt.db");
    let store = SqliteStore::open(&path).await.unwrap();
    let r = record("c", "l4", "k", 1);
    assert!(store.put_if_absent(&r).await.unwrap());
    assert!(store
        .put_if_absent(&record("c", "l4", "j", 1))
        .await
        .unwrap());

    // Tamper with the rows behind the store's back: truncate one blob, break another's JSON.
    let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    let truncated = r.blob.as_ref().unwrap().as_bytes()[..20].to_vec();
    sqlx::query("UPDATE records SET blob = ? WHERE id = 'k'")
        .bind(truncated)
        .execute(&mut conn)
        .await
        .unwrap();
    sqlx::query("UPDATE records SET metadata = '{not json' WHERE id = 'j'")
        .execute(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();

    let err = store.get("c", "l4", "k", 1).await.unwrap_err();
    match &err {
        StoreError::Corrupt { record, .. } => assert_eq!(record, "c/l4/k/1"),
        other => panic!("expected Corrupt, got {other:?}"),
    }
    assert!(err.to_string().contains("corrupt"));
    assert!(matches!(
        store.get("c", "l4", "j", 1).await,
        Err(StoreError::Corrupt { .. })
    ));
    assert!(matches!(
        store.list("c", "l4").await,
        Err(StoreError::Corrupt { .. })
    ));
    // The corrupt row can still be deleted.
    assert!(store.delete("c", "l4", "k", 1).await.unwrap());
}

#[tokio::test]
async fn sqlite_store_open_fails_with_a_sentence_for_an_unusable_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("no-such-dir").join("keys.db");
    let err = match SqliteStore::open(&path).await {
        Ok(_) => panic!("opening under a missing directory must fail"),
        Err(e) => e,
    };
    let msg = err.to_string();
    assert!(msg.contains("could not open the SQLite database"), "{msg}");
}
