//! Cryptographic building blocks of OpenKCM: locked, zeroizing secret buffers
//! ([`SecretKey`], [`SecretBytes`]), the AES-256-GCM wrapped-key envelope of DESIGN §2.1
//! ([`wrap`], [`unwrap`], [`WrappedKey`], [`EnvelopeHeader`]), and the AES/HMAC/SHA-256
//! primitives the KMIP operations need ([`aes`]), and Shamir secret sharing of the MasterKey ([`shamir`]).
//!
//! This crate must never let key bytes escape into logs, errors, panics or `Debug` output; never
//! hand out a plaintext key in a type that storage accepts (only [`WrappedKey`] is storable, and
//! only [`wrap`] or validated constructors build one); never copy a key into memory that is not
//! zeroized on drop; and never panic on bytes from storage or a peer. It does no I/O.
//!
//! ```
//! use openkcm_crypto::{unwrap, wrap, EnvelopeHeader, Layer, SecretKey};
//! let l3 = SecretKey::generate()?;
//! let l4 = SecretKey::generate()?;
//! let header = EnvelopeHeader {
//!     layer: Layer::L4,
//!     tenant: "acme".into(),
//!     key_id: "data-1".into(),
//!     parent_id: "billing".into(),
//!     parent_version: 7,
//! };
//! let wrapped = wrap(&l3, &header, &l4)?;
//! assert_eq!(unwrap(&l3, &wrapped, &header)?.expose(), l4.expose());
//! # Ok::<(), openkcm_crypto::CryptoError>(())
//! ```

#![warn(missing_docs)]

pub mod aes;
pub mod derived;
mod envelope;
mod error;
pub mod legacy;
mod locked;
mod secret;
pub mod shamir;
pub mod split_key;

pub use aes::{hmac_sha256, random_bytes, sha256};
pub use envelope::{
    unwrap, unwrap_unchecked_header, wrap, EnvelopeHeader, Layer, WrappedKey, ALG_AES_256_GCM,
    CIPHERTEXT_AND_TAG_LEN, FORMAT_VERSION, MAGIC, MAX_L4_LEN, NONCE_LEN, TAG_LEN,
};
pub use error::CryptoError;
pub use locked::{harden_process, mlock_available, mlock_failures};
pub use secret::{SecretBytes, SecretKey, KEY_LEN};
