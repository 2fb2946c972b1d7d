//! Arbitrary bytes as a KMIP request: TTLV decode, `RequestMessage::parse`, then the server's whole batch loop
//! (`openkcm_kmip::process`) over a small in-memory handler that reads every payload with the crate's own
//! payload parsers and answers with its own response builders.
//!
//! Properties checked on every input that decodes (a violation panics, which libFuzzer reports as a crash):
//! * nothing panics: decoder, parser, batch loop, payload parsers, response builders;
//! * a parsed request re-encodes (`RequestMessage::into_item`) to a tree that parses to the same request;
//! * the response always encodes, decodes back to the same tree, and parses as a Response Message whose
//!   Batch Count matches its batch items;
//! * for a parsed request: the response is written in the negotiated version, never holds more items than the
//!   request, echoes each item's Operation and Unique Batch Item ID in order, stops after the first failure unless
//!   the client asked for Continue, and, apart from the item that reports it did not fit, stays within the
//!   client's Maximum Response Size (capped at `MAX_RESPONSE_BYTES`);
//! * a request Time Stamp more than `MAX_CLOCK_SKEW_SECS` ahead of the clock fails every item;
//! * a Server Correlation Value is sent exactly when the client sent a Client Correlation Value in 1.4 or later,
//!   and an item carrying a critical Message Extension always fails; the handler cannot undo, so no item is ever
//!   answered Operation Undone and Undo with several items refuses the header.
#![no_main]

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::pin;
use std::sync::Mutex;
use std::task::{Context, Poll, Waker};
use std::time::{SystemTime, UNIX_EPOCH};

use libfuzzer_sys::fuzz_target;
use openkcm_kmip::attributes::{self, Attribute};
use openkcm_kmip::enums::{
    batch_error_continuation as bec, object_type, operation as op, result_status, state,
};
use openkcm_kmip::message::{MAX_CLOCK_SKEW_SECS, MAX_RESPONSE_BYTES};
use openkcm_kmip::payload::{self, CipherRequest, CipherResponse, LocateRequest, RevokeRequest};
use openkcm_kmip::{
    negotiate, process, tags as t, ItemContext, KmipError, OperationHandler, ProtocolVersion,
    RequestMessage, ResponseMessage,
};
use openkcm_ttlv::{decode, encode, encoded_len, Item, Limits, Value};

/// Most objects one message may create in the toy store, so a batch of thousands of Creates stays cheap.
const MAX_OBJECTS: usize = 64;

struct Object {
    state: u32,
    key: Vec<u8>,
    attrs: Vec<Attribute>,
}

/// A KMIP server in a map: enough behaviour that every payload parser and response builder of the crate runs.
#[derive(Default)]
struct InMemory {
    objects: Mutex<BTreeMap<String, Object>>,
}

impl InMemory {
    fn with<R>(&self, f: impl FnOnce(&mut BTreeMap<String, Object>) -> R) -> R {
        let mut guard = match self.objects.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        f(&mut guard)
    }

    fn create(&self, payload: &Item, key: Vec<u8>) -> Result<Item, KmipError> {
        let object = payload
            .child(t::OBJECT_TYPE)
            .and_then(Item::as_enum)
            .ok_or_else(|| KmipError::missing("Object Type"))?;
        if object != object_type::SYMMETRIC_KEY {
            return Err(KmipError::invalid_field("only symmetric keys"));
        }
        let attrs = attributes::from_payload(payload)?;
        for a in &attrs {
            let _ = a.name_text();
            let _ = a.to_v1();
            let _ = a.to_v2();
        }
        self.with(|m| {
            if m.len() >= MAX_OBJECTS {
                return Err(KmipError::general("store full"));
            }
            let uid = format!("obj-{}", m.len());
            m.insert(
                uid.clone(),
                Object {
                    state: state::PRE_ACTIVE,
                    key,
                    attrs,
                },
            );
            Ok(Item::structure(
                t::RESPONSE_PAYLOAD,
                vec![
                    Item::new(t::OBJECT_TYPE, Value::Enumeration(object)),
                    Item::new(t::UNIQUE_IDENTIFIER, Value::TextString(uid)),
                ],
            ))
        })
    }

    fn object<R>(
        &self,
        uid: &str,
        f: impl FnOnce(&mut Object) -> Result<R, KmipError>,
    ) -> Result<R, KmipError> {
        self.with(|m| match m.get_mut(uid) {
            Some(o) => f(o),
            None => Err(KmipError::not_found(uid)),
        })
    }
}

#[async_trait::async_trait]
impl OperationHandler for InMemory {
    async fn handle(
        &self,
        ctx: &ItemContext,
        operation: u32,
        payload: &Item,
    ) -> Result<Item, KmipError> {
        let version = ctx.version;
        match operation {
            op::CREATE => self.create(payload, vec![0x5A; 32]),
            op::REGISTER => {
                let key = payload::key_material(payload)
                    .ok_or_else(|| KmipError::missing("Symmetric Key"))?;
                self.create(payload, key)
            }
            op::GET => {
                let uid = ctx.uid(payload)?;
                let format = payload::requested_key_format(payload)?;
                let key = self.object(&uid, |o| Ok(o.key.clone()))?;
                let response = payload::symmetric_key_response(&uid, &key, format)?;
                assert_eq!(payload::key_material(&response), Some(key));
                Ok(response)
            }
            op::GET_ATTRIBUTES | op::GET_ATTRIBUTE_LIST => {
                let uid = ctx.uid(payload)?;
                let names = attributes::requested_names(payload)?;
                let attrs = self.object(&uid, |o| {
                    Ok(o.attrs
                        .iter()
                        .filter(|a| names.is_empty() || names.contains(&a.name))
                        .cloned()
                        .collect::<Vec<_>>())
                })?;
                let mut c = vec![Item::new(t::UNIQUE_IDENTIFIER, Value::TextString(uid))];
                if operation == op::GET_ATTRIBUTES {
                    c.extend(attributes::to_payload_items(&attrs, version));
                } else {
                    c.extend(
                        attrs
                            .iter()
                            .map(|a| attributes::reference_item(&a.name, version)),
                    );
                }
                Ok(Item::structure(t::RESPONSE_PAYLOAD, c))
            }
            op::ACTIVATE | op::DESTROY => {
                let uid = ctx.uid(payload)?;
                self.object(&uid, |o| {
                    o.state = if operation == op::ACTIVATE {
                        if o.state != state::PRE_ACTIVE {
                            return Err(KmipError::wrong_state(format!(
                                "the object is {}",
                                state::name(o.state)
                            )));
                        }
                        state::ACTIVE
                    } else {
                        state::DESTROYED
                    };
                    Ok(())
                })?;
                Ok(payload::uid_payload(t::RESPONSE_PAYLOAD, &uid))
            }
            op::REVOKE => {
                let uid = ctx.uid(payload)?;
                let request = RevokeRequest::parse(payload)?;
                let _ = request.to_item(&uid);
                self.object(&uid, |o| {
                    o.state = state::DEACTIVATED;
                    Ok(())
                })?;
                Ok(payload::uid_payload(t::RESPONSE_PAYLOAD, &uid))
            }
            op::LOCATE => {
                let request = LocateRequest::parse(payload)?;
                let _ = request.to_item(version);
                let uids: Vec<String> = self.with(|m| {
                    m.iter()
                        .filter(|(_, o)| request.attributes.iter().all(|a| o.attrs.contains(a)))
                        .map(|(uid, _)| uid.clone())
                        .collect()
                });
                let skip = request.offset_items.unwrap_or(0) as usize;
                let take = request.max_items.map_or(usize::MAX, |m| m as usize);
                let page: Vec<String> = uids.iter().skip(skip).take(take).cloned().collect();
                let response = payload::locate_response(version, Some(uids.len()), &page);
                assert_eq!(payload::uids(&response), page);
                Ok(response)
            }
            op::ENCRYPT | op::DECRYPT => {
                let request = CipherRequest::parse(payload)?;
                assert_eq!(
                    CipherRequest::parse(&request.to_item()).as_ref(),
                    Ok(&request)
                );
                let uid = match &request.uid {
                    Some(u) => u.clone(),
                    None => ctx.uid(payload)?,
                };
                let key = self.object(&uid, |o| {
                    if o.state != state::ACTIVE {
                        return Err(KmipError::wrong_state("the key is not active"));
                    }
                    Ok(o.key.clone())
                })?;
                let data = request
                    .data
                    .iter()
                    .zip(key.iter().cycle())
                    .map(|(d, k)| d ^ k)
                    .collect();
                let response = CipherResponse {
                    uid,
                    data,
                    iv: request.iv.clone(),
                    tag: version.has_aead_fields().then(|| vec![0; 16]),
                };
                let item = response.clone().into_item();
                assert_eq!(CipherResponse::parse(&item), Ok(response));
                Ok(item)
            }
            op::QUERY => payload::query_response(
                version,
                payload,
                &[op::CREATE, op::GET, op::LOCATE, op::ENCRYPT, op::DECRYPT],
                &[object_type::SYMMETRIC_KEY],
            ),
            op::DISCOVER_VERSIONS => payload::discover_versions_response(payload),
            op::RNG_RETRIEVE => {
                let len = payload
                    .child(t::DATA_LENGTH)
                    .and_then(Item::as_i32)
                    .ok_or_else(|| KmipError::missing("Data Length"))?;
                if !(1..=1024).contains(&len) {
                    return Err(KmipError::invalid_field("Data Length out of range"));
                }
                Ok(Item::structure(
                    t::RESPONSE_PAYLOAD,
                    vec![Item::new(t::DATA, Value::ByteString(vec![7; len as usize]))],
                ))
            }
            other => Err(KmipError::unsupported_operation(other)),
        }
    }
}

/// Runs a future that never waits on anything (the handler above does no I/O) to completion.
fn block_on<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    match future.as_mut().poll(&mut cx) {
        Poll::Ready(v) => v,
        Poll::Pending => panic!("the in-memory handler never waits"),
    }
}

/// Seconds since the Unix epoch, as the server's clock reads them.
fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// `clock` is the clock read just before and just after `process` ran.
fn check_response(handler: &InMemory, request: &Item, response: Item, clock: (i64, i64)) {
    let bytes = encode(&response);
    assert_eq!(bytes.len(), encoded_len(&response));
    // The response may legitimately hold more items than a request may (every answer carries a status).
    let limits = Limits {
        max_message_bytes: usize::MAX,
        max_depth: usize::MAX,
        max_items: usize::MAX,
    };
    assert_eq!(
        decode(&bytes, &limits).as_ref(),
        Ok(&response),
        "the response does not survive its own encoding"
    );
    let parsed = ResponseMessage::parse(&response).expect("a response we built must parse");
    let batch_count = response
        .child(t::RESPONSE_HEADER)
        .and_then(|h| h.child(t::BATCH_COUNT))
        .and_then(Item::as_i32);
    assert_eq!(batch_count, Some(parsed.items.len() as i32));
    assert!(!parsed.items.is_empty(), "a response without batch items");
    // Version discipline: no field the response's version does not define.
    assert_eq!(
        openkcm_kmip::tag_versions::undefined_tags(&response, parsed.version),
        Vec::<u32>::new(),
        "a response field of another version"
    );

    let Ok(message) = RequestMessage::parse(request) else {
        // An unparseable request gets exactly one Invalid Message item.
        assert_eq!(parsed.items.len(), 1);
        assert!(parsed.items[0].result.is_err());
        return;
    };
    assert_eq!(parsed.version, negotiate(message.header.version));
    // The correlation values came with 1.4: echoed from 1.4 on, never to an older client.
    assert_eq!(
        parsed.client_correlation,
        message
            .header
            .client_correlation
            .clone()
            .filter(|_| parsed.version >= ProtocolVersion::new(1, 4))
    );
    // A Server Correlation Value (1.4+) answers a client that correlates, and only such a client.
    assert_eq!(
        parsed.server_correlation.is_some(),
        parsed.version >= ProtocolVersion::new(1, 4) && message.header.client_correlation.is_some()
    );
    assert!(parsed.items.len() <= message.items.len());
    for (asked, answered) in message.items.iter().zip(&parsed.items) {
        assert_eq!(answered.operation, Some(asked.operation));
        assert_eq!(answered.batch_id, asked.batch_id);
        // A Message Extension marked critical is never ignored.
        if asked.critical_extension.is_some() {
            assert!(
                answered.result.is_err(),
                "a critical Message Extension was ignored"
            );
        }
    }
    // Only Continue goes on after a failure; a refused header fails every item (the cases `process` documents).
    // This handler cannot roll back (`can_undo` is false, `undo` fails), so Undo with several items is refused and
    // no item is ever answered Operation Undone.
    assert!(!handler.can_undo());
    // A request Time Stamp more than MAX_CLOCK_SKEW_SECS ahead of the server clock refuses the header. `process`
    // reads the clock once, between `clock.0` and `clock.1`: a stamp on that boundary may go either way, and the
    // two header checks below are skipped for it.
    let stamp = request
        .child(t::REQUEST_HEADER)
        .and_then(|h| h.child(t::TIME_STAMP))
        .and_then(Item::as_datetime);
    let stamp_refused = stamp.is_some_and(|s| s.saturating_sub(clock.1) > MAX_CLOCK_SKEW_SECS);
    let stamp_accepted = stamp.is_none_or(|s| s.saturating_sub(clock.0) <= MAX_CLOCK_SKEW_SECS);
    let header_refused = stamp_refused
        || !matches!(
            message.header.error_continuation,
            bec::CONTINUE | bec::STOP | bec::UNDO
        )
        || message.header.max_response_size.is_some_and(|m| m <= 0)
        || (message.header.error_continuation == bec::UNDO
            && message.items.len() > 1
            && !handler.can_undo());
    let header_known = stamp_refused || stamp_accepted;
    if header_refused {
        assert!(parsed.items.iter().all(|i| i.result.is_err()));
    }
    if message.header.error_continuation != bec::CONTINUE && !header_refused && header_known {
        if let Some(first) = parsed.items.iter().position(|i| i.result.is_err()) {
            assert_eq!(
                first + 1,
                parsed.items.len(),
                "items answered after a failure with Stop"
            );
        }
    }
    // Everything but the last item fits the limit the client set (or the server's own). A Maximum Response Size of
    // 0 or less sets no limit: it refuses the header (every item answered Invalid Field, checked above).
    let limit = message
        .header
        .max_response_size
        .filter(|m| *m > 0)
        .and_then(|m| usize::try_from(m).ok())
        .map_or(MAX_RESPONSE_BYTES, |m| m.min(MAX_RESPONSE_BYTES));
    let mut children = response.children().to_vec();
    let header_only = encoded_len(&Item::structure(
        t::RESPONSE_MESSAGE,
        children.iter().take(1).cloned().collect(),
    ));
    children.pop();
    let without_last = encoded_len(&Item::structure(t::RESPONSE_MESSAGE, children));
    assert!(
        without_last <= limit.max(header_only),
        "the response grew to {without_last} bytes before its last item; the limit is {limit}"
    );
    for b in response.children_with(t::BATCH_ITEM) {
        let status = b.child(t::RESULT_STATUS).and_then(Item::as_enum);
        assert!(matches!(
            status,
            Some(result_status::SUCCESS | result_status::OPERATION_FAILED)
        ));
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(root) = decode(data, &Limits::default()) else {
        return;
    };
    if let Ok(message) = RequestMessage::parse(&root) {
        let again =
            RequestMessage::parse(&message.to_item()).expect("a request we re-encoded must parse");
        assert_eq!(again, message, "parse(into_item(request)) != request");
    }
    let handler = InMemory::default();
    let before = unix_now();
    let response = block_on(process(&handler, &root));
    let after = unix_now();
    check_response(&handler, &root, response, (before, after));
});
