//! Behaviour every `KeyStore` backend must share, run against each backend, plus SQLite-only
//! persistence and corruption handling.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use openkcm_crypto::{wrap, EnvelopeHeader, Layer, SecretKey, WrappedKey};
use openkcm_store::{KeyStore, MemoryStore, Record, SqliteStore, StoreError};

fn wrapped(tenant: &str, id: &str) -> WrappedKey {
    let kek = SecretKey::generate().unwrap();
    let key = SecretKey::generate().unwrap();
    let header = EnvelopeHeader {
        layer: Layer::L4,
        tenant: tenant.into(),
        key_id: id.into(),
        parent_id: "svc".into(),
        parent_version: 1,
    };
    wrap(&kek, &header, &key).unwrap()
}

fn record(tenant: &str, kind: &str, id: &str, version: u32) -> Record {
    Record {
        tenant: tenant.into(),
        kind: kind.into(),
        id: id.into(),
        version,
        metadata: serde_json::json!({ "state": "ACTIVE", "n": version }),
        blob: Some(wrapped(tenant, id)),
        revision: 0,
    }
}

async fn put_if_absent_inserts_once(store: &dyn KeyStore) {
    let r = record("t1", "l4", "k1", 1);
    assert!(store.put_if_absent(&r).await.unwrap());
    let mut other = record("t1", "l4", "k1", 1);
    other.metadata = serde_json::json!({ "state": "OTHER" });
    assert!(!store.put_if_absent(&other).await.unwrap());
    let got = store.get("t1", "l4", "k1", 1).await.unwrap().unwrap();
    assert_eq!(got.revision, 1);
    assert_eq!(got.metadata, r.metadata);
    assert_eq!(got.blob, r.blob);
    assert_eq!(Record { revision: 0, ..got }, r);
    assert!(store.get("t1", "l4", "k1", 2).await.unwrap().is_none());
    // The same record with its metadata as JSON text.
    let raw = store.get_json("t1", "l4", "k1", 1).await.unwrap().unwrap();
    let text: serde_json::Value = serde_json::from_slice(&raw.metadata).unwrap();
    assert_eq!(text, r.metadata);
    assert_eq!(raw.blob, r.blob);
    assert_eq!(raw.revision, 1);
    assert!(store.get_json("t1", "l4", "k1", 2).await.unwrap().is_none());
    assert!(store.get_json("t2", "l4", "k1", 1).await.unwrap().is_none());
}

async fn compare_and_set_needs_the_current_revision(store: &dyn KeyStore) {
    let r = record("t1", "l3", "svc", 1);
    assert!(store.put_if_absent(&r).await.unwrap());
    let mut update = r.clone();
    update.metadata = serde_json::json!({ "state": "DEACTIVATED" });
    update.blob = Some(wrapped("t1", "svc"));
    assert!(!store.compare_and_set(&update, 0).await.unwrap(), "stale");
    assert!(!store.compare_and_set(&update, 2).await.unwrap(), "future");
    assert!(store.compare_and_set(&update, 1).await.unwrap(), "current");
    let got = store.get("t1", "l3", "svc", 1).await.unwrap().unwrap();
    assert_eq!(got.revision, 2);
    assert_eq!(got.metadata, update.metadata);
    assert_eq!(got.blob, update.blob);
    assert!(
        !store.compare_and_set(&update, 1).await.unwrap(),
        "now stale"
    );
    assert!(store.compare_and_set(&update, 2).await.unwrap());
    assert_eq!(
        store
            .get("t1", "l3", "svc", 1)
            .await
            .unwrap()
            .unwrap()
            .revision,
        3
    );
    // Removing the blob is an update like any other.
    let cleared = Record {
        blob: None,
        ..update
    };
    assert!(store.compare_and_set(&cleared, 3).await.unwrap());
    assert!(store
        .get("t1", "l3", "svc", 1)
        .await
        .unwrap()
        .unwrap()
        .blob
        .is_none());
    // A missing record is not created by compare-and-set.
    let missing = record("t1", "l3", "nothing", 1);
    assert!(!store.compare_and_set(&missing, 0).await.unwrap());
    assert!(store.get("t1", "l3", "nothing", 1).await.unwrap().is_none());
}

async fn lists_are_ordered_and_isolated_by_tenant_and_kind(store: &dyn KeyStore) {
    for (tenant, id, version) in [
        ("iso-a", "b", 2),
        ("iso-a", "a", 10),
        ("iso-a", "b", 1),
        ("iso-a", "a", 9),
        ("iso-b", "a", 1),
    ] {
        assert!(store
            .put_if_absent(&record(tenant, "l4", id, version))
            .await
            .unwrap());
    }
    assert!(store
        .put_if_absent(&record("iso-a", "l3", "a", 1))
        .await
        .unwrap());

    let a: Vec<(String, u32)> = store
        .list("iso-a", "l4")
        .await
        .unwrap()
        .into_iter()
        .map(|r| {
            assert_eq!(r.tenant, "iso-a");
            assert_eq!(r.kind, "l4");
            (r.id, r.version)
        })
        .collect();
    assert_eq!(
        a,
        vec![
            ("a".into(), 9),
            ("a".into(), 10),
            ("b".into(), 1),
            ("b".into(), 2)
        ]
    );
    let b = store.list("iso-b", "l4").await.unwrap();
    assert_eq!(b.len(), 1);
    assert_eq!(b[0].tenant, "iso-b");
    assert!(store.list("iso-c", "l4").await.unwrap().is_empty());
    assert_eq!(store.list("iso-a", "l3").await.unwrap().len(), 1);
    // Another tenant's id is invisible under this tenant.
    assert!(store.get("iso-b", "l4", "b", 1).await.unwrap().is_none());
    assert!(!store.delete("iso-b", "l4", "b", 1).await.unwrap());
    assert!(store.get("iso-a", "l4", "b", 1).await.unwrap().is_some());

    let tenants = store.list_tenants().await.unwrap();
    assert!(tenants.contains(&"iso-a".to_string()));
    assert!(tenants.contains(&"iso-b".to_string()));
    let mut sorted = tenants.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(tenants, sorted, "sorted and distinct");
}

async fn delete_removes_one_version(store: &dyn KeyStore) {
    assert!(store
        .put_if_absent(&record("del", "l4", "k", 1))
        .await
        .unwrap());
    assert!(store
        .put_if_absent(&record("del", "l4", "k", 2))
        .await
        .unwrap());
    assert!(store.delete("del", "l4", "k", 1).await.unwrap());
    assert!(!store.delete("del", "l4", "k", 1).await.unwrap());
    assert!(store.get("del", "l4", "k", 1).await.unwrap().is_none());
    assert!(store.get("del", "l4", "k", 2).await.unwrap().is_some());
    assert!(store.delete("del", "l4", "k", 2).await.unwrap());
    assert!(!store
        .list_tenants()
        .await
        .unwrap()
        .contains(&"del".to_string()));
    // A deleted record can be created again, starting over at revision 1.
    assert!(store
        .put_if_absent(&record("del", "l4", "k", 1))
        .await
        .unwrap());
    assert_eq!(
        store
            .get("del", "l4", "k", 1)
            .await
            .unwrap()
            .unwrap()
            .revision,
        1
    );
}

async fn records_without_blobs_and_empty_keys(store: &dyn KeyStore) {
    let state = Record {
        blob: None,
        ..record("nb", "system", "sys", 0)
    };
    assert!(store.put_if_absent(&state).await.unwrap());
    assert_eq!(
        store
            .get("nb", "system", "sys", 0)
            .await
            .unwrap()
            .unwrap()
            .blob,
        None
    );
    for bad in [
        Record {
            tenant: String::new(),
            ..state.clone()
        },
        Record {
            kind: String::new(),
            ..state.clone()
        },
        Record {
            id: String::new(),
            ..state.clone()
        },
    ] {
        assert!(matches!(
            store.put_if_absent(&bad).await,
            Err(StoreError::Invalid(_))
        ));
    }
}

async fn racing_compare_and_sets_have_one_winner(store: Arc<dyn KeyStore>) {
    assert!(store
        .put_if_absent(&record("race", "l2", "sys", 1))
        .await
        .unwrap());
    let mut tasks = Vec::new();
    for i in 0..16 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut r = record("race", "l2", "sys", 1);
            r.metadata = serde_json::json!({ "writer": i });
            store.compare_and_set(&r, 1).await.unwrap()
        }));
    }
    let mut wins = 0;
    for t in tasks {
        if t.await.unwrap() {
            wins += 1;
        }
    }
    assert_eq!(wins, 1);
    assert_eq!(
        store
            .get("race", "l2", "sys", 1)
            .await
            .unwrap()
            .unwrap()
            .revision,
        2
    );
}

async fn shared_behaviour(store: Arc<dyn KeyStore>) {
    put_if_absent_inserts_once(store.as_ref()).await;
    compare_and_set_needs_the_current_revision(store.as_ref()).await;
    lists_are_ordered_and_isolated_by_tenant_and_kind(store.as_ref()).await;
    delete_removes_one_version(store.as_ref()).await;
    records_without_blobs_and_empty_keys(store.as_ref()).await;
    racing_compare_and_sets_have_one_winner(store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_store_shared_behaviour() {
    shared_behaviour(Arc::new(MemoryStore::new())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_store_shared_behaviour() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("keys.db"))
        .await
        .unwrap();
    shared_behaviour(Arc::new(store)).await;
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
