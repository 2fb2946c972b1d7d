//! Sensitive and Extractable (KMIP 1.4), key lengths at Register, Query per version, Locate of destroyed objects,
//! and the application message limit not reaching the edge-Core hop.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;
use common::Dev;
use openkcm_kmip::attributes::Attribute;
use openkcm_kmip::enums::{operation as op, result_reason as rr};
use openkcm_kmip::{payload, tags as t, KmipError, ProtocolVersion};
use openkcm_net::KmipClient;
use openkcm_ttlv::{Item, Value};

const V14: ProtocolVersion = ProtocolVersion::new(1, 4);

async fn one(c: &mut KmipClient, operation: u32, p: Item) -> Result<Item, KmipError> {
    common::one_op(c, V14, operation, p).await
}

fn uid_of(p: &Item) -> String {
    common::uids(p).remove(0)
}

fn register_aes(key: Vec<u8>, extra: Vec<Attribute>) -> Item {
    let mut attrs = vec![
        Attribute::new("Cryptographic Usage Mask", Value::Integer(0x0C | 0x10)),
        Attribute::new("Activation Date", Value::DateTime(1)),
    ];
    attrs.extend(extra);
    common::register_key_payload(3, key, &attrs)
}

fn wrap_spec(kek: &str) -> Item {
    Item::structure(
        t::KEY_WRAPPING_SPECIFICATION,
        vec![
            Item::new(t::WRAPPING_METHOD, Value::Enumeration(1)),
            Item::structure(
                t::ENCRYPTION_KEY_INFORMATION,
                vec![Item::new(
                    t::UNIQUE_IDENTIFIER,
                    Value::TextString(kek.into()),
                )],
            ),
        ],
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn sensitive_and_non_extractable_keys_do_not_leave_in_the_clear() {
    let dir = tempfile::tempdir().unwrap();
    let mut dev = Dev::start(dir.path(), &["demo"]);
    let mut c = common::edge_client(&dev, "demo").await;
    let kek = uid_of(
        &one(&mut c, op::REGISTER, register_aes(vec![7; 16], vec![]))
            .await
            .unwrap(),
    );
    let sensitive = uid_of(
        &one(
            &mut c,
            op::REGISTER,
            register_aes(
                vec![1; 32],
                vec![Attribute::new("Sensitive", Value::Boolean(true))],
            ),
        )
        .await
        .unwrap(),
    );
    let sealed = uid_of(
        &one(
            &mut c,
            op::REGISTER,
            register_aes(
                vec![2; 32],
                vec![Attribute::new("Extractable", Value::Boolean(false))],
            ),
        )
        .await
        .unwrap(),
    );
    let get = |uid: &str| payload::uid_payload(t::REQUEST_PAYLOAD, uid);
    // Sensitive: refused in the clear (1.4 reason; Permission Denied for an older client), served wrapped.
    assert_eq!(
        one(&mut c, op::GET, get(&sensitive))
            .await
            .unwrap_err()
            .reason,
        0x16
    );
    let old = common::one_op(&mut c, ProtocolVersion::new(1, 2), op::GET, get(&sensitive))
        .await
        .unwrap_err();
    assert_eq!(old.reason, rr::PERMISSION_DENIED, "{old:?}");
    let mut wrapped = get(&sensitive);
    if let Value::Structure(ch) = &mut wrapped.value {
        ch.push(wrap_spec(&kek));
    }
    let w = one(&mut c, op::GET, wrapped).await.unwrap();
    let block = w
        .child(t::SYMMETRIC_KEY)
        .unwrap()
        .child(t::KEY_BLOCK)
        .unwrap();
    assert!(block.child(t::KEY_WRAPPING_DATA).is_some());
    assert_eq!(
        block.child(t::KEY_VALUE).unwrap().as_bytes().unwrap().len(),
        40
    );
    // Not Extractable: refused even wrapped; still usable for Encrypt.
    assert_eq!(
        one(&mut c, op::GET, get(&sealed)).await.unwrap_err().reason,
        0x17
    );
    let enc = payload::CipherRequest {
        uid: Some(sealed.clone()),
        data: b"x".to_vec(),
        ..Default::default()
    };
    assert!(one(&mut c, op::ENCRYPT, enc.to_item()).await.is_ok());
    // Attributes say so, once each; protection can be raised, never lowered.
    let attrs = one(&mut c, op::GET_ATTRIBUTES, get(&sensitive))
        .await
        .unwrap();
    let attrs = openkcm_kmip::attributes::from_payload(&attrs).unwrap();
    assert_eq!(attrs.iter().filter(|a| a.name == "Sensitive").count(), 1);
    assert_eq!(
        attrs
            .iter()
            .find(|a| a.name == "Always Sensitive")
            .unwrap()
            .value
            .as_bool(),
        Some(true)
    );
    let modify = |uid: &str, name: &str, v: bool| {
        Item::structure(
            t::REQUEST_PAYLOAD,
            vec![
                Item::new(t::UNIQUE_IDENTIFIER, Value::TextString(uid.into())),
                Attribute::new(name, Value::Boolean(v)).to_v1(),
            ],
        )
    };
    let e = one(
        &mut c,
        op::MODIFY_ATTRIBUTE,
        modify(&sensitive, "Sensitive", false),
    )
    .await
    .unwrap_err();
    assert_eq!(e.reason, rr::PERMISSION_DENIED);
    let e = one(
        &mut c,
        op::MODIFY_ATTRIBUTE,
        modify(&sealed, "Extractable", true),
    )
    .await
    .unwrap_err();
    assert_eq!(e.reason, rr::PERMISSION_DENIED);
    assert!(one(
        &mut c,
        op::MODIFY_ATTRIBUTE,
        modify(&kek, "Extractable", false)
    )
    .await
    .is_ok());
    assert_eq!(
        one(&mut c, op::GET, get(&kek)).await.unwrap_err().reason,
        0x17
    );
    dev.stop();
}

#[tokio::test(flavor = "multi_thread")]
async fn register_lengths_query_per_version_and_destroyed_objects() {
    let dir = tempfile::tempdir().unwrap();
    let mut dev = Dev::start_env(
        dir.path(),
        &["demo"],
        &[("OPENKCM_MAX_MESSAGE_BYTES", "4096")],
    );
    let mut c = common::edge_client(&dev, "demo").await;
    // An AES key must be 16, 24 or 32 bytes.
    for n in [1usize, 15, 17, 33, 64] {
        let e = one(&mut c, op::REGISTER, register_aes(vec![3; n], vec![]))
            .await
            .unwrap_err();
        assert_eq!(e.reason, rr::INVALID_FIELD, "{n}: {e:?}");
    }
    // Query names only what the client's version defines, and every object type kept here.
    let q = Item::structure(
        t::REQUEST_PAYLOAD,
        vec![
            Item::new(t::QUERY_FUNCTION, Value::Enumeration(1)),
            Item::new(t::QUERY_FUNCTION, Value::Enumeration(2)),
        ],
    );
    let r10 = common::one_op(&mut c, ProtocolVersion::new(1, 0), op::QUERY, q.clone())
        .await
        .unwrap();
    let ops10: Vec<u32> = r10
        .children_with(t::OPERATION)
        .filter_map(Item::as_enum)
        .collect();
    assert!(
        ops10.contains(&op::CREATE)
            && !ops10.contains(&op::ENCRYPT)
            && !ops10.contains(&op::SET_ATTRIBUTE)
    );
    let r14 = one(&mut c, op::QUERY, q.clone()).await.unwrap();
    let ops14: Vec<u32> = r14
        .children_with(t::OPERATION)
        .filter_map(Item::as_enum)
        .collect();
    assert!(ops14.contains(&op::ENCRYPT) && !ops14.contains(&op::SET_ATTRIBUTE));
    let objects: Vec<u32> = r14
        .children_with(t::OBJECT_TYPE)
        .filter_map(Item::as_enum)
        .collect();
    // Symmetric Key, Secret Data, Opaque Object, Split Key, and Template (1.x only).
    assert_eq!(objects, [2, 7, 8, 5, 6]);
    let r20 = common::one_op(&mut c, ProtocolVersion::new(2, 0), op::QUERY, q.clone())
        .await
        .unwrap();
    let objects20: Vec<u32> = r20
        .children_with(t::OBJECT_TYPE)
        .filter_map(Item::as_enum)
        .collect();
    assert_eq!(objects20, [2, 7, 8, 5]);
    // A 3,900-byte Opaque Object (a request just under 4,096 bytes) goes through: the application limit (4,096) does not apply to the edge-Core hop.
    let opaque = Item::structure(
        t::REQUEST_PAYLOAD,
        vec![
            Item::new(t::OBJECT_TYPE, Value::Enumeration(8)),
            Item::structure(
                t::OPAQUE_OBJECT,
                vec![
                    Item::new(t::OPAQUE_DATA_TYPE, Value::Enumeration(0x8000_0001)),
                    Item::new(t::OPAQUE_DATA_VALUE, Value::ByteString(vec![5; 3900])),
                ],
            ),
        ],
    );
    let uid = uid_of(&one(&mut c, op::REGISTER, opaque).await.unwrap());
    // Destroyed objects are found with the Destroyed bit of the Storage Status Mask (and only with it).
    one(
        &mut c,
        op::DESTROY,
        payload::uid_payload(t::REQUEST_PAYLOAD, &uid),
    )
    .await
    .unwrap();
    let locate = |mask: i32| {
        Item::structure(
            t::REQUEST_PAYLOAD,
            vec![
                Item::new(t::STORAGE_STATUS_MASK, Value::Integer(mask)),
                Attribute::new("Object Type", Value::Enumeration(8)).to_v1(),
            ],
        )
    };
    // A destroyed object's attributes are a tombstone: read, not changed.
    let add = Item::structure(
        t::REQUEST_PAYLOAD,
        vec![
            Item::new(t::UNIQUE_IDENTIFIER, Value::TextString(uid.clone())),
            Attribute::new("x-late", Value::Integer(1)).to_v1(),
        ],
    );
    // (Object Destroyed is a 2.x reason; a 1.4 client reads Item Not Found.)
    let e = one(&mut c, op::ADD_ATTRIBUTE, add).await.unwrap_err();
    assert_eq!(e.reason, rr::ITEM_NOT_FOUND, "{e:?}");
    assert!(e.message.contains("destroyed"), "{e:?}");
    assert!(payload::uids(&one(&mut c, op::LOCATE, locate(1)).await.unwrap()).is_empty());
    assert_eq!(
        payload::uids(&one(&mut c, op::LOCATE, locate(4)).await.unwrap()),
        vec![uid]
    );
    dev.stop();
}

/// Group Member Default hands out a group's members round robin. Concurrent Locates take their turns one after the
/// other, so 8 clients over 4 members get each member exactly twice.
#[tokio::test(flavor = "multi_thread")]
async fn concurrent_default_group_locates_take_turns() {
    let dir = tempfile::tempdir().unwrap();
    let mut dev = Dev::start(dir.path(), &["demo"]);
    let mut c = common::edge_client(&dev, "demo").await;
    let group = || Attribute::new("Object Group", Value::TextString("pool".into()));
    let mut members = Vec::new();
    for i in 0..4u8 {
        let p = register_aes(vec![i; 32], vec![group()]);
        members.push(uid_of(&one(&mut c, op::REGISTER, p).await.unwrap()));
    }
    let locate = Item::structure(
        t::REQUEST_PAYLOAD,
        vec![
            Item::new(t::MAXIMUM_ITEMS, Value::Integer(1)),
            Item::new(t::OBJECT_GROUP_MEMBER, Value::Enumeration(2)),
            group().to_v1(),
        ],
    );
    let mut clients = Vec::new();
    for _ in 0..8 {
        clients.push(common::edge_client(&dev, "demo").await);
    }
    let tasks: Vec<_> = clients
        .into_iter()
        .map(|mut client| {
            let locate = locate.clone();
            tokio::spawn(
                async move { uid_of(&one(&mut client, op::LOCATE, locate).await.unwrap()) },
            )
        })
        .collect();
    let mut handed = std::collections::HashMap::<String, usize>::new();
    for task in tasks {
        *handed.entry(task.await.unwrap()).or_default() += 1;
    }
    for m in &members {
        assert_eq!(handed.get(m), Some(&2), "{handed:?}");
    }
    dev.stop();
}

#[tokio::test(flavor = "multi_thread")]
async fn re_key_keeps_the_protection_of_the_key_it_replaces() {
    let dir = tempfile::tempdir().unwrap();
    let mut dev = Dev::start(dir.path(), &["demo"]);
    let mut c = common::edge_client(&dev, "demo").await;
    let create = Item::structure(
        t::REQUEST_PAYLOAD,
        vec![
            Item::new(t::OBJECT_TYPE, Value::Enumeration(2)),
            Item::structure(
                t::TEMPLATE_ATTRIBUTE,
                vec![
                    Attribute::new("Cryptographic Usage Mask", Value::Integer(0x0C)).to_v1(),
                    Attribute::new("Sensitive", Value::Boolean(true)).to_v1(),
                ],
            ),
        ],
    );
    let uid = uid_of(&one(&mut c, op::CREATE, create).await.unwrap());
    let replacement = uid_of(
        &one(&mut c, op::REKEY, common::uid_request(&uid))
            .await
            .unwrap(),
    );
    let e = one(&mut c, op::GET, common::uid_request(&replacement))
        .await
        .unwrap_err();
    assert!(e.message.contains("Sensitive"), "{e:?}");
    dev.stop();
}
