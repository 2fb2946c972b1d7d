//! Known-answer tests for AES-256-GCM, read at test time from the shared vectors
//! (McGrew–Viega test cases in `shared/vectors/README.md`, and Wycheproof's `aes_gcm_test.json`).

// Test helpers outside #[test] fns: a failed vector read should stop the test loudly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use openkcm_crypto::{aes, CryptoError, SecretKey};

/// Reads `rel` from the shared test vectors (`$OPENKCM_VECTORS`, else `../shared/vectors` beside the checkout).
/// Missing vectors fail under CI (`CI=true`) and are skipped, loudly, elsewhere.
fn vectors(rel: &str) -> Option<String> {
    let dir = std::env::var("OPENKCM_VECTORS").unwrap_or_else(|_| {
        concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/vectors").to_owned()
    });
    let path = format!("{dir}/{rel}");
    match std::fs::read_to_string(&path) {
        Ok(text) => Some(text),
        Err(e) if std::env::var("CI").is_ok_and(|v| v == "true" || v == "1") => {
            panic!("test vectors {path} are required in CI: {e}")
        }
        Err(e) => {
            eprintln!("\n*** SKIPPING: test vectors {path} not found ({e}); set OPENKCM_VECTORS to shared/vectors ***\n");
            None
        }
    }
}

/// The README list item that starts with `- {label}:`, joined with its continuation lines.
fn readme_item(label: &str) -> Option<String> {
    let text = vectors("README.md")?;
    let prefix = format!("- {label}:");
    let mut lines = text
        .lines()
        .skip_while(|l| !l.trim_start().starts_with(&prefix));
    let first = lines
        .next()
        .unwrap_or_else(|| panic!("no item for {label} in the vectors README"));
    let mut item = first.to_string();
    for cont in lines.take_while(|l| l.starts_with("  ") && !l.trim().is_empty()) {
        item.push(' ');
        item.push_str(cont.trim());
    }
    Some(item)
}

/// The hex word that follows `marker` in `line`.
fn hex_after(line: &str, marker: &str) -> Vec<u8> {
    let rest = &line[line
        .find(marker)
        .unwrap_or_else(|| panic!("{marker} missing in {line}"))
        + marker.len()..];
    let word: String = rest
        .trim_start()
        .chars()
        .take_while(|c| c.is_ascii_hexdigit())
        .collect();
    hex::decode(word).unwrap()
}

#[test]
fn gcm_mcgrew_viega_tc14_zero_key_zero_block() {
    let Some(line) = readme_item("TC14") else {
        return;
    };
    let expected_ct = hex_after(&line, "ciphertext");
    let expected_tag = hex_after(&line, "tag");
    assert_eq!(expected_ct.len(), 16);
    assert_eq!(expected_tag.len(), 16);

    let key = SecretKey::from_slice(&[0u8; 32]).unwrap();
    let (ct, tag) = aes::gcm_seal(&key, &[0u8; 12], b"", &[0u8; 16]).unwrap();
    assert_eq!(ct, expected_ct);
    assert_eq!(tag.to_vec(), expected_tag);
    let pt = aes::gcm_open(&key, &[0u8; 12], b"", &ct, &tag).unwrap();
    assert_eq!(pt.expose(), &[0u8; 16]);
}

#[test]
fn gcm_mcgrew_viega_tc13_zero_key_empty_plaintext() {
    let Some(line) = readme_item("TC13") else {
        return;
    };
    let expected_tag = hex_after(&line, "tag");
    assert_eq!(expected_tag.len(), 16);

    let key = SecretKey::from_slice(&[0u8; 32]).unwrap();
    let (ct, tag) = aes::gcm_seal(&key, &[0u8; 12], b"", b"").unwrap();
    assert!(ct.is_empty());
    assert_eq!(tag.to_vec(), expected_tag);
    let pt = aes::gcm_open(&key, &[0u8; 12], b"", b"", &tag).unwrap();
    assert!(pt.is_empty());
}

fn field(t: &serde_json::Value, name: &str) -> Vec<u8> {
    hex::decode(t[name].as_str().unwrap()).unwrap()
}

#[test]
fn gcm_wycheproof_256_bit_key_96_bit_iv_128_bit_tag() {
    let Some(text) = vectors("wycheproof/aes_gcm_test.json") else {
        return;
    };
    let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
    let (mut valid, mut invalid) = (0, 0);
    for group in doc["testGroups"].as_array().unwrap() {
        if group["keySize"] != 256 || group["ivSize"] != 96 || group["tagSize"] != 128 {
            continue;
        }
        for t in group["tests"].as_array().unwrap() {
            let id = &t["tcId"];
            let key = SecretKey::from_slice(&field(t, "key")).unwrap();
            let (iv, aad, msg, ct, tag) = (
                field(t, "iv"),
                field(t, "aad"),
                field(t, "msg"),
                field(t, "ct"),
                field(t, "tag"),
            );
            let opened = aes::gcm_open(&key, &iv, &aad, &ct, &tag);
            match t["result"].as_str().unwrap() {
                "valid" => {
                    valid += 1;
                    let pt = opened.unwrap_or_else(|e| panic!("tc {id} should open: {e}"));
                    assert_eq!(pt.expose(), &msg[..], "tc {id} plaintext");
                    let (sealed, sealed_tag) = aes::gcm_seal(&key, &iv, &aad, &msg).unwrap();
                    assert_eq!(sealed, ct, "tc {id} ciphertext");
                    assert_eq!(sealed_tag.to_vec(), tag, "tc {id} tag");
                }
                "invalid" => {
                    invalid += 1;
                    assert!(opened.is_err(), "tc {id} must not open");
                }
                other => panic!("tc {id}: unexpected result {other}"),
            }
        }
    }
    assert!(valid >= 30, "only {valid} valid vectors ran");
    assert!(invalid >= 20, "only {invalid} invalid vectors ran");
}

#[test]
fn gcm_wycheproof_vectors_with_other_iv_sizes_are_refused() {
    let Some(text) = vectors("wycheproof/aes_gcm_test.json") else {
        return;
    };
    let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
    let mut seen = 0;
    for group in doc["testGroups"].as_array().unwrap() {
        if group["keySize"] != 256 || group["ivSize"] == 96 {
            continue;
        }
        for t in group["tests"].as_array().unwrap() {
            let key = SecretKey::from_slice(&field(t, "key")).unwrap();
            let iv = field(t, "iv");
            let err = aes::gcm_open(
                &key,
                &iv,
                &field(t, "aad"),
                &field(t, "ct"),
                &field(t, "tag"),
            )
            .unwrap_err();
            assert_eq!(err, CryptoError::InvalidNonce { actual: iv.len() });
            seen += 1;
        }
    }
    assert!(seen > 0);
}

#[test]
fn gcm_rejects_bad_nonce_and_tag_lengths() {
    let key = SecretKey::generate().unwrap();
    assert_eq!(
        aes::gcm_seal(&key, &[0u8; 16], b"", b"x").unwrap_err(),
        CryptoError::InvalidNonce { actual: 16 }
    );
    assert_eq!(
        aes::gcm_open(&key, &[0u8; 12], b"", b"x", &[0u8; 15]).unwrap_err(),
        CryptoError::InvalidTag { actual: 15 }
    );
    let (ct, tag) = aes::gcm_seal(&key, &[1u8; 12], b"a", b"x").unwrap();
    assert_eq!(
        aes::gcm_open(&key, &[1u8; 12], b"b", &ct, &tag).unwrap_err(),
        CryptoError::AuthenticationFailed
    );
}

#[test]
fn cbc_round_trips_every_length_around_the_block_size() {
    let key = SecretKey::generate().unwrap();
    let iv = [9u8; 16];
    for len in 0..=48 {
        let pt: Vec<u8> = (0..len as u8).collect();
        let ct = aes::cbc_pkcs7_encrypt(&key, &iv, &pt).unwrap();
        assert_eq!(ct.len(), (len / 16 + 1) * 16);
        assert_eq!(
            aes::cbc_pkcs7_decrypt(&key, &iv, &ct).unwrap().expose(),
            &pt[..]
        );
    }
}

#[test]
fn cbc_bad_padding_and_bad_lengths_are_errors_not_panics() {
    let key = SecretKey::generate().unwrap();
    let iv = [3u8; 16];
    let ct = aes::cbc_pkcs7_encrypt(&key, &iv, b"sixteen byte msg").unwrap();
    assert_eq!(ct.len(), 32);
    // The second block is all padding (0x10 x 16). Flipping a bit of the first ciphertext block
    // flips the same bit of the second plaintext block: its last byte becomes 0x11, or an inner
    // padding byte stops matching.
    for (pos, bit) in [(15usize, 0x01u8), (0, 0x80), (7, 0x04)] {
        let mut bad = ct.clone();
        bad[pos] ^= bit;
        assert_eq!(
            aes::cbc_pkcs7_decrypt(&key, &iv, &bad).unwrap_err(),
            CryptoError::BadPadding,
            "flip at {pos}"
        );
    }
    for len in [0usize, 1, 15, 17, 31] {
        assert_eq!(
            aes::cbc_pkcs7_decrypt(&key, &iv, &vec![0u8; len]).unwrap_err(),
            CryptoError::InvalidCiphertextLength { actual: len }
        );
    }
}

#[test]
fn cbc_nist_sp800_38a_f2_5_first_block() {
    // SP 800-38A F.2.5 CBC-AES256.Encrypt, block 1; PKCS#7 adds a full padding block after it.
    let key = SecretKey::from_slice(
        &hex::decode("603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4").unwrap(),
    )
    .unwrap();
    let iv: [u8; 16] = hex::decode("000102030405060708090a0b0c0d0e0f")
        .unwrap()
        .try_into()
        .unwrap();
    let pt = hex::decode("6bc1bee22e409f96e93d7e117393172a").unwrap();
    let ct = aes::cbc_pkcs7_encrypt(&key, &iv, &pt).unwrap();
    assert_eq!(hex::encode(&ct[..16]), "f58c4c04d6e5f1ba779eabfb5f7bfbd6");
}

#[test]
fn sha256_and_hmac_match_published_values() {
    // FIPS 180-2 "abc" and RFC 4231 test case 2.
    assert_eq!(
        hex::encode(aes::sha256(b"abc")),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
    assert_eq!(
        hex::encode(aes::hmac_sha256(b"Jefe", b"what do ya want for nothing?")),
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    );
}
