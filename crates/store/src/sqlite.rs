//! The embedded SQLite backend: one database file, WAL journal, `synchronous = FULL` (a write that returned is on
//! disk, also across power loss; the data lives in the `.db` file plus its `-wal` file until a checkpoint), and
//! `secure_delete` (a deleted or replaced row is overwritten with zeros, not left in a free page: a destroyed key's
//! wrapped bytes and a record's former clear form do not linger in the file).

use std::path::Path;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::Connection;

use crate::sql::{backend, blob_param, decode, metadata_param, revision_param, COLUMNS};
use crate::{validate, KeyStore, Record, StoreError};

/// Schema migrations, applied in order; `PRAGMA user_version` records how many have run.
const MIGRATIONS: &[&str] = &[
    // 1: the records table. WITHOUT ROWID: the composite primary key is the only index needed,
    // and it starts with tenant, which keeps each tenant's rows together.
    "CREATE TABLE records (
        tenant   TEXT    NOT NULL,
        kind     TEXT    NOT NULL,
        id       TEXT    NOT NULL,
        version  INTEGER NOT NULL,
        metadata TEXT    NOT NULL,
        blob     BLOB    NULL,
        revision INTEGER NOT NULL,
        PRIMARY KEY (tenant, kind, id, version)
    ) STRICT, WITHOUT ROWID",
];

/// A [`KeyStore`] in a SQLite database file (the embedded default of DESIGN §5.2 and the
/// persistent edge vault of §6.2).
#[derive(Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
}

impl SqliteStore {
    /// Opens (creating if missing) the database at `path` and applies pending migrations.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let dir = tempfile::tempdir().unwrap();
    /// let store = openkcm_store::SqliteStore::open(&dir.path().join("keys.db")).await?;
    /// # Ok::<(), openkcm_store::StoreError>(())
    /// # }).unwrap();
    /// ```
    pub async fn open(path: &Path) -> Result<SqliteStore, StoreError> {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .pragma("secure_delete", "ON")
            .busy_timeout(Duration::from_secs(5));
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await
            .map_err(|e| {
                StoreError::Backend(format!(
                    "could not open the SQLite database {}: {e}",
                    path.display()
                ))
            })?;
        migrate(&pool).await?;
        Ok(SqliteStore { pool })
    }

    /// Closes every connection; further calls fail. Waits for in-flight queries.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

async fn migrate(pool: &SqlitePool) -> Result<(), StoreError> {
    let mut conn = pool.acquire().await.map_err(backend)?;
    // IMMEDIATE takes the write lock up front, so two processes opening a new file at the same
    // time cannot both run the same migration.
    sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut *conn)
        .await
        .map_err(backend)?;
    let result = async {
        let current: i64 = sqlx::query_scalar("PRAGMA user_version")
            .fetch_one(&mut *conn)
            .await
            .map_err(backend)?;
        let current = usize::try_from(current)
            .map_err(|_| StoreError::Backend("the schema version is negative".to_owned()))?;
        if current > MIGRATIONS.len() {
            return Err(StoreError::Backend(format!(
                "the database has schema version {current}, newer than this program's {}; \
                 upgrade OpenKCM before opening it",
                MIGRATIONS.len()
            )));
        }
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(current) {
            sqlx::query(sql)
                .execute(&mut *conn)
                .await
                .map_err(backend)?;
            // PRAGMA takes no bound parameters; the value is our own integer.
            sqlx::query(&format!("PRAGMA user_version = {}", i + 1))
                .execute(&mut *conn)
                .await
                .map_err(backend)?;
        }
        Ok(())
    }
    .await;
    let end = if result.is_ok() { "COMMIT" } else { "ROLLBACK" };
    let ended = sqlx::query(end).execute(&mut *conn).await.map_err(backend);
    if ended.is_err() {
        // Do not return a connection with an open transaction to the pool.
        let _ = conn.detach().close().await;
    }
    result.and(ended.map(|_| ()))
}

fn version_param(version: u32) -> i64 {
    i64::from(version)
}

#[async_trait]
impl KeyStore for SqliteStore {
    async fn get(
        &self,
        tenant: &str,
        kind: &str,
        id: &str,
        version: u32,
    ) -> Result<Option<Record>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM records WHERE tenant = ? AND kind = ? AND id = ? AND version = ?"
        ))
        .bind(tenant)
        .bind(kind)
        .bind(id)
        .bind(version_param(version))
        .fetch_optional(&self.pool)
        .await
        .map_err(backend)?;
        row.as_ref().map(decode).transpose()
    }

    async fn put_if_absent(&self, record: &Record) -> Result<bool, StoreError> {
        validate(record)?;
        let done = sqlx::query(
            "INSERT INTO records (tenant, kind, id, version, metadata, blob, revision)
             VALUES (?, ?, ?, ?, ?, ?, 1)
             ON CONFLICT (tenant, kind, id, version) DO NOTHING",
        )
        .bind(&record.tenant)
        .bind(&record.kind)
        .bind(&record.id)
        .bind(version_param(record.version))
        .bind(metadata_param(record)?)
        .bind(blob_param(record))
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        Ok(done.rows_affected() == 1)
    }

    async fn compare_and_set(
        &self,
        record: &Record,
        expected_revision: u64,
    ) -> Result<bool, StoreError> {
        validate(record)?;
        let next = crate::next_revision(expected_revision)?;
        let done = sqlx::query(
            "UPDATE records SET metadata = ?, blob = ?, revision = ?
             WHERE tenant = ? AND kind = ? AND id = ? AND version = ? AND revision = ?",
        )
        .bind(metadata_param(record)?)
        .bind(blob_param(record))
        .bind(revision_param(next)?)
        .bind(&record.tenant)
        .bind(&record.kind)
        .bind(&record.id)
        .bind(version_param(record.version))
        .bind(revision_param(expected_revision)?)
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        Ok(done.rows_affected() == 1)
    }

    async fn list(&self, tenant: &str, kind: &str) -> Result<Vec<Record>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM records WHERE tenant = ? AND kind = ? ORDER BY id, version"
        ))
        .bind(tenant)
        .bind(kind)
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?;
        rows.iter().map(decode).collect()
    }

    async fn list_tenants(&self) -> Result<Vec<String>, StoreError> {
        sqlx::query_scalar("SELECT DISTINCT tenant FROM records ORDER BY tenant")
            .fetch_all(&self.pool)
            .await
            .map_err(backend)
    }

    async fn delete(
        &self,
        tenant: &str,
        kind: &str,
        id: &str,
        version: u32,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "DELETE FROM records WHERE tenant = ? AND kind = ? AND id = ? AND version = ?",
        )
        .bind(tenant)
        .bind(kind)
        .bind(id)
        .bind(version_param(version))
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        Ok(done.rows_affected() == 1)
    }
}
