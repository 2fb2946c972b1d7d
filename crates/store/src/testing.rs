//! Test support (feature `testing`): a PostgreSQL database of a test's own, on the machine's PostgreSQL
//! (`OPENKCM_POSTGRES_URL`, default `postgres://postgres@127.0.0.1:5432/postgres`, the database new ones are made
//! from). Outside CI a test skips, loudly, when PostgreSQL is not reachable; in CI (CI=true) that is a failure.

use sqlx::Connection;

/// A database made for one test; [`TestDatabase::drop_now`] removes it.
pub struct TestDatabase {
    /// Its name.
    pub name: String,
    /// Its URL.
    pub url: String,
}

fn admin() -> String {
    std::env::var("OPENKCM_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

impl TestDatabase {
    /// A new, empty database for `what` (a test's name, for the skip message); None when PostgreSQL is not
    /// reachable outside CI. Panics in CI when it is not reachable.
    pub async fn create(what: &str) -> Option<TestDatabase> {
        let admin = admin();
        let mut conn = match sqlx::PgConnection::connect(&admin).await {
            Ok(c) => c,
            Err(e) => {
                assert!(!in_ci(), "PostgreSQL is not reachable at {admin}: {e}");
                eprintln!("**********************************************************************");
                eprintln!("PostgreSQL not reachable at {admin} ({e}): {what} SKIPPED");
                eprintln!("**********************************************************************");
                return None;
            }
        };
        let suffix = openkcm_crypto::aes::random_bytes::<4>().ok()?;
        let name = format!(
            "openkcm_test_{}_{:08x}",
            std::process::id(),
            u32::from_le_bytes(suffix)
        );
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut conn)
            .await
            .ok()?;
        let base = admin.rsplit_once('/')?.0.to_owned();
        Some(TestDatabase {
            url: format!("{base}/{name}"),
            name,
        })
    }

    /// Drops the database (closing what still uses it).
    pub async fn drop_now(self) {
        if let Ok(mut conn) = sqlx::PgConnection::connect(&admin()).await {
            let _ = sqlx::query(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ))
            .execute(&mut conn)
            .await;
        }
    }
}
