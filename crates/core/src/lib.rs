//! The Crypto Core (DESIGN §5): MasterKey unseal, the internal versioned key (IVK), tenant keys (L2) with their
//! sovereign and active bindings, service keys (L3), and the KMIP operations edges use to wrap and unwrap data
//! keys (L4) under an L3.
//!
//! The Core is the only place where MK, IVK, L2 and L3 exist in plaintext, and only in locked, zeroizing memory.
//! It must never write a plaintext key to storage (the store accepts only [`openkcm_crypto::WrappedKey`]), never
//! put key bytes in a log or error, and never reveal another tenant's objects: a foreign identifier is "not found".
#![forbid(unsafe_code)]

pub mod binding_index;
pub mod cache;
pub mod hierarchy;
pub mod keyring;
pub mod kmip_service;
pub mod operator_api;
pub mod seal;
pub mod sealed_store;

pub use hierarchy::{Core, CoreConfig, CoreError};
pub use kmip_service::CoreKmipService;
pub use operator_api::OperatorApi;
pub use seal::Node;

/// Seconds since the Unix epoch.
pub(crate) fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// The current time as RFC 3339 (UTC, seconds).
pub(crate) fn rfc3339_now() -> String {
    time::OffsetDateTime::from_unix_timestamp(now())
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}
