//! The per-item KMIP failure: a Result Reason and a sentence for the Result Message.

use crate::enums::result_reason as rr;
use crate::ProtocolVersion;

/// A failed batch item. The message is shown to the client: it must never contain key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct KmipError {
    /// Result Reason enumeration value (see [`crate::enums::result_reason`]).
    pub reason: u32,
    /// Human-readable Result Message.
    pub message: String,
}

impl KmipError {
    /// A failure with `reason` and `message`.
    pub fn new(reason: u32, message: impl Into<String>) -> Self {
        Self {
            reason,
            message: message.into(),
        }
    }
    /// Item Not Found: also used for objects of other tenants, so existence never leaks.
    pub fn not_found(uid: &str) -> Self {
        Self::new(
            rr::ITEM_NOT_FOUND,
            format!("no object with unique identifier {uid:?} exists"),
        )
    }
    /// Invalid Field.
    pub fn invalid_field(message: impl Into<String>) -> Self {
        Self::new(rr::INVALID_FIELD, message)
    }
    /// Missing Data.
    pub fn missing(what: &str) -> Self {
        Self::new(
            rr::MISSING_DATA,
            format!("the request payload lacks the required {what}"),
        )
    }
    /// Operation Not Supported.
    pub fn unsupported_operation(op: u32) -> Self {
        Self::new(
            rr::OPERATION_NOT_SUPPORTED,
            match crate::enums::operation::introduced_in(op) {
                Some(_) => format!(
                    "operation {} (0x{op:02X}) is not supported by this server",
                    crate::enums::operation::name(op)
                ),
                None => format!("0x{op:02X} is not a KMIP operation"),
            },
        )
    }
    /// Wrong lifecycle state (KMIP 2.x reason; mapped to Permission Denied for 1.x clients).
    pub fn wrong_state(message: impl Into<String>) -> Self {
        Self::new(rr::WRONG_KEY_LIFECYCLE_STATE, message)
    }
    /// Cryptographic Failure.
    pub fn crypto(message: impl Into<String>) -> Self {
        Self::new(rr::CRYPTOGRAPHIC_FAILURE, message)
    }
    /// General Failure (server-side fault; the message stays generic).
    pub fn general(message: impl Into<String>) -> Self {
        Self::new(rr::GENERAL_FAILURE, message)
    }

    /// The reason as it may be sent to a client speaking `version`. A reason is sent as it is to every client
    /// whose version defines it: the 2.x reasons to every 2.x client (2.1 ones to 2.1 clients only), the 1.x
    /// reasons (up to 0x18, and General Failure) to every client. Otherwise it is mapped to the closest reason the
    /// client's version has: a 2.1-only reason first to its 2.0 equivalent, and a 2.x reason for a 1.x client to
    /// its 1.x equivalent.
    pub fn reason_for(&self, version: ProtocolVersion) -> u32 {
        let mut reason = self.reason;
        if version < ProtocolVersion::new(2, 1)
            && rr::introduced_in(reason) >= ProtocolVersion::new(2, 1)
        {
            reason = match reason {
                rr::UNKNOWN_OBJECT_GROUP => rr::ITEM_NOT_FOUND,
                rr::CONSTRAINT_VIOLATION => rr::INVALID_ATTRIBUTE_VALUE,
                _ => rr::GENERAL_FAILURE,
            };
        }
        // A 1.x reason newer than the client's version (Sensitive and Not Extractable are 1.4's, Key Value Not
        // Present 1.2's) is sent as the closest older one.
        if version.major < 2 && reason <= 0x18 && version < rr::introduced_in(reason) {
            return match reason {
                0x16 | 0x17 => rr::PERMISSION_DENIED,
                0x13 => rr::ITEM_NOT_FOUND,
                _ => rr::GENERAL_FAILURE,
            };
        }
        if version.major >= 2 || reason <= 0x18 || reason == rr::GENERAL_FAILURE {
            return reason;
        }
        match reason {
            rr::WRONG_KEY_LIFECYCLE_STATE => rr::PERMISSION_DENIED,
            rr::OBJECT_DESTROYED => rr::ITEM_NOT_FOUND,
            rr::INVALID_ATTRIBUTE_VALUE => rr::INVALID_FIELD,
            _ => rr::GENERAL_FAILURE,
        }
    }
}
