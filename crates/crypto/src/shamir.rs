//! Shamir secret sharing of the MasterKey (DESIGN §3.2), in the share layout of Vault and OpenBao.
//!
//! The field is GF(2^8) with the AES polynomial x^8 + x^4 + x^3 + x + 1 (0x11B). A share is the y bytes followed
//! by one x byte; x is random, non-zero and distinct among the shares of one split, so shares made here combine
//! with that ecosystem's tools and theirs combine here. The arithmetic is `vsss-rs`'s constant-time GF(256) (no
//! lookup tables indexed by secret bytes); this module fixes the layout, draws x and the polynomial coefficients
//! from aws-lc's DRBG, checks shares before combining them, and keeps shares and the recovered secret in zeroizing
//! memory.
//!
//! What the layout cannot say (the threshold, the cluster, whether a combined secret is right) is the caller's to
//! check: the unseal flow counts distinct shares against the threshold and verifies the result against the
//! ceremony's check value.
//!
//! ```
//! use openkcm_crypto::shamir;
//! let secret = [7u8; 32];
//! let shares = shamir::split(&secret, 5, 3)?;
//! assert_eq!(shares.len(), 5);
//! assert_eq!(shares[0].expose().len(), 33);
//! let picked = [shares[4].expose(), shares[0].expose(), shares[2].expose()];
//! assert_eq!(shamir::combine(&picked)?.expose(), &secret);
//! # Ok::<(), openkcm_crypto::shamir::ShamirError>(())
//! ```

use crate::SecretBytes;
use std::convert::Infallible;
use vsss_rs::{Gf256, IdentifierGf256};
use zeroize::Zeroize;

/// The most shares one split can make (x is one non-zero byte).
pub const MAX_SHARES: usize = 255;
/// The smallest threshold this layer splits with; 1-of-1 is handled by the caller without splitting.
pub const MIN_THRESHOLD: usize = 2;

/// Why a split or a combination was refused. Messages name counts and positions, never share bytes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShamirError {
    /// The share count or threshold cannot be used.
    #[error("invalid Shamir parameters: {0}")]
    Parameters(String),
    /// The secret to split is empty.
    #[error("the secret to split is empty")]
    EmptySecret,
    /// Fewer than two shares were given to combine.
    #[error("at least 2 shares are needed to combine, {given} given")]
    TooFewShares {
        /// Distinct shares given.
        given: usize,
    },
    /// A share's length differs from the first share's, or is too short to hold a y byte and the x byte.
    #[error(
        "share {index} is {actual} bytes long, expected {expected} (the secret's length plus one)"
    )]
    ShareLength {
        /// Position of the share in the input (0-based).
        index: usize,
        /// The length of the first share.
        expected: usize,
        /// This share's length.
        actual: usize,
    },
    /// A share has x = 0, which would be the secret itself.
    #[error("share {index} has x = 0, which no valid share has")]
    ZeroX {
        /// Position of the share in the input (0-based).
        index: usize,
    },
    /// Two different shares have the same x.
    #[error("shares {first} and {second} have the same x but different y: they come from different splits, or one is corrupt")]
    ConflictingX {
        /// Position of the earlier share.
        first: usize,
        /// Position of the later share.
        second: usize,
    },
    /// The system random number generator failed.
    #[error("the system random number generator failed; no shares were made")]
    RandomUnavailable,
    /// The sharing library refused the input.
    #[error("secret sharing failed: {0}")]
    Sharing(String),
}

/// Splits `secret` into `shares` shares (y ‖ x), any `threshold` of which recover it.
///
/// `2 ≤ threshold ≤ shares ≤ 255`; the secret must not be empty.
pub fn split(
    secret: &[u8],
    shares: usize,
    threshold: usize,
) -> Result<Vec<SecretBytes>, ShamirError> {
    if threshold < MIN_THRESHOLD {
        return Err(ShamirError::Parameters(format!(
            "the threshold must be at least {MIN_THRESHOLD}, not {threshold}"
        )));
    }
    if shares > MAX_SHARES {
        return Err(ShamirError::Parameters(format!(
            "at most {MAX_SHARES} shares can be made, not {shares}"
        )));
    }
    if shares < threshold {
        return Err(ShamirError::Parameters(format!(
            "the share count {shares} is below the threshold {threshold}"
        )));
    }
    if secret.is_empty() {
        return Err(ShamirError::EmptySecret);
    }
    let xs = random_distinct_x(shares)?;
    // Every coefficient takes one `next_u32`; the pool holds twice that, and running dry is an error, never a
    // weak share (see `PoolRng`).
    let needed = secret
        .len()
        .saturating_mul(threshold - 1)
        .saturating_mul(8)
        .saturating_add(64);
    let mut rng = PoolRng::fill(needed)?;
    let ids = xs.iter().map(|&x| IdentifierGf256(Gf256(x)));
    let mut raw =
        Gf256::split_bytes_with_participant_ids_iter(threshold, shares, secret, &mut rng, ids)
            .map_err(|e| ShamirError::Sharing(e.to_string()))?;
    let exhausted = rng.exhausted;
    drop(rng);
    if exhausted {
        raw.iter_mut().for_each(|s| s.zeroize());
        return Err(ShamirError::RandomUnavailable);
    }
    // vsss-rs lays a share out as x ‖ y; Vault and OpenBao as y ‖ x.
    Ok(raw
        .into_iter()
        .map(|mut share| {
            share.rotate_left(1);
            SecretBytes::new(share)
        })
        .collect())
}

/// Recovers the secret from shares (y ‖ x). Identical shares count once; two different shares with the same x,
/// x = 0, and shares of different lengths are refused. Whether the shares were enough and came from one split is
/// not knowable here: a wrong set yields a wrong secret, which the caller's check value catches.
pub fn combine(shares: &[&[u8]]) -> Result<SecretBytes, ShamirError> {
    let Some(first) = shares.first() else {
        return Err(ShamirError::TooFewShares { given: 0 });
    };
    let expected = first.len();
    let mut distinct: Vec<(usize, &[u8])> = Vec::with_capacity(shares.len());
    for (index, share) in shares.iter().enumerate() {
        if share.len() != expected || share.len() < 2 {
            return Err(ShamirError::ShareLength {
                index,
                expected,
                actual: share.len(),
            });
        }
        let x = share.last().copied().unwrap_or(0);
        if x == 0 {
            return Err(ShamirError::ZeroX { index });
        }
        match distinct
            .iter()
            .find(|(_, seen)| seen.last().copied() == Some(x))
        {
            // The same share given twice.
            Some((_, seen)) if constant_time_eq(seen, share) => {}
            Some(&(first, _)) => {
                return Err(ShamirError::ConflictingX {
                    first,
                    second: index,
                })
            }
            None => distinct.push((index, share)),
        }
    }
    if distinct.len() < 2 {
        return Err(ShamirError::TooFewShares {
            given: distinct.len(),
        });
    }
    // Back to vsss-rs's x ‖ y layout, in buffers that are wiped afterwards.
    let mut raw: Vec<Vec<u8>> = distinct
        .iter()
        .map(|(_, share)| {
            let mut v = share.to_vec();
            v.rotate_right(1);
            v
        })
        .collect();
    let result = Gf256::combine_bytes(&raw).map_err(|e| ShamirError::Sharing(e.to_string()));
    raw.iter_mut().for_each(|s| s.zeroize());
    result.map(SecretBytes::new)
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// `count` distinct x values, uniformly drawn from 1..=255 (the first `count` of a random permutation).
/// Also used above this layer for 1-of-N, where every share's y is the secret itself.
pub fn random_distinct_x(count: usize) -> Result<Vec<u8>, ShamirError> {
    let mut all: Vec<u8> = (1..=255u8).collect();
    let mut pool = PoolRng::fill(1024)?;
    // Fisher–Yates over the first `count` positions; each index by rejection sampling, so no value is favoured.
    for i in 0..count.min(all.len()) {
        let span = all.len() - i;
        let limit = 256 - (256 % span);
        let pick = loop {
            let b = usize::from(pool.next_byte());
            if pool.exhausted {
                return Err(ShamirError::RandomUnavailable);
            }
            if b < limit {
                break b % span;
            }
        };
        all.swap(i, i + pick);
    }
    all.truncate(count);
    Ok(all)
}

/// Random bytes drawn from aws-lc up front (where a failure can be reported), served to `vsss-rs`, whose generator
/// interface cannot fail. If the pool runs dry it serves zeros and says so in `exhausted`; the caller then throws
/// the result away.
struct PoolRng {
    bytes: Vec<u8>,
    next: usize,
    exhausted: bool,
}

impl PoolRng {
    fn fill(len: usize) -> Result<PoolRng, ShamirError> {
        let mut bytes = vec![0u8; len];
        aws_lc_rs::rand::fill(&mut bytes).map_err(|_| ShamirError::RandomUnavailable)?;
        Ok(PoolRng {
            bytes,
            next: 0,
            exhausted: false,
        })
    }

    fn next_byte(&mut self) -> u8 {
        match self.bytes.get(self.next) {
            Some(&b) => {
                self.next += 1;
                b
            }
            None => {
                self.exhausted = true;
                0
            }
        }
    }
}

impl Drop for PoolRng {
    fn drop(&mut self) {
        self.bytes.zeroize();
    }
}

impl rand_core::TryRng for PoolRng {
    type Error = Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        let mut b = [0u8; 4];
        self.try_fill_bytes(&mut b)?;
        Ok(u32::from_le_bytes(b))
    }

    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        let mut b = [0u8; 8];
        self.try_fill_bytes(&mut b)?;
        Ok(u64::from_le_bytes(b))
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        for d in dst.iter_mut() {
            *d = self.next_byte();
        }
        Ok(())
    }
}

impl rand_core::TryCryptoRng for PoolRng {}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn any_threshold_of_shares_recovers_the_secret() {
        let secret: Vec<u8> = (0..32u8).collect();
        for (n, m) in [(2, 2), (3, 2), (5, 3), (10, 10), (255, 7)] {
            let shares = split(&secret, n, m).unwrap();
            assert_eq!(shares.len(), n);
            // x: the last byte, non-zero and distinct.
            let mut xs: Vec<u8> = shares.iter().map(|s| s.expose()[32]).collect();
            assert!(xs.iter().all(|&x| x != 0));
            xs.sort_unstable();
            xs.dedup();
            assert_eq!(xs.len(), n, "x values repeat");
            // The last m shares, in reverse order.
            let picked: Vec<&[u8]> = shares.iter().rev().take(m).map(|s| s.expose()).collect();
            assert_eq!(combine(&picked).unwrap().expose(), secret.as_slice());
        }
    }

    #[test]
    fn fewer_than_the_threshold_give_a_wrong_secret() {
        let secret = [0x5au8; 32];
        let shares = split(&secret, 5, 3).unwrap();
        let two = [shares[0].expose(), shares[1].expose()];
        assert_ne!(combine(&two).unwrap().expose(), &secret);
    }

    #[test]
    fn x_values_are_random() {
        let a: Vec<u8> = split(&[1; 16], 3, 2)
            .unwrap()
            .iter()
            .map(|s| s.expose()[16])
            .collect();
        let differs = (0..20).any(|_| {
            let b: Vec<u8> = split(&[1; 16], 3, 2)
                .unwrap()
                .iter()
                .map(|s| s.expose()[16])
                .collect();
            a != b
        });
        assert!(differs, "twenty splits drew the same x values");
    }

    #[test]
    fn parameters_are_checked() {
        assert!(matches!(
            split(&[1; 32], 3, 1),
            Err(ShamirError::Parameters(_))
        ));
        assert!(matches!(
            split(&[1; 32], 2, 3),
            Err(ShamirError::Parameters(_))
        ));
        assert!(matches!(
            split(&[1; 32], 256, 3),
            Err(ShamirError::Parameters(_))
        ));
        assert_eq!(split(&[], 3, 2).unwrap_err(), ShamirError::EmptySecret);
    }

    #[test]
    fn bad_share_sets_are_refused() {
        let shares = split(&[9; 32], 3, 2).unwrap();
        let (a, b) = (shares[0].expose(), shares[1].expose());
        // The same share twice counts once.
        assert_eq!(
            combine(&[a, a]).unwrap_err(),
            ShamirError::TooFewShares { given: 1 }
        );
        assert_eq!(combine(&[a, a, b]).unwrap().expose(), &[9; 32]);
        // Same x, different y.
        let mut forged = b.to_vec();
        forged[32] = a[32];
        assert_eq!(
            combine(&[a, &forged]).unwrap_err(),
            ShamirError::ConflictingX {
                first: 0,
                second: 1
            }
        );
        // x = 0.
        let mut zero = b.to_vec();
        zero[32] = 0;
        assert_eq!(
            combine(&[a, &zero]).unwrap_err(),
            ShamirError::ZeroX { index: 1 }
        );
        // Lengths.
        assert!(matches!(
            combine(&[a, &b[..31]]),
            Err(ShamirError::ShareLength { index: 1, .. })
        ));
        assert!(matches!(
            combine(&[&[1u8][..], &[2u8][..]]),
            Err(ShamirError::ShareLength { index: 0, .. })
        ));
        assert_eq!(
            combine(&[]).unwrap_err(),
            ShamirError::TooFewShares { given: 0 }
        );
    }

    #[test]
    fn errors_and_debug_show_no_share_bytes() {
        let shares = split(&[0xabu8; 32], 3, 2).unwrap();
        let debug = format!("{:?}", shares[0]);
        assert!(!debug.to_lowercase().contains("ab, ab"), "{debug}");
        let mut forged = shares[1].expose().to_vec();
        forged[32] = shares[0].expose()[32];
        let message = combine(&[shares[0].expose(), &forged])
            .unwrap_err()
            .to_string();
        assert!(!message.contains("171"), "{message}");
    }
}
