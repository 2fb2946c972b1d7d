//! Measures Shamir sharing of a 32-byte MasterKey (DESIGN §3.2), as `openkcm operator init` and unseal use it:
//!
//! * `split_32B_5_of_3` / `split_32B_10_of_6`: random x values, coefficients from the system DRBG, constant-time
//!   evaluation of every share;
//! * `combine_32B_3` / `combine_32B_6`: share checks (length, x = 0, duplicates) and Lagrange interpolation.
//!
//! Run: `cargo bench -p openkcm-crypto --bench shamir`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use criterion::{criterion_group, criterion_main, Criterion};
use openkcm_crypto::shamir;
use std::hint::black_box;

fn sharing(c: &mut Criterion) {
    let mk = [0x42u8; 32];
    let mut group = c.benchmark_group("shamir");
    for (n, m) in [(5usize, 3usize), (10, 6)] {
        group.bench_function(format!("split_32B_{n}_of_{m}"), |b| {
            b.iter(|| shamir::split(black_box(&mk), n, m).unwrap())
        });
        let shares = shamir::split(&mk, n, m).unwrap();
        let picked: Vec<&[u8]> = shares.iter().take(m).map(|s| s.expose()).collect();
        // The combination must succeed, or the figure would time an error path.
        assert_eq!(shamir::combine(&picked).unwrap().expose(), &mk);
        group.bench_function(format!("combine_32B_{m}"), |b| {
            b.iter(|| shamir::combine(black_box(&picked)).unwrap())
        });
    }
    group.finish();
}

criterion_group!(benches, sharing);
criterion_main!(benches);
