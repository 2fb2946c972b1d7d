//! The PostgreSQL backend (DESIGN §5.2): one table keyed by `(tenant, kind, id, version)` and partitioned by a hash
//! of the tenant (16 partitions), so that a tenant's rows stay together and tables stay small with many tenants.
//! Several Core processes may share one database: inserts and compare-and-set updates are single statements, atomic
//! in PostgreSQL, and the schema migrations run under an advisory lock.

use std::str::FromStr;

use async_trait::async_trait;
use sqlx::postgres::{PgPool, PgPoolOptions};

use crate::sql::{backend, blob_param, decode, metadata_param, revision_param, COLUMNS};
use crate::{validate, KeyStore, Record, StoreError};

/// Partitions of the records table (hash of the tenant).
const PARTITIONS: u32 = 16;
/// Advisory-lock key serialising migrations across processes ("okcm" in ASCII).
const MIGRATION_LOCK: i64 = 0x6f6b_636d;

/// Schema migrations, applied in order; `openkcm_schema` records how many have run.
fn migrations() -> Vec<String> {
    let mut first = vec!["CREATE TABLE openkcm_records (
            tenant   TEXT   NOT NULL,
            kind     TEXT   NOT NULL,
            id       TEXT   NOT NULL,
            version  BIGINT NOT NULL,
            metadata TEXT   NOT NULL,
            blob     BYTEA  NULL,
            revision BIGINT NOT NULL,
            PRIMARY KEY (tenant, kind, id, version)
        ) PARTITION BY HASH (tenant)"
        .to_owned()];
    for i in 0..PARTITIONS {
        first.push(format!(
            "CREATE TABLE openkcm_records_p{i} PARTITION OF openkcm_records \
             FOR VALUES WITH (MODULUS {PARTITIONS}, REMAINDER {i})"
        ));
    }
    vec![first.join(";\n")]
}

/// A [`KeyStore`] in a PostgreSQL database.
#[derive(Clone)]
pub struct PostgresStore {
    pool: PgPool,
}

impl PostgresStore {
    /// Connects to `url` (`postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE`) and applies pending migrations. The
    /// password, if any, never appears in an error.
    pub async fn open(url: &str) -> Result<PostgresStore, StoreError> {
        let options = sqlx::postgres::PgConnectOptions::from_str(url).map_err(|_| {
            StoreError::Invalid(
                "the PostgreSQL address is not a postgres://USER@HOST:PORT/DATABASE URL".into(),
            )
        })?;
        let shown = format!(
            "{}:{}/{}",
            options.get_host(),
            options.get_port(),
            options.get_database().unwrap_or("")
        );
        let pool = PgPoolOptions::new()
            .max_connections(8)
            .acquire_timeout(std::time::Duration::from_secs(10))
            .connect_with(options)
            .await
            .map_err(|e| {
                StoreError::Backend(format!("could not connect to PostgreSQL at {shown}: {e}"))
            })?;
        migrate(&pool).await?;
        Ok(PostgresStore { pool })
    }

    /// Closes every connection; further calls fail. Waits for in-flight queries.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

async fn migrate(pool: &PgPool) -> Result<(), StoreError> {
    let mut tx = pool.begin().await.map_err(backend)?;
    // Two Core processes starting on a new database must not both run a migration.
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(MIGRATION_LOCK)
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
    let exists: Option<String> = sqlx::query_scalar("SELECT to_regclass('openkcm_schema')::text")
        .fetch_one(&mut *tx)
        .await
        .map_err(backend)?;
    if exists.is_none() {
        sqlx::query("CREATE TABLE openkcm_schema (version INTEGER NOT NULL)")
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
    }
    let current: Option<i32> = sqlx::query_scalar("SELECT max(version) FROM openkcm_schema")
        .fetch_one(&mut *tx)
        .await
        .map_err(backend)?;
    let current = usize::try_from(current.unwrap_or(0))
        .map_err(|_| StoreError::Backend("the schema version is negative".to_owned()))?;
    let all = migrations();
    if current > all.len() {
        return Err(StoreError::Backend(format!(
            "the database has schema version {current}, newer than this program's {}; upgrade OpenKCM before \
             opening it",
            all.len()
        )));
    }
    for (i, sql) in all.iter().enumerate().skip(current) {
        sqlx::raw_sql(sql)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        sqlx::query("INSERT INTO openkcm_schema (version) VALUES ($1)")
            .bind(i32::try_from(i + 1).unwrap_or(i32::MAX))
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
    }
    tx.commit().await.map_err(backend)
}

#[async_trait]
impl KeyStore for PostgresStore {
    async fn get(
        &self,
        tenant: &str,
        kind: &str,
        id: &str,
        version: u32,
    ) -> Result<Option<Record>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM openkcm_records \
             WHERE tenant = $1 AND kind = $2 AND id = $3 AND version = $4"
        ))
        .bind(tenant)
        .bind(kind)
        .bind(id)
        .bind(i64::from(version))
        .fetch_optional(&self.pool)
        .await
        .map_err(backend)?;
        row.as_ref().map(decode).transpose()
    }

    async fn put_if_absent(&self, record: &Record) -> Result<bool, StoreError> {
        validate(record)?;
        let done = sqlx::query(
            "INSERT INTO openkcm_records (tenant, kind, id, version, metadata, blob, revision)
             VALUES ($1, $2, $3, $4, $5, $6, 1)
             ON CONFLICT (tenant, kind, id, version) DO NOTHING",
        )
        .bind(&record.tenant)
        .bind(&record.kind)
        .bind(&record.id)
        .bind(i64::from(record.version))
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
            "UPDATE openkcm_records SET metadata = $1, blob = $2, revision = $3
             WHERE tenant = $4 AND kind = $5 AND id = $6 AND version = $7 AND revision = $8",
        )
        .bind(metadata_param(record)?)
        .bind(blob_param(record))
        .bind(revision_param(next)?)
        .bind(&record.tenant)
        .bind(&record.kind)
        .bind(&record.id)
        .bind(i64::from(record.version))
        .bind(revision_param(expected_revision)?)
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        Ok(done.rows_affected() == 1)
    }

    async fn list(&self, tenant: &str, kind: &str) -> Result<Vec<Record>, StoreError> {
        // COLLATE "C": ids in bytewise order, as the trait promises, whatever the database's collation.
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM openkcm_records WHERE tenant = $1 AND kind = $2 \
             ORDER BY id COLLATE \"C\", version"
        ))
        .bind(tenant)
        .bind(kind)
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?;
        rows.iter().map(decode).collect()
    }

    async fn list_tenants(&self) -> Result<Vec<String>, StoreError> {
        sqlx::query_scalar(
            "SELECT DISTINCT tenant COLLATE \"C\" AS tenant FROM openkcm_records ORDER BY 1",
        )
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
            "DELETE FROM openkcm_records WHERE tenant = $1 AND kind = $2 AND id = $3 AND version = $4",
        )
        .bind(tenant)
        .bind(kind)
        .bind(id)
        .bind(i64::from(version))
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        Ok(done.rows_affected() == 1)
    }
}
