//! The share layout matches Vault's and OpenBao's (y bytes, then a random non-zero x; GF(2^8) with the AES
//! polynomial): shares made here combine with the `shamir-vault` crate (a port of Vault's `shamir` package) and
//! shares made there combine here.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use openkcm_crypto::shamir;

/// `shamir-vault` takes a `rand` 0.8 generator; this one draws from the system DRBG through this crate.
struct SystemRng;

impl rand08::RngCore for SystemRng {
    fn next_u32(&mut self) -> u32 {
        u32::from_le_bytes(openkcm_crypto::random_bytes::<4>().unwrap())
    }
    fn next_u64(&mut self) -> u64 {
        u64::from_le_bytes(openkcm_crypto::random_bytes::<8>().unwrap())
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        for chunk in dest.chunks_mut(32) {
            let r = openkcm_crypto::random_bytes::<32>().unwrap();
            chunk.copy_from_slice(&r[..chunk.len()]);
        }
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand08::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}

fn secret() -> Vec<u8> {
    openkcm_crypto::random_bytes::<32>().unwrap().to_vec()
}

#[test]
fn shares_made_here_combine_with_vaults_algorithm() {
    for (n, m) in [(2, 2), (5, 3), (9, 5)] {
        let s = secret();
        let shares = shamir::split(&s, n, m).unwrap();
        let picked: Vec<Vec<u8>> = shares
            .iter()
            .skip(n - m)
            .map(|x| x.expose().to_vec())
            .collect();
        assert_eq!(shamir_vault::combine(&picked).unwrap(), s, "{m} of {n}");
    }
}

#[test]
fn vaults_shares_combine_here() {
    for (n, m) in [(2, 2), (5, 3), (9, 5)] {
        let s = secret();
        let shares = shamir_vault::split(&s, n, m, &mut SystemRng).unwrap();
        let picked: Vec<&[u8]> = shares.iter().take(m).map(Vec::as_slice).collect();
        assert_eq!(
            shamir::combine(&picked).unwrap().expose(),
            s.as_slice(),
            "{m} of {n}"
        );
    }
}
