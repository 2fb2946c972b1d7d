//! The Crypto Edge (DESIGN §6): the KMIP endpoint applications use. It creates data keys (L4), stores them only
//! wrapped — by the service's L3, which never leaves the Core in `core` custody — and serves Get, Encrypt,
//! Decrypt, Activate, Revoke, Destroy, Get Attributes and Locate for them; every other operation is proxied to the
//! Core on behalf of the authenticated application.
//!
//! The edge must never store a plaintext key, never hold an MK, IVK, L2 or L3, and never reveal another tenant's
//! (or another service's) keys: a foreign identifier answers "not found".
#![forbid(unsafe_code)]

mod core_link;
pub mod credentials;
pub mod l4_cache;
mod meta;
pub mod notify;
pub mod objects;
mod ops;
mod vault;

pub use core_link::CoreLink;
pub use ops::{Edge, EdgeKmipService, EDGE_OPERATIONS};
pub use vault::{claim_vault, ClaimError, SealedVault};
