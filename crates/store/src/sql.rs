//! What the SQL backends (SQLite, PostgreSQL) share: the columns, how a record's fields become parameters, and
//! how a row's columns become a record (anything unexpected is corruption, never a panic).

use std::str::FromStr;

use openkcm_crypto::WrappedKey;

use crate::{record_name, Record, StoreError};

/// The records table's columns, in the order rows are read.
pub(crate) const COLUMNS: &str = "tenant, kind, id, version, metadata, blob, revision";

pub(crate) fn backend(e: sqlx::Error) -> StoreError {
    StoreError::Backend(e.to_string())
}

pub(crate) fn revision_param(revision: u64) -> Result<i64, StoreError> {
    i64::try_from(revision)
        .map_err(|_| StoreError::Invalid("its revision does not fit in 63 bits".to_owned()))
}

pub(crate) fn metadata_param(record: &Record) -> Result<String, StoreError> {
    serde_json::to_string(&record.metadata)
        .map_err(|e| StoreError::Invalid(format!("its metadata cannot be serialised: {e}")))
}

pub(crate) fn blob_param(record: &Record) -> Option<Vec<u8>> {
    record.blob.as_ref().map(|b| b.as_bytes().to_vec())
}

/// Decodes one row of [`COLUMNS`] (any sqlx backend whose text, bigint and blob columns read as `String`, `i64` and
/// `Vec<u8>`).
pub(crate) fn decode<'r, R>(row: &'r R) -> Result<Record, StoreError>
where
    R: sqlx::Row,
    &'r str: sqlx::ColumnIndex<R>,
    String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    Option<Vec<u8>>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    let tenant: String = row.try_get("tenant").map_err(backend)?;
    let kind: String = row.try_get("kind").map_err(backend)?;
    let id: String = row.try_get("id").map_err(backend)?;
    let raw_version: i64 = row.try_get("version").map_err(backend)?;
    let name = || record_name(&tenant, &kind, &id, u32::try_from(raw_version).unwrap_or(0));
    let corrupt = |reason: String| StoreError::Corrupt {
        record: name(),
        reason,
    };
    let version = u32::try_from(raw_version)
        .map_err(|_| corrupt(format!("its version {raw_version} is out of range")))?;
    let metadata: String = row.try_get("metadata").map_err(backend)?;
    let metadata = serde_json::Value::from_str(&metadata)
        .map_err(|e| corrupt(format!("its metadata is not JSON ({e})")))?;
    let blob: Option<Vec<u8>> = row.try_get("blob").map_err(backend)?;
    let blob = blob
        .map(WrappedKey::from_stored)
        .transpose()
        .map_err(|e| corrupt(format!("its wrapped key is invalid ({e})")))?;
    let raw_revision: i64 = row.try_get("revision").map_err(backend)?;
    let revision = u64::try_from(raw_revision)
        .map_err(|_| corrupt(format!("its revision {raw_revision} is negative")))?;
    Ok(Record {
        tenant,
        kind,
        id,
        version,
        metadata,
        blob,
        revision,
    })
}
