//! `openkcm dev --core-store postgres://…`: the Core keeps its keys in the machine's PostgreSQL (a database of this
//! test's own), a key created before a restart is served after it, and the database of another cluster (another
//! MasterKey) is refused at start instead of being overwritten. Outside CI the test is skipped, loudly, when
//! PostgreSQL is not reachable; in CI (CI=true) that is a failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::Dev;

use openkcm_store::testing::TestDatabase;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dev_keeps_core_keys_in_postgres_across_a_restart_and_refuses_another_clusters_database() {
    let Some(db) = TestDatabase::create("dev with a PostgreSQL core store").await else {
        return;
    };
    let url = db.url.clone();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let extra = ["--core-store", url.as_str()];
    let mut dev = Dev::spawn_with(&data, &["demo"], None, &[], &extra, "OPENKCM READY");
    let uid = common::s(&dev.kmip("demo", &["create"]).unwrap(), "unique_identifier");
    let key = common::s(&dev.kmip("demo", &["get", &uid]).unwrap(), "key_hex");
    dev.stop();
    assert!(!data.join("core.db").exists(), "the Core used SQLite");

    let mut dev = Dev::spawn_with(&data, &["demo"], None, &[], &extra, "OPENKCM READY");
    assert_eq!(
        common::s(&dev.kmip("demo", &["get", &uid]).unwrap(), "key_hex"),
        key
    );
    dev.stop();

    // Another cluster (its own MasterKey) pointed at this database: refused, nothing overwritten.
    let other = dir.path().join("other");
    let out = common::dev_refusal_with(&other, &extra, &[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("storage holds keys"), "{err}");
    let mut dev = Dev::spawn_with(&data, &["demo"], None, &[], &extra, "OPENKCM READY");
    assert_eq!(
        common::s(&dev.kmip("demo", &["get", &uid]).unwrap(), "key_hex"),
        key
    );
    dev.stop();
    db.drop_now().await;
}
