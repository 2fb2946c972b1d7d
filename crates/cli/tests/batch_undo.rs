//! Batch Error Continuation Option Undo: when an item fails, what the earlier items did is rolled back and they
//! are answered Operation Undone.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;
use common::Dev;
use openkcm_kmip::attributes::Attribute;
use openkcm_kmip::enums::{
    batch_error_continuation as bec, operation as op, result_reason as rr, result_status,
};
use openkcm_kmip::payload;
use openkcm_kmip::{tags as t, ProtocolVersion, RequestMessage, ResponseMessage};
use openkcm_ttlv::{Item, Value};

const V14: ProtocolVersion = ProtocolVersion::new(1, 4);

fn with_undo(mut m: Item) -> Item {
    if let Value::Structure(children) = &mut m.value {
        if let Some(h) = children.iter_mut().find(|c| c.tag == t::REQUEST_HEADER) {
            if let Value::Structure(hc) = &mut h.value {
                let at = hc.len() - 1; // before Batch Count
                hc.insert(
                    at,
                    Item::new(
                        t::BATCH_ERROR_CONTINUATION_OPTION,
                        Value::Enumeration(bec::UNDO),
                    ),
                );
            }
        }
    }
    m
}

fn statuses(r: &Item) -> Vec<u32> {
    r.children_with(t::BATCH_ITEM)
        .map(|b| b.child(t::RESULT_STATUS).unwrap().as_enum().unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_item_rolls_back_the_batch() {
    let dir = tempfile::tempdir().unwrap();
    let mut dev = Dev::start(dir.path(), &["demo"]);
    let mut c = common::edge_client(&dev, "demo").await;
    // An existing key whose attributes the batch will change.
    let m = RequestMessage::new(
        V14,
        vec![(
            op::CREATE,
            payload::create_request(V14, &[Attribute::name_value("kept")]),
        )],
    );
    let r = ResponseMessage::parse(&c.call(&m.to_item()).await.unwrap()).unwrap();
    let existing = r.items[0]
        .result
        .as_ref()
        .unwrap()
        .child(t::UNIQUE_IDENTIFIER)
        .unwrap()
        .as_text()
        .unwrap()
        .to_owned();

    // Create a key, rename the existing one, then fail (Get of an unknown id): everything is undone.
    let add = Item::structure(
        t::REQUEST_PAYLOAD,
        vec![
            Item::new(t::UNIQUE_IDENTIFIER, Value::TextString(existing.clone())),
            Attribute::name_value("added-in-batch").to_v1(),
        ],
    );
    let batch = RequestMessage::new(
        V14,
        vec![
            (
                op::CREATE,
                payload::create_request(V14, &[Attribute::name_value("made-in-batch")]),
            ),
            (op::ADD_ATTRIBUTE, add),
            (
                op::GET,
                payload::uid_payload(t::REQUEST_PAYLOAD, "no-such-key"),
            ),
            (
                op::ACTIVATE,
                payload::uid_payload(t::REQUEST_PAYLOAD, &existing),
            ),
        ],
    );
    let reply = c.call(&with_undo(batch.to_item())).await.unwrap();
    assert_eq!(
        statuses(&reply),
        [
            result_status::OPERATION_UNDONE,
            result_status::OPERATION_UNDONE,
            result_status::OPERATION_FAILED
        ],
        "the item after the failure is not executed"
    );
    let parsed = ResponseMessage::parse(&reply).unwrap();
    assert_eq!(
        parsed.items[2].result.as_ref().unwrap_err().reason,
        rr::ITEM_NOT_FOUND
    );

    // The key made in the batch does not exist; the existing key lost the added name.
    let locate = |name: &str| payload::LocateRequest {
        max_items: None,
        offset_items: None,
        attributes: vec![Attribute::name_value(name)],
    };
    for (name, expected) in [("made-in-batch", 0), ("added-in-batch", 0), ("kept", 1)] {
        let m = RequestMessage::new(V14, vec![(op::LOCATE, locate(name).to_item(V14))]);
        let r = ResponseMessage::parse(&c.call(&m.to_item()).await.unwrap()).unwrap();
        assert_eq!(
            payload::uids(r.items[0].result.as_ref().unwrap()).len(),
            expected,
            "{name}"
        );
    }

    // A batch that succeeds with Undo is simply answered.
    let ok = RequestMessage::new(
        V14,
        vec![
            (op::CREATE, payload::create_request(V14, &[])),
            (op::GET, Item::structure(t::REQUEST_PAYLOAD, vec![])),
        ],
    );
    let reply = c.call(&with_undo(ok.to_item())).await.unwrap();
    assert_eq!(
        statuses(&reply),
        [result_status::SUCCESS, result_status::SUCCESS]
    );
    dev.stop();
}
