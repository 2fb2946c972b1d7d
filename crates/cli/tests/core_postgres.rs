//! `openkcm dev --core-store postgres://…`: the Core keeps its keys in the machine's PostgreSQL (a database of this
//! test's own), a key created before a restart is served after it, and the database of another cluster (another
//! MasterKey) is refused at start instead of being overwritten. Outside CI the test is skipped, loudly, when
//! PostgreSQL is not reachable; in CI (CI=true) that is a failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::Dev;

fn admin() -> String {
    std::env::var("OPENKCM_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// A database of this test's own, made through the admin database.
async fn create_db() -> Option<(String, String)> {
    use sqlx::Connection;
    let name = format!("openkcm_dev_{}_{}", std::process::id(), rand_suffix());
    let mut conn = match sqlx::PgConnection::connect(&admin()).await {
        Ok(c) => c,
        Err(e) => {
            assert!(!common::in_ci(), "PostgreSQL is not reachable: {e}");
            eprintln!("**********************************************************************");
            eprintln!("core_postgres: PostgreSQL not reachable ({e}): SKIPPED");
            eprintln!("**********************************************************************");
            return None;
        }
    };
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .await
        .unwrap();
    let base = admin().rsplit_once('/').unwrap().0.to_owned();
    Some((name.clone(), format!("{base}/{name}")))
}

async fn drop_db(name: &str) {
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(&admin()).await.unwrap();
    sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .execute(&mut conn)
        .await
        .unwrap();
}

fn rand_suffix() -> String {
    let b = openkcm_crypto::aes::random_bytes::<4>().unwrap();
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dev_keeps_core_keys_in_postgres_across_a_restart_and_refuses_another_clusters_database() {
    let Some((name, url)) = create_db().await else {
        return;
    };
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
    drop_db(&name).await;
}
