//! Split Keys (KMIP 1.2 Create Split Key / Join Split Key, Register and Get of Split Key objects) beyond what the
//! OASIS TC-SJ cases show: parts of two different splits are not joined, unsupported methods and parameters are
//! refused with the reason, a part is never usable as a key, and a join gives back the exact key bytes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;
use common::{uid_request as uid_payload, uids, Dev};
use openkcm_kmip::attributes::Attribute;
use openkcm_kmip::enums::{operation as op, result_reason as rr};
use openkcm_kmip::{tags as t, KmipError, ProtocolVersion};
use openkcm_net::KmipClient;
use openkcm_ttlv::{Item, Value};

const V12: ProtocolVersion = ProtocolVersion::new(1, 2);
const SPLIT_KEY: u32 = 0x05;

async fn one(c: &mut KmipClient, operation: u32, p: Item) -> Result<Item, KmipError> {
    common::one_op(c, V12, operation, p).await
}

fn split(uid: &str, parts: i32, threshold: i32, method: u32) -> Item {
    Item::structure(
        t::REQUEST_PAYLOAD,
        vec![
            Item::new(t::OBJECT_TYPE, Value::Enumeration(SPLIT_KEY)),
            Item::new(t::UNIQUE_IDENTIFIER, Value::TextString(uid.into())),
            Item::new(t::SPLIT_KEY_PARTS, Value::Integer(parts)),
            Item::new(t::SPLIT_KEY_THRESHOLD, Value::Integer(threshold)),
            Item::new(t::SPLIT_KEY_METHOD, Value::Enumeration(method)),
        ],
    )
}

fn join(parts: &[&str]) -> Item {
    let mut c = vec![Item::new(t::OBJECT_TYPE, Value::Enumeration(2))];
    c.extend(
        parts
            .iter()
            .map(|u| Item::new(t::UNIQUE_IDENTIFIER, Value::TextString((*u).into()))),
    );
    Item::structure(t::REQUEST_PAYLOAD, c)
}

fn key_bytes(get: &Item) -> Vec<u8> {
    let obj = get
        .child(t::SYMMETRIC_KEY)
        .or_else(|| get.child(t::SPLIT_KEY))
        .unwrap();
    obj.child(t::KEY_BLOCK)
        .and_then(|b| b.child(t::KEY_VALUE))
        .and_then(|v| v.child(t::KEY_MATERIAL))
        .and_then(Item::as_bytes)
        .unwrap()
        .to_vec()
}

#[tokio::test(flavor = "multi_thread")]
async fn split_keys_join_back_to_the_key_and_refuse_what_cannot_be_joined() {
    let dir = tempfile::tempdir().unwrap();
    let mut dev = Dev::start(dir.path(), &["demo"]);
    let mut c = common::edge_client(&dev, "demo").await;
    let key = vec![0x5Au8; 32];
    let reg = common::register_key_payload(
        3,
        key.clone(),
        &[Attribute::new(
            "Cryptographic Usage Mask",
            Value::Integer(0x0C),
        )],
    );
    let uid = uids(&one(&mut c, op::REGISTER, reg).await.unwrap()).remove(0);

    // 3 of 5, Polynomial Sharing GF(2^8).
    let parts = uids(
        &one(&mut c, op::CREATE_SPLIT_KEY, split(&uid, 5, 3, 4))
            .await
            .unwrap(),
    );
    assert_eq!(parts.len(), 5);
    let got = one(&mut c, op::GET, uid_payload(&parts[1])).await.unwrap();
    let sk = got.child(t::SPLIT_KEY).unwrap();
    assert_eq!(
        sk.child(t::KEY_PART_IDENTIFIER).and_then(Item::as_i32),
        Some(2)
    );
    assert_eq!(
        sk.child(t::SPLIT_KEY_THRESHOLD).and_then(Item::as_i32),
        Some(3)
    );
    assert_ne!(key_bytes(&got), key, "a part is not the key");
    let joined = uids(
        &one(
            &mut c,
            op::JOIN_SPLIT_KEY,
            join(&[&parts[4], &parts[0], &parts[2]]),
        )
        .await
        .unwrap(),
    )
    .remove(0);
    let back = one(&mut c, op::GET, uid_payload(&joined)).await.unwrap();
    assert_eq!(key_bytes(&back), key);
    // Below the threshold: Cryptographic Failure.
    let e = one(&mut c, op::JOIN_SPLIT_KEY, join(&[&parts[0], &parts[1]]))
        .await
        .unwrap_err();
    assert_eq!(e.reason, rr::CRYPTOGRAPHIC_FAILURE, "{e:?}");
    // Parts of two splits of the same key do not mix.
    let other = uids(
        &one(&mut c, op::CREATE_SPLIT_KEY, split(&uid, 4, 2, 4))
            .await
            .unwrap(),
    );
    let e = one(
        &mut c,
        op::JOIN_SPLIT_KEY,
        join(&[&parts[0], &other[1], &parts[2]]),
    )
    .await
    .unwrap_err();
    assert!(e.message.contains("not parts of one key"), "{e:?}");
    // Two splits with the same parameters do not mix either.
    let twin = uids(
        &one(&mut c, op::CREATE_SPLIT_KEY, split(&uid, 5, 3, 4))
            .await
            .unwrap(),
    );
    let e = one(
        &mut c,
        op::JOIN_SPLIT_KEY,
        join(&[&parts[0], &twin[1], &parts[2]]),
    )
    .await
    .unwrap_err();
    assert!(e.message.contains("not parts of one key"), "{e:?}");
    // A joined key's length must be the length of what the parts join to.
    let mut wrong_len = join(&[&parts[0], &parts[1], &parts[2]]);
    if let Value::Structure(children) = &mut wrong_len.value {
        children.push(Item::structure(
            t::TEMPLATE_ATTRIBUTE,
            vec![Attribute::new("Cryptographic Length", Value::Integer(128)).to_v1()],
        ));
    }
    let e = one(&mut c, op::JOIN_SPLIT_KEY, wrong_len)
        .await
        .unwrap_err();
    assert!(e.message.contains("does not match"), "{e:?}");
    // A Sensitive key is not split (its parts would leave the server in the clear).
    let sensitive = common::register_key_payload(
        3,
        vec![7; 32],
        &[
            Attribute::new("Cryptographic Usage Mask", Value::Integer(0x0C)),
            Attribute::new("Sensitive", Value::Boolean(true)),
        ],
    );
    let v14 = ProtocolVersion::new(1, 4);
    let s_uid = uids(
        &common::one_op(&mut c, v14, op::REGISTER, sensitive)
            .await
            .unwrap(),
    )
    .remove(0);
    let e = common::one_op(&mut c, v14, op::CREATE_SPLIT_KEY, split(&s_uid, 2, 2, 1))
        .await
        .unwrap_err();
    assert!(e.message.contains("is Sensitive"), "{e:?}");
    // A part is not a key.
    let encrypt = Item::structure(
        t::REQUEST_PAYLOAD,
        vec![
            Item::new(t::UNIQUE_IDENTIFIER, Value::TextString(parts[0].clone())),
            Item::new(t::DATA, Value::ByteString(vec![1; 16])),
        ],
    );
    assert!(one(&mut c, op::ENCRYPT, encrypt).await.is_err());
    // XOR needs every part; other methods are refused with the reason.
    let xor = uids(
        &one(&mut c, op::CREATE_SPLIT_KEY, split(&uid, 3, 3, 1))
            .await
            .unwrap(),
    );
    let joined = uids(
        &one(
            &mut c,
            op::JOIN_SPLIT_KEY,
            join(&[&xor[2], &xor[0], &xor[1]]),
        )
        .await
        .unwrap(),
    )
    .remove(0);
    assert_eq!(
        key_bytes(&one(&mut c, op::GET, uid_payload(&joined)).await.unwrap()),
        key
    );
    let e = one(&mut c, op::CREATE_SPLIT_KEY, split(&uid, 3, 2, 1))
        .await
        .unwrap_err();
    assert!(e.message.contains("XOR method needs every part"), "{e:?}");
    let e = one(&mut c, op::CREATE_SPLIT_KEY, split(&uid, 3, 2, 3))
        .await
        .unwrap_err();
    assert_eq!(e.reason, rr::FEATURE_NOT_SUPPORTED, "{e:?}");
    let e = one(&mut c, op::CREATE_SPLIT_KEY, split(&uid, 2, 3, 4))
        .await
        .unwrap_err();
    assert_eq!(e.reason, rr::INVALID_FIELD, "{e:?}");
    dev.stop();
}
