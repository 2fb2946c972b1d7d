//! KMIP 2.1: version negotiation, the 2.1 operations, result reasons per version, the 2.x attribute model and the
//! 2.x Unique Identifier forms.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use openkcm_kmip::attributes::{self, Attribute, TAG_VENDOR_ATTRIBUTE};
use openkcm_kmip::enums::{operation as op, result_reason as rr, unique_identifier as uidref};
use openkcm_kmip::{
    payload, process, tags as t, xml, ItemContext, KmipError, OperationHandler, ProtocolVersion,
    RequestMessage, ResponseMessage, SUPPORTED_VERSIONS,
};
use openkcm_ttlv::{Item, Value};
use std::sync::atomic::{AtomicUsize, Ordering};

const V21: ProtocolVersion = ProtocolVersion::new(2, 1);
const V20: ProtocolVersion = ProtocolVersion::new(2, 0);
const V14: ProtocolVersion = ProtocolVersion::new(1, 4);

/// Create and Register return fresh identifiers; Get answers with the identifier it acted on (the ID Placeholder
/// when the payload names none); Activate fails with a 2.x-only reason; any other operation succeeds empty.
#[derive(Default)]
struct Echo {
    next: AtomicUsize,
}

#[async_trait::async_trait]
impl OperationHandler for Echo {
    async fn handle(
        &self,
        ctx: &ItemContext,
        operation: u32,
        payload: &Item,
    ) -> Result<Item, KmipError> {
        let uid = |u: String| {
            Ok(Item::structure(
                t::RESPONSE_PAYLOAD,
                vec![Item::new(t::UNIQUE_IDENTIFIER, Value::TextString(u))],
            ))
        };
        match operation {
            op::CREATE => uid(format!(
                "created-{}",
                self.next.fetch_add(1, Ordering::Relaxed)
            )),
            op::REGISTER => uid(format!(
                "registered-{}",
                self.next.fetch_add(1, Ordering::Relaxed)
            )),
            op::GET => uid(ctx.uid(payload)?),
            op::ACTIVATE => Err(KmipError::wrong_state("the key is destroyed")),
            op::REVOKE => Err(KmipError::new(rr::CONSTRAINT_VIOLATION, "constrained")),
            _ => Ok(Item::structure(t::RESPONSE_PAYLOAD, vec![])),
        }
    }
}

fn empty() -> Item {
    Item::structure(t::REQUEST_PAYLOAD, vec![])
}

fn with_uid(value: Value) -> Item {
    Item::structure(
        t::REQUEST_PAYLOAD,
        vec![Item::new(t::UNIQUE_IDENTIFIER, value)],
    )
}

async fn run(version: ProtocolVersion, items: Vec<(u32, Item)>) -> ResponseMessage {
    let mut request = RequestMessage::new(version, items);
    // Continue, so that every item is answered.
    request.header.error_continuation = openkcm_kmip::enums::batch_error_continuation::CONTINUE;
    ResponseMessage::parse(&process(&Echo::default(), &request.into_item()).await).unwrap()
}

fn text_uid(r: &Result<Item, KmipError>) -> &str {
    r.as_ref()
        .unwrap()
        .child(t::UNIQUE_IDENTIFIER)
        .and_then(Item::as_text)
        .unwrap()
}

#[tokio::test]
async fn a_2_1_request_gets_a_2_1_response_and_discover_versions_offers_2_1_first() {
    let r = run(V21, vec![(op::QUERY, empty())]).await;
    assert_eq!(r.version, V21);
    assert!(r.items[0].result.is_ok());
    // 2.0 clients still get 2.0, and a later version negotiates down to 2.1.
    assert_eq!(run(V20, vec![(op::QUERY, empty())]).await.version, V20);
    let later = run(
        ProtocolVersion::new(2, 2),
        vec![(op::DISCOVER_VERSIONS, empty())],
    )
    .await;
    assert_eq!(later.version, V21);

    let offered: Vec<ProtocolVersion> = payload::discover_versions_response(&empty())
        .unwrap()
        .children_with(t::PROTOCOL_VERSION)
        .map(|v| ProtocolVersion::from_item(v).unwrap())
        .collect();
    let expected: Vec<ProtocolVersion> = [(2, 1), (2, 0), (1, 4), (1, 3), (1, 2), (1, 1), (1, 0)]
        .iter()
        .map(|&(a, b)| ProtocolVersion::new(a, b))
        .collect();
    assert_eq!(offered, expected);
    assert_eq!(SUPPORTED_VERSIONS, expected.as_slice());
    // A client offering 2.1 and 1.4 is told both, in the server's order.
    let both = Item::structure(t::REQUEST_PAYLOAD, vec![V14.to_item(), V21.to_item()]);
    let chosen: Vec<ProtocolVersion> = payload::discover_versions_response(&both)
        .unwrap()
        .children_with(t::PROTOCOL_VERSION)
        .map(|v| ProtocolVersion::from_item(v).unwrap())
        .collect();
    assert_eq!(chosen, vec![V21, V14]);
}

#[tokio::test]
async fn operations_introduced_in_2_1_are_operation_not_supported_in_a_2_0_request() {
    let added = [
        (op::SET_DEFAULTS, "Set Defaults"),
        (op::SET_CONSTRAINTS, "Set Constraints"),
        (op::GET_CONSTRAINTS, "Get Constraints"),
        (
            op::QUERY_ASYNCHRONOUS_REQUESTS,
            "Query Asynchronous Requests",
        ),
        (op::PROCESS, "Process"),
        (op::PING, "Ping"),
    ];
    for (code, name) in added {
        assert_eq!(op::introduced_in(code), Some(V21), "{name}");
        assert_eq!(op::name(code), name);
    }
    assert_eq!(op::introduced_in(0x35), Some(V20)); // Re-Provision
    assert_eq!(op::introduced_in(0x3C), None); // Create Group: KMIP 3.0
    assert_eq!((op::PING, op::SET_DEFAULTS), (0x3B, 0x36));

    let r = run(V20, vec![(op::PING, empty()), (op::SET_ATTRIBUTE, empty())]).await;
    let e = r.items[0].result.as_ref().unwrap_err();
    assert_eq!(e.reason, rr::OPERATION_NOT_SUPPORTED);
    assert_eq!(e.message, "Ping is not defined in KMIP 2.0");
    assert!(r.items[1].result.is_ok(), "Set Attribute exists in 2.0");
    // In a 2.1 request the operation reaches the handler.
    let r = run(V21, vec![(op::PING, empty())]).await;
    assert!(r.items[0].result.is_ok());
}

#[tokio::test]
async fn result_reasons_are_sent_as_the_client_version_defines_them() {
    // Unit: the mapping per version.
    let wrong_state = KmipError::wrong_state("x");
    assert_eq!(wrong_state.reason_for(V21), rr::WRONG_KEY_LIFECYCLE_STATE);
    assert_eq!(wrong_state.reason_for(V20), rr::WRONG_KEY_LIFECYCLE_STATE);
    assert_eq!(wrong_state.reason_for(V14), rr::PERMISSION_DENIED);
    let constraint = KmipError::new(rr::CONSTRAINT_VIOLATION, "x");
    assert_eq!(constraint.reason_for(V21), rr::CONSTRAINT_VIOLATION);
    assert_eq!(constraint.reason_for(V20), rr::INVALID_ATTRIBUTE_VALUE);
    assert_eq!(constraint.reason_for(V14), rr::INVALID_FIELD);
    let group = KmipError::new(rr::UNKNOWN_OBJECT_GROUP, "x");
    assert_eq!(group.reason_for(V21), rr::UNKNOWN_OBJECT_GROUP);
    assert_eq!(group.reason_for(V20), rr::ITEM_NOT_FOUND);
    let duplicate = KmipError::new(rr::DUPLICATE_PROCESS_REQUEST, "x");
    assert_eq!(duplicate.reason_for(V21), rr::DUPLICATE_PROCESS_REQUEST);
    assert_eq!(duplicate.reason_for(V20), rr::GENERAL_FAILURE);
    assert_eq!(
        KmipError::new(rr::OBJECT_DESTROYED, "x").reason_for(V21),
        rr::OBJECT_DESTROYED
    );
    assert_eq!(
        (
            rr::CONSTRAINT_VIOLATION,
            rr::UNKNOWN_OBJECT_GROUP,
            rr::DUPLICATE_PROCESS_REQUEST
        ),
        (0x4B, 0x4A, 0x4C)
    );
    assert_eq!(rr::introduced_in(rr::CONSTRAINT_VIOLATION), V21);
    assert_eq!(rr::introduced_in(rr::WRONG_KEY_LIFECYCLE_STATE), V20);
    assert_eq!(
        rr::introduced_in(rr::ITEM_NOT_FOUND),
        ProtocolVersion::new(1, 0)
    );

    // End to end: the encoded response carries the reason of the client's version.
    let items = || vec![(op::ACTIVATE, empty()), (op::REVOKE, empty())];
    let reasons = |r: ResponseMessage| -> Vec<u32> {
        r.items
            .iter()
            .map(|i| i.result.as_ref().unwrap_err().reason)
            .collect()
    };
    assert_eq!(
        reasons(run(V21, items()).await),
        vec![rr::WRONG_KEY_LIFECYCLE_STATE, rr::CONSTRAINT_VIOLATION]
    );
    assert_eq!(
        reasons(run(V20, items()).await),
        vec![rr::WRONG_KEY_LIFECYCLE_STATE, rr::INVALID_ATTRIBUTE_VALUE]
    );
    assert_eq!(
        reasons(run(V14, items()).await),
        vec![rr::PERMISSION_DENIED, rr::INVALID_FIELD]
    );
}

#[test]
fn kmip_2_1_uses_the_attributes_structure_and_attribute_references() {
    let attrs = vec![
        Attribute::new("Cryptographic Algorithm", Value::Enumeration(3)),
        Attribute::new("Cryptographic Length", Value::Integer(256)),
        Attribute::name_value("orders"),
        Attribute::new("x-ID", Value::TextString("TC-1".into())),
    ];
    // Create: an Attributes structure, no Template-Attribute.
    let create = payload::create_request(V21, &attrs);
    assert!(create.child(t::TEMPLATE_ATTRIBUTE).is_none());
    let holder = create.child(t::ATTRIBUTES).unwrap();
    let tags: Vec<u32> = holder.children().iter().map(|c| c.tag).collect();
    assert_eq!(
        tags,
        vec![
            t::CRYPTOGRAPHIC_ALGORITHM,
            t::CRYPTOGRAPHIC_LENGTH,
            t::NAME,
            TAG_VENDOR_ATTRIBUTE
        ]
    );
    // A custom attribute is a vendor attribute: Vendor Identification, Attribute Name, Attribute Value.
    let vendor = &holder.children()[3];
    assert_eq!(
        vendor.child(t::VENDOR_IDENTIFICATION).unwrap().as_text(),
        Some("x")
    );
    assert_eq!(
        vendor.child(t::ATTRIBUTE_NAME).unwrap().as_text(),
        Some("x-ID")
    );
    assert_eq!(
        vendor.child(t::ATTRIBUTE_VALUE).unwrap().as_text(),
        Some("TC-1")
    );
    // Reading it back gives the same attributes, and the 1.x encoding of the same request too.
    let parsed = attributes::from_payload(&create).unwrap();
    assert_eq!(parsed, attrs);
    let v14 = payload::create_request(V14, &attrs);
    assert!(v14.child(t::ATTRIBUTES).is_none());
    assert_eq!(attributes::from_payload(&v14).unwrap(), attrs);

    // Get Attributes responses: one Attributes structure in 2.1, Attribute structures in 1.4.
    let out = attributes::to_payload_items(&attrs, V21);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].tag, t::ATTRIBUTES);
    assert!(attributes::to_payload_items(&attrs, V14)
        .iter()
        .all(|i| i.tag == t::ATTRIBUTE));

    // Attribute Reference instead of Attribute Name: the tag for standard attributes, a vendor reference otherwise.
    let state = attributes::reference_item("State", V21);
    assert_eq!(state.tag, t::ATTRIBUTE_REFERENCE);
    assert_eq!(state.value, Value::Enumeration(t::STATE));
    let custom = attributes::reference_item("x-ID", V21);
    assert_eq!(custom.tag, t::ATTRIBUTE_REFERENCE);
    assert_eq!(
        custom.child(t::ATTRIBUTE_NAME).unwrap().as_text(),
        Some("x-ID")
    );
    assert_eq!(
        attributes::reference_item("State", V14).value,
        Value::TextString("State".into())
    );
    let request = Item::structure(t::REQUEST_PAYLOAD, vec![state.clone(), custom.clone()]);
    assert_eq!(
        attributes::requested_names(&request).unwrap(),
        vec!["State".to_string(), "x-ID".to_string()]
    );
    // The same reference twice is refused, as KMIP 2.1 requires.
    let twice = Item::structure(t::REQUEST_PAYLOAD, vec![state.clone(), state]);
    assert_eq!(
        attributes::requested_names(&twice).unwrap_err().reason,
        rr::INVALID_MESSAGE
    );
}

#[test]
fn attribute_references_are_written_as_tag_names_in_the_xml_encoding() {
    let doc = r#"<RequestPayload>
      <UniqueIdentifier type="TextString" value="abc"/>
      <AttributeReference type="Enumeration" value="CryptographicUsageMask"/>
      <AttributeReference type="Enumeration" value="0x42008D"/>
    </RequestPayload>"#;
    let item = &xml::from_xml(doc).unwrap()[0];
    let refs: Vec<&Value> = item
        .children_with(t::ATTRIBUTE_REFERENCE)
        .map(|r| &r.value)
        .collect();
    assert_eq!(
        refs,
        vec![
            &Value::Enumeration(t::CRYPTOGRAPHIC_USAGE_MASK),
            &Value::Enumeration(t::STATE)
        ]
    );
    let text = xml::to_xml(item);
    assert!(
        text.contains(r#"<AttributeReference type="Enumeration" value="State"/>"#),
        "{text}"
    );
    assert_eq!(&xml::from_xml(&text).unwrap()[0], item);
}

#[tokio::test]
async fn a_2_x_unique_identifier_may_name_an_earlier_item_of_the_batch() {
    let r = run(
        V21,
        vec![
            (op::CREATE, empty()),
            (op::REGISTER, empty()),
            // ID Placeholder: the identifier the previous item returned.
            (
                op::GET,
                with_uid(Value::Enumeration(uidref::ID_PLACEHOLDER)),
            ),
            // By operation: the most recent Create of the batch.
            (op::GET, with_uid(Value::Enumeration(uidref::CREATE))),
            (op::GET, with_uid(Value::Enumeration(uidref::REGISTER))),
            // Text String: as written.
            (op::GET, with_uid(Value::TextString("abc".into()))),
            // No Re-key earlier in the batch.
            (op::GET, with_uid(Value::Enumeration(uidref::REKEY))),
            (op::GET, with_uid(Value::Enumeration(0x7F))),
            (op::GET, with_uid(Value::Integer(0))),
        ],
    )
    .await;
    assert_eq!(text_uid(&r.items[0].result), "created-0");
    assert_eq!(text_uid(&r.items[1].result), "registered-1");
    assert_eq!(text_uid(&r.items[2].result), "registered-1");
    assert_eq!(text_uid(&r.items[3].result), "created-0");
    assert_eq!(text_uid(&r.items[4].result), "registered-1");
    assert_eq!(text_uid(&r.items[5].result), "abc");
    let reason = |i: usize| r.items[i].result.as_ref().unwrap_err().reason;
    assert_eq!(reason(6), rr::ITEM_NOT_FOUND);
    assert_eq!(reason(7), rr::INVALID_FIELD);
    assert_eq!(reason(8), rr::FEATURE_NOT_SUPPORTED);

    // ID Placeholder with nothing before it is the handler's own "no identifier" answer.
    let r = run(
        V21,
        vec![(
            op::GET,
            with_uid(Value::Enumeration(uidref::ID_PLACEHOLDER)),
        )],
    )
    .await;
    assert_eq!(
        r.items[0].result.as_ref().unwrap_err().reason,
        rr::MISSING_DATA
    );

    // KMIP 1.x knows only Text String identifiers.
    let r = run(
        V14,
        vec![
            (op::CREATE, empty()),
            (op::GET, with_uid(Value::Enumeration(uidref::CREATE))),
        ],
    )
    .await;
    let e = r.items[1].result.as_ref().unwrap_err();
    assert_eq!(e.reason, rr::INVALID_FIELD, "{e:?}");
}
