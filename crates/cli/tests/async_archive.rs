//! Asynchronous answers (Asynchronous Indicator, Operation Pending, Poll, Cancel) and Archive/Recover: what the
//! OASIS cases TC-32 and TC-101 do, plus the rules they do not show — only the client that queued an operation may
//! poll or cancel it, a polled or cancelled operation cannot be polled again, operations that are not queued are
//! answered at once, and an archived key is not used.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;
use common::{uid_request as uid_payload, Dev};
use openkcm_kmip::attributes::Attribute;
use openkcm_kmip::enums::{operation as op, result_reason as rr};
use openkcm_kmip::{
    tags as t, ProtocolVersion, RequestMessage, ResponseBatchItem, ResponseMessage,
};
use openkcm_net::KmipClient;
use openkcm_ttlv::{Item, Value};

const V12: ProtocolVersion = ProtocolVersion::new(1, 2);

/// Sends one item, with the Asynchronous Indicator when `asynchronous`.
async fn send(
    c: &mut KmipClient,
    asynchronous: bool,
    operation: u32,
    p: Item,
) -> ResponseBatchItem {
    let mut m = RequestMessage::new(V12, vec![(operation, p)]);
    m.header.asynchronous = asynchronous;
    let r = ResponseMessage::parse(&c.call(&m.to_item()).await.unwrap()).unwrap();
    r.items.into_iter().next().unwrap()
}

fn acv_payload(acv: &[u8]) -> Item {
    Item::structure(
        t::REQUEST_PAYLOAD,
        vec![Item::new(
            t::ASYNCHRONOUS_CORRELATION_VALUE,
            Value::ByteString(acv.to_vec()),
        )],
    )
}

fn locate_by_name(name: &str, mask: Option<i32>) -> Item {
    let mut children = vec![Attribute::name_value(name).to_v1()];
    if let Some(m) = mask {
        children.insert(0, Item::new(t::STORAGE_STATUS_MASK, Value::Integer(m)));
    }
    Item::structure(t::REQUEST_PAYLOAD, children)
}

fn uids(item: &ResponseBatchItem) -> Vec<String> {
    item.result
        .as_ref()
        .unwrap()
        .children_with(t::UNIQUE_IDENTIFIER)
        .map(|u| u.as_text().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn queued_operations_are_polled_or_cancelled_by_their_client_only() {
    let dir = tempfile::tempdir().unwrap();
    let mut dev = Dev::start(dir.path(), &["demo", "other"]);
    let mut c = common::edge_client(&dev, "demo").await;
    let mut other = common::edge_client(&dev, "other").await;

    let create = Item::structure(
        t::REQUEST_PAYLOAD,
        vec![
            Item::new(t::OBJECT_TYPE, Value::Enumeration(2)),
            Item::structure(
                t::TEMPLATE_ATTRIBUTE,
                vec![
                    Attribute::new("Cryptographic Usage Mask", Value::Integer(0x0C)).to_v1(),
                    Attribute::new("Activation Date", Value::DateTime(1)).to_v1(),
                    Attribute::name_value("archived-key").to_v1(),
                ],
            ),
        ],
    );
    // Create is not queued, even when the client allows it.
    let created = send(&mut c, true, op::CREATE, create).await;
    assert!(created.pending.is_none());
    let uid = uids(&created).remove(0);

    // A queued Locate: Operation Pending, then Poll answers as Locate.
    let pending = send(
        &mut c,
        true,
        op::LOCATE,
        locate_by_name("archived-key", None),
    )
    .await;
    let acv = pending.pending.clone().expect("Operation Pending");
    assert_eq!(acv.len(), 8);
    // Another tenant cannot poll or cancel it.
    let e = send(&mut other, false, op::POLL, acv_payload(&acv)).await;
    assert_eq!(e.result.unwrap_err().reason, rr::INVALID_FIELD);
    let e = send(&mut other, false, op::CANCEL, acv_payload(&acv)).await;
    assert_eq!(e.result.unwrap_err().reason, rr::INVALID_FIELD);
    let polled = send(&mut c, false, op::POLL, acv_payload(&acv)).await;
    assert_eq!(polled.operation, Some(op::LOCATE));
    assert_eq!(uids(&polled), vec![uid.clone()]);
    // Polled once: gone.
    let e = send(&mut c, false, op::POLL, acv_payload(&acv)).await;
    assert!(e.result.unwrap_err().message.contains("names no operation"));

    // Cancel drops a queued Archive before it runs: the key stays on-line.
    let pending = send(&mut c, true, op::ARCHIVE, uid_payload(&uid)).await;
    let acv = pending.pending.clone().expect("Operation Pending");
    let cancelled = send(&mut c, false, op::CANCEL, acv_payload(&acv)).await;
    let payload = cancelled.result.unwrap();
    assert_eq!(
        payload
            .child(t::CANCELLATION_RESULT)
            .and_then(Item::as_enum),
        Some(1)
    );
    assert!(send(&mut c, false, op::GET, uid_payload(&uid))
        .await
        .result
        .is_ok());
    let e = send(&mut c, false, op::POLL, acv_payload(&acv)).await;
    assert!(e.result.is_err());

    // Archived (answered at once without the indicator): not served, not used, found only in archival storage.
    assert!(send(&mut c, false, op::ARCHIVE, uid_payload(&uid))
        .await
        .result
        .is_ok());
    let e = send(&mut c, false, op::GET, uid_payload(&uid))
        .await
        .result
        .unwrap_err();
    assert_eq!(e.reason, rr::OBJECT_ARCHIVED, "{e:?}");
    let encrypt = Item::structure(
        t::REQUEST_PAYLOAD,
        vec![
            Item::new(t::UNIQUE_IDENTIFIER, Value::TextString(uid.clone())),
            Item::structure(
                t::CRYPTOGRAPHIC_PARAMETERS,
                vec![
                    Item::new(t::BLOCK_CIPHER_MODE, Value::Enumeration(1)),
                    Item::new(t::PADDING_METHOD, Value::Enumeration(3)),
                ],
            ),
            Item::new(t::DATA, Value::ByteString(vec![1; 16])),
        ],
    );
    let e = send(&mut c, false, op::ENCRYPT, encrypt.clone())
        .await
        .result
        .unwrap_err();
    assert_eq!(e.reason, rr::OBJECT_ARCHIVED, "{e:?}");
    assert!(uids(
        &send(
            &mut c,
            false,
            op::LOCATE,
            locate_by_name("archived-key", None)
        )
        .await
    )
    .is_empty());
    assert_eq!(
        uids(
            &send(
                &mut c,
                false,
                op::LOCATE,
                locate_by_name("archived-key", Some(2))
            )
            .await
        ),
        vec![uid.clone()]
    );
    // Nothing but Recover, Get Attributes, Locate and Destroy touches an archived object.
    let add = Item::structure(
        t::REQUEST_PAYLOAD,
        vec![
            Item::new(t::UNIQUE_IDENTIFIER, Value::TextString(uid.clone())),
            Attribute::new("x-note", Value::TextString("n".into())).to_v1(),
        ],
    );
    let e = send(&mut c, false, op::ADD_ATTRIBUTE, add)
        .await
        .result
        .unwrap_err();
    assert_eq!(e.reason, rr::OBJECT_ARCHIVED, "{e:?}");
    let revoke = Item::structure(
        t::REQUEST_PAYLOAD,
        vec![
            Item::new(t::UNIQUE_IDENTIFIER, Value::TextString(uid.clone())),
            Item::structure(
                t::REVOCATION_REASON,
                vec![Item::new(t::REVOCATION_REASON_CODE, Value::Enumeration(1))],
            ),
        ],
    );
    let e = send(&mut c, false, op::REVOKE, revoke)
        .await
        .result
        .unwrap_err();
    assert_eq!(e.reason, rr::OBJECT_ARCHIVED, "{e:?}");
    let e = send(&mut c, false, op::REKEY, uid_payload(&uid))
        .await
        .result
        .unwrap_err();
    assert_eq!(e.reason, rr::OBJECT_ARCHIVED, "{e:?}");
    // Recover brings it back.
    assert!(send(&mut c, false, op::RECOVER, uid_payload(&uid))
        .await
        .result
        .is_ok());
    let r = send(&mut c, false, op::ENCRYPT, encrypt).await.result;
    assert!(r.is_ok(), "{r:?}");
    dev.stop();
}

#[tokio::test(flavor = "multi_thread")]
async fn one_client_cannot_fill_the_queue_of_asynchronous_operations() {
    let dir = tempfile::tempdir().unwrap();
    let mut dev = Dev::start(dir.path(), &["demo"]);
    let mut c = common::edge_client(&dev, "demo").await;
    let mut pending = 0;
    for _ in 0..80 {
        let r = send(&mut c, true, op::LOCATE, locate_by_name("nothing", None)).await;
        if r.pending.is_some() {
            pending += 1;
        } else {
            // Beyond its share the client is answered at once.
            assert!(r.result.is_ok());
        }
    }
    assert_eq!(pending, 64);
    dev.stop();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_queued_archive_of_the_id_placeholder_archives_that_object_and_undo_batches_are_not_queued(
) {
    let dir = tempfile::tempdir().unwrap();
    let mut dev = Dev::start(dir.path(), &["demo"]);
    let mut c = common::edge_client(&dev, "demo").await;
    let create = Item::structure(
        t::REQUEST_PAYLOAD,
        vec![
            Item::new(t::OBJECT_TYPE, Value::Enumeration(2)),
            Item::structure(
                t::TEMPLATE_ATTRIBUTE,
                vec![Attribute::new("Cryptographic Usage Mask", Value::Integer(0x0C)).to_v1()],
            ),
        ],
    );
    // Create, then Archive of the ID Placeholder, queued.
    let mut m = RequestMessage::new(
        V12,
        vec![
            (op::CREATE, create.clone()),
            (op::ARCHIVE, Item::structure(t::REQUEST_PAYLOAD, vec![])),
        ],
    );
    m.header.asynchronous = true;
    let r = ResponseMessage::parse(&c.call(&m.to_item()).await.unwrap()).unwrap();
    let uid = common::uids(r.items[0].result.as_ref().unwrap()).remove(0);
    let acv = r.items[1].pending.clone().expect("Operation Pending");
    let polled = send(&mut c, false, op::POLL, acv_payload(&acv)).await;
    assert!(polled.result.is_ok(), "{:?}", polled.result);
    let e = send(&mut c, false, op::GET, uid_payload(&uid))
        .await
        .result
        .unwrap_err();
    assert_eq!(e.reason, rr::OBJECT_ARCHIVED, "{e:?}");
    // A batch that may be undone is answered at once.
    let mut m = RequestMessage::new(
        V12,
        vec![
            (op::LOCATE, locate_by_name("x", None)),
            (op::CREATE, create),
        ],
    );
    m.header.asynchronous = true;
    m.header.error_continuation = 3;
    let r = ResponseMessage::parse(&c.call(&m.to_item()).await.unwrap()).unwrap();
    assert!(r.items.iter().all(|i| i.pending.is_none()));
    dev.stop();
}
