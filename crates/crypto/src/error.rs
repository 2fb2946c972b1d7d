//! The one error type of this crate. Messages are sentences and never contain key bytes.

/// Everything that can go wrong in this crate.
///
/// Variants carry lengths, field names and reasons, never secret bytes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CryptoError {
    /// A key was given with a length other than 32 bytes.
    #[error("a key must be exactly {expected} bytes long, but {actual} bytes were given")]
    InvalidKeyLength {
        /// Required length.
        expected: usize,
        /// Length given.
        actual: usize,
    },

    /// The operating system's random number generator failed.
    #[error("the system random number generator failed, so no key or nonce could be produced; check the host's entropy source")]
    RandomUnavailable,

    /// A wrapped value's header names a different layer, tenant, key or parent than the caller expected.
    #[error("the wrapped key's header does not match the expected {field}; the blob belongs to another key, tenant, layer or parent version")]
    HeaderMismatch {
        /// The first header field that differs (`"layer"`, `"tenant"`, `"key_id"`, `"parent_id"`, `"parent_version"`).
        field: &'static str,
    },

    /// AES-GCM authentication failed: wrong key, or the ciphertext, tag, nonce or header was altered.
    #[error("authentication failed: the data was altered, or the wrong key or context was used")]
    AuthenticationFailed,

    /// Bytes given as a wrapped-key envelope are not one.
    #[error("the wrapped key is malformed: {reason}")]
    MalformedEnvelope {
        /// What is wrong with it.
        reason: &'static str,
    },

    /// A header field cannot be encoded.
    #[error("the envelope header field {field} is invalid: {reason}")]
    InvalidHeaderField {
        /// The offending field.
        field: &'static str,
        /// Why it is rejected.
        reason: &'static str,
    },

    /// A nonce of the wrong size was given.
    #[error("an AES-GCM nonce (IV) of {actual} bytes is not supported: use 12 bytes (or 8 to 16, 32, 60 or 64)")]
    InvalidNonce {
        /// Length given.
        actual: usize,
    },

    /// An authentication tag of the wrong size was given.
    #[error("an AES-GCM tag of {actual} bytes is not supported: use 16 bytes (or 12 to 15)")]
    InvalidTag {
        /// Length given.
        actual: usize,
    },

    /// CBC ciphertext whose length is not a positive multiple of the block size.
    #[error("an AES-CBC ciphertext must be a non-empty multiple of 16 bytes, but it is {actual} bytes long")]
    InvalidCiphertextLength {
        /// Length given.
        actual: usize,
    },

    /// CBC decryption produced invalid PKCS#7 padding.
    #[error("the AES-CBC ciphertext has invalid padding: it was altered or decrypted with the wrong key or IV")]
    BadPadding,

    /// The cryptographic library refused an operation on valid-looking input.
    #[error("the cryptographic library failed to {operation}")]
    Internal {
        /// What was being attempted.
        operation: &'static str,
    },
}
