//! Hostile and careless clients: bad certificates, silence, malformed or oversized messages, unknown operations,
//! wrong object types, failing batch items. None of them may hurt the server or other clients.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::{s, Dev};
use openkcm_kmip::enums::{
    batch_error_continuation, object_type, operation as op, result_reason as rr,
};
use openkcm_kmip::payload::uid_payload;
use openkcm_kmip::{tags as t, ProtocolVersion, RequestMessage, ResponseMessage};
use openkcm_net::tls::{self, TlsFiles};
use openkcm_net::KmipClient;
use openkcm_ttlv::{Item, Value};
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;

fn request(items: Vec<(u32, Item)>, continuation: u32) -> Item {
    let mut m = RequestMessage::new(ProtocolVersion::new(1, 4), items);
    m.header.error_continuation = continuation;
    m.to_item()
}

async fn client(dev: &Dev, tenant: &str) -> KmipClient {
    common::edge_client(dev, tenant).await
}

fn results(resp: &Item) -> Vec<Result<Item, openkcm_kmip::KmipError>> {
    ResponseMessage::parse(resp)
        .unwrap()
        .items
        .into_iter()
        .map(|i| i.result)
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn hostile_clients_get_errors_and_never_hurt_others() {
    let dir = tempfile::tempdir().unwrap();
    let mut dev = Dev::start(dir.path(), &["demo"]);
    let uid = s(
        &dev.kmip("demo", &["create", "--activate"]).unwrap(),
        "unique_identifier",
    );
    let get = |u: &str| (op::GET, uid_payload(t::REQUEST_PAYLOAD, u));

    // Silent clients: raw TCP that never starts TLS, and a TLS client that never sends a message.
    let mut silent = Vec::new();
    for _ in 0..20 {
        silent.push(tokio::net::TcpStream::connect(&dev.edge).await.unwrap());
    }
    let _quiet_tls = client(&dev, "demo").await;
    let started = Instant::now();
    let mut c = client(&dev, "demo").await;
    let r = results(
        &c.call(&request(vec![get(&uid)], batch_error_continuation::STOP))
            .await
            .unwrap(),
    );
    assert!(r[0].is_ok());
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "silent clients delayed a real one"
    );

    // Malformed body with an intact frame: Invalid Message, and the connection stays usable.
    let mut bad = openkcm_ttlv::encode(&request(vec![get(&uid)], batch_error_continuation::STOP));
    bad[11] = 0x0C; // first child's type byte → unknown type
    let r = results(&c.call_raw(&bad).await.unwrap());
    assert_eq!(r[0].as_ref().unwrap_err().reason, rr::INVALID_MESSAGE);
    assert!(results(
        &c.call(&request(vec![get(&uid)], batch_error_continuation::STOP))
            .await
            .unwrap()
    )[0]
    .is_ok());

    // A message that is not a Request Message structure.
    let not_request = openkcm_ttlv::encode(&Item::structure(t::RESPONSE_MESSAGE, vec![]));
    let mut c2 = client(&dev, "demo").await;
    let r = results(&c2.call_raw(&not_request).await.unwrap());
    assert_eq!(r[0].as_ref().unwrap_err().reason, rr::INVALID_MESSAGE);

    // Oversized but actually sent (2 MiB): refused with a reply, and the body is skipped so the connection lives on.
    let mut c3 = client(&dev, "demo").await;
    let mut big = vec![0x42, 0x00, 0x78, 0x01, 0x00, 0x20, 0x00, 0x00];
    big.resize(8 + (2 << 20), 0);
    let r = results(&c3.call_raw(&big).await.unwrap());
    let e = r[0].as_ref().unwrap_err();
    assert!(
        e.reason == rr::INVALID_MESSAGE && e.message.contains("exceeds"),
        "{e:?}"
    );
    assert!(results(
        &c3.call(&request(vec![get(&uid)], batch_error_continuation::STOP))
            .await
            .unwrap()
    )[0]
    .is_ok());
    // Announcing 1 GiB: refused at once, without reading, and the connection is closed.
    let mut c4 = client(&dev, "demo").await;
    let huge = [0x42, 0x00, 0x78, 0x01, 0x40, 0x00, 0x00, 0x00];
    let started = Instant::now();
    let r = results(&c4.call_raw(&huge).await.unwrap());
    assert!(r[0].as_ref().unwrap_err().message.contains("exceeds"));
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(c4
        .call(&request(vec![get(&uid)], batch_error_continuation::STOP))
        .await
        .is_err());

    // A truncated message followed by a hang-up: the server shrugs.
    {
        let mut raw = tokio::net::TcpStream::connect(&dev.edge).await.unwrap();
        raw.write_all(&bad[..20]).await.unwrap();
    }

    // Unknown operation (proxied to the Core, which does not know it either) and a wrong object type.
    let r = results(
        &c.call(&request(
            vec![(0x99, Item::structure(t::REQUEST_PAYLOAD, vec![]))],
            batch_error_continuation::STOP,
        ))
        .await
        .unwrap(),
    );
    assert_eq!(
        r[0].as_ref().unwrap_err().reason,
        rr::OPERATION_NOT_SUPPORTED
    );
    let create_secret = Item::structure(
        t::REQUEST_PAYLOAD,
        vec![Item::new(
            t::OBJECT_TYPE,
            Value::Enumeration(object_type::SECRET_DATA),
        )],
    );
    let r = results(
        &c.call(&request(
            vec![(op::CREATE, create_secret)],
            batch_error_continuation::STOP,
        ))
        .await
        .unwrap(),
    );
    assert_eq!(r[0].as_ref().unwrap_err().reason, rr::INVALID_FIELD);

    // A failing batch item does not fail the others (Continue), and Stop ends the batch after the failure.
    let r = results(
        &c.call(&request(
            vec![get("no-such-key"), get(&uid)],
            batch_error_continuation::CONTINUE,
        ))
        .await
        .unwrap(),
    );
    assert_eq!(r.len(), 2);
    assert_eq!(r[0].as_ref().unwrap_err().reason, rr::ITEM_NOT_FOUND);
    assert!(r[1].is_ok());
    let r = results(
        &c.call(&request(
            vec![get(&uid), get("no-such-key"), get(&uid)],
            batch_error_continuation::STOP,
        ))
        .await
        .unwrap(),
    );
    assert_eq!(r.len(), 2);
    assert!(r[0].is_ok() && r[1].is_err());
    // The ID placeholder carries a Create's identifier to the next item.
    let create = openkcm_kmip::payload::create_request(ProtocolVersion::new(1, 4), &[]);
    let r = results(
        &c.call(&request(
            vec![
                (op::CREATE, create),
                (op::ACTIVATE, Item::structure(t::REQUEST_PAYLOAD, vec![])),
                (op::GET, Item::structure(t::REQUEST_PAYLOAD, vec![])),
            ],
            batch_error_continuation::STOP,
        ))
        .await
        .unwrap(),
    );
    assert!(r.iter().all(|x| x.is_ok()), "{r:?}");
    assert_eq!(
        openkcm_kmip::payload::key_material(r[2].as_ref().unwrap())
            .unwrap()
            .len(),
        32
    );

    // Still serving after all of that.
    assert!(results(
        &c.call(&request(vec![get(&uid)], batch_error_continuation::STOP))
            .await
            .unwrap()
    )[0]
    .is_ok());
    drop(silent);
    dev.stop();
}

#[tokio::test(flavor = "multi_thread")]
async fn clients_without_a_certificate_or_from_another_ca_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut dev = Dev::start(dir.path(), &["demo"]);
    tls::install_default_provider();
    let msg = request(
        vec![(
            op::DISCOVER_VERSIONS,
            Item::structure(t::REQUEST_PAYLOAD, vec![]),
        )],
        batch_error_continuation::STOP,
    );

    // No client certificate.
    let roots = {
        let mut r = rustls::RootCertStore::empty();
        for c in tls::certs_from_pem(&std::fs::read(&dev.ca).unwrap(), "ca").unwrap() {
            r.add(c).unwrap();
        }
        r
    };
    let no_cert = rustls::ClientConfig::builder_with_provider(tls::provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let outcome =
        match KmipClient::connect(&dev.edge, std::sync::Arc::new(no_cert), "localhost").await {
            Err(_) => true,
            Ok(mut c) => c.call(&msg).await.is_err(),
        };
    assert!(outcome, "a client without a certificate was served");

    // A certificate from another CA (a second dev PKI).
    let foreign_dir = tempfile::tempdir().unwrap();
    let foreign = openkcm_net::pki::DevPki::open_or_create(foreign_dir.path()).unwrap();
    let files = foreign.client("demo", "default").unwrap();
    let cfg = tls::client_config(&TlsFiles {
        ca: dev.ca.clone(),
        cert: files.cert,
        key: files.key,
    })
    .unwrap();
    let outcome = match KmipClient::connect(&dev.edge, cfg, "localhost").await {
        Err(_) => true,
        Ok(mut c) => c.call(&msg).await.is_err(),
    };
    assert!(outcome, "a client certified by a foreign CA was served");

    // The legitimate client is unaffected.
    let mut c = client(&dev, "demo").await;
    assert!(results(&c.call(&msg).await.unwrap())[0].is_ok());
    dev.stop();
}

#[tokio::test(flavor = "multi_thread")]
async fn thousands_of_mutated_requests_never_take_the_edge_down() {
    let dir = tempfile::tempdir().unwrap();
    let mut dev = Dev::start(dir.path(), &["demo"]);
    let uid = s(
        &dev.kmip("demo", &["create", "--activate", "--name", "m"])
            .unwrap(),
        "unique_identifier",
    );
    let valid = request(
        vec![
            (op::GET, uid_payload(t::REQUEST_PAYLOAD, &uid)),
            (
                op::LOCATE,
                openkcm_kmip::payload::LocateRequest::default().to_item(ProtocolVersion::new(1, 4)),
            ),
        ],
        batch_error_continuation::CONTINUE,
    );
    let base = openkcm_ttlv::encode(&valid);
    let mut c = client(&dev, "demo").await;
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let (mut answered, mut dropped) = (0, 0);
    // The outer frame stays honest (a lying outer length only makes the server wait for bytes that never come, which
    // the silent-client test covers); everything inside it is fair game for the decoder and the handlers.
    for _ in 0..1500 {
        let mut m = base.clone();
        for _ in 0..(1 + next() % 4) {
            let at = 8 + (next() as usize) % (m.len() - 8);
            m[at] = next() as u8;
        }
        match tokio::time::timeout(Duration::from_secs(15), c.call_raw(&m)).await {
            Ok(Ok(_)) => answered += 1,
            _ => {
                dropped += 1;
                c = client(&dev, "demo").await;
            }
        }
    }
    assert_eq!(
        (answered, dropped),
        (1500, 0),
        "every mutated message gets an answer on the same connection"
    );
    let r = results(&c.call(&valid).await.unwrap());
    assert!(r[0].is_ok() && r[1].is_ok(), "{r:?}");
    dev.stop();
}
