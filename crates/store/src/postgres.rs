//! The PostgreSQL backend (DESIGN §5.2): one table keyed by `(tenant, kind, id, version)` and partitioned by a hash
//! of the tenant (16 partitions), so that a tenant's rows stay together and tables stay small with many tenants.
//! Several Core processes may share one database: inserts and compare-and-set updates are single statements, atomic
//! in PostgreSQL, and the schema migrations run under an advisory lock.

use std::str::FromStr;

use async_trait::async_trait;
use sqlx::postgres::{PgPool, PgPoolOptions};

use crate::sql::{backend, blob_param, decode, metadata_param, revision_param, COLUMNS};
use crate::{validate, KeyStore, Record, RecordKey, StoreError};
use std::collections::{HashMap, HashSet};

/// Key columns of a batch, as PostgreSQL arrays (bound to `UNNEST`).
#[derive(Default)]
struct KeyArrays {
    tenants: Vec<String>,
    kinds: Vec<String>,
    ids: Vec<String>,
    versions: Vec<i64>,
}

impl KeyArrays {
    fn push(&mut self, tenant: &str, kind: &str, id: &str, version: u32) {
        self.tenants.push(tenant.to_owned());
        self.kinds.push(kind.to_owned());
        self.ids.push(id.to_owned());
        self.versions.push(i64::from(version));
    }
}

/// The keys a `RETURNING tenant, kind, id, version` answered.
fn returned_keys(rows: &[sqlx::postgres::PgRow]) -> Result<HashSet<RecordKey>, StoreError> {
    use sqlx::Row;
    rows.iter()
        .map(|row| {
            let version: i64 = row.try_get("version").map_err(backend)?;
            Ok(RecordKey {
                tenant: row.try_get("tenant").map_err(backend)?,
                kind: row.try_get("kind").map_err(backend)?,
                id: row.try_get("id").map_err(backend)?,
                version: u32::try_from(version).map_err(|_| {
                    StoreError::Backend("a returned version is out of range".into())
                })?,
            })
        })
        .collect()
}

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

    // The batch forms: one statement each, the rows given as arrays to UNNEST (partitions are pruned per row at
    // execution time).

    async fn get_many(&self, keys: &[RecordKey]) -> Result<Vec<Option<Record>>, StoreError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let mut k = KeyArrays::default();
        for key in keys {
            k.push(&key.tenant, &key.kind, &key.id, key.version);
        }
        let rows = sqlx::query(
            "SELECT r.tenant, r.kind, r.id, r.version, r.metadata, r.blob, r.revision \
             FROM UNNEST($1::text[], $2::text[], $3::text[], $4::bigint[]) AS k(tenant, kind, id, version) \
             JOIN openkcm_records r \
               ON r.tenant = k.tenant AND r.kind = k.kind AND r.id = k.id AND r.version = k.version",
        )
        .bind(&k.tenants)
        .bind(&k.kinds)
        .bind(&k.ids)
        .bind(&k.versions)
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?;
        let mut found: HashMap<RecordKey, Record> = HashMap::with_capacity(rows.len());
        for row in &rows {
            let record = decode(row)?;
            found.insert(RecordKey::of(&record), record);
        }
        Ok(keys.iter().map(|key| found.get(key).cloned()).collect())
    }

    async fn put_many_if_absent(&self, records: &[Record]) -> Result<Vec<bool>, StoreError> {
        if records.is_empty() {
            return Ok(Vec::new());
        }
        let mut k = KeyArrays::default();
        let mut metadata = Vec::with_capacity(records.len());
        let mut blobs = Vec::with_capacity(records.len());
        for r in records {
            validate(r)?;
            k.push(&r.tenant, &r.kind, &r.id, r.version);
            metadata.push(metadata_param(r)?);
            blobs.push(blob_param(r));
        }
        let rows = sqlx::query(
            "INSERT INTO openkcm_records (tenant, kind, id, version, metadata, blob, revision) \
             SELECT tenant, kind, id, version, metadata, blob, 1 \
             FROM UNNEST($1::text[], $2::text[], $3::text[], $4::bigint[], $5::text[], $6::bytea[]) \
               AS u(tenant, kind, id, version, metadata, blob) \
             ON CONFLICT (tenant, kind, id, version) DO NOTHING \
             RETURNING tenant, kind, id, version",
        )
        .bind(&k.tenants)
        .bind(&k.kinds)
        .bind(&k.ids)
        .bind(&k.versions)
        .bind(&metadata)
        .bind(&blobs)
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?;
        // A key repeated in the batch was inserted once: the first occurrence says so.
        let mut inserted = returned_keys(&rows)?;
        Ok(records
            .iter()
            .map(|r| inserted.remove(&RecordKey::of(r)))
            .collect())
    }

    async fn compare_and_set_many(&self, items: &[(Record, u64)]) -> Result<Vec<bool>, StoreError> {
        if items.is_empty() {
            return Ok(Vec::new());
        }
        let mut k = KeyArrays::default();
        let (mut metadata, mut blobs) = (Vec::new(), Vec::new());
        let (mut expected, mut next) = (Vec::new(), Vec::new());
        for (r, exp) in items {
            validate(r)?;
            k.push(&r.tenant, &r.kind, &r.id, r.version);
            metadata.push(metadata_param(r)?);
            blobs.push(blob_param(r));
            expected.push(revision_param(*exp)?);
            next.push(revision_param(crate::next_revision(*exp)?)?);
        }
        let rows = sqlx::query(
            "UPDATE openkcm_records r SET metadata = u.metadata, blob = u.blob, revision = u.next \
             FROM UNNEST($1::text[], $2::text[], $3::text[], $4::bigint[], $5::text[], $6::bytea[], $7::bigint[], \
                         $8::bigint[]) AS u(tenant, kind, id, version, metadata, blob, expected, next) \
             WHERE r.tenant = u.tenant AND r.kind = u.kind AND r.id = u.id AND r.version = u.version \
               AND r.revision = u.expected \
             RETURNING r.tenant, r.kind, r.id, r.version",
        )
        .bind(&k.tenants)
        .bind(&k.kinds)
        .bind(&k.ids)
        .bind(&k.versions)
        .bind(&metadata)
        .bind(&blobs)
        .bind(&expected)
        .bind(&next)
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?;
        let replaced = returned_keys(&rows)?;
        Ok(items
            .iter()
            .map(|(r, _)| replaced.contains(&RecordKey::of(r)))
            .collect())
    }

    async fn delete_many(&self, keys: &[RecordKey]) -> Result<Vec<bool>, StoreError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let mut k = KeyArrays::default();
        for key in keys {
            k.push(&key.tenant, &key.kind, &key.id, key.version);
        }
        let rows = sqlx::query(
            "DELETE FROM openkcm_records r \
             USING UNNEST($1::text[], $2::text[], $3::text[], $4::bigint[]) AS k(tenant, kind, id, version) \
             WHERE r.tenant = k.tenant AND r.kind = k.kind AND r.id = k.id AND r.version = k.version \
             RETURNING r.tenant, r.kind, r.id, r.version",
        )
        .bind(&k.tenants)
        .bind(&k.kinds)
        .bind(&k.ids)
        .bind(&k.versions)
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?;
        let deleted = returned_keys(&rows)?;
        Ok(keys.iter().map(|key| deleted.contains(key)).collect())
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
