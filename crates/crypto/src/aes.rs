//! AES and hash primitives for KMIP Encrypt/Decrypt/MAC and for the providers, on aws-lc-rs.
//!
//! Every function takes its key as a [`SecretKey`] and returns decrypted data as
//! [`SecretBytes`], so plaintext is zeroized when the caller drops it.

use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM};
use aws_lc_rs::cipher::{
    DecryptionContext, EncryptionContext, PaddedBlockDecryptingKey, PaddedBlockEncryptingKey,
    UnboundCipherKey, AES_256,
};
use aws_lc_rs::iv::FixedLength;
use zeroize::Zeroize;

use crate::envelope::{NONCE_LEN, TAG_LEN};
use crate::error::CryptoError;
use crate::secret::{SecretBytes, SecretKey};

/// AES block size in bytes.
pub const BLOCK_LEN: usize = 16;

fn gcm_key(key: &SecretKey) -> Result<LessSafeKey, CryptoError> {
    let unbound =
        UnboundKey::new(&AES_256_GCM, key.expose()).map_err(|_| CryptoError::Internal {
            operation: "load an AES-256-GCM key",
        })?;
    Ok(LessSafeKey::new(unbound))
}

fn gcm_nonce(nonce: &[u8]) -> Result<Nonce, CryptoError> {
    Nonce::try_assume_unique_for_key(nonce).map_err(|_| CryptoError::InvalidNonce {
        actual: nonce.len(),
    })
}

/// AES-256-GCM encryption with a caller-chosen 12-byte nonce; returns ciphertext and tag.
///
/// The caller must never reuse a nonce with the same key; prefer a nonce from [`random_bytes`].
///
/// ```
/// use openkcm_crypto::{aes, SecretKey};
/// let key = SecretKey::generate()?;
/// let nonce = aes::random_bytes::<12>()?;
/// let (ct, tag) = aes::gcm_seal(&key, &nonce, b"aad", b"hello")?;
/// let pt = aes::gcm_open(&key, &nonce, b"aad", &ct, &tag)?;
/// assert_eq!(pt.expose(), b"hello");
/// # Ok::<(), openkcm_crypto::CryptoError>(())
/// ```
pub fn gcm_seal(
    key: &SecretKey,
    nonce: &[u8],
    aad: &[u8],
    plaintext: &[u8],
) -> Result<(Vec<u8>, [u8; TAG_LEN]), CryptoError> {
    let nonce = gcm_nonce(nonce)?;
    let aead = gcm_key(key)?;
    let mut buf = plaintext.to_vec();
    match aead.seal_in_place_separate_tag(nonce, Aad::from(aad), &mut buf) {
        Ok(tag) => {
            let mut out = [0u8; TAG_LEN];
            let tag = tag.as_ref();
            if tag.len() != TAG_LEN {
                return Err(CryptoError::Internal {
                    operation: "produce a 16-byte AES-GCM tag",
                });
            }
            out.copy_from_slice(tag);
            Ok((buf, out))
        }
        Err(_) => {
            buf.zeroize();
            Err(CryptoError::Internal {
                operation: "encrypt with AES-256-GCM",
            })
        }
    }
}

/// AES-256-GCM decryption; fails with [`CryptoError::AuthenticationFailed`] unless the tag
/// verifies.
pub fn gcm_open(
    key: &SecretKey,
    nonce: &[u8],
    aad: &[u8],
    ciphertext: &[u8],
    tag: &[u8],
) -> Result<SecretBytes, CryptoError> {
    let nonce = gcm_nonce(nonce)?;
    if tag.len() != TAG_LEN {
        return Err(CryptoError::InvalidTag { actual: tag.len() });
    }
    let aead = gcm_key(key)?;
    // Wrap the output buffer first so that it is zeroized on every path.
    let mut out = SecretBytes::new(vec![0u8; ciphertext.len()]);
    aead.open_separate_gather(nonce, Aad::from(aad), ciphertext, tag, out.expose_mut())
        .map_err(|_| CryptoError::AuthenticationFailed)?;
    Ok(out)
}

fn cbc_key(key: &SecretKey) -> Result<UnboundCipherKey, CryptoError> {
    UnboundCipherKey::new(&AES_256, key.expose()).map_err(|_| CryptoError::Internal {
        operation: "load an AES-256 key",
    })
}

/// AES-256-CBC with PKCS#7 padding. The output is always a non-empty multiple of 16 bytes.
pub fn cbc_pkcs7_encrypt(
    key: &SecretKey,
    iv: &[u8; BLOCK_LEN],
    plaintext: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    let enc =
        PaddedBlockEncryptingKey::cbc_pkcs7(cbc_key(key)?).map_err(|_| CryptoError::Internal {
            operation: "set up AES-256-CBC encryption",
        })?;
    // Room for the padding up front, so the plaintext copy is never reallocated.
    let mut buf = Vec::with_capacity(plaintext.len() + BLOCK_LEN);
    buf.extend_from_slice(plaintext);
    match enc.less_safe_encrypt(&mut buf, EncryptionContext::Iv128(FixedLength::from(iv))) {
        Ok(_) => Ok(buf),
        Err(_) => {
            buf.zeroize();
            Err(CryptoError::Internal {
                operation: "encrypt with AES-256-CBC",
            })
        }
    }
}

/// Reverses [`cbc_pkcs7_encrypt`]. Invalid padding is [`CryptoError::BadPadding`]; a length that
/// is not a non-empty multiple of 16 is [`CryptoError::InvalidCiphertextLength`].
pub fn cbc_pkcs7_decrypt(
    key: &SecretKey,
    iv: &[u8; BLOCK_LEN],
    ciphertext: &[u8],
) -> Result<SecretBytes, CryptoError> {
    if ciphertext.is_empty() || !ciphertext.len().is_multiple_of(BLOCK_LEN) {
        return Err(CryptoError::InvalidCiphertextLength {
            actual: ciphertext.len(),
        });
    }
    let dec =
        PaddedBlockDecryptingKey::cbc_pkcs7(cbc_key(key)?).map_err(|_| CryptoError::Internal {
            operation: "set up AES-256-CBC decryption",
        })?;
    let mut buf = ciphertext.to_vec();
    let len = match dec.decrypt(&mut buf, DecryptionContext::Iv128(FixedLength::from(iv))) {
        Ok(plain) => plain.len(),
        Err(_) => {
            buf.zeroize();
            return Err(CryptoError::BadPadding);
        }
    };
    // Zero the padding bytes before shrinking, then keep only the plaintext.
    if let Some(tail) = buf.get_mut(len..) {
        tail.zeroize();
    }
    buf.truncate(len);
    Ok(SecretBytes::new(buf))
}

/// Fills `buf` from the operating system's random number generator.
pub fn fill_random(buf: &mut [u8]) -> Result<(), CryptoError> {
    aws_lc_rs::rand::fill(buf).map_err(|_| CryptoError::RandomUnavailable)
}

/// `N` bytes from the operating system's random number generator.
pub fn random_bytes<const N: usize>() -> Result<[u8; N], CryptoError> {
    let mut out = [0u8; N];
    aws_lc_rs::rand::fill(&mut out).map_err(|_| CryptoError::RandomUnavailable)?;
    Ok(out)
}

/// HMAC-SHA-256 of `data` under `key`.
///
/// ```
/// let mac = openkcm_crypto::aes::hmac_sha256(b"key", b"data");
/// assert_eq!(mac.len(), 32);
/// ```
pub fn hmac_sha256(key: &[u8], data: &[u8]) -> [u8; 32] {
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, key);
    let tag = aws_lc_rs::hmac::sign(&key, data);
    let mut out = [0u8; 32];
    out.iter_mut().zip(tag.as_ref()).for_each(|(o, t)| *o = *t);
    out
}

/// SHA-256 of `data`.
pub fn sha256(data: &[u8]) -> [u8; 32] {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, data);
    let mut out = [0u8; 32];
    out.iter_mut()
        .zip(digest.as_ref())
        .for_each(|(o, d)| *o = *d);
    out
}

/// Nonce length re-exported for callers of [`gcm_seal`].
pub const GCM_NONCE_LEN: usize = NONCE_LEN;
/// Tag length re-exported for callers of [`gcm_open`].
pub const GCM_TAG_LEN: usize = TAG_LEN;

/// Block cipher modes of [`aes_crypt`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AesMode {
    /// Electronic codebook (no IV).
    Ecb,
    /// Cipher block chaining (16-byte IV).
    Cbc,
    /// Counter mode (16-byte initial counter block).
    Ctr,
}

fn any_aes_key(key: &[u8]) -> Result<UnboundCipherKey, CryptoError> {
    let alg = match key.len() {
        16 => &aws_lc_rs::cipher::AES_128,
        24 => &aws_lc_rs::cipher::AES_192,
        32 => &AES_256,
        n => {
            return Err(CryptoError::InvalidKeyLength {
                expected: 32,
                actual: n,
            })
        }
    };
    UnboundCipherKey::new(alg, key).map_err(|_| CryptoError::Internal {
        operation: "load an AES key",
    })
}

/// AES-128/192/256 in ECB, CBC or CTR mode, with or without PKCS#7 padding (ECB and CBC), for KMIP Encrypt and
/// Decrypt with keys of any AES size. `iv` is required for CBC and CTR. Decrypted output is [`SecretBytes`].
pub fn aes_crypt(
    key: &[u8],
    mode: AesMode,
    pkcs7: bool,
    iv: Option<&[u8; BLOCK_LEN]>,
    data: &[u8],
    encrypt: bool,
) -> Result<SecretBytes, CryptoError> {
    use aws_lc_rs::cipher::{DecryptingKey, EncryptingKey};
    let k = any_aes_key(key)?;
    let iv_ctx = |iv: Option<&[u8; BLOCK_LEN]>| -> Result<FixedLength<16>, CryptoError> {
        iv.map(FixedLength::from)
            .ok_or(CryptoError::InvalidNonce { actual: 0 })
    };
    let fail = |operation: &'static str| CryptoError::Internal { operation };
    let mut buf = data.to_vec();
    if !encrypt && mode != AesMode::Ctr && (buf.is_empty() || !buf.len().is_multiple_of(BLOCK_LEN))
    {
        return Err(CryptoError::InvalidCiphertextLength { actual: buf.len() });
    }
    if encrypt && !pkcs7 && mode != AesMode::Ctr && !buf.len().is_multiple_of(BLOCK_LEN) {
        return Err(CryptoError::InvalidCiphertextLength { actual: buf.len() });
    }
    let result: Result<usize, CryptoError> = match (mode, pkcs7, encrypt) {
        (AesMode::Ctr, _, true) => EncryptingKey::ctr(k)
            .map_err(|_| fail("set up AES-CTR"))?
            .less_safe_encrypt(&mut buf, EncryptionContext::Iv128(iv_ctx(iv)?))
            .map(|_| buf.len())
            .map_err(|_| fail("encrypt with AES-CTR")),
        (AesMode::Ctr, _, false) => DecryptingKey::ctr(k)
            .map_err(|_| fail("set up AES-CTR"))?
            .decrypt(&mut buf, DecryptionContext::Iv128(iv_ctx(iv)?))
            .map(|p: &mut [u8]| p.len())
            .map_err(|_| fail("decrypt with AES-CTR")),
        (AesMode::Ecb, false, true) => EncryptingKey::ecb(k)
            .map_err(|_| fail("set up AES-ECB"))?
            .less_safe_encrypt(&mut buf, EncryptionContext::None)
            .map(|_| buf.len())
            .map_err(|_| fail("encrypt with AES-ECB")),
        (AesMode::Ecb, false, false) => DecryptingKey::ecb(k)
            .map_err(|_| fail("set up AES-ECB"))?
            .decrypt(&mut buf, DecryptionContext::None)
            .map(|p: &mut [u8]| p.len())
            .map_err(|_| fail("decrypt with AES-ECB")),
        (AesMode::Cbc, false, true) => EncryptingKey::cbc(k)
            .map_err(|_| fail("set up AES-CBC"))?
            .less_safe_encrypt(&mut buf, EncryptionContext::Iv128(iv_ctx(iv)?))
            .map(|_| buf.len())
            .map_err(|_| fail("encrypt with AES-CBC")),
        (AesMode::Cbc, false, false) => DecryptingKey::cbc(k)
            .map_err(|_| fail("set up AES-CBC"))?
            .decrypt(&mut buf, DecryptionContext::Iv128(iv_ctx(iv)?))
            .map(|p: &mut [u8]| p.len())
            .map_err(|_| fail("decrypt with AES-CBC")),
        (m, true, true) => {
            let enc = if m == AesMode::Ecb {
                PaddedBlockEncryptingKey::ecb_pkcs7(k)
            } else {
                PaddedBlockEncryptingKey::cbc_pkcs7(k)
            }
            .map_err(|_| fail("set up padded AES"))?;
            let ctx = if m == AesMode::Ecb {
                EncryptionContext::None
            } else {
                EncryptionContext::Iv128(iv_ctx(iv)?)
            };
            enc.less_safe_encrypt(&mut buf, ctx)
                .map(|_| buf.len())
                .map_err(|_| fail("encrypt with padded AES"))
        }
        (m, true, false) => {
            let dec = if m == AesMode::Ecb {
                PaddedBlockDecryptingKey::ecb_pkcs7(k)
            } else {
                PaddedBlockDecryptingKey::cbc_pkcs7(k)
            }
            .map_err(|_| fail("set up padded AES"))?;
            let ctx = if m == AesMode::Ecb {
                DecryptionContext::None
            } else {
                DecryptionContext::Iv128(iv_ctx(iv)?)
            };
            dec.decrypt(&mut buf, ctx)
                .map(|p: &mut [u8]| p.len())
                .map_err(|_| CryptoError::BadPadding)
        }
    };
    match result {
        Ok(len) => {
            if let Some(tail) = buf.get_mut(len..) {
                tail.zeroize();
            }
            buf.truncate(len);
            Ok(SecretBytes::new(buf))
        }
        Err(e) => {
            buf.zeroize();
            Err(e)
        }
    }
}

/// AES-GCM (128/192/256-bit key) with a 12-byte nonce and a 16-byte tag; returns ciphertext and tag.
pub fn gcm_seal_any(
    key: &[u8],
    nonce: &[u8],
    aad: &[u8],
    plaintext: &[u8],
) -> Result<(Vec<u8>, [u8; TAG_LEN]), CryptoError> {
    let alg = match key.len() {
        16 => &aws_lc_rs::aead::AES_128_GCM,
        24 => &aws_lc_rs::aead::AES_192_GCM,
        32 => &AES_256_GCM,
        n => {
            return Err(CryptoError::InvalidKeyLength {
                expected: 32,
                actual: n,
            })
        }
    };
    let aead = LessSafeKey::new(
        UnboundKey::new(alg, key).map_err(|_| CryptoError::Internal {
            operation: "load an AES-GCM key",
        })?,
    );
    let mut buf = plaintext.to_vec();
    let tag = aead
        .seal_in_place_separate_tag(gcm_nonce(nonce)?, Aad::from(aad), &mut buf)
        .map_err(|_| CryptoError::Internal {
            operation: "encrypt with AES-GCM",
        })?;
    let mut out = [0u8; TAG_LEN];
    out.copy_from_slice(tag.as_ref());
    Ok((buf, out))
}

/// Reverses [`gcm_seal_any`]; a wrong tag is [`CryptoError::AuthenticationFailed`].
pub fn gcm_open_any(
    key: &[u8],
    nonce: &[u8],
    aad: &[u8],
    ciphertext: &[u8],
    tag: &[u8],
) -> Result<SecretBytes, CryptoError> {
    let alg = match key.len() {
        16 => &aws_lc_rs::aead::AES_128_GCM,
        24 => &aws_lc_rs::aead::AES_192_GCM,
        32 => &AES_256_GCM,
        n => {
            return Err(CryptoError::InvalidKeyLength {
                expected: 32,
                actual: n,
            })
        }
    };
    if tag.len() != TAG_LEN {
        return Err(CryptoError::InvalidTag { actual: tag.len() });
    }
    let aead = LessSafeKey::new(
        UnboundKey::new(alg, key).map_err(|_| CryptoError::Internal {
            operation: "load an AES-GCM key",
        })?,
    );
    let mut buf = Vec::with_capacity(ciphertext.len() + TAG_LEN);
    buf.extend_from_slice(ciphertext);
    buf.extend_from_slice(tag);
    match aead.open_in_place(gcm_nonce(nonce)?, Aad::from(aad), &mut buf) {
        Ok(plain) => {
            let n = plain.len();
            buf.truncate(n);
            Ok(SecretBytes::new(buf))
        }
        Err(_) => {
            buf.zeroize();
            Err(CryptoError::AuthenticationFailed)
        }
    }
}

/// HMAC with SHA-256, SHA-384 or SHA-512 (`sha_bits` 256/384/512); `None` for another size.
pub fn hmac_sha2(sha_bits: u32, key: &[u8], data: &[u8]) -> Option<Vec<u8>> {
    let alg = match sha_bits {
        256 => aws_lc_rs::hmac::HMAC_SHA256,
        384 => aws_lc_rs::hmac::HMAC_SHA384,
        512 => aws_lc_rs::hmac::HMAC_SHA512,
        _ => return None,
    };
    let key = aws_lc_rs::hmac::Key::new(alg, key);
    Some(aws_lc_rs::hmac::sign(&key, data).as_ref().to_vec())
}

/// Verifies an HMAC-SHA-2 tag in constant time.
pub fn hmac_sha2_verify(sha_bits: u32, key: &[u8], data: &[u8], tag: &[u8]) -> Option<bool> {
    let alg = match sha_bits {
        256 => aws_lc_rs::hmac::HMAC_SHA256,
        384 => aws_lc_rs::hmac::HMAC_SHA384,
        512 => aws_lc_rs::hmac::HMAC_SHA512,
        _ => return None,
    };
    let key = aws_lc_rs::hmac::Key::new(alg, key);
    Some(aws_lc_rs::hmac::verify(&key, data, tag).is_ok())
}

/// AES-GCM for what the aws-lc fast path does not cover: IVs of 8 to 16, 32, 60 or 64 bytes and tags of 12 to 16
/// bytes (KMIP's IV Length and Tag Length), on RustCrypto's `aes-gcm`. Encryption returns ciphertext ‖ tag
/// separately; decryption checks the (possibly truncated) tag in constant time.
pub fn gcm_general(
    key: &[u8],
    nonce: &[u8],
    aad: &[u8],
    data: &[u8],
    tag: Option<&[u8]>,
    tag_len: usize,
) -> Result<(SecretBytes, Vec<u8>), CryptoError> {
    use aes_gcm::aead::consts::{U10, U11, U12, U13, U14, U15, U16, U32, U60, U64, U8, U9};
    use aes_gcm::aead::{AeadInPlace, KeyInit};
    use aes_gcm::aes::{Aes128, Aes192, Aes256};
    use aes_gcm::AesGcm;

    fn run<C, N, T>(
        key: &[u8],
        nonce: &[u8],
        aad: &[u8],
        data: &[u8],
        tag: Option<&[u8]>,
    ) -> Result<(SecretBytes, Vec<u8>), CryptoError>
    where
        C: aes_gcm::aes::cipher::BlockCipher
            + aes_gcm::aes::cipher::BlockSizeUser<BlockSize = U16>
            + aes_gcm::aes::cipher::BlockEncrypt
            + KeyInit,
        N: aes_gcm::aead::generic_array::ArrayLength<u8>,
        T: aes_gcm::TagSize,
    {
        let cipher =
            AesGcm::<C, N, T>::new_from_slice(key).map_err(|_| CryptoError::InvalidKeyLength {
                expected: 32,
                actual: key.len(),
            })?;
        let nonce = aes_gcm::aead::generic_array::GenericArray::from_slice(nonce);
        let mut buf = data.to_vec();
        match tag {
            None => {
                let t = cipher
                    .encrypt_in_place_detached(nonce, aad, &mut buf)
                    .map_err(|_| CryptoError::Internal {
                        operation: "encrypt with AES-GCM",
                    })?;
                Ok((SecretBytes::new(buf), t.to_vec()))
            }
            Some(t) => {
                let t = aes_gcm::aead::generic_array::GenericArray::from_slice(t);
                match cipher.decrypt_in_place_detached(nonce, aad, &mut buf, t) {
                    Ok(()) => Ok((SecretBytes::new(buf), Vec::new())),
                    Err(_) => {
                        buf.zeroize();
                        Err(CryptoError::AuthenticationFailed)
                    }
                }
            }
        }
    }

    macro_rules! by_tag {
        ($c:ty, $n:ty) => {
            match tag_len {
                12 => run::<$c, $n, U12>(key, nonce, aad, data, tag),
                13 => run::<$c, $n, U13>(key, nonce, aad, data, tag),
                14 => run::<$c, $n, U14>(key, nonce, aad, data, tag),
                15 => run::<$c, $n, U15>(key, nonce, aad, data, tag),
                16 => run::<$c, $n, U16>(key, nonce, aad, data, tag),
                n => Err(CryptoError::InvalidTag { actual: n }),
            }
        };
    }
    macro_rules! by_nonce {
        ($c:ty) => {
            match nonce.len() {
                8 => by_tag!($c, U8),
                9 => by_tag!($c, U9),
                10 => by_tag!($c, U10),
                11 => by_tag!($c, U11),
                12 => by_tag!($c, U12),
                13 => by_tag!($c, U13),
                14 => by_tag!($c, U14),
                15 => by_tag!($c, U15),
                16 => by_tag!($c, U16),
                32 => by_tag!($c, U32),
                60 => by_tag!($c, U60),
                64 => by_tag!($c, U64),
                n => Err(CryptoError::InvalidNonce { actual: n }),
            }
        };
    }
    if tag.is_some_and(|t| t.len() != tag_len) {
        return Err(CryptoError::InvalidTag {
            actual: tag.map_or(0, <[u8]>::len),
        });
    }
    match key.len() {
        16 => by_nonce!(Aes128),
        24 => by_nonce!(Aes192),
        32 => by_nonce!(Aes256),
        n => Err(CryptoError::InvalidKeyLength {
            expected: 32,
            actual: n,
        }),
    }
}

/// AES key wrap: RFC 3394 (NIST KW, `padded` false: 16 bytes or more, a multiple of 8) or RFC 5649 (KWP,
/// `padded` true: any length from 1 byte), with a 128- or 256-bit key-encryption key.
pub fn key_wrap(kek: &[u8], data: &[u8], padded: bool) -> Result<Vec<u8>, CryptoError> {
    use aws_lc_rs::key_wrap::{KeyEncryptionKey, KeyWrap, KeyWrapPadded, AES_128, AES_256};
    let cipher = match kek.len() {
        16 => &AES_128,
        32 => &AES_256,
        n => {
            return Err(CryptoError::InvalidKeyLength {
                expected: 32,
                actual: n,
            })
        }
    };
    let kek = KeyEncryptionKey::new(cipher, kek).map_err(|_| CryptoError::Internal {
        operation: "load a key-encryption key",
    })?;
    let mut out = vec![0u8; data.len() + 16];
    let n = if padded {
        kek.wrap_with_padding(data, &mut out).map(|o| o.len())
    } else {
        kek.wrap(data, &mut out).map(|o| o.len())
    }
    .map_err(|_| CryptoError::InvalidCiphertextLength { actual: data.len() })?;
    out.truncate(n);
    Ok(out)
}

/// Reverses [`key_wrap`]; a wrong key or altered data is [`CryptoError::AuthenticationFailed`].
pub fn key_unwrap(kek: &[u8], wrapped: &[u8], padded: bool) -> Result<SecretBytes, CryptoError> {
    use aws_lc_rs::key_wrap::{KeyEncryptionKey, KeyWrap, KeyWrapPadded, AES_128, AES_256};
    let cipher = match kek.len() {
        16 => &AES_128,
        32 => &AES_256,
        n => {
            return Err(CryptoError::InvalidKeyLength {
                expected: 32,
                actual: n,
            })
        }
    };
    let kek = KeyEncryptionKey::new(cipher, kek).map_err(|_| CryptoError::Internal {
        operation: "load a key-encryption key",
    })?;
    let mut out = vec![0u8; wrapped.len()];
    let res = if padded {
        kek.unwrap_with_padding(wrapped, &mut out).map(|o| o.len())
    } else {
        kek.unwrap(wrapped, &mut out).map(|o| o.len())
    };
    match res {
        Ok(n) => {
            if let Some(tail) = out.get_mut(n..) {
                tail.zeroize();
            }
            out.truncate(n);
            Ok(SecretBytes::new(out))
        }
        Err(_) => {
            out.zeroize();
            Err(CryptoError::AuthenticationFailed)
        }
    }
}

/// SHA-2 digest (`bits` 256, 384 or 512); `None` for another size.
pub fn sha2(bits: u32, data: &[u8]) -> Option<Vec<u8>> {
    let alg = match bits {
        256 => &aws_lc_rs::digest::SHA256,
        384 => &aws_lc_rs::digest::SHA384,
        512 => &aws_lc_rs::digest::SHA512,
        _ => return None,
    };
    Some(aws_lc_rs::digest::digest(alg, data).as_ref().to_vec())
}

/// PBKDF2-HMAC-SHA-256 of `password` with `salt` and `iterations` (at least 1), 32 bytes.
pub fn pbkdf2_sha256(password: &[u8], salt: &[u8], iterations: u32) -> [u8; 32] {
    let mut out = [0u8; 32];
    let n = std::num::NonZeroU32::new(iterations.max(1)).unwrap_or(std::num::NonZeroU32::MIN);
    aws_lc_rs::pbkdf2::derive(
        aws_lc_rs::pbkdf2::PBKDF2_HMAC_SHA256,
        n,
        salt,
        password,
        &mut out,
    );
    out
}

/// Checks `password` against a PBKDF2-HMAC-SHA-256 hash in constant time.
pub fn pbkdf2_sha256_verify(
    password: &[u8],
    salt: &[u8],
    iterations: u32,
    expected: &[u8],
) -> bool {
    let Some(n) = std::num::NonZeroU32::new(iterations) else {
        return false;
    };
    aws_lc_rs::pbkdf2::verify(
        aws_lc_rs::pbkdf2::PBKDF2_HMAC_SHA256,
        n,
        salt,
        password,
        expected,
    )
    .is_ok()
}

#[cfg(test)]
mod key_wrap_tests {
    use super::*;

    #[test]
    fn rfc3394_vector_and_padded_round_trip() {
        // RFC 3394 §4.1: 128-bit key data with a 128-bit KEK.
        let kek: Vec<u8> = (0u8..16).collect();
        let data = [
            0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xAA, 0xBB, 0xCC, 0xDD,
            0xEE, 0xFF,
        ];
        let wrapped = key_wrap(&kek, &data, false).unwrap();
        let expected = [
            0x1F, 0xA6, 0x8B, 0x0A, 0x81, 0x12, 0xB4, 0x47, 0xAE, 0xF3, 0x4B, 0xD8, 0xFB, 0x5A,
            0x7B, 0x82, 0x9D, 0x3E, 0x86, 0x23, 0x71, 0xD2, 0xCF, 0xE5,
        ];
        assert_eq!(wrapped, expected);
        assert_eq!(key_unwrap(&kek, &wrapped, false).unwrap().expose(), &data);
        let mut bad = wrapped.clone();
        bad[3] ^= 1;
        assert!(matches!(
            key_unwrap(&kek, &bad, false),
            Err(CryptoError::AuthenticationFailed)
        ));
        let w = key_wrap(&kek, b"seven b", true).unwrap();
        assert_eq!(key_unwrap(&kek, &w, true).unwrap().expose(), b"seven b");
        assert!(key_wrap(&kek, b"seven b", false).is_err());
    }
}
