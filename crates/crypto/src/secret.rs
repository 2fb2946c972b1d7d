//! Secret containers: [`SecretKey`] (a locked, fixed-size 256-bit key) and [`SecretBytes`]
//! (a variable-length plaintext buffer that zeroizes on drop).

use std::fmt;

use zeroize::Zeroize;

use crate::error::CryptoError;
use crate::locked;

/// Length in bytes of every key this project handles (AES-256).
pub const KEY_LEN: usize = 32;

/// The key bytes, aligned to 32 so that one key never straddles two pages.
#[repr(C, align(32))]
struct KeyBuf([u8; KEY_LEN]);

/// A 256-bit secret key in locked memory.
///
/// The 32 bytes live in their own heap box that never moves or reallocates; the page holding
/// them is `mlock`ed and excluded from core dumps (`MADV_DONTDUMP`) while the key lives, and the
/// bytes are zeroized on drop. There is no `Clone` (use [`SecretKey::try_clone`] when a second
/// copy is really meant) and `Debug` never shows the bytes.
///
/// ```
/// use openkcm_crypto::SecretKey;
/// let key = SecretKey::generate()?;
/// assert_eq!(key.expose().len(), 32);
/// assert_eq!(format!("{key:?}"), "SecretKey([redacted])");
/// # Ok::<(), openkcm_crypto::CryptoError>(())
/// ```
pub struct SecretKey {
    buf: Box<KeyBuf>,
}

impl SecretKey {
    /// A zeroed key whose memory is already locked; filled in by the constructors.
    fn locked_zeroed() -> SecretKey {
        let buf = Box::new(KeyBuf([0u8; KEY_LEN]));
        locked::acquire(&buf.0);
        SecretKey { buf }
    }

    /// Generates a fresh key from the operating system's random number generator.
    ///
    /// The random bytes are written straight into the locked buffer.
    pub fn generate() -> Result<SecretKey, CryptoError> {
        let mut key = SecretKey::locked_zeroed();
        aws_lc_rs::rand::fill(&mut key.buf.0).map_err(|_| CryptoError::RandomUnavailable)?;
        Ok(key)
    }

    /// Copies exactly 32 bytes into a new locked key.
    ///
    /// The caller remains responsible for zeroizing its own copy of `bytes`.
    ///
    /// ```
    /// use openkcm_crypto::{CryptoError, SecretKey};
    /// assert!(SecretKey::from_slice(&[7u8; 32]).is_ok());
    /// assert!(matches!(SecretKey::from_slice(&[7u8; 31]), Err(CryptoError::InvalidKeyLength { .. })));
    /// ```
    pub fn from_slice(bytes: &[u8]) -> Result<SecretKey, CryptoError> {
        if bytes.len() != KEY_LEN {
            return Err(CryptoError::InvalidKeyLength {
                expected: KEY_LEN,
                actual: bytes.len(),
            });
        }
        let mut key = SecretKey::locked_zeroed();
        key.buf.0.copy_from_slice(bytes);
        Ok(key)
    }

    /// The key bytes. Do not copy them into unlocked memory that outlives the call.
    pub fn expose(&self) -> &[u8; KEY_LEN] {
        &self.buf.0
    }

    /// Mutable access for in-place decryption into locked memory (crate only).
    pub(crate) fn expose_mut(&mut self) -> &mut [u8; KEY_LEN] {
        &mut self.buf.0
    }

    /// A zeroed, locked key for callers in this crate that fill it themselves.
    pub(crate) fn empty_locked() -> SecretKey {
        SecretKey::locked_zeroed()
    }

    /// An explicit second copy of this key, in its own locked buffer.
    ///
    /// Fallible for symmetry with the other constructors; today it cannot fail.
    pub fn try_clone(&self) -> Result<SecretKey, CryptoError> {
        let mut key = SecretKey::locked_zeroed();
        key.buf.0.copy_from_slice(&self.buf.0);
        Ok(key)
    }
}

impl Drop for SecretKey {
    fn drop(&mut self) {
        self.buf.0.zeroize();
        locked::release(&self.buf.0);
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretKey([redacted])")
    }
}

/// A variable-length secret (for example decrypted data) that is zeroized on drop.
///
/// It is built from a `Vec<u8>` that is never grown afterwards, so no copy is left behind by a
/// reallocation. It is not page-locked (plaintexts can be large); keys belong in [`SecretKey`].
/// There is deliberately no way to take the `Vec` back out.
///
/// ```
/// use openkcm_crypto::SecretBytes;
/// let s = SecretBytes::new(b"attack at dawn".to_vec());
/// assert_eq!(s.expose(), b"attack at dawn");
/// assert_eq!(format!("{s:?}"), "SecretBytes([redacted])");
/// ```
pub struct SecretBytes {
    bytes: Vec<u8>,
}

impl SecretBytes {
    /// Takes ownership of `bytes`; they are zeroized when the value is dropped.
    pub fn new(bytes: Vec<u8>) -> SecretBytes {
        SecretBytes { bytes }
    }

    /// Copies `bytes` into a new secret buffer.
    pub fn from_slice(bytes: &[u8]) -> SecretBytes {
        SecretBytes {
            bytes: bytes.to_vec(),
        }
    }

    /// The secret bytes.
    pub fn expose(&self) -> &[u8] {
        &self.bytes
    }

    /// Mutable access for decrypting in place (crate only).
    pub(crate) fn expose_mut(&mut self) -> &mut [u8] {
        &mut self.bytes
    }

    /// Number of bytes held.
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// Whether the buffer is empty.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }
}

impl From<Vec<u8>> for SecretBytes {
    fn from(bytes: Vec<u8>) -> SecretBytes {
        SecretBytes::new(bytes)
    }
}

impl Drop for SecretBytes {
    fn drop(&mut self) {
        // Zeroizes the whole capacity, not only the initialised length.
        self.bytes.zeroize();
    }
}

impl fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretBytes([redacted])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_of_secret_key_does_not_contain_the_key_hex() {
        let key = SecretKey::from_slice(&[0xABu8; 32]).unwrap();
        let shown = format!("{key:?} {key:#?}");
        assert!(!shown.to_lowercase().contains("abab"));
        assert!(!shown.contains("171"));
        assert_eq!(format!("{key:?}"), "SecretKey([redacted])");
    }

    #[test]
    fn from_slice_rejects_wrong_lengths() {
        for len in [0usize, 1, 16, 31, 33, 64] {
            let err = SecretKey::from_slice(&vec![1u8; len]).unwrap_err();
            assert_eq!(
                err,
                CryptoError::InvalidKeyLength {
                    expected: 32,
                    actual: len
                }
            );
        }
    }

    #[test]
    fn generated_keys_differ_and_try_clone_copies() {
        let a = SecretKey::generate().unwrap();
        let b = SecretKey::generate().unwrap();
        assert_ne!(a.expose(), b.expose());
        let c = a.try_clone().unwrap();
        assert_eq!(a.expose(), c.expose());
        assert_ne!(a.expose().as_ptr(), c.expose().as_ptr());
    }

    #[test]
    fn key_buffer_is_aligned_so_it_sits_in_one_page() {
        let keys: Vec<SecretKey> = (0..256).map(|_| SecretKey::generate().unwrap()).collect();
        for k in &keys {
            assert_eq!(k.expose().as_ptr() as usize % 32, 0);
        }
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_live_key_is_really_locked_when_mlock_is_available() {
        let key = SecretKey::generate().unwrap();
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let locked_kb: u64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmLck:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap();
        if crate::mlock_available() {
            assert!(locked_kb >= 4, "VmLck is {locked_kb} kB while a key lives");
        }
        drop(key);
    }

    #[test]
    fn secret_bytes_debug_is_redacted() {
        let s = SecretBytes::from_slice(b"plaintext");
        assert_eq!(format!("{s:?}"), "SecretBytes([redacted])");
        assert_eq!(s.len(), 9);
        assert!(!s.is_empty());
    }
}
