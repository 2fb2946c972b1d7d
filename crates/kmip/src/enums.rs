//! KMIP enumeration values used by this server (KMIP 1.0–2.1 specifications).
#![allow(missing_docs)]

/// Operation enumeration.
pub mod operation {
    pub const CREATE: u32 = 0x01;
    pub const CREATE_KEY_PAIR: u32 = 0x02;
    pub const REGISTER: u32 = 0x03;
    pub const REKEY: u32 = 0x04;
    pub const LOCATE: u32 = 0x08;
    pub const CHECK: u32 = 0x09;
    pub const GET: u32 = 0x0A;
    pub const GET_ATTRIBUTES: u32 = 0x0B;
    pub const GET_ATTRIBUTE_LIST: u32 = 0x0C;
    pub const ACTIVATE: u32 = 0x12;
    pub const REVOKE: u32 = 0x13;
    pub const DESTROY: u32 = 0x14;
    pub const ARCHIVE: u32 = 0x15;
    pub const RECOVER: u32 = 0x16;
    pub const CANCEL: u32 = 0x19;
    pub const POLL: u32 = 0x1A;
    pub const NOTIFY: u32 = 0x1B;
    pub const PUT: u32 = 0x1C;
    pub const QUERY: u32 = 0x18;
    pub const DISCOVER_VERSIONS: u32 = 0x1E;
    pub const ENCRYPT: u32 = 0x1F;
    pub const DECRYPT: u32 = 0x20;
    pub const MAC: u32 = 0x23;
    pub const MAC_VERIFY: u32 = 0x24;
    pub const RNG_RETRIEVE: u32 = 0x25;
    pub const RNG_SEED: u32 = 0x26;
    pub const HASH: u32 = 0x27;
    pub const DERIVE_KEY: u32 = 0x05;
    pub const CERTIFY: u32 = 0x06;
    pub const RECERTIFY: u32 = 0x07;
    pub const REKEY_KEY_PAIR: u32 = 0x1D;
    pub const CREATE_SPLIT_KEY: u32 = 0x28;
    pub const JOIN_SPLIT_KEY: u32 = 0x29;
    pub const IMPORT: u32 = 0x2A;
    pub const ADD_ATTRIBUTE: u32 = 0x0D;
    pub const MODIFY_ATTRIBUTE: u32 = 0x0E;
    pub const DELETE_ATTRIBUTE: u32 = 0x0F;
    pub const OBTAIN_LEASE: u32 = 0x10;
    pub const GET_USAGE_ALLOCATION: u32 = 0x11;
    pub const SET_ATTRIBUTE: u32 = 0x31;
    /// KMIP 2.1.
    pub const SET_DEFAULTS: u32 = 0x36;
    /// KMIP 2.1.
    pub const SET_CONSTRAINTS: u32 = 0x37;
    /// KMIP 2.1.
    pub const GET_CONSTRAINTS: u32 = 0x38;
    /// KMIP 2.1.
    pub const QUERY_ASYNCHRONOUS_REQUESTS: u32 = 0x39;
    /// KMIP 2.1.
    pub const PROCESS: u32 = 0x3A;
    /// KMIP 2.1.
    pub const PING: u32 = 0x3B;

    const NAMES: &[&str] = &[
        "Create",
        "Create Key Pair",
        "Register",
        "Re-key",
        "Derive Key",
        "Certify",
        "Re-certify",
        "Locate",
        "Check",
        "Get",
        "Get Attributes",
        "Get Attribute List",
        "Add Attribute",
        "Modify Attribute",
        "Delete Attribute",
        "Obtain Lease",
        "Get Usage Allocation",
        "Activate",
        "Revoke",
        "Destroy",
        "Archive",
        "Recover",
        "Validate",
        "Query",
        "Cancel",
        "Poll",
        "Notify",
        "Put",
        "Re-key Key Pair",
        "Discover Versions",
        "Encrypt",
        "Decrypt",
        "Sign",
        "Signature Verify",
        "MAC",
        "MAC Verify",
        "RNG Retrieve",
        "RNG Seed",
        "Hash",
        "Create Split Key",
        "Join Split Key",
        "Import",
        "Export",
        "Log",
        "Login",
        "Logout",
        "Delegated Login",
        "Adjust Attribute",
        "Set Attribute",
        "Set Endpoint Role",
        "PKCS#11",
        "Interop",
        "Re-Provision",
        "Set Defaults",
        "Set Constraints",
        "Get Constraints",
        "Query Asynchronous Requests",
        "Process",
        "Ping",
    ];

    /// The operation's name, for logs and errors.
    pub fn name(op: u32) -> &'static str {
        op.checked_sub(1)
            .and_then(|i| NAMES.get(i as usize))
            .copied()
            .unwrap_or("unknown operation")
    }

    /// The protocol version that introduced `op`, or `None` for a value no version defines.
    pub fn introduced_in(op: u32) -> Option<crate::ProtocolVersion> {
        use crate::ProtocolVersion as V;
        Some(match op {
            0x01..=0x1C => V::new(1, 0),
            0x1D..=0x1E => V::new(1, 1),
            0x1F..=0x29 => V::new(1, 2),
            0x2A..=0x2B => V::new(1, 4),
            0x2C..=0x35 => V::new(2, 0),
            0x36..=0x3B => V::new(2, 1),
            _ => return None,
        })
    }
}

/// Unique Identifier enumeration (KMIP 2.x): a request's Unique Identifier naming an object by how an earlier
/// item of the same batch produced it.
pub mod unique_identifier {
    pub const ID_PLACEHOLDER: u32 = 0x01;
    pub const CERTIFY: u32 = 0x02;
    pub const CREATE: u32 = 0x03;
    pub const CREATE_KEY_PAIR: u32 = 0x04;
    pub const CREATE_KEY_PAIR_PRIVATE_KEY: u32 = 0x05;
    pub const CREATE_KEY_PAIR_PUBLIC_KEY: u32 = 0x06;
    pub const CREATE_SPLIT_KEY: u32 = 0x07;
    pub const DERIVE_KEY: u32 = 0x08;
    pub const IMPORT: u32 = 0x09;
    pub const JOIN_SPLIT_KEY: u32 = 0x0A;
    pub const LOCATE: u32 = 0x0B;
    pub const REGISTER: u32 = 0x0C;
    pub const REKEY: u32 = 0x0D;
    pub const RECERTIFY: u32 = 0x0E;
    pub const REKEY_KEY_PAIR: u32 = 0x0F;
    pub const REKEY_KEY_PAIR_PRIVATE_KEY: u32 = 0x10;
    pub const REKEY_KEY_PAIR_PUBLIC_KEY: u32 = 0x11;
}

/// Cancellation Result enumeration.
pub mod cancellation_result {
    pub const CANCELED: u32 = 0x01;
    pub const UNABLE_TO_CANCEL: u32 = 0x02;
    pub const COMPLETED: u32 = 0x03;
}

/// Result Status enumeration.
pub mod result_status {
    pub const SUCCESS: u32 = 0;
    pub const OPERATION_FAILED: u32 = 1;
    pub const OPERATION_PENDING: u32 = 2;
    pub const OPERATION_UNDONE: u32 = 3;
}

/// Result Reason enumeration (1.x values below 0x19, plus General Failure; 2.x adds the rest).
pub mod result_reason {
    pub const ITEM_NOT_FOUND: u32 = 0x01;
    pub const RESPONSE_TOO_LARGE: u32 = 0x02;
    pub const AUTHENTICATION_NOT_SUCCESSFUL: u32 = 0x03;
    pub const INVALID_MESSAGE: u32 = 0x04;
    pub const OPERATION_NOT_SUPPORTED: u32 = 0x05;
    pub const MISSING_DATA: u32 = 0x06;
    pub const INVALID_FIELD: u32 = 0x07;
    pub const FEATURE_NOT_SUPPORTED: u32 = 0x08;
    pub const CRYPTOGRAPHIC_FAILURE: u32 = 0x0A;
    pub const ILLEGAL_OPERATION: u32 = 0x0B;
    pub const PERMISSION_DENIED: u32 = 0x0C;
    pub const OBJECT_ARCHIVED: u32 = 0x0D;
    pub const KEY_FORMAT_TYPE_NOT_SUPPORTED: u32 = 0x10;
    pub const GENERAL_FAILURE: u32 = 0x100;
    /// KMIP 2.0: the object is in a state that does not allow the operation.
    pub const WRONG_KEY_LIFECYCLE_STATE: u32 = 0x43;
    /// KMIP 2.0: the object has been destroyed.
    pub const OBJECT_DESTROYED: u32 = 0x36;
    /// KMIP 2.0: an attribute value the server does not accept.
    pub const INVALID_ATTRIBUTE_VALUE: u32 = 0x2D;
    /// KMIP 2.1: the Object Group named does not exist.
    pub const UNKNOWN_OBJECT_GROUP: u32 = 0x4A;
    /// KMIP 2.1: a value breaks a constraint set with Set Constraints.
    pub const CONSTRAINT_VIOLATION: u32 = 0x4B;
    /// KMIP 2.1: a Process request for an asynchronous request already being processed.
    pub const DUPLICATE_PROCESS_REQUEST: u32 = 0x4C;

    /// The protocol version that introduced `reason` (1.0 for the reasons of every version).
    pub fn introduced_in(reason: u32) -> crate::ProtocolVersion {
        use crate::ProtocolVersion as V;
        match reason {
            0x12 => V::new(1, 1),
            0x13..=0x15 => V::new(1, 2),
            0x16..=0x18 => V::new(1, 4),
            0x19..=0x49 => V::new(2, 0),
            0x4A..=0x4C => V::new(2, 1),
            _ => V::new(1, 0),
        }
    }

    /// The reason's name, for messages.
    pub fn name(reason: u32) -> &'static str {
        match reason {
            ITEM_NOT_FOUND => "Item Not Found",
            RESPONSE_TOO_LARGE => "Response Too Large",
            AUTHENTICATION_NOT_SUCCESSFUL => "Authentication Not Successful",
            INVALID_MESSAGE => "Invalid Message",
            OPERATION_NOT_SUPPORTED => "Operation Not Supported",
            MISSING_DATA => "Missing Data",
            INVALID_FIELD => "Invalid Field",
            FEATURE_NOT_SUPPORTED => "Feature Not Supported",
            CRYPTOGRAPHIC_FAILURE => "Cryptographic Failure",
            ILLEGAL_OPERATION => "Illegal Operation",
            PERMISSION_DENIED => "Permission Denied",
            KEY_FORMAT_TYPE_NOT_SUPPORTED => "Key Format Type Not Supported",
            GENERAL_FAILURE => "General Failure",
            WRONG_KEY_LIFECYCLE_STATE => "Wrong Key Lifecycle State",
            OBJECT_DESTROYED => "Object Destroyed",
            INVALID_ATTRIBUTE_VALUE => "Invalid Attribute Value",
            UNKNOWN_OBJECT_GROUP => "Unknown Object Group",
            CONSTRAINT_VIOLATION => "Constraint Violation",
            DUPLICATE_PROCESS_REQUEST => "Duplicate Process Request",
            _ => "Operation Failed",
        }
    }
}

/// Object Type enumeration.
pub mod object_type {
    pub const CERTIFICATE: u32 = 0x01;
    pub const SYMMETRIC_KEY: u32 = 0x02;
    pub const SPLIT_KEY: u32 = 0x05;
    /// Template (KMIP 1.0-1.4; deprecated in 1.3, removed in 2.0).
    pub const TEMPLATE: u32 = 0x06;
    pub const SECRET_DATA: u32 = 0x07;
    pub const OPAQUE_OBJECT: u32 = 0x08;
}

/// Cryptographic Algorithm enumeration.
pub mod algorithm {
    pub const AES: u32 = 0x03;
}

/// Block Cipher Mode enumeration.
pub mod block_cipher_mode {
    pub const CBC: u32 = 0x01;
    pub const ECB: u32 = 0x02;
    pub const CTR: u32 = 0x06;
    pub const GCM: u32 = 0x09;
}

/// Padding Method enumeration.
pub mod padding_method {
    pub const NONE: u32 = 0x01;
    pub const PKCS5: u32 = 0x03;
}

/// State enumeration.
pub mod state {
    pub const PRE_ACTIVE: u32 = 1;
    pub const ACTIVE: u32 = 2;
    pub const DEACTIVATED: u32 = 3;
    pub const COMPROMISED: u32 = 4;
    pub const DESTROYED: u32 = 5;
    pub const DESTROYED_COMPROMISED: u32 = 6;

    /// The state's name.
    pub fn name(s: u32) -> &'static str {
        match s {
            PRE_ACTIVE => "Pre-Active",
            ACTIVE => "Active",
            DEACTIVATED => "Deactivated",
            COMPROMISED => "Compromised",
            DESTROYED => "Destroyed",
            DESTROYED_COMPROMISED => "Destroyed Compromised",
            _ => "unknown state",
        }
    }
}

/// Revocation Reason Code enumeration.
pub mod revocation_reason {
    pub const UNSPECIFIED: u32 = 1;
    pub const KEY_COMPROMISE: u32 = 2;
    pub const CA_COMPROMISE: u32 = 3;
}

/// Key Format Type enumeration.
pub mod key_format_type {
    pub const RAW: u32 = 0x01;
    pub const OPAQUE: u32 = 0x02;
    pub const TRANSPARENT_SYMMETRIC_KEY: u32 = 0x07;
}

/// Name Type enumeration.
pub mod name_type {
    pub const UNINTERPRETED_TEXT_STRING: u32 = 1;
}

/// Query Function enumeration.
pub mod query_function {
    pub const QUERY_OPERATIONS: u32 = 1;
    pub const QUERY_OBJECTS: u32 = 2;
    pub const QUERY_SERVER_INFORMATION: u32 = 3;
}

/// Batch Error Continuation Option enumeration.
pub mod batch_error_continuation {
    pub const CONTINUE: u32 = 1;
    pub const STOP: u32 = 2;
    pub const UNDO: u32 = 3;
}

/// Cryptographic Usage Mask bits.
pub mod usage_mask {
    pub const ENCRYPT: i32 = 0x04;
    pub const DECRYPT: i32 = 0x08;
    pub const WRAP_KEY: i32 = 0x10;
    pub const UNWRAP_KEY: i32 = 0x20;
    pub const MAC_GENERATE: i32 = 0x80;
    pub const MAC_VERIFY: i32 = 0x100;
    pub const DERIVE_KEY: i32 = 0x200;
}

#[cfg(test)]
mod table_tests {
    use crate::enum_names as n;

    fn value(table: &[(u32, &str)], name: &str) -> u32 {
        table
            .iter()
            .find(|(_, s)| *s == name)
            .map(|(v, _)| *v)
            .unwrap_or_else(|| panic!("{name} missing"))
    }

    /// The hand-written constants agree with the generated protocol tables (CTR once read 7, which is CMAC).
    #[test]
    fn constants_match_the_protocol_tables() {
        use super::*;
        let m = n::V_BLOCK_CIPHER_MODE;
        assert_eq!(block_cipher_mode::CBC, value(m, "CBC"));
        assert_eq!(block_cipher_mode::ECB, value(m, "ECB"));
        assert_eq!(block_cipher_mode::CTR, value(m, "CTR"));
        assert_eq!(block_cipher_mode::GCM, value(m, "GCM"));
        let p = n::V_PADDING_METHOD;
        assert_eq!(padding_method::NONE, value(p, "None"));
        assert_eq!(padding_method::PKCS5, value(p, "PKCS5"));
        let o = n::V_OPERATION;
        for (c, name) in [
            (operation::CREATE, "Create"),
            (operation::REGISTER, "Register"),
            (operation::REKEY, "Rekey"),
            (operation::DERIVE_KEY, "DeriveKey"),
            (operation::CHECK, "Check"),
            (operation::GET_ATTRIBUTES, "GetAttributes"),
            (operation::ADD_ATTRIBUTE, "AddAttribute"),
            (operation::DELETE_ATTRIBUTE, "DeleteAttribute"),
            (operation::OBTAIN_LEASE, "ObtainLease"),
            (operation::GET_USAGE_ALLOCATION, "GetUsageAllocation"),
            (operation::MAC_VERIFY, "MACVerify"),
            (operation::RNG_RETRIEVE, "RNGRetrieve"),
            (operation::HASH, "Hash"),
            (operation::SET_ATTRIBUTE, "SetAttribute"),
        ] {
            assert_eq!(c, value(o, name), "{name}");
        }
        // Every operation a version defines has its XML name (the 2.1 ones included), spelled as the name table says.
        for op in 1..=0x3Bu32 {
            assert!(operation::introduced_in(op).is_some());
            let spelled: String = operation::name(op)
                .chars()
                .filter(|c| c.is_alphanumeric())
                .collect::<String>()
                .to_lowercase();
            let (_, xml) = o
                .iter()
                .find(|(v, _)| *v == op)
                .unwrap_or_else(|| panic!("{op:#x}"));
            assert_eq!(
                xml.chars()
                    .filter(|c| c.is_alphanumeric())
                    .collect::<String>()
                    .to_lowercase(),
                spelled,
                "{op:#x}"
            );
        }
        for reason in [
            result_reason::UNKNOWN_OBJECT_GROUP,
            result_reason::CONSTRAINT_VIOLATION,
            result_reason::DUPLICATE_PROCESS_REQUEST,
        ] {
            assert!(
                n::V_RESULT_REASON.iter().any(|(v, _)| *v == reason),
                "{reason:#x}"
            );
        }
        let k = n::V_KEY_FORMAT_TYPE;
        assert_eq!(key_format_type::RAW, value(k, "Raw"));
        assert_eq!(key_format_type::OPAQUE, value(k, "Opaque"));
        assert_eq!(
            key_format_type::TRANSPARENT_SYMMETRIC_KEY,
            value(k, "TransparentSymmetricKey")
        );
        let u = n::V_CRYPTOGRAPHIC_USAGE_MASK;
        assert_eq!(usage_mask::MAC_GENERATE as u32, value(u, "MACGenerate"));
        assert_eq!(usage_mask::DERIVE_KEY as u32, value(u, "DeriveKey"));
        assert_eq!(usage_mask::UNWRAP_KEY as u32, value(u, "UnwrapKey"));
        assert_eq!(state::DEACTIVATED, value(n::V_STATE, "Deactivated"));
        assert_eq!(
            object_type::OPAQUE_OBJECT,
            value(n::V_OBJECT_TYPE, "OpaqueObject")
        );
    }
}
