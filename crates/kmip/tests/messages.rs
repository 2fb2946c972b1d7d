//! KMIP message handling: parsing, negotiation, per-version result reasons, batches and both attribute encodings.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use openkcm_kmip::attributes::{self, Attribute};
use openkcm_kmip::enums::{batch_error_continuation as bec, operation as op, result_reason as rr};
use openkcm_kmip::{
    negotiate, process, tags as t, ItemContext, KmipError, OperationHandler, ProtocolVersion,
    RequestBatchItem, RequestHeader, RequestMessage, ResponseMessage,
};
use openkcm_ttlv::{Item, Value};

fn msg(version: ProtocolVersion, continuation: u32, items: Vec<(u32, Item)>) -> Item {
    RequestMessage {
        header: RequestHeader {
            version,
            error_continuation: continuation,
            client_correlation: Some("corr-1".into()),
            on_behalf_of: None,
            max_response_size: None,
            asynchronous: false,
        },
        items: items
            .into_iter()
            .enumerate()
            .map(|(i, (operation, payload))| RequestBatchItem {
                critical_extension: None,
                operation,
                batch_id: Some(vec![i as u8]),
                payload,
            })
            .collect(),
    }
    .to_item()
}

/// A toy handler: Create returns a fresh id, Get succeeds only for the placeholder id, anything else fails.
struct Toy;

#[async_trait::async_trait]
impl OperationHandler for Toy {
    async fn handle(
        &self,
        ctx: &ItemContext,
        operation: u32,
        payload: &Item,
    ) -> Result<Item, KmipError> {
        match operation {
            op::CREATE => Ok(Item::structure(
                t::RESPONSE_PAYLOAD,
                vec![Item::new(
                    t::UNIQUE_IDENTIFIER,
                    Value::TextString("new-1".into()),
                )],
            )),
            op::GET => {
                let uid = ctx.uid(payload)?;
                if uid == "new-1" {
                    Ok(Item::structure(t::RESPONSE_PAYLOAD, vec![]))
                } else {
                    Err(KmipError::not_found(&uid))
                }
            }
            op::ACTIVATE => Err(KmipError::wrong_state("not now")),
            other => Err(KmipError::unsupported_operation(other)),
        }
    }
}

fn empty() -> Item {
    Item::structure(t::REQUEST_PAYLOAD, vec![])
}

fn get(uid: &str) -> Item {
    Item::structure(
        t::REQUEST_PAYLOAD,
        vec![Item::new(
            t::UNIQUE_IDENTIFIER,
            Value::TextString(uid.into()),
        )],
    )
}

#[test]
fn versions_negotiate_down_to_the_nearest_supported_one() {
    assert_eq!(
        negotiate(ProtocolVersion::new(2, 1)),
        ProtocolVersion::new(2, 1)
    );
    assert_eq!(
        negotiate(ProtocolVersion::new(3, 0)),
        ProtocolVersion::new(2, 1)
    );
    assert_eq!(
        negotiate(ProtocolVersion::new(2, 0)),
        ProtocolVersion::new(2, 0)
    );
    assert_eq!(
        negotiate(ProtocolVersion::new(1, 9)),
        ProtocolVersion::new(1, 4)
    );
    assert_eq!(
        negotiate(ProtocolVersion::new(1, 2)),
        ProtocolVersion::new(1, 2)
    );
    assert_eq!(
        negotiate(ProtocolVersion::new(0, 9)),
        ProtocolVersion::new(1, 0)
    );
}

#[test]
fn kmip_2_reasons_are_mapped_for_1_x_clients() {
    let e = KmipError::wrong_state("x");
    assert_eq!(
        e.reason_for(ProtocolVersion::new(2, 0)),
        rr::WRONG_KEY_LIFECYCLE_STATE
    );
    assert_eq!(
        e.reason_for(ProtocolVersion::new(1, 4)),
        rr::PERMISSION_DENIED
    );
    let d = KmipError::new(rr::OBJECT_DESTROYED, "gone");
    assert_eq!(d.reason_for(ProtocolVersion::new(1, 0)), rr::ITEM_NOT_FOUND);
    assert_eq!(
        KmipError::general("x").reason_for(ProtocolVersion::new(1, 0)),
        rr::GENERAL_FAILURE
    );
}

#[tokio::test]
async fn the_id_placeholder_links_items_and_continue_processes_every_item() {
    let v = ProtocolVersion::new(1, 4);
    let resp = process(
        &Toy,
        &msg(
            v,
            bec::CONTINUE,
            vec![
                (op::CREATE, empty()),
                (op::GET, empty()),
                (op::ACTIVATE, empty()),
                (op::GET, get("other")),
            ],
        ),
    )
    .await;
    let r = ResponseMessage::parse(&resp).unwrap();
    assert_eq!(r.version, v);
    assert_eq!(r.client_correlation.as_deref(), Some("corr-1"));
    assert_eq!(r.items.len(), 4);
    assert!(r.items[0].result.is_ok() && r.items[1].result.is_ok());
    assert_eq!(
        r.items[2].result.as_ref().unwrap_err().reason,
        rr::PERMISSION_DENIED,
        "1.4 has no Wrong Key Lifecycle State"
    );
    assert_eq!(
        r.items[3].result.as_ref().unwrap_err().reason,
        rr::ITEM_NOT_FOUND
    );
    assert_eq!(r.items[3].batch_id.as_deref(), Some(&[3u8][..]));
}

#[tokio::test]
async fn stop_ends_the_batch_after_the_first_failure() {
    let resp = process(
        &Toy,
        &msg(
            ProtocolVersion::new(2, 0),
            bec::STOP,
            vec![(op::GET, get("x")), (op::CREATE, empty())],
        ),
    )
    .await;
    let r = ResponseMessage::parse(&resp).unwrap();
    assert_eq!(r.items.len(), 1);
    assert_eq!(r.items[0].operation, Some(op::GET));
}

#[tokio::test]
async fn malformed_messages_get_invalid_message() {
    // Batch count that lies.
    let mut m = msg(
        ProtocolVersion::new(1, 2),
        bec::STOP,
        vec![(op::CREATE, empty())],
    );
    if let Value::Structure(children) = &mut m.value {
        if let Value::Structure(h) = &mut children[0].value {
            for i in h.iter_mut() {
                if i.tag == t::BATCH_COUNT {
                    i.value = Value::Integer(5);
                }
            }
        }
    }
    let r = ResponseMessage::parse(&process(&Toy, &m).await).unwrap();
    assert_eq!(r.version, ProtocolVersion::new(1, 2));
    assert_eq!(
        r.items[0].result.as_ref().unwrap_err().reason,
        rr::INVALID_MESSAGE
    );
    // Not a request at all.
    let r = ResponseMessage::parse(
        &process(&Toy, &Item::new(t::REQUEST_MESSAGE, Value::Integer(1))).await,
    )
    .unwrap();
    assert_eq!(
        r.items[0].result.as_ref().unwrap_err().reason,
        rr::INVALID_MESSAGE
    );
    // A batch item without an operation.
    let m = Item::structure(
        t::REQUEST_MESSAGE,
        vec![
            Item::structure(
                t::REQUEST_HEADER,
                vec![
                    ProtocolVersion::new(1, 0).to_item(),
                    Item::new(t::BATCH_COUNT, Value::Integer(1)),
                ],
            ),
            Item::structure(t::BATCH_ITEM, vec![empty()]),
        ],
    );
    let r = ResponseMessage::parse(&process(&Toy, &m).await).unwrap();
    assert!(r.items[0]
        .result
        .as_ref()
        .unwrap_err()
        .message
        .contains("Operation"));
}

#[test]
fn request_messages_round_trip() {
    let m = msg(
        ProtocolVersion::new(1, 4),
        bec::CONTINUE,
        vec![(op::GET, get("k"))],
    );
    let parsed = RequestMessage::parse(&m).unwrap();
    assert_eq!(parsed.to_item(), m);
    assert_eq!(parsed.header.client_correlation.as_deref(), Some("corr-1"));
}

#[test]
fn attributes_read_the_same_from_template_attribute_and_attributes() {
    let attrs = vec![
        Attribute::new("Cryptographic Algorithm", Value::Enumeration(3)),
        Attribute::new("Cryptographic Length", Value::Integer(256)),
        Attribute::name_value("payroll"),
        Attribute::new("x-owner", Value::TextString("team-a".into())),
    ];
    let v1 = openkcm_kmip::payload::create_request(ProtocolVersion::new(1, 2), &attrs);
    let v2 = openkcm_kmip::payload::create_request(ProtocolVersion::new(2, 0), &attrs);
    assert!(v1.child(t::TEMPLATE_ATTRIBUTE).is_some() && v1.child(t::ATTRIBUTES).is_none());
    assert!(v2.child(t::ATTRIBUTES).is_some() && v2.child(t::TEMPLATE_ATTRIBUTE).is_none());
    // In 2.x standard attributes are tagged values; custom ones are Attribute structures with a vendor id.
    let a2 = v2.child(t::ATTRIBUTES).unwrap();
    assert_eq!(
        a2.child(t::CRYPTOGRAPHIC_LENGTH).unwrap().as_i32(),
        Some(256)
    );
    assert_eq!(
        a2.child(t::ATTRIBUTE)
            .unwrap()
            .child(t::ATTRIBUTE_NAME)
            .unwrap()
            .as_text(),
        Some("x-owner")
    );
    let from1 = attributes::from_payload(&v1).unwrap();
    let from2 = attributes::from_payload(&v2).unwrap();
    assert_eq!(from1, attrs);
    assert_eq!(from2, attrs);
    assert_eq!(from1[2].name_text(), Some("payroll"));
}

#[test]
fn unknown_2_x_attribute_tags_and_bad_1_x_attributes_are_invalid_field() {
    let p = Item::structure(
        t::REQUEST_PAYLOAD,
        vec![Item::structure(
            t::ATTRIBUTES,
            vec![Item::new(0x42FFFF, Value::Integer(1))],
        )],
    );
    assert_eq!(
        attributes::from_payload(&p).unwrap_err().reason,
        rr::INVALID_FIELD
    );
    let p = Item::structure(
        t::REQUEST_PAYLOAD,
        vec![Item::structure(
            t::TEMPLATE_ATTRIBUTE,
            vec![Item::structure(
                t::ATTRIBUTE,
                vec![Item::new(
                    t::ATTRIBUTE_NAME,
                    Value::TextString("Name".into()),
                )],
            )],
        )],
    );
    assert_eq!(
        attributes::from_payload(&p).unwrap_err().reason,
        rr::INVALID_FIELD
    );
}

/// Returns a 1 KiB payload and counts its calls.
struct Big(std::sync::atomic::AtomicUsize);

#[async_trait::async_trait]
impl OperationHandler for Big {
    async fn handle(&self, _: &ItemContext, _: u32, _: &Item) -> Result<Item, KmipError> {
        self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Ok(Item::structure(
            t::RESPONSE_PAYLOAD,
            vec![Item::new(t::DATA, Value::ByteString(vec![7; 1024]))],
        ))
    }
}

#[tokio::test]
async fn a_batch_stops_executing_once_its_response_is_full_and_keeps_earlier_answers() {
    for continuation in [bec::CONTINUE, bec::STOP] {
        let big = Big(Default::default());
        let items = (0..5000).map(|_| (op::QUERY, empty())).collect();
        let mut m = RequestMessage::new(ProtocolVersion::new(1, 4), items);
        m.header.max_response_size = Some(10_000);
        m.header.error_continuation = continuation;
        let r = ResponseMessage::parse(&process(&big, &m.to_item()).await).unwrap();
        let calls = big.0.load(std::sync::atomic::Ordering::SeqCst);
        assert!(
            (5..20).contains(&calls),
            "the handler ran {calls} times for a response capped at 10 000 bytes"
        );
        // Everything that fitted keeps its answer; the item that overflowed says it was performed.
        assert!(r.items[..calls - 1].iter().all(|i| i.result.is_ok()));
        let overflow = r.items[calls - 1].result.as_ref().unwrap_err();
        assert!(
            overflow.reason == rr::RESPONSE_TOO_LARGE && overflow.message.contains("was performed")
        );
        // Nothing after it is executed or answered, and the whole message respects the limit (but for that item).
        assert_eq!(r.items.len(), calls);
        let encoded = openkcm_ttlv::encoded_len(&r.to_item());
        assert!(encoded < 10_000 + 400, "response of {encoded} bytes");
    }
}

#[tokio::test]
async fn undefined_header_options_are_refused() {
    let mut m = RequestMessage::new(ProtocolVersion::new(1, 4), vec![(op::CREATE, empty())]);
    m.header.error_continuation = 4;
    let r = ResponseMessage::parse(&process(&Toy, &m.to_item()).await).unwrap();
    assert_eq!(
        r.items[0].result.as_ref().unwrap_err().reason,
        rr::INVALID_FIELD
    );
    let mut m = RequestMessage::new(ProtocolVersion::new(1, 4), vec![(op::CREATE, empty())]);
    m.header.max_response_size = Some(-5);
    let r = ResponseMessage::parse(&process(&Toy, &m.to_item()).await).unwrap();
    assert_eq!(
        r.items[0].result.as_ref().unwrap_err().reason,
        rr::INVALID_FIELD
    );
    // Discover Versions answers whatever version the client speaks.
    let m = RequestMessage::new(
        ProtocolVersion::new(0, 9),
        vec![(op::DISCOVER_VERSIONS, empty())],
    );
    struct Dv;
    #[async_trait::async_trait]
    impl OperationHandler for Dv {
        async fn handle(&self, _: &ItemContext, _: u32, p: &Item) -> Result<Item, KmipError> {
            openkcm_kmip::payload::discover_versions_response(p)
        }
    }
    let r = ResponseMessage::parse(&process(&Dv, &m.to_item()).await).unwrap();
    assert!(r.items[0].result.is_ok());
}

#[tokio::test]
async fn after_a_failed_item_the_id_placeholder_is_empty() {
    // Create succeeds (placeholder = new-1), Get "other" fails, then Activate with no identifier must not fall
    // back to new-1.
    let m = msg(
        ProtocolVersion::new(1, 4),
        bec::CONTINUE,
        vec![
            (op::CREATE, empty()),
            (op::GET, get("other")),
            (op::GET, empty()),
        ],
    );
    let r = ResponseMessage::parse(&process(&Toy, &m).await).unwrap();
    assert!(r.items[0].result.is_ok());
    assert_eq!(
        r.items[1].result.as_ref().unwrap_err().reason,
        rr::ITEM_NOT_FOUND
    );
    assert_eq!(
        r.items[2].result.as_ref().unwrap_err().reason,
        rr::MISSING_DATA
    );
}

/// A request Time Stamp a few seconds ahead of the server clock is accepted; more than the stated tolerance is not.
#[tokio::test]
async fn request_time_stamp_tolerance() {
    use openkcm_kmip::message::MAX_CLOCK_SKEW_SECS;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    for (ahead, accepted) in [
        (-86_400, true),
        (5, true),
        (MAX_CLOCK_SKEW_SECS - 5, true),
        (3_600, false),
    ] {
        let mut m = RequestMessage::new(
            ProtocolVersion::new(1, 4),
            vec![(op::CREATE, Item::structure(t::REQUEST_PAYLOAD, vec![]))],
        )
        .to_item();
        if let Value::Structure(c) = &mut m.value {
            if let Some(h) = c.iter_mut().find(|i| i.tag == t::REQUEST_HEADER) {
                if let Value::Structure(hc) = &mut h.value {
                    hc.insert(1, Item::new(t::TIME_STAMP, Value::DateTime(now + ahead)));
                }
            }
        }
        let r = ResponseMessage::parse(&process(&Toy, &m).await).unwrap();
        let e = r.items[0].result.as_ref().err();
        assert_eq!(e.is_none(), accepted, "{ahead}: {e:?}");
        if let Some(e) = e {
            assert!(e.message.contains("ahead of the server clock"), "{e:?}");
        }
    }
}

/// Regression (seen on reading the change, confirmed by the kmip_request fuzz target on a crafted input): a Time
/// Stamp near the ends of the Date-Time range neither overflows (it used to panic with overflow checks on) nor wraps
/// around into "far ahead".
#[tokio::test]
async fn request_time_stamps_at_the_ends_of_the_range_do_not_overflow() {
    for (stamp, accepted) in [(i64::MIN, true), (i64::MIN + 1, true), (i64::MAX, false)] {
        let mut m = RequestMessage::new(
            ProtocolVersion::new(1, 4),
            vec![(op::CREATE, Item::structure(t::REQUEST_PAYLOAD, vec![]))],
        )
        .to_item();
        if let Value::Structure(c) = &mut m.value {
            if let Some(h) = c.iter_mut().find(|i| i.tag == t::REQUEST_HEADER) {
                if let Value::Structure(hc) = &mut h.value {
                    hc.insert(1, Item::new(t::TIME_STAMP, Value::DateTime(stamp)));
                }
            }
        }
        let r = ResponseMessage::parse(&process(&Toy, &m).await).unwrap();
        let e = r.items[0].result.as_ref().err();
        assert_eq!(e.is_none(), accepted, "{stamp}: {e:?}");
    }
}

/// Regression (seen on reading the change, confirmed by the kmip_request fuzz target on a crafted input): a
/// critical Message Extension survives re-encoding (`into_item` used to drop it, so a request re-encoded by a proxy
/// or client lost the criticality), and the server still refuses the item.
#[tokio::test]
async fn a_critical_message_extension_survives_re_encoding() {
    let mut request = RequestMessage::new(ProtocolVersion::new(2, 1), vec![(op::GET, get("k"))]);
    request.items[0].critical_extension = Some("acme".into());
    let item = request.to_item();
    assert_eq!(RequestMessage::parse(&item).unwrap(), request);
    let r = ResponseMessage::parse(&process(&Toy, &item).await).unwrap();
    assert_eq!(
        r.items[0].result.as_ref().unwrap_err().reason,
        rr::FEATURE_NOT_SUPPORTED
    );
}

/// Answers every operation with fields of several versions: 1.0's IV/Counter/Nonce, 1.2's Data, 1.4's Authenticated Encryption
/// Tag, 2.0's Server Name, the 1.x-only Attribute Index and a custom attribute holding a 1.3 field.
struct Lavish;

#[async_trait::async_trait]
impl OperationHandler for Lavish {
    async fn handle(&self, _: &ItemContext, _: u32, _: &Item) -> Result<Item, KmipError> {
        Ok(Item::structure(
            t::RESPONSE_PAYLOAD,
            vec![
                Item::new(t::UNIQUE_IDENTIFIER, Value::TextString("k".into())),
                Item::new(t::DATA, Value::ByteString(vec![1; 16])),
                Item::new(t::IV_COUNTER_NONCE, Value::ByteString(vec![2; 12])),
                Item::new(
                    t::AUTHENTICATED_ENCRYPTION_TAG,
                    Value::ByteString(vec![3; 16]),
                ),
                Item::new(t::SERVER_NAME, Value::TextString("s".into())),
                Item::new(t::ATTRIBUTE_INDEX, Value::Integer(0)),
                Item::structure(
                    t::ATTRIBUTE,
                    vec![
                        Item::new(t::ATTRIBUTE_NAME, Value::TextString("x-mine".into())),
                        Item::structure(
                            t::ATTRIBUTE_VALUE,
                            vec![Item::new(t::OFFSET_ITEMS, Value::Integer(1))],
                        ),
                    ],
                ),
            ],
        ))
    }
}

#[tokio::test]
async fn a_response_carries_only_the_fields_its_version_defines() {
    let tags_for = |minor_major: (i32, i32)| async move {
        let v = ProtocolVersion::new(minor_major.0, minor_major.1);
        let resp = process(&Lavish, &msg(v, bec::STOP, vec![(op::GET, empty())])).await;
        let payload = resp
            .child(t::BATCH_ITEM)
            .and_then(|b| b.child(t::RESPONSE_PAYLOAD))
            .unwrap()
            .clone();
        assert_eq!(
            openkcm_kmip::tag_versions::undefined_tags(&resp, v),
            Vec::<u32>::new(),
            "{v}"
        );
        let custom = payload.child(t::ATTRIBUTE).unwrap();
        assert!(
            custom
                .child(t::ATTRIBUTE_VALUE)
                .unwrap()
                .child(t::OFFSET_ITEMS)
                .is_some(),
            "a custom attribute is returned as sent"
        );
        payload
            .children()
            .iter()
            .map(|c| c.tag)
            .collect::<Vec<u32>>()
    };
    let base = [t::UNIQUE_IDENTIFIER, t::DATA, t::IV_COUNTER_NONCE];
    assert_eq!(
        tags_for((1, 2)).await,
        [&base[..], &[t::ATTRIBUTE_INDEX, t::ATTRIBUTE]].concat()
    );
    assert_eq!(
        tags_for((1, 4)).await,
        [
            &base[..],
            &[
                t::AUTHENTICATED_ENCRYPTION_TAG,
                t::ATTRIBUTE_INDEX,
                t::ATTRIBUTE
            ]
        ]
        .concat()
    );
    assert_eq!(
        tags_for((2, 0)).await,
        [
            &base[..],
            &[
                t::AUTHENTICATED_ENCRYPTION_TAG,
                t::SERVER_NAME,
                t::ATTRIBUTE
            ]
        ]
        .concat()
    );
    // 1.0 already had IV/Counter/Nonce (key wrapping), not Data.
    assert_eq!(
        tags_for((1, 0)).await,
        vec![
            t::UNIQUE_IDENTIFIER,
            t::IV_COUNTER_NONCE,
            t::ATTRIBUTE_INDEX,
            t::ATTRIBUTE
        ]
    );
}
