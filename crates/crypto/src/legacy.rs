//! Legacy block ciphers, only for deployments that enable `legacy_crypto`: Triple DES (two- and three-key) in
//! ECB or CBC mode, with or without PKCS#5 padding. New data should never be protected with these; they exist so
//! that data written by older systems can still be read.

use crate::error::CryptoError;
use crate::secret::SecretBytes;
use des::cipher::generic_array::GenericArray;
use des::cipher::{BlockDecrypt, BlockEncrypt, KeyInit};
use zeroize::Zeroize;

/// The DES block size in bytes.
pub const DES_BLOCK: usize = 8;

enum Tdes {
    Two(des::TdesEde2),
    Three(des::TdesEde3),
}

impl Tdes {
    fn new(key: &[u8]) -> Result<Self, CryptoError> {
        match key.len() {
            16 => des::TdesEde2::new_from_slice(key).map(Tdes::Two),
            24 => des::TdesEde3::new_from_slice(key).map(Tdes::Three),
            n => {
                return Err(CryptoError::InvalidKeyLength {
                    expected: 24,
                    actual: n,
                })
            }
        }
        .map_err(|_| CryptoError::Internal {
            operation: "load a Triple DES key",
        })
    }

    fn encrypt(&self, block: &mut [u8]) {
        let b = GenericArray::from_mut_slice(block);
        match self {
            Tdes::Two(c) => c.encrypt_block(b),
            Tdes::Three(c) => c.encrypt_block(b),
        }
    }

    fn decrypt(&self, block: &mut [u8]) {
        let b = GenericArray::from_mut_slice(block);
        match self {
            Tdes::Two(c) => c.decrypt_block(b),
            Tdes::Three(c) => c.decrypt_block(b),
        }
    }
}

/// Triple DES in ECB (`iv` None) or CBC (`iv` Some) mode, PKCS#5 padding when `pkcs5`.
pub fn tdes_crypt(
    key: &[u8],
    iv: Option<&[u8; DES_BLOCK]>,
    pkcs5: bool,
    data: &[u8],
    encrypt: bool,
) -> Result<SecretBytes, CryptoError> {
    let cipher = Tdes::new(key)?;
    let mut buf = data.to_vec();
    if encrypt && pkcs5 {
        let pad = DES_BLOCK - buf.len() % DES_BLOCK;
        buf.extend(std::iter::repeat_n(pad as u8, pad));
    }
    if buf.is_empty() || !buf.len().is_multiple_of(DES_BLOCK) {
        let actual = buf.len();
        buf.zeroize();
        return Err(CryptoError::InvalidCiphertextLength { actual });
    }
    let mut chain = iv.copied();
    for block in buf.chunks_exact_mut(DES_BLOCK) {
        if encrypt {
            if let Some(c) = &chain {
                block.iter_mut().zip(c).for_each(|(b, c)| *b ^= c);
            }
            cipher.encrypt(block);
            if let Some(c) = &mut chain {
                c.copy_from_slice(block);
            }
        } else {
            let saved: [u8; DES_BLOCK] = block.try_into().unwrap_or([0; DES_BLOCK]);
            cipher.decrypt(block);
            if let Some(c) = &mut chain {
                block.iter_mut().zip(c.iter()).for_each(|(b, c)| *b ^= c);
                *c = saved;
            }
        }
    }
    if !encrypt && pkcs5 {
        let pad = usize::from(buf.last().copied().unwrap_or(0));
        let valid = (1..=DES_BLOCK).contains(&pad)
            && buf.len() >= pad
            && buf.iter().rev().take(pad).all(|b| usize::from(*b) == pad);
        if !valid {
            buf.zeroize();
            return Err(CryptoError::BadPadding);
        }
        let keep = buf.len() - pad;
        if let Some(tail) = buf.get_mut(keep..) {
            tail.zeroize();
        }
        buf.truncate(keep);
    }
    Ok(SecretBytes::new(buf))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tdes_ecb_known_answer_and_cbc_round_trip() {
        // NIST SP 800-67 / SP 800-20 style check: three-key TDES with K1=K2=K3 equals single DES; the classic DES
        // vector key 0123456789ABCDEF, plaintext "Now is t" gives 3FA40E8A984D4815.
        let k1 = [0x01, 0x23, 0x45, 0x67, 0x89, 0xAB, 0xCD, 0xEF];
        let key: Vec<u8> = k1.iter().chain(&k1).chain(&k1).copied().collect();
        let ct = tdes_crypt(&key, None, false, b"Now is t", true).unwrap();
        assert_eq!(
            ct.expose(),
            &[0x3F, 0xA4, 0x0E, 0x8A, 0x98, 0x4D, 0x48, 0x15]
        );
        let pt = tdes_crypt(&key, None, false, ct.expose(), false).unwrap();
        assert_eq!(pt.expose(), b"Now is t");
        let key2: Vec<u8> = (1u8..=24).collect();
        let iv = [9u8; 8];
        let ct = tdes_crypt(&key2, Some(&iv), true, b"legacy data, 27 bytes long!", true).unwrap();
        assert_eq!(ct.len(), 32);
        let pt = tdes_crypt(&key2, Some(&iv), true, ct.expose(), false).unwrap();
        assert_eq!(pt.expose(), b"legacy data, 27 bytes long!");
        let mut bad = ct.expose().to_vec();
        bad[31] ^= 0xFF;
        assert!(tdes_crypt(&key2, Some(&iv), true, &bad, false).is_err());
    }
}
