//! What the MasterKey vouches for without being revealed (DESIGN §3.2): keys derived from MK with HKDF-SHA-256
//! under a purpose label, the MK **check value** of the ceremony manifest, and the cluster's Ed25519 **ceremony
//! key** that signs share headers and the manifest.
//!
//! The check value is an AES-256-GCM encryption of a fixed string under a key derived from MK — never MK or a plain
//! hash of it — so a reconstructed MK can be recognised as right or wrong while the stored value tells an attacker
//! nothing an exhaustive search over 2^256 keys would not. The ceremony key is derived from MK too, so no extra
//! secret has to be stored: anyone holding the unsealed MK can sign, anyone holding the public key can verify.
//!
//! ```
//! use openkcm_crypto::{derived, SecretKey};
//! let mk = SecretKey::generate()?;
//! let cv = derived::check_value(&mk)?;
//! assert!(derived::verify_check_value(&mk, &cv));
//! assert!(!derived::verify_check_value(&SecretKey::generate()?, &cv));
//!
//! let ceremony = derived::CeremonyKey::derive(&mk)?;
//! let sig = ceremony.sign(b"share header");
//! assert!(derived::verify_signature(&ceremony.public_key(), b"share header", &sig));
//! # Ok::<(), openkcm_crypto::CryptoError>(())
//! ```

use crate::{aes, CryptoError, SecretKey, KEY_LEN};
use aws_lc_rs::hkdf;
use aws_lc_rs::signature::{self, Ed25519KeyPair, KeyPair};

/// Salt of every derivation from the MasterKey (fixed: MK is already uniformly random).
const SALT: &[u8] = b"openkcm master-key derivation v1";
/// The string the check value encrypts.
const CHECK_PLAINTEXT: &[u8] = b"OpenKCM MasterKey check value v1";
/// Length of an Ed25519 public key.
pub const PUBLIC_KEY_LEN: usize = 32;
/// Length of an Ed25519 signature.
pub const SIGNATURE_LEN: usize = 64;
/// Length of a check value: nonce, ciphertext of the fixed string, tag.
pub const CHECK_VALUE_LEN: usize = 12 + CHECK_PLAINTEXT.len() + 16;

/// Derives a 256-bit key for `purpose` from `mk` (HKDF-SHA-256). Different purposes give independent keys.
pub fn derive_key(mk: &SecretKey, purpose: &str) -> Result<SecretKey, CryptoError> {
    let internal = |operation| CryptoError::Internal { operation };
    let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, SALT).extract(mk.expose());
    let info = [purpose.as_bytes()];
    let okm = prk
        .expand(&info, hkdf::HKDF_SHA256)
        .map_err(|_| internal("expand an HKDF key"))?;
    let mut out = SecretKey::empty_locked();
    okm.fill(out.expose_mut())
        .map_err(|_| internal("fill an HKDF output"))?;
    Ok(out)
}

/// The check value of `mk`: nonce ‖ AES-256-GCM(derive(mk, "check-value"), fixed string) ‖ tag.
pub fn check_value(mk: &SecretKey) -> Result<Vec<u8>, CryptoError> {
    let key = derive_key(mk, "check-value")?;
    let nonce = aes::random_bytes::<12>()?;
    let (ct, tag) = aes::gcm_seal(&key, &nonce, b"", CHECK_PLAINTEXT)?;
    let mut out = Vec::with_capacity(CHECK_VALUE_LEN);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&ct);
    out.extend_from_slice(&tag);
    Ok(out)
}

/// Whether `check` is the check value of `mk`. Any malformed or foreign value is simply `false`.
pub fn verify_check_value(mk: &SecretKey, check: &[u8]) -> bool {
    if check.len() != CHECK_VALUE_LEN {
        return false;
    }
    let Ok(key) = derive_key(mk, "check-value") else {
        return false;
    };
    let (nonce, rest) = check.split_at(12);
    let (ct, tag) = rest.split_at(CHECK_PLAINTEXT.len());
    matches!(aes::gcm_open(&key, nonce, b"", ct, tag), Ok(pt) if pt.expose() == CHECK_PLAINTEXT)
}

/// The cluster's Ed25519 ceremony key, derived from MK: signs share headers and ceremony manifests.
pub struct CeremonyKey {
    pair: Ed25519KeyPair,
}

impl std::fmt::Debug for CeremonyKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CeremonyKey(public {})", hex_short(&self.public_key()))
    }
}

fn hex_short(bytes: &[u8]) -> String {
    bytes.iter().take(8).map(|b| format!("{b:02x}")).collect()
}

impl CeremonyKey {
    /// The ceremony key of the cluster whose MasterKey is `mk`.
    pub fn derive(mk: &SecretKey) -> Result<Self, CryptoError> {
        let seed = derive_key(mk, "ceremony-ed25519")?;
        let pair =
            Ed25519KeyPair::from_seed_unchecked(&seed.expose()[..KEY_LEN]).map_err(|_| {
                CryptoError::Internal {
                    operation: "build an Ed25519 key from a seed",
                }
            })?;
        Ok(Self { pair })
    }

    /// The public key (32 bytes).
    pub fn public_key(&self) -> [u8; PUBLIC_KEY_LEN] {
        let mut out = [0u8; PUBLIC_KEY_LEN];
        let pk = self.pair.public_key().as_ref();
        if pk.len() == PUBLIC_KEY_LEN {
            out.copy_from_slice(pk);
        }
        out
    }

    /// Signs `message` (64-byte Ed25519 signature).
    pub fn sign(&self, message: &[u8]) -> [u8; SIGNATURE_LEN] {
        let mut out = [0u8; SIGNATURE_LEN];
        let sig = self.pair.sign(message);
        if sig.as_ref().len() == SIGNATURE_LEN {
            out.copy_from_slice(sig.as_ref());
        }
        out
    }
}

/// Whether `sig` is a valid Ed25519 signature of `message` under `public_key`. Malformed input is `false`.
pub fn verify_signature(public_key: &[u8], message: &[u8], sig: &[u8]) -> bool {
    signature::UnparsedPublicKey::new(&signature::ED25519, public_key)
        .verify(message, sig)
        .is_ok()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn derivation_depends_on_key_and_purpose() {
        let mk = SecretKey::from_slice(&[1u8; 32]).unwrap();
        let a = derive_key(&mk, "a").unwrap();
        let a2 = derive_key(&mk, "a").unwrap();
        let b = derive_key(&mk, "b").unwrap();
        let other = derive_key(&SecretKey::from_slice(&[2u8; 32]).unwrap(), "a").unwrap();
        assert_eq!(a.expose(), a2.expose());
        assert_ne!(a.expose(), b.expose());
        assert_ne!(a.expose(), other.expose());
        assert_ne!(a.expose(), mk.expose());
    }

    #[test]
    fn check_value_never_contains_the_master_key_or_its_hash() {
        let mk = SecretKey::generate().unwrap();
        let cv = check_value(&mk).unwrap();
        assert_eq!(cv.len(), CHECK_VALUE_LEN);
        let hash = crate::sha256(mk.expose());
        for needle in [&mk.expose()[..], &hash[..]] {
            assert!(!cv.windows(8).any(|w| needle.windows(8).any(|n| n == w)));
        }
        // Two check values of one key differ (random nonce) and both verify.
        let cv2 = check_value(&mk).unwrap();
        assert_ne!(cv, cv2);
        assert!(verify_check_value(&mk, &cv2));
    }

    #[test]
    fn altered_or_truncated_check_values_do_not_verify() {
        let mk = SecretKey::generate().unwrap();
        let cv = check_value(&mk).unwrap();
        for i in 0..cv.len() {
            let mut bad = cv.clone();
            bad[i] ^= 1;
            assert!(!verify_check_value(&mk, &bad), "byte {i}");
        }
        assert!(!verify_check_value(&mk, &cv[..cv.len() - 1]));
        assert!(!verify_check_value(&mk, b""));
    }

    #[test]
    fn ceremony_key_is_stable_per_master_key_and_signatures_bind_the_message() {
        let mk = SecretKey::generate().unwrap();
        let k1 = CeremonyKey::derive(&mk).unwrap();
        let k2 = CeremonyKey::derive(&mk).unwrap();
        assert_eq!(k1.public_key(), k2.public_key());
        let other = CeremonyKey::derive(&SecretKey::generate().unwrap()).unwrap();
        assert_ne!(k1.public_key(), other.public_key());
        let sig = k1.sign(b"header");
        assert!(verify_signature(&k2.public_key(), b"header", &sig));
        assert!(!verify_signature(&k1.public_key(), b"headeR", &sig));
        assert!(!verify_signature(&other.public_key(), b"header", &sig));
        assert!(!verify_signature(&k1.public_key(), b"header", &sig[..63]));
        assert!(!format!("{k1:?}").contains(&format!("{:?}", mk.expose())));
    }
}
