//! Measures the wrapped-key envelope of DESIGN §2.1 on an L4 data key under a service key (L3):
//!
//! * `wrap_l4`: [`wrap`] — header encoding, a fresh random nonce, the AES-256-GCM key schedule and the seal;
//! * `unwrap_l4`: [`unwrap`] — the header comparison, the key schedule and the open into a new locked
//!   [`SecretKey`] (locking its page when it is the page's first secret, zeroizing and unlocking on drop);
//! * `from_stored_l4`: [`WrappedKey::from_stored`] — validating a blob read back from storage (no cryptography);
//! * `from_stored_and_unwrap_l4`: both, which is what serving a stored key costs before any KMIP work.
//!
//! Keys are fixed test values.
//!
//! Run: `cargo bench -p openkcm-crypto --bench envelope`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use criterion::{criterion_group, criterion_main, Criterion};
use openkcm_crypto::{unwrap, wrap, EnvelopeHeader, Layer, SecretKey, WrappedKey};
use std::hint::black_box;

/// An L4 header with identifiers of the lengths the edge writes (UUIDs).
fn header() -> EnvelopeHeader {
    EnvelopeHeader {
        layer: Layer::L4,
        tenant: "acme".into(),
        key_id: "5b2f0c1e-8a47-4d1b-9f3e-2c6a7d90e145".into(),
        parent_id: "0d9c4b7a-31e2-4f6d-8b5a-9e1c2f3a4b5c".into(),
        parent_version: 3,
    }
}

fn envelope(c: &mut Criterion) {
    let l3 = SecretKey::from_slice(&[0x11; 32]).unwrap();
    let l4 = SecretKey::from_slice(&[0x22; 32]).unwrap();
    let h = header();
    let wrapped = wrap(&l3, &h, &l4).unwrap();
    let stored = wrapped.as_bytes().to_vec();
    // The round trip must succeed, or the unwrap figures would time an error path.
    assert_eq!(unwrap(&l3, &wrapped, &h).unwrap().expose(), l4.expose());

    let mut group = c.benchmark_group("envelope");
    group.bench_function("wrap_l4", |b| {
        b.iter(|| wrap(black_box(&l3), black_box(&h), black_box(&l4)).unwrap())
    });
    group.bench_function("unwrap_l4", |b| {
        b.iter(|| unwrap(black_box(&l3), black_box(&wrapped), black_box(&h)).unwrap())
    });
    group.bench_function("from_stored_l4", |b| {
        b.iter(|| WrappedKey::from_stored(black_box(&stored).clone()).unwrap())
    });
    group.bench_function("from_stored_and_unwrap_l4", |b| {
        b.iter(|| {
            let w = WrappedKey::from_stored(black_box(&stored).clone()).unwrap();
            unwrap(&l3, &w, &h).unwrap()
        })
    });
    group.finish();
}

criterion_group!(benches, envelope);
criterion_main!(benches);
