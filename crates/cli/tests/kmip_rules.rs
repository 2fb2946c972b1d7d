//! Protocol rules the edge enforces: versions, operations per version, batch options, response size, attribute
//! validation on Create, revocation input, and time-driven state changes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;
use common::Dev;
use openkcm_kmip::attributes::Attribute;
use openkcm_kmip::enums::{batch_error_continuation as bec, operation as op, result_reason as rr};
use openkcm_kmip::payload::{self, CipherRequest, CryptoParams, LocateRequest, RevokeRequest};
use openkcm_kmip::{tags as t, KmipError, ProtocolVersion, RequestMessage, ResponseMessage};
use openkcm_net::KmipClient;
use openkcm_ttlv::{Item, Value};

const V14: ProtocolVersion = ProtocolVersion::new(1, 4);

async fn client(dev: &Dev) -> KmipClient {
    common::edge_client(dev, "demo").await
}

async fn send(
    c: &mut KmipClient,
    m: RequestMessage,
) -> (ProtocolVersion, Vec<Result<Item, KmipError>>) {
    let r = ResponseMessage::parse(&c.call(&m.to_item()).await.unwrap()).unwrap();
    (r.version, r.items.into_iter().map(|i| i.result).collect())
}

async fn one(
    c: &mut KmipClient,
    version: ProtocolVersion,
    operation: u32,
    payload: Item,
) -> Result<Item, KmipError> {
    send(c, RequestMessage::new(version, vec![(operation, payload)]))
        .await
        .1
        .remove(0)
}

fn reason(r: Result<Item, KmipError>) -> u32 {
    r.expect_err("expected a failure").reason
}

async fn create(c: &mut KmipClient, attrs: &[Attribute]) -> Result<String, KmipError> {
    let p = one(c, V14, op::CREATE, payload::create_request(V14, attrs)).await?;
    Ok(p.child(t::UNIQUE_IDENTIFIER)
        .unwrap()
        .as_text()
        .unwrap()
        .to_owned())
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

#[tokio::test(flavor = "multi_thread")]
async fn protocol_versions_operations_and_batch_options_follow_kmip() {
    let dir = tempfile::tempdir().unwrap();
    let mut dev = Dev::start(dir.path(), &["demo"]);
    let mut c = client(&dev).await;
    let empty = || Item::structure(t::REQUEST_PAYLOAD, vec![]);

    // A version this server does not speak: Discover Versions still answers, anything else is Invalid Message.
    let (v, r) = send(
        &mut c,
        RequestMessage::new(
            ProtocolVersion::new(2, 2),
            vec![(op::DISCOVER_VERSIONS, empty()), (op::QUERY, empty())],
        ),
    )
    .await;
    assert_eq!(v, ProtocolVersion::new(2, 1));
    assert!(r[0].is_ok());
    let versions: Vec<_> = r[0]
        .as_ref()
        .unwrap()
        .children_with(t::PROTOCOL_VERSION)
        .map(|v| ProtocolVersion::from_item(v).unwrap())
        .collect();
    assert_eq!(
        versions,
        [(2, 1), (2, 0), (1, 4), (1, 3), (1, 2), (1, 1), (1, 0)]
            .map(|(a, b)| ProtocolVersion::new(a, b))
    );
    assert_eq!(r[1].as_ref().unwrap_err().reason, rr::INVALID_MESSAGE);
    let (_, r) = send(
        &mut c,
        RequestMessage::new(ProtocolVersion::new(3, 0), vec![(op::QUERY, empty())]),
    )
    .await;
    let e = r[0].as_ref().unwrap_err();
    assert!(
        e.reason == rr::INVALID_MESSAGE && e.message.contains("not supported"),
        "{e:?}"
    );

    // Encrypt does not exist in KMIP 1.0/1.1.
    let uid = create(
        &mut c,
        &[Attribute::new(
            "Activation Date",
            Value::DateTime(now() - 10),
        )],
    )
    .await
    .unwrap();
    let enc = CipherRequest {
        uid: Some(uid.clone()),
        data: b"x".to_vec(),
        ..Default::default()
    }
    .to_item();
    assert_eq!(
        reason(one(&mut c, ProtocolVersion::new(1, 1), op::ENCRYPT, enc.clone()).await),
        rr::OPERATION_NOT_SUPPORTED
    );
    // Without Cryptographic Parameters, 1.2 defaults to CBC (no tag), 1.4 to GCM (tag present).
    let cbc = one(&mut c, ProtocolVersion::new(1, 2), op::ENCRYPT, enc.clone())
        .await
        .unwrap();
    assert!(cbc.child(t::AUTHENTICATED_ENCRYPTION_TAG).is_none());
    assert_eq!(
        cbc.child(t::IV_COUNTER_NONCE)
            .unwrap()
            .as_bytes()
            .unwrap()
            .len(),
        16
    );
    let gcm = one(&mut c, V14, op::ENCRYPT, enc.clone()).await.unwrap();
    assert_eq!(
        gcm.child(t::AUTHENTICATED_ENCRYPTION_TAG)
            .unwrap()
            .as_bytes()
            .unwrap()
            .len(),
        16
    );
    // GCM with a 7-byte nonce (below the 8 bytes this server accepts) is a field error, not a crypto failure.
    let bad_nonce = CipherRequest {
        uid: Some(uid.clone()),
        params: Some(CryptoParams {
            mode: Some(openkcm_kmip::enums::block_cipher_mode::GCM),
            ..Default::default()
        }),
        data: b"x".to_vec(),
        iv: Some(vec![0; 7]),
        ..Default::default()
    };
    assert_eq!(
        reason(one(&mut c, V14, op::ENCRYPT, bad_nonce.to_item()).await),
        rr::INVALID_FIELD
    );

    // Undo is accepted (the edge rolls back; see batch_undo.rs): a batch that succeeds is answered normally.
    let get = payload::uid_payload(t::REQUEST_PAYLOAD, &uid);
    let mut m = RequestMessage::new(V14, vec![(op::GET, get.clone()), (op::GET, get.clone())]);
    m.header.error_continuation = bec::UNDO;
    let (_, r) = send(&mut c, m).await;
    assert!(r.iter().all(Result::is_ok), "{r:?}");

    // Maximum Response Size: a Get answer does not fit in 100 bytes.
    let mut m = RequestMessage::new(V14, vec![(op::GET, get.clone())]);
    m.header.max_response_size = Some(100);
    let (_, r) = send(&mut c, m).await;
    assert_eq!(r[0].as_ref().unwrap_err().reason, rr::RESPONSE_TOO_LARGE);

    // Locate paging must be non-negative; Query functions must exist.
    let bad_locate = LocateRequest {
        max_items: Some(-1),
        ..Default::default()
    }
    .to_item(V14);
    assert_eq!(
        reason(one(&mut c, V14, op::LOCATE, bad_locate).await),
        rr::INVALID_FIELD
    );
    let q = Item::structure(
        t::REQUEST_PAYLOAD,
        vec![Item::new(t::QUERY_FUNCTION, Value::Enumeration(999))],
    );
    assert_eq!(
        reason(one(&mut c, V14, op::QUERY, q).await),
        rr::INVALID_FIELD
    );
    dev.stop();
}

#[tokio::test(flavor = "multi_thread")]
async fn create_validates_attributes_and_honours_dates() {
    let dir = tempfile::tempdir().unwrap();
    let mut dev = Dev::start(dir.path(), &["demo"]);
    let mut c = client(&dev).await;

    for (attrs, why) in [
        (
            vec![Attribute::new("Bogus Attribute", Value::Integer(1))],
            "unknown standard name",
        ),
        (
            vec![Attribute::new("y-server-only", Value::Integer(1))],
            "y- prefix",
        ),
        (
            vec![Attribute::new("Cryptographic Length", Value::Integer(100))],
            "AES length that does not exist",
        ),
        (
            vec![
                Attribute::new("Cryptographic Algorithm", Value::Enumeration(4)),
                Attribute::new("Cryptographic Length", Value::Integer(2048)),
            ],
            "RSA (asymmetric) through Create",
        ),
        (
            vec![
                Attribute::new("Cryptographic Algorithm", Value::Enumeration(3)),
                Attribute::new("Cryptographic Algorithm", Value::Enumeration(3)),
            ],
            "duplicate single-valued attribute",
        ),
        (
            vec![
                Attribute::new("Activation Date", Value::DateTime(now() + 1000)),
                Attribute::new("Deactivation Date", Value::DateTime(now() + 10)),
            ],
            "deactivation before activation",
        ),
        (
            vec![Attribute::new("State", Value::Enumeration(2))],
            "server-set attribute",
        ),
    ] {
        let e = create(&mut c, &attrs).await.expect_err(why);
        assert_eq!(e.reason, rr::INVALID_FIELD, "{why}: {e:?}");
    }

    // A custom x- attribute and two names are kept and returned.
    let uid = create(
        &mut c,
        &[
            Attribute::new("x-owner", Value::TextString("team-a".into())),
            Attribute::name_value("a"),
            Attribute::name_value("b"),
        ],
    )
    .await
    .unwrap();
    let attrs = one(
        &mut c,
        V14,
        op::GET_ATTRIBUTES,
        payload::uid_payload(t::REQUEST_PAYLOAD, &uid),
    )
    .await
    .unwrap();
    let attrs = openkcm_kmip::attributes::from_payload(&attrs).unwrap();
    assert!(attrs
        .iter()
        .any(|a| a.name == "x-owner" && a.value.as_text() == Some("team-a")));
    assert_eq!(attrs.iter().filter(|a| a.name == "Name").count(), 2);

    // A Deactivation Date in the past makes an active key Deactivated: no more encryption.
    let uid = create(
        &mut c,
        &[
            Attribute::new("Activation Date", Value::DateTime(now() - 100)),
            Attribute::new("Deactivation Date", Value::DateTime(now() - 50)),
        ],
    )
    .await
    .unwrap();
    let enc = CipherRequest {
        uid: Some(uid.clone()),
        data: b"x".to_vec(),
        ..Default::default()
    }
    .to_item();
    let e = one(&mut c, V14, op::ENCRYPT, enc).await.unwrap_err();
    assert!(e.message.contains("Deactivated"), "{e:?}");

    // A future Activation Date leaves the key Pre-Active.
    let uid = create(
        &mut c,
        &[Attribute::new(
            "Activation Date",
            Value::DateTime(now() + 3600),
        )],
    )
    .await
    .unwrap();
    let enc = CipherRequest {
        uid: Some(uid.clone()),
        data: b"x".to_vec(),
        ..Default::default()
    }
    .to_item();
    assert!(one(&mut c, V14, op::ENCRYPT, enc)
        .await
        .unwrap_err()
        .message
        .contains("Pre-Active"));

    // A Pre-Active key whose Deactivation Date passed is Deactivated and can no longer be activated.
    let stale = create(
        &mut c,
        &[Attribute::new(
            "Deactivation Date",
            Value::DateTime(now() - 5),
        )],
    )
    .await
    .unwrap();
    let e = one(
        &mut c,
        V14,
        op::ACTIVATE,
        payload::uid_payload(t::REQUEST_PAYLOAD, &stale),
    )
    .await
    .unwrap_err();
    assert!(e.message.contains("Deactivated"), "{e:?}");

    // Revocation input is validated; destroying twice says "destroyed".
    let bad = RevokeRequest {
        code: 999,
        message: None,
        compromise_occurrence: None,
    }
    .to_item(&uid);
    assert_eq!(
        reason(one(&mut c, V14, op::REVOKE, bad).await),
        rr::INVALID_FIELD
    );
    let future = RevokeRequest {
        code: 2,
        message: None,
        compromise_occurrence: Some(now() + 86_400),
    }
    .to_item(&uid);
    assert_eq!(
        reason(one(&mut c, V14, op::REVOKE, future).await),
        rr::INVALID_FIELD
    );
    let no_date = RevokeRequest {
        code: 2,
        message: None,
        compromise_occurrence: None,
    }
    .to_item(&uid);
    assert_eq!(
        reason(one(&mut c, V14, op::REVOKE, no_date).await),
        rr::MISSING_DATA
    );
    let date_without_compromise = RevokeRequest {
        code: 6,
        message: None,
        compromise_occurrence: Some(now() - 60),
    }
    .to_item(&uid);
    assert_eq!(
        reason(one(&mut c, V14, op::REVOKE, date_without_compromise).await),
        rr::INVALID_FIELD
    );
    let ok = RevokeRequest {
        code: 2,
        message: Some("laptop stolen".into()),
        compromise_occurrence: Some(now() - 60),
    }
    .to_item(&uid);
    one(&mut c, V14, op::REVOKE, ok).await.unwrap();
    let destroy = payload::uid_payload(t::REQUEST_PAYLOAD, &uid);
    one(&mut c, V14, op::DESTROY, destroy.clone())
        .await
        .unwrap();
    let e = one(&mut c, ProtocolVersion::new(2, 0), op::DESTROY, destroy)
        .await
        .unwrap_err();
    assert_eq!(e.reason, rr::OBJECT_DESTROYED);
    dev.stop();
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_state_changes_are_serialised_not_failed() {
    let dir = tempfile::tempdir().unwrap();
    let mut dev = Dev::start(dir.path(), &["demo"]);
    let mut c = client(&dev).await;
    for bad in ["", " ", "a\tb", "x\u{0}y"] {
        let e = create(&mut c, &[Attribute::name_value(bad)])
            .await
            .unwrap_err();
        assert_eq!(e.reason, rr::INVALID_FIELD, "{bad:?}");
    }
    // Locate returns the newest key first, also within one second.
    let mut made = Vec::new();
    for _ in 0..5 {
        made.push(
            create(&mut c, &[Attribute::name_value("same")])
                .await
                .unwrap(),
        );
    }
    let locate = LocateRequest {
        attributes: vec![Attribute::name_value("same")],
        ..Default::default()
    };
    let found = one(&mut c, V14, op::LOCATE, locate.to_item(V14))
        .await
        .unwrap();
    made.reverse();
    assert_eq!(payload::uids(&found), made);
    for _ in 0..5 {
        let uid = create(&mut c, &[]).await.unwrap();
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let mut c = client(&dev).await;
            let uid = uid.clone();
            tasks.push(tokio::spawn(async move {
                one(
                    &mut c,
                    V14,
                    op::ACTIVATE,
                    payload::uid_payload(t::REQUEST_PAYLOAD, &uid),
                )
                .await
            }));
        }
        let mut ok = 0;
        for task in tasks {
            match task.await.unwrap() {
                Ok(_) => ok += 1,
                Err(e) => assert!(
                    e.message.contains("is Active"),
                    "a loser must see the winner's result: {e:?}"
                ),
            }
        }
        assert_eq!(ok, 1);
    }
    dev.stop();
}
