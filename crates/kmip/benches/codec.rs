//! Measures the TTLV codec on the two messages of the edge's commonest exchange: encoding and decoding a KMIP 1.4
//! Get request (one batch item naming a key by its UUID), and encoding and decoding the Get response that carries
//! a 32-byte AES key in Raw format.
//!
//! The messages are built with this crate's types, so the bench lives here rather than in `openkcm-ttlv` (which
//! must not depend on KMIP). Decoding uses the default [`Limits`], as the servers do.
//!
//! Run: `cargo bench -p openkcm-kmip --bench codec`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use openkcm_kmip::enums::{key_format_type, operation};
use openkcm_kmip::payload::{symmetric_key_response, uid_payload};
use openkcm_kmip::{
    tags as t, ProtocolVersion, RequestMessage, ResponseBatchItem, ResponseMessage,
};
use openkcm_ttlv::{decode, encode, Item, Limits, Value};
use std::hint::black_box;

const VERSION: ProtocolVersion = ProtocolVersion::new(1, 4);
const UID: &str = "5b2f0c1e-8a47-4d1b-9f3e-2c6a7d90e145";
/// A fixed test key: benches never see a real one.
const KEY: [u8; 32] = [0x5A; 32];

/// A Get request as a KMIP 1.4 client sends it: Client Correlation Value, a Unique Batch Item ID, the key's
/// Unique Identifier and the Raw Key Format Type.
fn get_request() -> Item {
    let mut payload = uid_payload(t::REQUEST_PAYLOAD, UID);
    if let Value::Structure(children) = &mut payload.value {
        children.push(Item::new(
            t::KEY_FORMAT_TYPE,
            Value::Enumeration(key_format_type::RAW),
        ));
    }
    let mut request = RequestMessage::new(VERSION, vec![(operation::GET, payload)]);
    request.header.client_correlation = Some("bench-7f3a".into());
    if let Some(item) = request.items.first_mut() {
        item.batch_id = Some(vec![0, 0, 0, 1]);
    }
    request.into_item()
}

/// The edge's answer to [`get_request`]: one successful batch item carrying the 256-bit key.
fn get_response() -> Item {
    ResponseMessage {
        version: VERSION,
        timestamp: 1_767_225_600,
        client_correlation: Some("bench-7f3a".into()),
        server_correlation: Some("18c2f0a93b1d4e00-2a".into()),
        items: vec![ResponseBatchItem {
            operation: Some(operation::GET),
            batch_id: Some(vec![0, 0, 0, 1]),
            result: Ok(symmetric_key_response(UID, &KEY, key_format_type::RAW).unwrap()),
            undone: false,
            pending: None,
        }],
    }
    .into_item()
}

fn bench_message(c: &mut Criterion, name: &str, message: &Item) {
    let bytes = encode(message);
    let limits = Limits::default();
    // The decoder must give back exactly the tree that was encoded, or the figures measure something else.
    assert_eq!(&decode(&bytes, &limits).unwrap(), message);
    let mut group = c.benchmark_group(format!("ttlv/{name}"));
    group.throughput(Throughput::Bytes(bytes.len() as u64));
    group.bench_function("encode", |b| b.iter(|| encode(black_box(message))));
    group.bench_function("decode", |b| {
        b.iter(|| decode(black_box(&bytes), &limits).unwrap())
    });
    group.finish();
}

fn codec(c: &mut Criterion) {
    bench_message(c, "get_request", &get_request());
    bench_message(c, "get_response_aes256", &get_response());
}

criterion_group!(benches, codec);
criterion_main!(benches);
