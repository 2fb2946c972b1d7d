//! Measures what of the edge's request path runs in one process, without sockets and without a Crypto Core.
//!
//! The edge keeps its data keys (L4) only wrapped by the service key (L3), and the L3 never leaves the Core
//! (`core` custody, DESIGN §6.3): a Get, Encrypt or Decrypt of a stored key needs its plaintext, which comes from
//! the Core over mTLS (`CoreLink::unwrap`) unless the edge's L4 cache already holds it (see below). Those operations
//! therefore cannot run here without a Core behind a TLS socket, and this bench does not pretend to one. It
//! measures instead:
//!
//! * `edge_service/get_attributes`: [`EdgeKmipService`] handling a KMIP 1.4 Get Attributes (every attribute) for an
//!   application identity, over the `memory` vault. This is the part every Get and Encrypt shares before the Core
//!   call: the batch loop, the vault read, decoding the key's stored JSON attributes, the identity and owner checks,
//!   and the response. The edge's link to the Core points at a port where nothing listens, and each result is
//!   checked to be a success before timing, so no figure includes (or hides) a call to a Core.
//! * `edge_pieces/*`: the local work of Get and Encrypt around the Core call, through the same public functions
//!   the edge calls: a hit in the edge's cache of unwrapped L4 keys (holding 10 000 keys), parsing the Encrypt
//!   payload, the random 96-bit IV and AES-256-GCM seal of the data (64 B, 1 KiB, 16 KiB), building the Encrypt
//!   response payload, the three together for 1 KiB, and building the Get response payload of a 32-byte key.
//!
//! The L4 cache lets a warm Get or Encrypt skip the Core, but an [`Edge`] fills its cache only from a Core unwrap
//! or from a Create (which wraps through the Core), so even the warm path cannot be reached here without a Core;
//! the cache hit is measured on its own, on a standalone [`L4Cache`].
//!
//! Keys are fixed test values; the stored key is wrapped under a bench-local L3 exactly as a stored L4 is laid out.
//!
//! Run: `cargo bench -p openkcm-edge --bench hot_path`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use openkcm_crypto::{aes, wrap, EnvelopeHeader, Layer, SecretBytes, SecretKey, WrappedKey};
use openkcm_edge::l4_cache::{L4Cache, DEFAULT_CAPACITY, DEFAULT_TTL};
use openkcm_edge::{CoreLink, Edge, EdgeKmipService};
use openkcm_kmip::enums::{
    algorithm, block_cipher_mode, key_format_type, operation as op, state, usage_mask,
};
use openkcm_kmip::payload::{
    symmetric_key_response, uid_payload, CipherRequest, CipherResponse, CryptoParams,
};
use openkcm_kmip::{tags as t, ProtocolVersion, RequestMessage, ResponseMessage};
use openkcm_net::{pki::DevPki, tls, KmipPool, KmipService, PeerIdentity};
use openkcm_store::{KeyStore, MemoryStore, Record};
use openkcm_ttlv::Item;
use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;

const VERSION: ProtocolVersion = ProtocolVersion::new(1, 4);
const TENANT: &str = "acme";
const SERVICE: &str = "payments";
const UID: &str = "5b2f0c1e-8a47-4d1b-9f3e-2c6a7d90e145";
const L3_UID: &str = "0d9c4b7a-31e2-4f6d-8b5a-9e1c2f3a4b5c";
/// Fixed test keys: benches never see a real one.
const L3: [u8; 32] = [0x11; 32];
const L4: [u8; 32] = [0x5A; 32];
const AAD: &[u8] = b"record 42 of table payments";

/// The vault record of an Active AES-256 key as the edge stores it after Create: its attributes as JSON and the
/// key wrapped under the service's L3.
fn stored_key() -> Record {
    let now = 1_767_225_600i64;
    let header = EnvelopeHeader {
        layer: Layer::L4,
        tenant: TENANT.into(),
        key_id: UID.into(),
        parent_id: L3_UID.into(),
        parent_version: 3,
    };
    let l3 = SecretKey::from_slice(&L3).unwrap();
    let l4 = SecretKey::from_slice(&L4).unwrap();
    let metadata = serde_json::json!({
        "service": SERVICE,
        "object_type": openkcm_kmip::enums::object_type::SYMMETRIC_KEY,
        "digest": hex::encode(openkcm_crypto::sha256(&L4)),
        "fresh": false,
        "server_generated": true,
        "original_creation_date": now,
        "state": state::ACTIVE,
        "names": ["payments-dek"],
        "algorithm": algorithm::AES,
        "length": 256,
        "usage_mask": usage_mask::ENCRYPT | usage_mask::DECRYPT,
        "initial_date": now,
        "created_nanos": 1_767_225_600_000_000_000u64,
        "last_change_date": now,
        "activation_date": now,
        "deactivation_date": null,
        "compromise_date": null,
        "compromise_occurrence_date": null,
        "destroy_date": null,
        "revocation_reason": null,
        "revocation_message": null,
        "extra": [],
    });
    Record {
        tenant: TENANT.into(),
        kind: "l4".into(),
        id: UID.into(),
        version: 0,
        metadata,
        blob: Some(wrap(&l3, &header, &l4).unwrap()),
        revision: 0,
    }
}

fn request(operation: u32, payload: Item) -> Item {
    let mut request = RequestMessage::new(VERSION, vec![(operation, payload)]);
    if let Some(item) = request.items.first_mut() {
        item.batch_id = Some(vec![0, 0, 0, 1]);
    }
    request.into_item()
}

fn edge_service(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    // A real TLS client configuration for the link to the Core; the pool connects lazily and, as checked below,
    // never does here.
    let dir = tempfile::tempdir().unwrap();
    let pki = DevPki::open_or_create(dir.path()).unwrap();
    let config = tls::client_config(&pki.edge("bench").unwrap()).unwrap();
    let core = CoreLink::new(KmipPool::new("127.0.0.1:9", "localhost", config, 1));
    let vault = Arc::new(MemoryStore::new());
    assert!(rt.block_on(vault.put_if_absent(&stored_key())).unwrap());
    let service = EdgeKmipService::new(Arc::new(Edge::new(vault, core)));
    let peer = PeerIdentity::Application {
        tenant: TENANT.into(),
        service: SERVICE.into(),
    };
    let get_attributes = request(op::GET_ATTRIBUTES, uid_payload(t::REQUEST_PAYLOAD, UID));

    let response =
        ResponseMessage::parse(&rt.block_on(service.handle(&peer, &get_attributes))).unwrap();
    let payload = match response.items.first().map(|i| &i.result) {
        Some(Ok(p)) => p.clone(),
        other => panic!("Get Attributes failed, so the bench would time an error: {other:?}"),
    };
    let attributes = payload.children_with(t::ATTRIBUTE).count();
    assert!(
        attributes >= 10,
        "Get Attributes returned {attributes} attributes"
    );

    let mut group = c.benchmark_group("edge_service");
    group.bench_function("get_attributes", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = Instant::now();
                for _ in 0..iters {
                    black_box(service.handle(&peer, black_box(&get_attributes)).await);
                }
                start.elapsed()
            })
        })
    });
    group.finish();
}

fn encrypt_payload(len: usize) -> Item {
    CipherRequest {
        uid: Some(UID.into()),
        params: Some(CryptoParams {
            mode: Some(block_cipher_mode::GCM),
            ..CryptoParams::default()
        }),
        data: vec![0xA5; len],
        iv: None,
        aad: Some(AAD.to_vec()),
        tag: None,
    }
    .into_item()
}

/// What the edge does for a one-shot GCM Encrypt once it holds the key: a random 96-bit IV and the seal.
fn seal(key: &[u8], data: &[u8]) -> (Vec<u8>, Vec<u8>, [u8; 16]) {
    let mut iv = vec![0u8; 12];
    aes::fill_random(&mut iv).unwrap();
    let (ct, tag) = aes::gcm_seal_any(key, &iv, AAD, data).unwrap();
    (iv, ct, tag)
}

/// A cache holding `n` keys of one tenant, and the wrapped form of the one at `UID`.
fn filled_cache(n: usize) -> (L4Cache, WrappedKey) {
    let cache = L4Cache::new(DEFAULT_TTL, DEFAULT_CAPACITY);
    let l3 = SecretKey::from_slice(&L3).unwrap();
    let l4 = SecretKey::from_slice(&L4).unwrap();
    let plain = SecretBytes::from_slice(&L4);
    let mut target = None;
    for i in 0..n {
        let uid = if i == n / 2 {
            UID.to_owned()
        } else {
            format!("00000000-0000-4000-8000-{i:012}")
        };
        let header = EnvelopeHeader {
            layer: Layer::L4,
            tenant: TENANT.into(),
            key_id: uid.clone(),
            parent_id: L3_UID.into(),
            parent_version: 3,
        };
        let wrapped = wrap(&l3, &header, &l4).unwrap();
        cache.put(TENANT, &uid, &wrapped, &plain);
        if uid == UID {
            target = Some(wrapped);
        }
    }
    (cache, target.unwrap())
}

fn edge_pieces(c: &mut Criterion) {
    let mut group = c.benchmark_group("edge_pieces");

    let (cache, wrapped) = filled_cache(10_000);
    assert_eq!(
        cache.get(TENANT, UID, &wrapped).unwrap().expose(),
        &L4[..],
        "the cache must hit, or the bench would time a miss"
    );
    group.bench_function("l4_cache_hit_of_10k", |b| {
        b.iter(|| {
            cache
                .get(TENANT, black_box(UID), black_box(&wrapped))
                .unwrap()
        })
    });

    let payload = encrypt_payload(1024);
    group.throughput(Throughput::Bytes(1024));
    group.bench_function("parse_encrypt_request_1kib", |b| {
        b.iter(|| CipherRequest::parse(black_box(&payload)).unwrap())
    });

    for len in [64usize, 1024, 16 * 1024] {
        let data = vec![0xA5; len];
        group.throughput(Throughput::Bytes(len as u64));
        group.bench_function(format!("aes_256_gcm_seal_{len}b"), |b| {
            b.iter(|| seal(black_box(&L4), black_box(&data)))
        });
    }

    let (iv, ct, tag) = seal(&L4, &[0xA5; 1024]);
    group.throughput(Throughput::Bytes(1024));
    group.bench_function("build_encrypt_response_1kib", |b| {
        b.iter_batched(
            || CipherResponse {
                uid: UID.into(),
                data: ct.clone(),
                iv: Some(iv.clone()),
                tag: Some(tag.to_vec()),
            },
            CipherResponse::into_item,
            BatchSize::SmallInput,
        )
    });
    group.bench_function("encrypt_local_work_1kib", |b| {
        b.iter(|| {
            let req = CipherRequest::parse(black_box(&payload)).unwrap();
            let (iv, ct, tag) = seal(&L4, &req.data);
            CipherResponse {
                uid: req.uid.unwrap_or_default(),
                data: ct,
                iv: Some(iv),
                tag: Some(tag.to_vec()),
            }
            .into_item()
        })
    });

    group.throughput(Throughput::Elements(1));
    group.bench_function("build_get_response_aes256", |b| {
        b.iter(|| symmetric_key_response(UID, black_box(&L4), key_format_type::RAW).unwrap())
    });
    group.finish();
}

criterion_group!(benches, edge_service, edge_pieces);
criterion_main!(benches);
