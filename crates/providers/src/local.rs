//! The `local` key provider — **FOR DEVELOPMENT ONLY. NEVER USE IT IN PRODUCTION.**
//!
//! Each key is a plain file `<dir>/<key_id>.key` holding 32 random bytes, so anyone who can read
//! the directory holds the "customer root key", and there is no sovereignty, audit or hardware
//! protection at all. It exists so that `openkcm dev` and the tests can exercise the full L1 path
//! (wrap, unwrap, disable, delete) without a cloud KMS. Constructing one logs a warning.
//!
//! * Key ids are limited to `[A-Za-z0-9._-]{1,128}`, and the `.key` suffix is always appended,
//!   so an id can never name a path outside `dir`.
//! * Key files are created with mode 0600 (the directory with 0700), written to a temporary file
//!   and linked into place atomically, so a reader never sees a half-written key.
//! * Ciphertext is `nonce (12) ‖ AES-256-GCM ciphertext ‖ tag (16)`; the AAD is the context pairs
//!   sorted and length-prefixed, so the order in which a caller lists them does not matter.
//! * Renaming `<key_id>.key` to `<key_id>.key.disabled` simulates the customer disabling the key
//!   ([`ProviderError::Disabled`]); deleting the file simulates deletion ([`ProviderError::NotFound`]).
//!
//! All file I/O runs on tokio's blocking pool.

use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use openkcm_crypto::{aes, CryptoError, SecretBytes, SecretKey, KEY_LEN, NONCE_LEN, TAG_LEN};
use zeroize::Zeroize;

use crate::{KeyDescription, KeyProvider, KeyRef, ProviderError};

/// The driver name used in [`KeyRef::provider`].
pub const NAME: &str = "local";

/// Longest accepted key id.
pub const MAX_KEY_ID_LEN: usize = 128;

/// Domain separator at the start of the encoded context (the AAD).
const CONTEXT_DOMAIN: &[u8] = b"openkcm-local-provider-context-v1";

/// A development key provider backed by key files in one directory. See the module docs.
#[derive(Debug, Clone)]
pub struct LocalProvider {
    dir: PathBuf,
}

impl LocalProvider {
    /// A provider keeping its key files in `dir` (created on the first [`KeyProvider::create`]).
    pub fn new(dir: PathBuf) -> LocalProvider {
        tracing::warn!(
            dir = %dir.display(),
            "the local key provider keeps root keys in plain files: for development only, never production"
        );
        LocalProvider { dir }
    }

    /// The directory holding the key files.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn check_ref(&self, key: &KeyRef) -> Result<(), ProviderError> {
        if key.provider != NAME {
            return Err(ProviderError::Invalid(format!(
                "the key reference names provider {:?}, but this is the {NAME:?} provider",
                key.provider
            )));
        }
        validate_key_id(&key.key_id)
    }

    async fn load(&self, key: &KeyRef) -> Result<SecretKey, ProviderError> {
        self.check_ref(key)?;
        let dir = self.dir.clone();
        let id = key.key_id.clone();
        blocking(move || read_key(&dir, &id)).await
    }
}

/// Checks that `key_id` matches `[A-Za-z0-9._-]{1,128}`.
///
/// ```
/// use openkcm_providers::local::validate_key_id;
/// assert!(validate_key_id("acme.billing-1").is_ok());
/// assert!(validate_key_id("../etc/passwd").is_err());
/// ```
pub fn validate_key_id(key_id: &str) -> Result<(), ProviderError> {
    let ok_len = !key_id.is_empty() && key_id.len() <= MAX_KEY_ID_LEN;
    let ok_chars = key_id
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok_len && ok_chars {
        Ok(())
    } else {
        Err(ProviderError::Invalid(format!(
            "the key id must be 1 to {MAX_KEY_ID_LEN} characters from A-Z, a-z, 0-9, '.', '_' and '-' \
             ({} bytes given)",
            key_id.len()
        )))
    }
}

/// The canonical AAD for a context: domain ‖ count ‖ (len ‖ key ‖ len ‖ value)* with the pairs
/// sorted, all lengths u32 big-endian.
fn encode_context(context: &[(String, String)]) -> Result<Vec<u8>, ProviderError> {
    crate::canonical_context_with(CONTEXT_DOMAIN, context)
}

fn key_path(dir: &Path, id: &str) -> PathBuf {
    dir.join(format!("{id}.key"))
}

fn disabled_path(dir: &Path, id: &str) -> PathBuf {
    dir.join(format!("{id}.key.disabled"))
}

/// Maps an I/O error on key `id` to the provider error class the Core acts on.
fn io_error(id: &str, e: &io::Error) -> ProviderError {
    match e.kind() {
        io::ErrorKind::NotFound => ProviderError::NotFound(format!("no key file for key {id:?}")),
        io::ErrorKind::PermissionDenied => {
            ProviderError::Denied(format!("the key file for key {id:?} is not accessible"))
        }
        _ => ProviderError::Unavailable(format!("reading the key file for key {id:?} failed: {e}")),
    }
}

/// Missing key file: Disabled if the `.disabled` twin exists, otherwise NotFound.
fn missing(dir: &Path, id: &str) -> ProviderError {
    if disabled_path(dir, id).is_file() {
        ProviderError::Disabled(format!("key {id:?} has been disabled"))
    } else {
        ProviderError::NotFound(format!("no key file for key {id:?}"))
    }
}

fn read_key(dir: &Path, id: &str) -> Result<SecretKey, ProviderError> {
    let mut file = match fs::File::open(key_path(dir, id)) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(missing(dir, id)),
        Err(e) => return Err(io_error(id, &e)),
    };
    let meta = file.metadata().map_err(|e| io_error(id, &e))?;
    if !meta.is_file() || meta.len() != KEY_LEN as u64 {
        return Err(ProviderError::Invalid(format!(
            "the key file for key {id:?} is not a {KEY_LEN}-byte regular file"
        )));
    }
    let mut buf = [0u8; KEY_LEN];
    let read = file.read_exact(&mut buf);
    let key = read
        .map_err(|e| io_error(id, &e))
        .and_then(|()| SecretKey::from_slice(&buf).map_err(crypto_error));
    buf.zeroize();
    key
}

fn describe_key(dir: &Path, id: &str) -> Result<KeyDescription, ProviderError> {
    match fs::metadata(key_path(dir, id)) {
        Ok(meta) if meta.is_file() && meta.len() == KEY_LEN as u64 => Ok(KeyDescription {
            key_id: id.to_owned(),
            enabled: true,
            version: None,
        }),
        Ok(_) => Err(ProviderError::Invalid(format!(
            "the key file for key {id:?} is not a {KEY_LEN}-byte regular file"
        ))),
        Err(e) if e.kind() == io::ErrorKind::NotFound => match missing(dir, id) {
            ProviderError::Disabled(_) => Ok(KeyDescription {
                key_id: id.to_owned(),
                enabled: false,
                version: None,
            }),
            other => Err(other),
        },
        Err(e) => Err(io_error(id, &e)),
    }
}

#[cfg(unix)]
fn create_dir(dir: &Path) -> io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

#[cfg(not(unix))]
fn create_dir(dir: &Path) -> io::Result<()> {
    fs::create_dir_all(dir)
}

#[cfg(unix)]
fn create_new_private(path: &Path) -> io::Result<fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
}

#[cfg(not(unix))]
fn create_new_private(path: &Path) -> io::Result<fs::File> {
    fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
}

fn create_key(dir: &Path, id: &str) -> Result<(), ProviderError> {
    let unavailable =
        |e: io::Error| ProviderError::Unavailable(format!("creating key {id:?} failed: {e}"));
    let final_path = key_path(dir, id);
    if final_path.is_file() {
        return Ok(());
    }
    if disabled_path(dir, id).is_file() {
        return Err(missing(dir, id));
    }
    create_dir(dir).map_err(unavailable)?;
    let suffix = aes::random_bytes::<8>().map_err(crypto_error)?;
    let tmp = dir.join(format!(
        ".{id}.key.tmp-{}",
        suffix
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    ));
    let written = (|| {
        let key = SecretKey::generate().map_err(|e| io::Error::other(e.to_string()))?;
        let mut file = create_new_private(&tmp)?;
        file.write_all(key.expose())?;
        file.sync_all()?;
        // A hard link never replaces an existing file, so of two racing creators one wins and
        // the other keeps the winner's key.
        match fs::hard_link(&tmp, &final_path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
            Err(e) => Err(e),
        }
    })();
    let _ = fs::remove_file(&tmp);
    written.map_err(unavailable)?;
    #[cfg(unix)]
    if let Ok(d) = fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

fn crypto_error(e: CryptoError) -> ProviderError {
    match e {
        CryptoError::AuthenticationFailed => ProviderError::Invalid(
            "the ciphertext does not authenticate under this key and context".to_owned(),
        ),
        CryptoError::RandomUnavailable | CryptoError::Internal { .. } => {
            ProviderError::Unavailable(e.to_string())
        }
        other => ProviderError::Invalid(other.to_string()),
    }
}

async fn blocking<T, F>(f: F) -> Result<T, ProviderError>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, ProviderError> + Send + 'static,
{
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ProviderError::Unavailable(format!("the key file task did not finish: {e}")))?
}

#[async_trait]
impl KeyProvider for LocalProvider {
    fn name(&self) -> &str {
        NAME
    }

    async fn describe(&self, key: &KeyRef) -> Result<KeyDescription, ProviderError> {
        self.check_ref(key)?;
        let dir = self.dir.clone();
        let id = key.key_id.clone();
        blocking(move || describe_key(&dir, &id)).await
    }

    async fn encrypt(
        &self,
        key: &KeyRef,
        plaintext: &[u8],
        context: &[(String, String)],
    ) -> Result<Vec<u8>, ProviderError> {
        let aad = encode_context(context)?;
        let secret = self.load(key).await?;
        let nonce = aes::random_bytes::<NONCE_LEN>().map_err(crypto_error)?;
        let (ct, tag) = aes::gcm_seal(&secret, &nonce, &aad, plaintext).map_err(crypto_error)?;
        let mut out = Vec::with_capacity(NONCE_LEN + ct.len() + TAG_LEN);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ct);
        out.extend_from_slice(&tag);
        Ok(out)
    }

    async fn decrypt(
        &self,
        key: &KeyRef,
        ciphertext: &[u8],
        context: &[(String, String)],
    ) -> Result<SecretBytes, ProviderError> {
        let aad = encode_context(context)?;
        let too_short = || {
            ProviderError::Invalid(format!(
                "the ciphertext is {} bytes, shorter than a nonce and a tag ({})",
                ciphertext.len(),
                NONCE_LEN + TAG_LEN
            ))
        };
        let (nonce, rest) = ciphertext
            .split_at_checked(NONCE_LEN)
            .ok_or_else(too_short)?;
        let split = rest.len().checked_sub(TAG_LEN).ok_or_else(too_short)?;
        let (ct, tag) = rest.split_at_checked(split).ok_or_else(too_short)?;
        let secret = self.load(key).await?;
        aes::gcm_open(&secret, nonce, &aad, ct, tag).map_err(crypto_error)
    }

    async fn create(&self, key_id: &str) -> Result<KeyRef, ProviderError> {
        validate_key_id(key_id)?;
        let dir = self.dir.clone();
        let id = key_id.to_owned();
        blocking(move || create_key(&dir, &id)).await?;
        Ok(KeyRef {
            provider: NAME.to_owned(),
            key_id: key_id.to_owned(),
            region: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn context_encoding_is_sorted_and_length_prefixed() {
        let a = encode_context(&ctx(&[("b", "2"), ("a", "1")])).unwrap();
        let b = encode_context(&ctx(&[("a", "1"), ("b", "2")])).unwrap();
        assert_eq!(a, b);
        let mut expected = CONTEXT_DOMAIN.to_vec();
        expected.extend_from_slice(&[0, 0, 0, 2]);
        expected.extend_from_slice(&[0, 0, 0, 1, b'a', 0, 0, 0, 1, b'1']);
        expected.extend_from_slice(&[0, 0, 0, 1, b'b', 0, 0, 0, 1, b'2']);
        assert_eq!(a, expected);
        // Length prefixes keep ("ab","c") and ("a","bc") apart.
        assert_ne!(
            encode_context(&ctx(&[("ab", "c")])).unwrap(),
            encode_context(&ctx(&[("a", "bc")])).unwrap()
        );
        assert_ne!(
            encode_context(&[]).unwrap(),
            encode_context(&ctx(&[("", "")])).unwrap()
        );
    }
}
