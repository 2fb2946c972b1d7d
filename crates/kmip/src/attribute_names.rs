//! KMIP attribute names (as used by KMIP 1.x Attribute Name) and the tags KMIP 2.x uses for the same attributes.

use crate::tags::*;

/// (attribute name, tag) for every standard attribute.
pub const ATTRIBUTE_TAGS: &[(&str, u32)] = &[
    ("Activation Date", ACTIVATION_DATE),
    ("Alternative Name", ALTERNATIVE_NAME),
    ("Always Sensitive", ALWAYS_SENSITIVE),
    (
        "Application Specific Information",
        APPLICATION_SPECIFIC_INFORMATION,
    ),
    ("Archive Date", ARCHIVE_DATE),
    ("Attribute", ATTRIBUTE),
    ("Certificate Identifier", CERTIFICATE_IDENTIFIER),
    ("Certificate Issuer", CERTIFICATE_ISSUER),
    ("Certificate Issuer C", CERTIFICATE_ISSUER_C),
    ("Certificate Issuer CN", CERTIFICATE_ISSUER_CN),
    ("Certificate Issuer DC", CERTIFICATE_ISSUER_DC),
    (
        "Certificate Issuer DN Qualifier",
        CERTIFICATE_ISSUER_DN_QUALIFIER,
    ),
    ("Certificate Issuer Email", CERTIFICATE_ISSUER_EMAIL),
    ("Certificate Issuer L", CERTIFICATE_ISSUER_L),
    ("Certificate Issuer O", CERTIFICATE_ISSUER_O),
    ("Certificate Issuer OU", CERTIFICATE_ISSUER_OU),
    (
        "Certificate Issuer Serial Number",
        CERTIFICATE_ISSUER_SERIAL_NUMBER,
    ),
    ("Certificate Issuer ST", CERTIFICATE_ISSUER_ST),
    ("Certificate Issuer Title", CERTIFICATE_ISSUER_TITLE),
    ("Certificate Issuer UID", CERTIFICATE_ISSUER_UID),
    ("Certificate Length", CERTIFICATE_LENGTH),
    ("Certificate Subject", CERTIFICATE_SUBJECT),
    ("Certificate Subject C", CERTIFICATE_SUBJECT_C),
    ("Certificate Subject CN", CERTIFICATE_SUBJECT_CN),
    ("Certificate Subject DC", CERTIFICATE_SUBJECT_DC),
    (
        "Certificate Subject DN Qualifier",
        CERTIFICATE_SUBJECT_DN_QUALIFIER,
    ),
    ("Certificate Subject Email", CERTIFICATE_SUBJECT_EMAIL),
    ("Certificate Subject L", CERTIFICATE_SUBJECT_L),
    ("Certificate Subject O", CERTIFICATE_SUBJECT_O),
    ("Certificate Subject OU", CERTIFICATE_SUBJECT_OU),
    (
        "Certificate Subject Serial Number",
        CERTIFICATE_SUBJECT_SERIAL_NUMBER,
    ),
    ("Certificate Subject ST", CERTIFICATE_SUBJECT_ST),
    ("Certificate Subject Title", CERTIFICATE_SUBJECT_TITLE),
    ("Certificate Subject UID", CERTIFICATE_SUBJECT_UID),
    ("Certificate Type", CERTIFICATE_TYPE),
    ("Comment", COMMENT),
    ("Compromise Date", COMPROMISE_DATE),
    ("Compromise Occurrence Date", COMPROMISE_OCCURRENCE_DATE),
    ("Contact Information", CONTACT_INFORMATION),
    ("Cryptographic Algorithm", CRYPTOGRAPHIC_ALGORITHM),
    (
        "Cryptographic Domain Parameters",
        CRYPTOGRAPHIC_DOMAIN_PARAMETERS,
    ),
    ("Cryptographic Length", CRYPTOGRAPHIC_LENGTH),
    ("Cryptographic Parameters", CRYPTOGRAPHIC_PARAMETERS),
    ("Cryptographic Usage Mask", CRYPTOGRAPHIC_USAGE_MASK),
    ("Custom Attribute", CUSTOM_ATTRIBUTE),
    ("Deactivation Date", DEACTIVATION_DATE),
    ("Description", DESCRIPTION),
    ("Destroy Date", DESTROY_DATE),
    ("Digest", DIGEST),
    ("Digital Signature Algorithm", DIGITAL_SIGNATURE_ALGORITHM),
    ("Extractable", EXTRACTABLE),
    ("Fresh", FRESH),
    ("Initial Date", INITIAL_DATE),
    ("Key Format Type", KEY_FORMAT_TYPE),
    ("Key Value Location", KEY_VALUE_LOCATION),
    ("Key Value Present", KEY_VALUE_PRESENT),
    ("Last Change Date", LAST_CHANGE_DATE),
    ("Lease Time", LEASE_TIME),
    ("Link", LINK),
    ("Name", NAME),
    ("Never Extractable", NEVER_EXTRACTABLE),
    ("NIST Key Type", NIST_KEY_TYPE),
    ("Object Group", OBJECT_GROUP),
    ("Object Type", OBJECT_TYPE),
    ("Opaque Data Type", OPAQUE_DATA_TYPE),
    ("Operation Policy Name", OPERATION_POLICY_NAME),
    ("Original Creation Date", ORIGINAL_CREATION_DATE),
    ("PKCS#12 Friendly Name", PKCS12_FRIENDLY_NAME),
    ("Process Start Date", PROCESS_START_DATE),
    ("Protect Stop Date", PROTECT_STOP_DATE),
    ("Protection Level", PROTECTION_LEVEL),
    ("Protection Period", PROTECTION_PERIOD),
    ("Protection Storage Mask", PROTECTION_STORAGE_MASK),
    ("Quantum Safe", QUANTUM_SAFE),
    ("Random Number Generator", RANDOM_NUMBER_GENERATOR),
    ("Revocation Reason", REVOCATION_REASON),
    ("Sensitive", SENSITIVE),
    ("Short Unique Identifier", SHORT_UNIQUE_IDENTIFIER),
    ("State", STATE),
    ("Unique Identifier", UNIQUE_IDENTIFIER),
    ("Usage Limits", USAGE_LIMITS),
    ("X.509 Certificate Identifier", X_509_CERTIFICATE_IDENTIFIER),
    ("X.509 Certificate Issuer", X_509_CERTIFICATE_ISSUER),
    ("X.509 Certificate Subject", X_509_CERTIFICATE_SUBJECT),
];

/// The tag KMIP 2.x uses for the attribute called `name` in KMIP 1.x.
pub fn tag_for_name(name: &str) -> Option<u32> {
    ATTRIBUTE_TAGS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, t)| *t)
}

/// The KMIP 1.x name of the attribute KMIP 2.x tags with `tag`.
pub fn name_for_tag(tag: u32) -> Option<&'static str> {
    ATTRIBUTE_TAGS
        .iter()
        .find(|(_, t)| *t == tag)
        .map(|(n, _)| *n)
}

/// An attribute name, the first version that defines it, and the first version that no longer does.
type Versioned = (&'static str, (i32, i32), Option<(i32, i32)>);

/// (attribute name, first version that defines it, first version that no longer does) for attributes that did
/// not exist in KMIP 1.0 or were removed by KMIP 2.0. Every other standard attribute exists in every version.
const VERSIONED: &[Versioned] = &[
    ("Certificate Length", (1, 1), None),
    ("X.509 Certificate Identifier", (1, 1), None),
    ("X.509 Certificate Subject", (1, 1), None),
    ("X.509 Certificate Issuer", (1, 1), None),
    ("Digital Signature Algorithm", (1, 1), None),
    ("Fresh", (1, 1), None),
    ("Alternative Name", (1, 2), None),
    ("Key Value Present", (1, 2), None),
    ("Key Value Location", (1, 2), None),
    ("Original Creation Date", (1, 2), None),
    ("Random Number Generator", (1, 3), None),
    ("PKCS#12 Friendly Name", (1, 4), None),
    ("Description", (1, 4), None),
    ("Comment", (1, 4), None),
    ("Sensitive", (1, 4), None),
    ("Always Sensitive", (1, 4), None),
    ("Extractable", (1, 4), None),
    ("Never Extractable", (1, 4), None),
    // Removed by KMIP 2.0.
    ("Operation Policy Name", (1, 0), Some((2, 0))),
    ("Certificate Identifier", (1, 0), Some((2, 0))),
    ("Certificate Subject", (1, 0), Some((2, 0))),
    ("Certificate Issuer", (1, 0), Some((2, 0))),
    ("Custom Attribute", (1, 0), Some((2, 0))),
    // Introduced by KMIP 2.0.
    ("Key Format Type", (2, 0), None),
    ("NIST Key Type", (2, 0), None),
    ("Opaque Data Type", (2, 0), None),
    ("Protection Level", (2, 0), None),
    ("Protection Period", (2, 0), None),
    ("Protection Storage Mask", (2, 0), None),
    ("Quantum Safe", (2, 0), None),
    ("Short Unique Identifier", (2, 0), None),
];

/// Whether the standard attribute `name` exists in `version`. Custom attributes (`x-…`, `y-…`) exist in every
/// version; a name this server does not know is reported as absent.
pub fn defined_in(name: &str, version: crate::ProtocolVersion) -> bool {
    if name.starts_with("x-") || name.starts_with("y-") {
        return true;
    }
    if tag_for_name(name).is_none() {
        return false;
    }
    match VERSIONED.iter().find(|(n, _, _)| *n == name) {
        None => true,
        Some((_, (maj, min), removed)) => {
            version >= crate::ProtocolVersion::new(*maj, *min)
                && removed
                    .is_none_or(|(rmaj, rmin)| version < crate::ProtocolVersion::new(rmaj, rmin))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ProtocolVersion as V;

    #[test]
    fn attributes_exist_only_in_the_versions_that_define_them() {
        assert!(defined_in("Cryptographic Length", V::new(1, 0)));
        assert!(!defined_in("Fresh", V::new(1, 0)));
        assert!(defined_in("Fresh", V::new(1, 1)));
        assert!(!defined_in("Original Creation Date", V::new(1, 1)));
        assert!(defined_in("Original Creation Date", V::new(2, 1)));
        assert!(!defined_in("Random Number Generator", V::new(1, 2)));
        assert!(!defined_in("Sensitive", V::new(1, 3)));
        assert!(defined_in("Sensitive", V::new(1, 4)));
        assert!(defined_in("Operation Policy Name", V::new(1, 4)));
        assert!(!defined_in("Operation Policy Name", V::new(2, 0)));
        assert!(!defined_in("Operation Policy Name", V::new(2, 1)));
        assert!(defined_in("x-anything", V::new(1, 0)));
        assert!(!defined_in("No Such Attribute", V::new(1, 4)));
        for (name, _, _) in VERSIONED {
            assert!(tag_for_name(name).is_some(), "{name} has no tag");
        }
    }
}
