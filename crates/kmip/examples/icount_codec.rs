//! A fixed, deterministic workload for instruction counting (`scripts/icount`, under valgrind's callgrind): encode
//! and decode a KMIP 1.4 Get request and its response carrying a 32-byte key, then run the batch loop
//! ([`openkcm_kmip::process`]) over the decoded request with a handler that answers from memory.
//!
//! Each part runs in its own `#[inline(never)]` function whose name starts with `icount_`, so callgrind can collect
//! exactly those (`--toggle-collect=icount_*`); the script divides the count by [`ITERATIONS`].
#![allow(clippy::unwrap_used, clippy::expect_used)]

use openkcm_kmip::enums::{key_format_type, operation};
use openkcm_kmip::payload::{symmetric_key_response, uid_payload};
use openkcm_kmip::{
    tags as t, ItemContext, KmipError, OperationHandler, ProtocolVersion, RequestMessage,
    ResponseBatchItem, ResponseMessage,
};
use openkcm_ttlv::{decode, encode, Item, Limits};
use std::hint::black_box;

/// Iterations of each part.
const ITERATIONS: usize = 10_000;
const VERSION: ProtocolVersion = ProtocolVersion::new(1, 4);
const UID: &str = "5b2f0c1e-8a47-4d1b-9f3e-2c6a7d90e145";
/// A fixed test key.
const KEY: [u8; 32] = [0x5A; 32];

fn get_request() -> Item {
    RequestMessage::new(
        VERSION,
        vec![(operation::GET, uid_payload(t::REQUEST_PAYLOAD, UID))],
    )
    .into_item()
}

fn get_response() -> Item {
    ResponseMessage {
        version: VERSION,
        timestamp: 1_767_225_600,
        client_correlation: None,
        server_correlation: None,
        items: vec![ResponseBatchItem {
            operation: Some(operation::GET),
            batch_id: None,
            result: Ok(symmetric_key_response(UID, &KEY, key_format_type::RAW).unwrap()),
            undone: false,
            pending: None,
        }],
    }
    .into_item()
}

#[inline(never)]
fn icount_encode(message: &Item) -> usize {
    (0..ITERATIONS)
        .map(|_| black_box(encode(black_box(message))).len())
        .sum()
}

#[inline(never)]
fn icount_decode(bytes: &[u8]) -> usize {
    let limits = Limits::default();
    (0..ITERATIONS)
        .map(|_| {
            black_box(decode(black_box(bytes), &limits).unwrap())
                .children()
                .len()
        })
        .sum()
}

/// Answers Get with the fixed key, as the edge does once it has the key.
struct Memory;

#[async_trait::async_trait]
impl OperationHandler for Memory {
    async fn handle(&self, ctx: &ItemContext, _: u32, payload: &Item) -> Result<Item, KmipError> {
        let uid = ctx.uid(payload)?;
        symmetric_key_response(&uid, &KEY, key_format_type::RAW)
    }
}

#[inline(never)]
fn icount_process(request: &Item, runtime: &tokio::runtime::Runtime) -> usize {
    (0..ITERATIONS)
        .map(|_| {
            let response = runtime.block_on(openkcm_kmip::process(&Memory, black_box(request)));
            black_box(encode(&response)).len()
        })
        .sum()
}

fn main() {
    let request = get_request();
    let response = get_response();
    let request_bytes = encode(&request);
    let response_bytes = encode(&response);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let total = icount_encode(&request)
        + icount_encode(&response)
        + icount_decode(&request_bytes)
        + icount_decode(&response_bytes)
        + icount_process(&request, &runtime);
    println!("iterations={ITERATIONS} checksum={total}");
}
