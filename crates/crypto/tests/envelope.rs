//! The wrapped-key envelope of DESIGN §2.1: byte layout, round trip, header binding, and
//! rejection of malformed blobs before any cryptography.

// Test helpers outside #[test] fns: a failed vector read should stop the test loudly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use openkcm_crypto::{
    unwrap, unwrap_unchecked_header, wrap, CryptoError, EnvelopeHeader, Layer, SecretKey,
    WrappedKey,
};

fn header() -> EnvelopeHeader {
    EnvelopeHeader {
        layer: Layer::L4,
        tenant: "acme".into(),
        key_id: "key-1".into(),
        parent_id: "svc".into(),
        parent_version: 7,
    }
}

#[test]
fn header_encoding_has_the_exact_byte_layout() {
    let h = EnvelopeHeader {
        layer: Layer::L3,
        tenant: "t1".into(),
        key_id: "abc".into(),
        parent_id: "p".into(),
        parent_version: 0x0102_0304,
    };
    let expected: Vec<u8> = [
        &b"OKCM"[..],
        &[1],          // format
        &[3],          // layer L3
        &[1],          // alg AES-256-GCM
        &[0, 2],       // tenant length
        b"t1",         //
        &[0, 3],       // key id length
        b"abc",        //
        &[0, 1],       // parent id length
        b"p",          //
        &[1, 2, 3, 4], // parent version, big endian
    ]
    .concat();
    assert_eq!(h.encode().unwrap(), expected);
    assert_eq!(
        EnvelopeHeader::parse(&expected).unwrap(),
        (h, expected.len())
    );
}

#[test]
fn layer_bytes_are_fixed() {
    let all = [
        (Layer::MasterKeySealed, 0u8),
        (Layer::Ivk, 1),
        (Layer::L2, 2),
        (Layer::L3, 3),
        (Layer::L4, 4),
    ];
    for (layer, byte) in all {
        assert_eq!(layer as u8, byte);
        assert_eq!(Layer::try_from(byte).unwrap(), layer);
    }
    assert!(Layer::try_from(5).is_err());
}

#[test]
fn wrapped_blob_has_header_nonce_ciphertext_and_tag() {
    let kek = SecretKey::generate().unwrap();
    let key = SecretKey::generate().unwrap();
    let h = header();
    let w = wrap(&kek, &h, &key).unwrap();
    let aad = h.encode().unwrap();
    assert_eq!(w.aad(), &aad[..]);
    assert_eq!(w.as_bytes().len(), aad.len() + 12 + 32 + 16);
    assert_eq!(&w.as_bytes()[aad.len()..aad.len() + 12], &w.nonce());
    assert_eq!(w.ciphertext_and_tag(), &w.as_bytes()[aad.len() + 12..]);
    assert_ne!(&w.ciphertext_and_tag()[..32], key.expose());
    assert_eq!(w.header(), h);
}

#[test]
fn wrap_unwrap_round_trip_for_every_layer() {
    let kek = SecretKey::generate().unwrap();
    for layer in [
        Layer::MasterKeySealed,
        Layer::Ivk,
        Layer::L2,
        Layer::L3,
        Layer::L4,
    ] {
        let key = SecretKey::generate().unwrap();
        let h = EnvelopeHeader { layer, ..header() };
        let w = wrap(&kek, &h, &key).unwrap();
        let stored = WrappedKey::from_stored(w.as_bytes().to_vec()).unwrap();
        assert_eq!(stored, w);
        assert_eq!(unwrap(&kek, &stored, &h).unwrap().expose(), key.expose());
        assert_eq!(
            unwrap_unchecked_header(&kek, &stored).unwrap().expose(),
            key.expose()
        );
    }
}

#[test]
fn two_wraps_of_one_key_use_different_nonces() {
    let kek = SecretKey::generate().unwrap();
    let key = SecretKey::generate().unwrap();
    let a = wrap(&kek, &header(), &key).unwrap();
    let b = wrap(&kek, &header(), &key).unwrap();
    assert_ne!(a.nonce(), b.nonce());
    assert_ne!(a.as_bytes(), b.as_bytes());
}

#[test]
fn unwrap_with_the_wrong_kek_fails_authentication() {
    let kek = SecretKey::generate().unwrap();
    let other = SecretKey::generate().unwrap();
    let key = SecretKey::generate().unwrap();
    let w = wrap(&kek, &header(), &key).unwrap();
    assert_eq!(
        unwrap(&other, &w, &header()).unwrap_err(),
        CryptoError::AuthenticationFailed
    );
}

/// Header variants, each differing from `header()` in one field, with the field's name.
fn altered_headers() -> Vec<(&'static str, EnvelopeHeader)> {
    let h = header();
    vec![
        (
            "tenant",
            EnvelopeHeader {
                tenant: "acmf".into(),
                ..h.clone()
            },
        ),
        (
            "key_id",
            EnvelopeHeader {
                key_id: "key-2".into(),
                ..h.clone()
            },
        ),
        (
            "layer",
            EnvelopeHeader {
                layer: Layer::L3,
                ..h.clone()
            },
        ),
        (
            "parent_id",
            EnvelopeHeader {
                parent_id: "svd".into(),
                ..h.clone()
            },
        ),
        (
            "parent_version",
            EnvelopeHeader {
                parent_version: 8,
                ..h.clone()
            },
        ),
    ]
}

#[test]
fn a_blob_moved_to_another_header_fails_authentication() {
    // Rewrite the blob's header bytes (same lengths, so the layout stays valid) and unwrap it with
    // an `expected` that matches the rewritten header: only the AEAD check can catch it.
    let kek = SecretKey::generate().unwrap();
    let key = SecretKey::generate().unwrap();
    let original = wrap(&kek, &header(), &key).unwrap();
    let header_len = original.aad().len();
    for (field, altered) in altered_headers() {
        let new_aad = altered.encode().unwrap();
        assert_eq!(new_aad.len(), header_len, "{field}: same-length rewrite");
        let mut bytes = original.as_bytes().to_vec();
        bytes[..header_len].copy_from_slice(&new_aad);
        let moved = WrappedKey::from_stored(bytes).unwrap();
        assert_eq!(moved.header(), altered);
        assert_eq!(
            unwrap(&kek, &moved, &altered).unwrap_err(),
            CryptoError::AuthenticationFailed,
            "{field}"
        );
        assert_eq!(
            unwrap_unchecked_header(&kek, &moved).unwrap_err(),
            CryptoError::AuthenticationFailed,
            "{field}"
        );
    }
}

#[test]
fn a_blob_unwrapped_under_another_expected_header_is_a_header_mismatch() {
    let kek = SecretKey::generate().unwrap();
    let key = SecretKey::generate().unwrap();
    let w = wrap(&kek, &header(), &key).unwrap();
    for (field, altered) in altered_headers() {
        assert_eq!(
            unwrap(&kek, &w, &altered).unwrap_err(),
            CryptoError::HeaderMismatch { field },
        );
    }
}

#[test]
fn a_blob_rebuilt_with_a_longer_header_fails_authentication() {
    // A different-length tenant: the blob is reassembled with from_parts, as a copy attack would.
    let kek = SecretKey::generate().unwrap();
    let key = SecretKey::generate().unwrap();
    let w = wrap(&kek, &header(), &key).unwrap();
    let other = EnvelopeHeader {
        tenant: "another-tenant".into(),
        ..header()
    };
    let moved = WrappedKey::from_parts(&other, w.nonce(), w.ciphertext_and_tag()).unwrap();
    assert_eq!(
        unwrap(&kek, &moved, &other).unwrap_err(),
        CryptoError::AuthenticationFailed
    );
}

#[test]
fn flipping_any_byte_of_nonce_ciphertext_or_tag_fails_authentication() {
    let kek = SecretKey::generate().unwrap();
    let key = SecretKey::generate().unwrap();
    let w = wrap(&kek, &header(), &key).unwrap();
    let start = w.aad().len();
    for i in start..w.as_bytes().len() {
        let mut bytes = w.as_bytes().to_vec();
        bytes[i] ^= 0x01;
        let tampered = WrappedKey::from_stored(bytes).unwrap();
        assert_eq!(
            unwrap(&kek, &tampered, &header()).unwrap_err(),
            CryptoError::AuthenticationFailed,
            "byte {i}"
        );
    }
}

#[test]
fn from_parts_matches_a_remote_aes_gcm_with_the_header_as_aad() {
    let kek = SecretKey::generate().unwrap();
    let key = SecretKey::generate().unwrap();
    let h = header();
    let nonce = openkcm_crypto::random_bytes::<12>().unwrap();
    let (mut ct, tag) =
        openkcm_crypto::aes::gcm_seal(&kek, &nonce, &h.encode().unwrap(), key.expose()).unwrap();
    ct.extend_from_slice(&tag);
    let w = WrappedKey::from_parts(&h, nonce, &ct).unwrap();
    assert_eq!(unwrap(&kek, &w, &h).unwrap().expose(), key.expose());
    assert!(WrappedKey::from_parts(&h, nonce, &ct[..16]).is_err());
}

#[test]
fn empty_and_every_truncation_is_rejected_by_from_stored() {
    // The hierarchy's own keys (MK-sealed, IVK, L2, L3) are exactly one wrapped 256-bit key: every truncation
    // and extension is refused before cryptography runs.
    let kek = SecretKey::generate().unwrap();
    let key = SecretKey::generate().unwrap();
    let l3 = EnvelopeHeader {
        layer: Layer::L3,
        ..header()
    };
    let w = wrap(&kek, &l3, &key).unwrap();
    let full = w.as_bytes();
    for len in 0..full.len() {
        assert!(
            matches!(
                WrappedKey::from_stored(full[..len].to_vec()),
                Err(CryptoError::MalformedEnvelope { .. })
            ),
            "length {len} must be rejected"
        );
    }
    let mut extended = full.to_vec();
    extended.push(0);
    assert!(WrappedKey::from_stored(extended).is_err());
    assert!(WrappedKey::from_stored(full.to_vec()).is_ok());

    // An L4 carries 1 B to 64 KiB (keys of any algorithm, secret data, opaque objects): anything shorter than
    // nonce + 1 byte + tag is refused up front; a longer truncation parses but fails authentication.
    let l4 = wrap(&kek, &header(), &key).unwrap();
    let full = l4.as_bytes();
    let header_len = full.len() - 12 - 48;
    for len in 0..header_len + 12 + 17 {
        assert!(
            WrappedKey::from_stored(full[..len].to_vec()).is_err(),
            "L4 length {len} must be rejected"
        );
    }
    let truncated = WrappedKey::from_stored(full[..full.len() - 1].to_vec()).unwrap();
    assert!(unwrap(&kek, &truncated, &header()).is_err());
}

#[test]
fn from_stored_rejects_unknown_magic_format_layer_alg_and_bad_utf8() {
    let kek = SecretKey::generate().unwrap();
    let key = SecretKey::generate().unwrap();
    let good = wrap(&kek, &header(), &key).unwrap().as_bytes().to_vec();
    let cases: Vec<(&str, usize, u8)> = vec![
        ("magic", 0, b'X'),
        ("format", 4, 2),
        ("layer", 5, 9),
        ("alg", 6, 2),
        ("tenant utf-8", 9, 0xFF),
        ("tenant length too long", 7, 0xFF),
    ];
    for (what, pos, value) in cases {
        let mut bytes = good.clone();
        bytes[pos] = value;
        assert!(
            matches!(
                WrappedKey::from_stored(bytes),
                Err(CryptoError::MalformedEnvelope { .. })
            ),
            "{what}"
        );
    }
    // An empty tenant on the wire.
    let mut bytes = b"OKCM\x01\x04\x01\x00\x00\x00\x01k\x00\x00\x00\x00\x00\x01".to_vec();
    bytes.extend_from_slice(&[0u8; 12 + 48]);
    assert!(WrappedKey::from_stored(bytes).is_err());
}

#[test]
fn from_stored_never_panics_on_arbitrary_bytes() {
    // A cheap deterministic fuzz: mutate a good blob at every position with several values and
    // also feed short random-looking inputs.
    let kek = SecretKey::generate().unwrap();
    let key = SecretKey::generate().unwrap();
    let good = wrap(&kek, &header(), &key).unwrap().as_bytes().to_vec();
    for pos in 0..good.len() {
        for v in [0x00u8, 0x01, 0x7F, 0x80, 0xFF] {
            let mut b = good.clone();
            b[pos] = v;
            if let Ok(w) = WrappedKey::from_stored(b) {
                let _ = unwrap(&kek, &w, &header());
            }
        }
    }
    let mut state = 0x1234_5678u32;
    for len in 0..200usize {
        let bytes: Vec<u8> = (0..len)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 17;
                state ^= state << 5;
                state as u8
            })
            .collect();
        let _ = WrappedKey::from_stored(bytes.clone());
        let _ = EnvelopeHeader::parse(&bytes);
    }
}

#[test]
fn encode_rejects_empty_ids_and_overlong_strings() {
    let empty_tenant = EnvelopeHeader {
        tenant: String::new(),
        ..header()
    };
    assert_eq!(
        empty_tenant.encode().unwrap_err(),
        CryptoError::InvalidHeaderField {
            field: "tenant",
            reason: "it is empty"
        }
    );
    let empty_key = EnvelopeHeader {
        key_id: String::new(),
        ..header()
    };
    assert!(empty_key.encode().is_err());
    let long = EnvelopeHeader {
        parent_id: "x".repeat(65_536),
        ..header()
    };
    assert!(matches!(
        long.encode(),
        Err(CryptoError::InvalidHeaderField {
            field: "parent_id",
            ..
        })
    ));
    let max = EnvelopeHeader {
        parent_id: "x".repeat(65_535),
        ..header()
    };
    let bytes = max.encode().unwrap();
    assert_eq!(EnvelopeHeader::parse(&bytes).unwrap().0, max);
    // An empty parent id is allowed (a MasterKey-sealed blob may have no named parent).
    let no_parent = EnvelopeHeader {
        parent_id: String::new(),
        ..header()
    };
    assert!(no_parent.encode().is_ok());
}

#[test]
fn errors_and_debug_never_show_key_bytes() {
    let kek = SecretKey::from_slice(&[0x5Au8; 32]).unwrap();
    let key = SecretKey::from_slice(&[0xC3u8; 32]).unwrap();
    let w = wrap(&kek, &header(), &key).unwrap();
    let shown = format!(
        "{kek:?} {key:?} {w:?} {}",
        unwrap(&key, &w, &header()).unwrap_err()
    );
    assert!(!shown.to_lowercase().contains("5a5a"));
    assert!(!shown.to_lowercase().contains("c3c3"));
    assert!(!shown.contains("90, 90"));
}
