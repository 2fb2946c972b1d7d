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
