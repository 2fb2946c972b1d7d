//! KMIP's Tag-Type-Length-Value (TTLV) encoding: items, an encoder, and a bounded decoder.
//!
//! This crate knows nothing about KMIP operations; it only turns bytes into a tree of [`Item`]s and back.
//! It must never panic on peer input: every length, depth and item count is checked against [`Limits`]
//! *before* any allocation that the peer controls, and malformed bytes return a typed [`DecodeError`].
//!
//! ```
//! use openkcm_ttlv::{decode, encode, Item, Limits, Value};
//! let item = Item::structure(0x420078, vec![Item::new(0x42000D, Value::Integer(1))]);
//! let bytes = encode(&item);
//! assert_eq!(decode(&bytes, &Limits::default()).unwrap(), item);
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![deny(clippy::indexing_slicing)]

mod decode;
mod encode;
mod item;

pub use decode::{decode, decode_header, DecodeError, Header, Limits, HEADER_LEN};
pub use encode::{encode, encode_into, encoded_len};
pub use item::{Item, ItemType, Value};
