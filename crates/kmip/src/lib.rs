//! KMIP messages, operations, attributes and enumerations, on top of the TTLV codec.
//!
//! This crate turns decoded TTLV trees into requests and responses for protocol versions 1.0–1.4, 2.0 and 2.1, and
//! runs a server's batch loop ([`process`]) over an [`OperationHandler`]. It performs no I/O and holds no keys;
//! it must never panic on a malformed message (every malformed field is a [`KmipError`] for that item).
#![forbid(unsafe_code)]

pub mod attribute_names;
pub mod attributes;
pub mod enum_names;
pub mod enums;
pub mod error;
pub mod message;
pub mod payload;
pub mod tag_versions;
pub mod tags;
pub mod xml;

pub use error::KmipError;
pub use message::{
    error_response, negotiate, process, ItemContext, OperationHandler, ProtocolVersion,
    RequestBatchItem, RequestHeader, RequestMessage, ResponseBatchItem, ResponseMessage,
    EDGE_VAULT_KEY_ID, SUPPORTED_VERSIONS, TAG_L3_LEASE_SECONDS, TAG_ON_BEHALF_OF,
};
pub use openkcm_ttlv as ttlv;
