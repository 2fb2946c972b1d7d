//! The `file` seal provider — DEVELOPMENT ONLY. A random seal key lives in a plain file next to the sealed
//! MasterKey, so anyone who can read the data directory can unseal. It exists so that `openkcm dev` starts with
//! no ceremony; every start logs a warning saying so.

use super::{io, write_private, SealError};
use openkcm_crypto::{unwrap, wrap, EnvelopeHeader, Layer, SecretKey, WrappedKey};
use std::path::{Path, PathBuf};

/// Tenant name used in envelope headers of cluster-level keys.
pub const CLUSTER_TENANT: &str = "_cluster";
/// File name of the dev seal key.
pub const SEAL_KEY_FILE: &str = "file-seal.key";
/// File name of the MasterKey sealed by the dev seal key.
pub const BLOB_FILE: &str = "master-key.sealed";
/// Key id of the MasterKey in envelope headers.
pub const MASTER_KEY_ID: &str = "master-key";
const SEAL_KEY_ID: &str = "file-seal";

/// The file seal under `<data-dir>/seal/`: `file-seal.key` (the dev seal key) and `master-key.sealed`.
pub struct FileSeal {
    dir: PathBuf,
}

fn header() -> EnvelopeHeader {
    EnvelopeHeader {
        layer: Layer::MasterKeySealed,
        tenant: CLUSTER_TENANT.into(),
        key_id: MASTER_KEY_ID.into(),
        parent_id: SEAL_KEY_ID.into(),
        parent_version: 1,
    }
}

impl FileSeal {
    /// Whether the Core storage of this cluster was fully initialised once (see [`FileSeal::mark_initialised`]).
    /// Until then an empty Core store is the expected state of an interrupted first start, not a lost database.
    pub fn is_initialised(&self) -> bool {
        super::is_initialised(&self.dir)
    }

    /// Records that the Core storage holds this cluster's IVK.
    pub fn mark_initialised(&self) -> Result<(), SealError> {
        super::mark_initialised(&self.dir)
    }

    /// The directory of the seal files.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The seal under `dir`.
    pub fn new(dir: &Path) -> Self {
        Self {
            dir: dir.to_path_buf(),
        }
    }

    /// Unseals the MasterKey, initialising the cluster (new seal key and MK) on first use.
    /// Returns the MK and whether it was newly created.
    pub fn init_or_unseal(&self) -> Result<(SecretKey, bool), SealError> {
        std::fs::create_dir_all(&self.dir)
            .map_err(io(format!("cannot create {}", self.dir.display())))?;
        let key_path = self.dir.join(SEAL_KEY_FILE);
        let blob_path = self.dir.join(BLOB_FILE);
        if !blob_path.exists() && self.is_initialised() {
            return Err(SealError::Io {
                context: format!(
                    "{} is missing although this cluster was initialised: restore it from a backup (a new MasterKey \
                     would not open the existing keys)",
                    blob_path.display()
                ),
                source: std::io::Error::from(std::io::ErrorKind::NotFound),
            });
        }
        if !blob_path.exists() {
            // No sealed MasterKey: a new cluster. A seal key without a blob is what an interrupted first start
            // leaves behind; it never protected anything, so it is replaced. The blob's rename commits the init.
            let seal_key = SecretKey::generate()?;
            let mk = SecretKey::generate()?;
            let sealed = wrap(&seal_key, &header(), &mk)?;
            write_private(&key_path, seal_key.expose())?;
            write_private(&blob_path, sealed.as_bytes())?;
            return Ok((mk, true));
        }
        let mut raw = std::fs::read(&key_path).map_err(io(format!(
            "cannot read the seal key {}",
            key_path.display()
        )))?;
        let seal_key = SecretKey::from_slice(&raw);
        zeroize::Zeroize::zeroize(&mut raw);
        let seal_key = seal_key?;
        let blob = std::fs::read(&blob_path)
            .map_err(io(format!("cannot read {}", blob_path.display())))?;
        let wrapped = WrappedKey::from_stored(blob)?;
        Ok((unwrap(&seal_key, &wrapped, &header())?, false))
    }
}
