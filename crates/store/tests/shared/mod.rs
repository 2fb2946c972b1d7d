//! Behaviour every `KeyStore` backend must share; each backend's test file runs it (`shared::run`).
#![allow(dead_code)]

use std::sync::Arc;

use openkcm_crypto::{wrap, EnvelopeHeader, Layer, SecretKey, WrappedKey};
use openkcm_store::{KeyStore, Record, RecordKey, StoreError};

pub fn wrapped(tenant: &str, id: &str) -> WrappedKey {
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

pub fn record(tenant: &str, kind: &str, id: &str, version: u32) -> Record {
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

async fn batch_forms_answer_like_the_single_ones(store: &dyn KeyStore) {
    let key = RecordKey::of;
    let a = record("b1", "l2-active", "a", 1);
    let b = record("b1", "l2-active", "b", 1);
    let c = record("b2", "l2-active", "a", 1);
    let missing = record("b1", "l2-active", "nope", 1);
    for empty in [
        store.get_many(&[]).await.unwrap().len(),
        store.put_many_if_absent(&[]).await.unwrap().len(),
        store.compare_and_set_many(&[]).await.unwrap().len(),
        store.delete_many(&[]).await.unwrap().len(),
    ] {
        assert_eq!(empty, 0);
    }
    assert!(store.put_if_absent(&a).await.unwrap());
    // Inserted only where absent, a key repeated in the batch once.
    let put = store
        .put_many_if_absent(&[a.clone(), b.clone(), c.clone(), b.clone()])
        .await
        .unwrap();
    assert_eq!(put, [false, true, true, false]);
    // One answer per key, in order; the same tenant-local id under two tenants is two records.
    let got = store
        .get_many(&[key(&c), key(&missing), key(&a), key(&c)])
        .await
        .unwrap();
    assert_eq!(got.len(), 4);
    let first = got[0].as_ref().unwrap();
    assert_eq!((first.tenant.as_str(), first.id.as_str()), ("b2", "a"));
    assert_eq!(first.blob, c.blob);
    assert!(got[1].is_none());
    assert_eq!(got[2].as_ref().unwrap().blob, a.blob);
    assert_eq!(got[3], got[0]);
    // Replaced only at the expected revision; a missing record is not created.
    let mut a2 = a.clone();
    a2.metadata = serde_json::json!({ "state": "MOVED" });
    a2.blob = Some(wrapped("b1", "a"));
    let mut b2 = b.clone();
    b2.metadata = serde_json::json!({ "state": "LOST" });
    let cas = store
        .compare_and_set_many(&[(a2.clone(), 1), (b2, 5), (missing.clone(), 1)])
        .await
        .unwrap();
    assert_eq!(cas, [true, false, false]);
    let now_a = store.get("b1", "l2-active", "a", 1).await.unwrap().unwrap();
    assert_eq!(
        (now_a.revision, &now_a.metadata, &now_a.blob),
        (2, &a2.metadata, &a2.blob)
    );
    let now_b = store.get("b1", "l2-active", "b", 1).await.unwrap().unwrap();
    assert_eq!((now_b.revision, &now_b.metadata), (1, &b.metadata));
    assert!(store
        .get("b1", "l2-active", "nope", 1)
        .await
        .unwrap()
        .is_none());
    // Deleted where present.
    let deleted = store
        .delete_many(&[key(&a), key(&missing), key(&c)])
        .await
        .unwrap();
    assert_eq!(deleted, [true, false, true]);
    let left = store.get_many(&[key(&a), key(&b), key(&c)]).await.unwrap();
    assert_eq!(
        left.iter().map(Option::is_some).collect::<Vec<_>>(),
        [false, true, false]
    );
}

pub async fn run(store: Arc<dyn KeyStore>) {
    put_if_absent_inserts_once(store.as_ref()).await;
    compare_and_set_needs_the_current_revision(store.as_ref()).await;
    lists_are_ordered_and_isolated_by_tenant_and_kind(store.as_ref()).await;
    delete_removes_one_version(store.as_ref()).await;
    records_without_blobs_and_empty_keys(store.as_ref()).await;
    batch_forms_answer_like_the_single_ones(store.as_ref()).await;
    racing_compare_and_sets_have_one_winner(store).await;
}
