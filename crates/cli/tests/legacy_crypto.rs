//! Legacy algorithms: Triple DES keys are managed like any other (created with parity, registered, returned), but
//! Encrypt and Decrypt with them are refused by policy unless the operator starts the server with
//! `--legacy-crypto` (`OPENKCM_LEGACY_CRYPTO=true`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;
use common::Dev;
use openkcm_kmip::attributes::Attribute;
use openkcm_kmip::enums::{block_cipher_mode as bcm, operation as op, result_reason as rr};
use openkcm_kmip::payload::{self, CipherRequest, CipherResponse, CryptoParams};
use openkcm_kmip::{tags as t, KmipError, ProtocolVersion, RequestMessage, ResponseMessage};
use openkcm_net::KmipClient;
use openkcm_ttlv::{Item, Value};

const V14: ProtocolVersion = ProtocolVersion::new(1, 4);
const TRIPLE_DES: u32 = 0x02;

async fn one(c: &mut KmipClient, operation: u32, payload: Item) -> Result<Item, KmipError> {
    let m = RequestMessage::new(V14, vec![(operation, payload)]);
    let r = ResponseMessage::parse(&c.call(&m.to_item()).await.unwrap()).unwrap();
    r.items.into_iter().next().unwrap().result
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

fn tdes_attrs() -> Vec<Attribute> {
    vec![
        Attribute::new("Cryptographic Algorithm", Value::Enumeration(TRIPLE_DES)),
        Attribute::new("Cryptographic Length", Value::Integer(168)),
        Attribute::new("Cryptographic Usage Mask", Value::Integer(0x0C)),
        Attribute::new("Activation Date", Value::DateTime(now() - 10)),
    ]
}

/// Registers the classic DES known-answer key (0123456789ABCDEF, three times) as an Active Triple DES key.
async fn register_kat_key(c: &mut KmipClient) -> String {
    let k1 = [0x01u8, 0x23, 0x45, 0x67, 0x89, 0xAB, 0xCD, 0xEF];
    let key: Vec<u8> = k1.iter().chain(&k1).chain(&k1).copied().collect();
    let attrs: Vec<Attribute> = tdes_attrs().into_iter().skip(2).collect();
    let p = common::register_key_payload(TRIPLE_DES, key, &attrs);
    one(c, op::REGISTER, p)
        .await
        .unwrap()
        .child(t::UNIQUE_IDENTIFIER)
        .unwrap()
        .as_text()
        .unwrap()
        .to_owned()
}

fn encrypt(uid: &str, mode: u32, data: &[u8], iv: Option<Vec<u8>>) -> Item {
    CipherRequest {
        uid: Some(uid.into()),
        params: Some(CryptoParams {
            mode: Some(mode),
            ..Default::default()
        }),
        data: data.to_vec(),
        iv,
        ..Default::default()
    }
    .to_item()
}

#[tokio::test(flavor = "multi_thread")]
async fn triple_des_keys_are_managed_but_refused_for_encryption_by_default() {
    let dir = tempfile::tempdir().unwrap();
    let mut dev = Dev::start(dir.path(), &["demo"]);
    let mut c = common::edge_client(&dev, "demo").await;
    let p = one(
        &mut c,
        op::CREATE,
        payload::create_request(V14, &tdes_attrs()),
    )
    .await
    .unwrap();
    let uid = p
        .child(t::UNIQUE_IDENTIFIER)
        .unwrap()
        .as_text()
        .unwrap()
        .to_owned();
    // Key management works: 24 bytes, odd parity in every byte.
    let got = one(
        &mut c,
        op::GET,
        payload::uid_payload(t::REQUEST_PAYLOAD, &uid),
    )
    .await
    .unwrap();
    let key = payload::key_material(&got).unwrap();
    assert_eq!(key.len(), 24);
    assert!(key.iter().all(|b| b.count_ones() % 2 == 1), "3DES parity");
    // Cryptographic operations are refused by policy, with the reason.
    let e = one(&mut c, op::ENCRYPT, encrypt(&uid, bcm::CBC, b"x", None))
        .await
        .unwrap_err();
    assert_eq!(e.reason, rr::CRYPTOGRAPHIC_FAILURE, "{e:?}");
    assert!(
        e.message.contains("refused by") && e.message.contains("legacy_crypto is off"),
        "{e:?}"
    );
    let e = one(
        &mut c,
        op::DECRYPT,
        encrypt(&uid, bcm::CBC, &[0; 8], Some(vec![0; 8])),
    )
    .await
    .unwrap_err();
    assert!(e.message.contains("legacy_crypto is off"), "{e:?}");
    dev.stop();
}

#[tokio::test(flavor = "multi_thread")]
async fn with_legacy_crypto_triple_des_encrypts_to_the_known_answer() {
    let dir = tempfile::tempdir().unwrap();
    let mut dev = Dev::start_env(dir.path(), &["demo"], &[("OPENKCM_LEGACY_CRYPTO", "true")]);
    let mut c = common::edge_client(&dev, "demo").await;
    let uid = register_kat_key(&mut c).await;
    // DES known answer (K1 = K2 = K3 makes Triple DES single DES): "Now is t" -> 3FA40E8A984D4815.
    let mut ecb = encrypt(&uid, bcm::ECB, b"Now is t", None);
    if let Value::Structure(children) = &mut ecb.value {
        for ch in children
            .iter_mut()
            .filter(|c| c.tag == t::CRYPTOGRAPHIC_PARAMETERS)
        {
            if let Value::Structure(p) = &mut ch.value {
                p.push(Item::new(t::PADDING_METHOD, Value::Enumeration(1)));
            }
        }
    }
    let r = CipherResponse::parse(&one(&mut c, op::ENCRYPT, ecb).await.unwrap()).unwrap();
    assert_eq!(r.data, [0x3F, 0xA4, 0x0E, 0x8A, 0x98, 0x4D, 0x48, 0x15]);
    // CBC with PKCS5 and a server-made 8-byte IV round-trips.
    let r = CipherResponse::parse(
        &one(
            &mut c,
            op::ENCRYPT,
            encrypt(&uid, bcm::CBC, b"old tape data", None),
        )
        .await
        .unwrap(),
    )
    .unwrap();
    let iv = r.iv.clone().unwrap();
    assert_eq!(iv.len(), 8);
    assert_eq!(r.data.len(), 16);
    let back = CipherResponse::parse(
        &one(
            &mut c,
            op::DECRYPT,
            encrypt(&uid, bcm::CBC, &r.data, Some(iv)),
        )
        .await
        .unwrap(),
    )
    .unwrap();
    assert_eq!(back.data, b"old tape data");
    // Modes Triple DES does not have are refused clearly.
    let e = one(&mut c, op::ENCRYPT, encrypt(&uid, bcm::GCM, b"x", None))
        .await
        .unwrap_err();
    assert_eq!(e.reason, rr::INVALID_FIELD, "{e:?}");
    dev.stop();
}

#[tokio::test(flavor = "multi_thread")]
async fn aes_ctr_is_block_cipher_mode_6_and_matches_nist_sp800_38a() {
    let dir = tempfile::tempdir().unwrap();
    let mut dev = Dev::start(dir.path(), &["demo"]);
    let mut c = common::edge_client(&dev, "demo").await;
    // SP 800-38A F.5.1 (CTR-AES128.Encrypt), first block.
    let key = hex::decode("2b7e151628aed2a6abf7158809cf4f3c").unwrap();
    let p = common::register_key_payload(
        3,
        key,
        &[
            Attribute::new("Cryptographic Usage Mask", Value::Integer(0x0C)),
            Attribute::new("Activation Date", Value::DateTime(now() - 10)),
        ],
    );
    let uid = one(&mut c, op::REGISTER, p)
        .await
        .unwrap()
        .child(t::UNIQUE_IDENTIFIER)
        .unwrap()
        .as_text()
        .unwrap()
        .to_owned();
    let counter = hex::decode("f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff").unwrap();
    let pt = hex::decode("6bc1bee22e409f96e93d7e117393172a").unwrap();
    let r = CipherResponse::parse(
        &one(
            &mut c,
            op::ENCRYPT,
            encrypt(&uid, bcm::CTR, &pt, Some(counter.clone())),
        )
        .await
        .unwrap(),
    )
    .unwrap();
    assert_eq!(hex::encode(r.data), "874d6191b620e3261bef6864990db6ce");
    assert_eq!(bcm::CTR, 0x06);
    // Block Cipher Mode 7 is CMAC, not a cipher mode for Encrypt.
    let e = one(&mut c, op::ENCRYPT, encrypt(&uid, 0x07, &pt, Some(counter)))
        .await
        .unwrap_err();
    assert_eq!(e.reason, rr::INVALID_FIELD, "{e:?}");
    dev.stop();
}
