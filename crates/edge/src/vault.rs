//! Guarding a persistent edge vault against being silently replaced.
//!
//! The vault is the only copy of the wrapped data keys. On first use it receives a marker record and a marker file
//! is written beside it; later, a vault without its record (deleted, emptied or swapped database) is refused instead
//! of being used as an empty vault.

use openkcm_store::{KeyStore, Record, StoreError};
use std::path::{Path, PathBuf};

/// Why a vault cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ClaimError {
    /// The vault lost its marker record although the marker file says it held keys.
    #[error(
        "{vault} is missing, empty or was replaced, although this edge stored keys in it: restore it (with its -wal \
         file) from a backup, or delete {} to start again with an empty vault (every data key is then lost)",
        marker.display()
    )]
    Replaced {
        /// What the vault is (for a file-backed vault, its path).
        vault: String,
        /// The marker file.
        marker: PathBuf,
    },
    /// The vault could not be read or written.
    #[error("{0}")]
    Store(#[from] StoreError),
    /// The marker file could not be written.
    #[error("cannot write {path}: {cause}")]
    Marker {
        /// The marker file.
        path: PathBuf,
        /// The I/O error.
        cause: std::io::Error,
    },
}

const TENANT: &str = "_edge";
const KIND: &str = "meta";
const ID: &str = "vault";

/// Claims `vault` (described as `name` in errors) for this edge: marks a new vault, accepts a marked one, refuses one
/// that lost its mark while the file `marker` exists.
pub async fn claim_vault(
    vault: &dyn KeyStore,
    name: &str,
    marker: &Path,
) -> Result<(), ClaimError> {
    if vault.get(TENANT, KIND, ID, 0).await?.is_none() {
        if marker.exists() {
            return Err(ClaimError::Replaced {
                vault: name.to_owned(),
                marker: marker.to_path_buf(),
            });
        }
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let record = Record {
            tenant: TENANT.into(),
            kind: KIND.into(),
            id: ID.into(),
            version: 0,
            metadata: serde_json::json!({ "created_at": now }),
            blob: None,
            revision: 0,
        };
        vault.put_if_absent(&record).await?;
    }
    if !marker.exists() {
        std::fs::write(marker, b"").map_err(|cause| ClaimError::Marker {
            path: marker.to_path_buf(),
            cause,
        })?;
    }
    Ok(())
}
