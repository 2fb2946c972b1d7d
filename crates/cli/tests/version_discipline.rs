//! Version discipline: a response only carries header fields, payload fields and attributes that exist in the
//! protocol version the request used, whatever was stored under another version.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;
use common::Dev;
use openkcm_kmip::attribute_names::{defined_in, name_for_tag};
use openkcm_kmip::attributes::Attribute;
use openkcm_kmip::enums::operation as op;
use openkcm_kmip::payload;
use openkcm_kmip::{tags as t, ProtocolVersion, RequestMessage, ResponseMessage};
use openkcm_net::KmipClient;
use openkcm_ttlv::{Item, Value};

const VERSIONS: &[(i32, i32)] = &[(1, 0), (1, 1), (1, 2), (1, 3), (1, 4), (2, 0), (2, 1)];

async fn call(c: &mut KmipClient, v: ProtocolVersion, operation: u32, p: Item) -> Item {
    let m = RequestMessage::new(v, vec![(operation, p)]);
    let r = ResponseMessage::parse(&c.call(&m.to_item()).await.unwrap()).unwrap();
    assert_eq!(r.version, v);
    r.items.into_iter().next().unwrap().result.unwrap()
}

/// The names of the attributes in a Get Attributes response payload, in either encoding.
fn names(payload: &Item) -> Vec<String> {
    let mut out = Vec::new();
    for a in payload.children_with(t::ATTRIBUTE) {
        out.push(
            a.child(t::ATTRIBUTE_NAME)
                .unwrap()
                .as_text()
                .unwrap()
                .to_owned(),
        );
    }
    if let Some(attrs) = payload.child(t::ATTRIBUTES) {
        for a in attrs.children() {
            // A 2.x vendor attribute is an Attribute structure naming itself; the others are named by their tag.
            match a.child(t::ATTRIBUTE_NAME).and_then(Item::as_text) {
                Some(n) => out.push(n.to_owned()),
                None => out.push(name_for_tag(a.tag).unwrap_or("?").to_owned()),
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn every_version_sees_only_the_attributes_it_defines() {
    let dir = tempfile::tempdir().unwrap();
    let mut dev = Dev::start(dir.path(), &["demo"]);
    let mut c = common::edge_client(&dev, "demo").await;
    // Stored by a 1.4 client: an attribute 1.4 added (Description), one 2.0 removed (Operation Policy Name) and a
    // custom one.
    let v14 = ProtocolVersion::new(1, 4);
    let p = call(
        &mut c,
        v14,
        op::CREATE,
        payload::create_request(
            v14,
            &[
                Attribute::new("Description", Value::TextString("orders".into())),
                Attribute::new("Operation Policy Name", Value::TextString("default".into())),
                Attribute::new("x-team", Value::TextString("a".into())),
            ],
        ),
    )
    .await;
    let uid = p
        .child(t::UNIQUE_IDENTIFIER)
        .unwrap()
        .as_text()
        .unwrap()
        .to_owned();
    for &(major, minor) in VERSIONS {
        let v = ProtocolVersion::new(major, minor);
        let got = call(
            &mut c,
            v,
            op::GET_ATTRIBUTES,
            payload::uid_payload(t::REQUEST_PAYLOAD, &uid),
        )
        .await;
        let names = names(&got);
        assert!(!names.is_empty(), "{v}: no attributes");
        for n in &names {
            assert!(
                defined_in(n, v),
                "{v} received attribute {n:?}, which it does not define: {names:?}"
            );
        }
        assert!(
            names.iter().any(|n| n == "x-team"),
            "{v}: custom attribute lost: {names:?}"
        );
        assert_eq!(
            names.iter().any(|n| n == "Description"),
            v >= ProtocolVersion::new(1, 4),
            "{v}: {names:?}"
        );
        assert_eq!(
            names.iter().any(|n| n == "Operation Policy Name"),
            v < ProtocolVersion::new(2, 0),
            "{v}: {names:?}"
        );
        assert_eq!(
            names.iter().any(|n| n == "Fresh"),
            v >= ProtocolVersion::new(1, 1),
            "{v}: {names:?}"
        );
    }
    // Located Items (1.3+) only when the client pages; never before 1.3.
    for &(major, minor) in VERSIONS {
        let v = ProtocolVersion::new(major, minor);
        let paged = payload::LocateRequest {
            max_items: Some(5),
            offset_items: None,
            attributes: vec![],
        };
        let got = call(&mut c, v, op::LOCATE, paged.to_item(v)).await;
        assert_eq!(
            got.child(t::LOCATED_ITEMS).is_some(),
            v >= ProtocolVersion::new(1, 3),
            "{v}"
        );
    }
    dev.stop();
}

#[tokio::test(flavor = "multi_thread")]
async fn custom_attributes_of_any_type_are_kept_returned_and_located() {
    let dir = tempfile::tempdir().unwrap();
    let mut dev = Dev::start(dir.path(), &["demo"]);
    let mut c = common::edge_client(&dev, "demo").await;
    let v14 = ProtocolVersion::new(1, 4);
    let custom = vec![
        Attribute::new("x-int", Value::Integer(-7)),
        Attribute::new("x-long", Value::LongInteger(1 << 40)),
        Attribute::new("x-bool", Value::Boolean(true)),
        Attribute::new("x-bytes", Value::ByteString(vec![0, 1, 2, 255])),
        Attribute::new("x-date", Value::DateTime(1_700_000_000)),
        Attribute::new("x-interval", Value::Interval(3600)),
        Attribute::new("x-enum", Value::Enumeration(0x8000_0001)),
        Attribute::new(
            "x-struct",
            Value::Structure(vec![Item::new(
                t::NAME_VALUE,
                Value::TextString("inner".into()),
            )]),
        ),
    ];
    let p = call(
        &mut c,
        v14,
        op::CREATE,
        payload::create_request(v14, &custom),
    )
    .await;
    let uid = p
        .child(t::UNIQUE_IDENTIFIER)
        .unwrap()
        .as_text()
        .unwrap()
        .to_owned();
    // Another key with different values, so that Locate has something to tell apart.
    let other: Vec<Attribute> = vec![
        Attribute::new("x-int", Value::Integer(8)),
        Attribute::new("x-bytes", Value::ByteString(vec![9])),
    ];
    call(
        &mut c,
        v14,
        op::CREATE,
        payload::create_request(v14, &other),
    )
    .await;
    let got = call(
        &mut c,
        v14,
        op::GET_ATTRIBUTES,
        payload::uid_payload(t::REQUEST_PAYLOAD, &uid),
    )
    .await;
    let attrs = openkcm_kmip::attributes::from_payload(&got).unwrap();
    for want in &custom {
        let have = attrs
            .iter()
            .find(|a| a.name == want.name)
            .unwrap_or_else(|| panic!("{} missing", want.name));
        assert_eq!(
            have.value.value, want.value.value,
            "{} returned as sent",
            want.name
        );
        // Each is a Locate filter that finds exactly this key.
        let found = call(
            &mut c,
            v14,
            op::LOCATE,
            payload::LocateRequest {
                max_items: None,
                offset_items: None,
                attributes: vec![want.clone()],
            }
            .to_item(v14),
        )
        .await;
        assert_eq!(
            payload::uids(&found),
            vec![uid.clone()],
            "Locate by {}",
            want.name
        );
    }
    dev.stop();
}
