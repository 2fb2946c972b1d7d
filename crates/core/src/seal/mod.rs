//! Sealing the MasterKey (DESIGN §3): where the node's root of trust comes from at start.
//!
//! * [`file`] — development only: the seal key sits in a file next to the sealed MK (`openkcm dev` default).
//! * [`auto`] — auto-unseal: MK sealed through an external KMS/HSM key (DESIGN §3.3).
//! * [`shamir`] — the M-of-N key ceremony, age-encrypted shares with signed headers, the signed manifest with the
//!   MK check value, and the unseal rules.
//! * [`node`] — the node's seal state (sealed / unsealed), the unseal progress, and the Core it opens once the
//!   MasterKey is back; what the operator API and the KMIP listeners consult.

pub mod auto;
pub mod file;
pub mod node;
pub mod shamir;

pub use auto::ProviderSeal;
pub use file::FileSeal;
pub use node::{AutoSeal, CoreOpener, Node, SealContext, SealMode, SealStatus};

use std::path::Path;

/// Errors of sealing and unsealing. Messages never contain key or share bytes.
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    /// File I/O.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// Cause.
        source: std::io::Error,
    },
    /// Crypto failure (wrong seal key, corrupt blob).
    #[error("the sealed MasterKey cannot be opened (the blob is corrupt or was sealed with another seal key): {0}")]
    Crypto(#[from] openkcm_crypto::CryptoError),
    /// A request or a file that cannot be used (bad parameters, bad recipient, corrupt manifest …).
    #[error("{0}")]
    Invalid(String),
    /// The seal provider refused or failed (the normalised error says whether a retry can help).
    #[error("{0}")]
    Provider(String, openkcm_providers::ProviderError),
}

impl SealError {
    /// Whether trying again later can help (the seal provider is unreachable or throttling).
    pub fn is_retryable(&self) -> bool {
        matches!(self, SealError::Provider(_, e) if e.is_retryable())
    }
}

pub(crate) fn io(context: String) -> impl FnOnce(std::io::Error) -> SealError {
    move |source| SealError::Io { context, source }
}

/// Writes `bytes` (mode 0600) so that a crash leaves either no file or the complete one: a temporary file is
/// written and synced, then renamed into place, then the directory is synced.
pub fn write_private(path: &Path, bytes: &[u8]) -> Result<(), SealError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(io(format!("cannot create {}", tmp.display())))?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .map_err(io(format!("cannot write {}", tmp.display())))?;
    std::fs::rename(&tmp, path).map_err(io(format!("cannot create {}", path.display())))?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io(format!("cannot sync {}", dir.display())))?;
    }
    Ok(())
}

const INITIALISED_MARKER: &str = "cluster.initialised";

/// Whether the Core storage of the cluster whose seal lives in `dir` was fully initialised once (see
/// [`mark_initialised`]). Until then an empty Core store is the expected state of an interrupted first start, not a
/// lost database.
pub fn is_initialised(dir: &Path) -> bool {
    dir.join(INITIALISED_MARKER).exists()
}

/// Records that the Core storage holds this cluster's IVK.
pub fn mark_initialised(dir: &Path) -> Result<(), SealError> {
    if is_initialised(dir) {
        return Ok(());
    }
    write_private(&dir.join(INITIALISED_MARKER), b"")
}
