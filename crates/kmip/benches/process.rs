//! Measures `openkcm_kmip::process`, the server's batch loop, on a one-item KMIP 1.4 Get and a one-item Encrypt
//! (1 KiB of data, GCM parameters, AAD), with a small handler defined here:
//!
//! * Get reads the Unique Identifier and Key Format Type and builds the Symmetric Key payload of a fixed 32-byte key
//!   (what a server does around its key lookup);
//! * Encrypt parses the request payload and answers with a payload of the same size, a fixed IV and a fixed tag.
//!   **No cipher runs**: the AES-GCM cost is measured by the edge bench (`openkcm-edge`, `hot_path`).
//!
//! So the figures are the per-message cost of parsing the Request Message, negotiating, resolving the identifier,
//! version discipline on the payload, size accounting and building the Response Message tree. One more bench runs
//! a Get from wire bytes to wire bytes (TTLV decode, `process`, TTLV encode): everything a server does for a message
//! except the socket and TLS.
//!
//! The futures are driven by a current-thread tokio runtime that enters once per sample, not once per iteration,
//! so the runtime's own cost is not counted in each message.
//!
//! Run: `cargo bench -p openkcm-kmip --bench process`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use openkcm_kmip::enums::{block_cipher_mode, key_format_type, operation as op};
use openkcm_kmip::payload::{
    requested_key_format, symmetric_key_response, uid_payload, CipherRequest, CipherResponse,
    CryptoParams,
};
use openkcm_kmip::{
    process, tags as t, ItemContext, KmipError, OperationHandler, ProtocolVersion, RequestMessage,
    ResponseMessage,
};
use openkcm_ttlv::{decode, encode, Item, Limits, Value};
use std::future::Future;
use std::hint::black_box;
use std::time::{Duration, Instant};

const VERSION: ProtocolVersion = ProtocolVersion::new(1, 4);
const UID: &str = "5b2f0c1e-8a47-4d1b-9f3e-2c6a7d90e145";
/// A fixed test key: benches never see a real one.
const KEY: [u8; 32] = [0x5A; 32];
const DATA_LEN: usize = 1024;

/// The in-bench handler: see the file comment for what each operation does.
struct BenchHandler;

#[async_trait::async_trait]
impl OperationHandler for BenchHandler {
    async fn handle(
        &self,
        ctx: &ItemContext,
        operation: u32,
        payload: &Item,
    ) -> Result<Item, KmipError> {
        match operation {
            op::GET => {
                let uid = ctx.uid(payload)?;
                let format = requested_key_format(payload)?;
                symmetric_key_response(&uid, &KEY, format)
            }
            op::ENCRYPT => {
                let req = CipherRequest::parse(payload)?;
                let uid = match req.uid {
                    Some(u) => u,
                    None => ctx.uid(payload)?,
                };
                Ok(CipherResponse {
                    uid,
                    data: req.data,
                    iv: Some(vec![0x01; 12]),
                    tag: Some(vec![0x02; 16]),
                }
                .into_item())
            }
            other => Err(KmipError::unsupported_operation(other)),
        }
    }
}

fn request(operation: u32, payload: Item) -> Item {
    let mut request = RequestMessage::new(VERSION, vec![(operation, payload)]);
    request.header.client_correlation = Some("bench-7f3a".into());
    if let Some(item) = request.items.first_mut() {
        item.batch_id = Some(vec![0, 0, 0, 1]);
    }
    request.into_item()
}

fn get_request() -> Item {
    let mut payload = uid_payload(t::REQUEST_PAYLOAD, UID);
    if let Value::Structure(children) = &mut payload.value {
        children.push(Item::new(
            t::KEY_FORMAT_TYPE,
            Value::Enumeration(key_format_type::RAW),
        ));
    }
    request(op::GET, payload)
}

fn encrypt_request() -> Item {
    let payload = CipherRequest {
        uid: Some(UID.into()),
        params: Some(CryptoParams {
            mode: Some(block_cipher_mode::GCM),
            ..CryptoParams::default()
        }),
        data: vec![0xA5; DATA_LEN],
        iv: None,
        aad: Some(b"record 42 of table payments".to_vec()),
        tag: None,
    }
    .into_item();
    request(op::ENCRYPT, payload)
}

/// Runs `f` `iters` times inside one `block_on`, returning the time the loop took.
fn time_async<F, Fut>(rt: &tokio::runtime::Runtime, iters: u64, mut f: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: Future,
{
    rt.block_on(async {
        let start = Instant::now();
        for _ in 0..iters {
            black_box(f().await);
        }
        start.elapsed()
    })
}

/// Checks that `response` is a one-item success, so that no bench measures an error path.
fn assert_success(response: &Item) {
    let parsed = ResponseMessage::parse(response).unwrap();
    assert_eq!(parsed.items.len(), 1);
    let result = parsed.items.first().map(|i| &i.result);
    assert!(
        matches!(result, Some(Ok(_))),
        "the bench request failed: {result:?}"
    );
}

fn batch_loop(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let handler = BenchHandler;
    let get = get_request();
    let encrypt = encrypt_request();
    let get_bytes = encode(&get);
    let limits = Limits::default();
    for r in [&get, &encrypt] {
        assert_success(&rt.block_on(process(&handler, r)));
    }

    let mut group = c.benchmark_group("kmip_process");
    group.bench_function("get", |b| {
        b.iter_custom(|iters| time_async(&rt, iters, || process(&handler, black_box(&get))))
    });
    group.throughput(Throughput::Bytes(DATA_LEN as u64));
    group.bench_function("encrypt_1kib", |b| {
        b.iter_custom(|iters| time_async(&rt, iters, || process(&handler, black_box(&encrypt))))
    });
    group.throughput(Throughput::Elements(1));
    group.bench_function("get_wire_to_wire", |b| {
        b.iter_custom(|iters| {
            time_async(&rt, iters, || async {
                let request = decode(black_box(&get_bytes), &limits).unwrap();
                encode(&process(&handler, &request).await)
            })
        })
    });
    group.finish();
}

criterion_group!(benches, batch_loop);
criterion_main!(benches);
