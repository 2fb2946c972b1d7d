//! L3 custody (DESIGN §6.3): in `core` custody the Core never hands out a service key; in `lease` custody the edge
//! gets it once per lease and wraps and unwraps locally, in exactly the Core's format, so keys move freely between
//! the two modes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::{s, Dev};
use openkcm_kmip::enums::{operation as op, result_reason as rr};
use openkcm_kmip::payload::{self, LocateRequest};
use openkcm_kmip::{
    attributes::Attribute, tags as t, ProtocolVersion, RequestMessage, ResponseMessage,
};
use openkcm_ttlv::Item;

/// Locate of the service key and Get of it, as an edge acting for demo/default would ask the Core.
async fn edge_gets_the_service_key(dev: &Dev) -> Result<Item, openkcm_kmip::KmipError> {
    openkcm_net::tls::install_default_provider();
    let pki = dev.data.join("pki");
    let cfg = openkcm_net::tls::client_config(&openkcm_net::tls::TlsFiles {
        ca: dev.ca.clone(),
        cert: pki.join("edge.crt"),
        key: pki.join("edge.key"),
    })
    .unwrap();
    let mut core = openkcm_net::KmipClient::connect(&dev.core, cfg, "localhost")
        .await
        .unwrap();
    let v = ProtocolVersion::new(1, 4);
    let locate = LocateRequest {
        max_items: Some(1),
        offset_items: None,
        attributes: vec![Attribute::name_value("default")],
    };
    let mut m = RequestMessage::new(
        v,
        vec![
            (op::LOCATE, locate.to_item(v)),
            (op::GET, Item::structure(t::REQUEST_PAYLOAD, vec![])),
        ],
    );
    m.header.on_behalf_of = Some("demo/default".into());
    let r = ResponseMessage::parse(&core.call(&m.to_item()).await.unwrap()).unwrap();
    let mut items = r.items.into_iter();
    let located = items.next().unwrap().result.unwrap();
    assert_eq!(payload::uids(&located).len(), 1, "the service key exists");
    items.next().unwrap().result
}

fn lifecycle(dev: &Dev) -> (String, String, String) {
    let uid = s(
        &dev.kmip("demo", &["create", "--activate"]).unwrap(),
        "unique_identifier",
    );
    let key = s(&dev.kmip("demo", &["get", &uid]).unwrap(), "key_hex");
    let sealed = dev
        .kmip("demo", &["encrypt", &uid, "--text", "custody"])
        .unwrap();
    let opened = dev
        .kmip(
            "demo",
            &[
                "decrypt",
                &uid,
                "--data-hex",
                &s(&sealed, "data_hex"),
                "--iv",
                &s(&sealed, "iv_hex"),
                "--tag",
                &s(&sealed, "tag_hex"),
            ],
        )
        .unwrap();
    assert_eq!(s(&opened, "text"), "custody");
    (uid, key, s(&sealed, "data_hex"))
}

#[tokio::test(flavor = "multi_thread")]
async fn in_core_custody_the_core_never_hands_out_a_service_key() {
    let dir = tempfile::tempdir().unwrap();
    let mut dev = Dev::start(dir.path(), &["demo"]);
    let refused = edge_gets_the_service_key(&dev).await.unwrap_err();
    assert_eq!(refused.reason, rr::PERMISSION_DENIED);
    assert!(
        refused.message.contains("L3 custody is core"),
        "{}",
        refused.message
    );
    lifecycle(&dev);
    dev.stop();
}

#[tokio::test(flavor = "multi_thread")]
async fn lease_custody_wraps_at_the_edge_and_keys_move_between_modes() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let log = dir.path().join("lease.log");
    let lease = [
        ("OPENKCM_L3_CUSTODY", "lease"),
        ("OPENKCM_L3_LEASE_TTL", "120"),
    ];
    let mut dev = Dev::start_logged_env(&data, &["demo"], &log, &lease);
    // An edge acting for the service gets its key, with the lease time.
    let granted = edge_gets_the_service_key(&dev).await.unwrap();
    assert_eq!(payload::key_material(&granted).unwrap().len(), 32);
    assert_eq!(
        granted
            .child(openkcm_kmip::TAG_L3_LEASE_SECONDS)
            .map(|i| i.value.clone()),
        Some(openkcm_ttlv::Value::Interval(120))
    );
    let (leased_uid, leased_key, _) = lifecycle(&dev);
    let (second_uid, _, _) = lifecycle(&dev);
    dev.stop();
    let text = std::fs::read_to_string(&log).unwrap();
    // The test's own Get and the edge's one lease: the edge asked once for all its wraps and unwraps.
    assert_eq!(
        text.matches("service key leased to an edge").count(),
        2,
        "{text}"
    );
    assert!(!text.contains(&leased_key), "no key in the log");

    // The same data in core custody: keys wrapped at the edge unwrap in the Core, and the other way round.
    let mut dev = Dev::start(&data, &["demo"]);
    assert_eq!(
        s(&dev.kmip("demo", &["get", &leased_uid]).unwrap(), "key_hex"),
        leased_key
    );
    assert!(dev.kmip("demo", &["get", &second_uid]).is_ok());
    let (core_uid, core_key, _) = lifecycle(&dev);
    dev.stop();
    let mut dev = Dev::start_env(&data, &["demo"], &lease);
    assert_eq!(
        s(&dev.kmip("demo", &["get", &core_uid]).unwrap(), "key_hex"),
        core_key
    );
    dev.stop();
}
