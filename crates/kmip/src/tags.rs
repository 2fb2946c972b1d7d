//! KMIP tag numbers (KMIP 1.0–2.1 specifications, section "Tags"), with their CamelCase names.

#![allow(missing_docs)]

pub const ACTIVATION_DATE: u32 = 0x420001;
pub const APPLICATION_DATA: u32 = 0x420002;
pub const APPLICATION_NAMESPACE: u32 = 0x420003;
pub const APPLICATION_SPECIFIC_INFORMATION: u32 = 0x420004;
pub const ARCHIVE_DATE: u32 = 0x420005;
pub const ASYNCHRONOUS_CORRELATION_VALUE: u32 = 0x420006;
pub const ASYNCHRONOUS_INDICATOR: u32 = 0x420007;
pub const ATTRIBUTE: u32 = 0x420008;
pub const ATTRIBUTE_INDEX: u32 = 0x420009;
pub const ATTRIBUTE_NAME: u32 = 0x42000A;
pub const ATTRIBUTE_VALUE: u32 = 0x42000B;
pub const AUTHENTICATION: u32 = 0x42000C;
pub const BATCH_COUNT: u32 = 0x42000D;
pub const BATCH_ERROR_CONTINUATION_OPTION: u32 = 0x42000E;
pub const BATCH_ITEM: u32 = 0x42000F;
pub const BATCH_ORDER_OPTION: u32 = 0x420010;
pub const BLOCK_CIPHER_MODE: u32 = 0x420011;
pub const CANCELLATION_RESULT: u32 = 0x420012;
pub const CERTIFICATE: u32 = 0x420013;
pub const CERTIFICATE_IDENTIFIER: u32 = 0x420014;
pub const CERTIFICATE_ISSUER: u32 = 0x420015;
pub const CERTIFICATE_ISSUER_ALTERNATIVE_NAME: u32 = 0x420016;
pub const CERTIFICATE_ISSUER_DISTINGUISHED_NAME: u32 = 0x420017;
pub const CERTIFICATE_REQUEST: u32 = 0x420018;
pub const CERTIFICATE_REQUEST_TYPE: u32 = 0x420019;
pub const CERTIFICATE_SUBJECT: u32 = 0x42001A;
pub const CERTIFICATE_SUBJECT_ALTERNATIVE_NAME: u32 = 0x42001B;
pub const CERTIFICATE_SUBJECT_DISTINGUISHED_NAME: u32 = 0x42001C;
pub const CERTIFICATE_TYPE: u32 = 0x42001D;
pub const CERTIFICATE_VALUE: u32 = 0x42001E;
pub const COMMON_TEMPLATE_ATTRIBUTE: u32 = 0x42001F;
pub const COMPROMISE_DATE: u32 = 0x420020;
pub const COMPROMISE_OCCURRENCE_DATE: u32 = 0x420021;
pub const CONTACT_INFORMATION: u32 = 0x420022;
pub const CREDENTIAL: u32 = 0x420023;
pub const CREDENTIAL_TYPE: u32 = 0x420024;
pub const CREDENTIAL_VALUE: u32 = 0x420025;
pub const CRITICALITY_INDICATOR: u32 = 0x420026;
pub const CRT_COEFFICIENT: u32 = 0x420027;
pub const CRYPTOGRAPHIC_ALGORITHM: u32 = 0x420028;
pub const CRYPTOGRAPHIC_DOMAIN_PARAMETERS: u32 = 0x420029;
pub const CRYPTOGRAPHIC_LENGTH: u32 = 0x42002A;
pub const CRYPTOGRAPHIC_PARAMETERS: u32 = 0x42002B;
pub const CRYPTOGRAPHIC_USAGE_MASK: u32 = 0x42002C;
pub const CUSTOM_ATTRIBUTE: u32 = 0x42002D;
pub const D: u32 = 0x42002E;
pub const DEACTIVATION_DATE: u32 = 0x42002F;
pub const DERIVATION_DATA: u32 = 0x420030;
pub const DERIVATION_METHOD: u32 = 0x420031;
pub const DERIVATION_PARAMETERS: u32 = 0x420032;
pub const DESTROY_DATE: u32 = 0x420033;
pub const DIGEST: u32 = 0x420034;
pub const DIGEST_VALUE: u32 = 0x420035;
pub const ENCRYPTION_KEY_INFORMATION: u32 = 0x420036;
pub const G: u32 = 0x420037;
pub const HASHING_ALGORITHM: u32 = 0x420038;
pub const INITIAL_DATE: u32 = 0x420039;
pub const INITIALIZATION_VECTOR: u32 = 0x42003A;
pub const ISSUER: u32 = 0x42003B;
pub const ITERATION_COUNT: u32 = 0x42003C;
pub const IV_COUNTER_NONCE: u32 = 0x42003D;
pub const J: u32 = 0x42003E;
pub const KEY: u32 = 0x42003F;
pub const KEY_BLOCK: u32 = 0x420040;
pub const KEY_COMPRESSION_TYPE: u32 = 0x420041;
pub const KEY_FORMAT_TYPE: u32 = 0x420042;
pub const KEY_MATERIAL: u32 = 0x420043;
pub const KEY_PART_IDENTIFIER: u32 = 0x420044;
pub const KEY_VALUE: u32 = 0x420045;
pub const KEY_WRAPPING_DATA: u32 = 0x420046;
pub const KEY_WRAPPING_SPECIFICATION: u32 = 0x420047;
pub const LAST_CHANGE_DATE: u32 = 0x420048;
pub const LEASE_TIME: u32 = 0x420049;
pub const LINK: u32 = 0x42004A;
pub const LINK_TYPE: u32 = 0x42004B;
pub const LINKED_OBJECT_IDENTIFIER: u32 = 0x42004C;
pub const MAC_SIGNATURE: u32 = 0x42004D;
pub const MAC_SIGNATURE_KEY_INFORMATION: u32 = 0x42004E;
pub const MAXIMUM_ITEMS: u32 = 0x42004F;
pub const MAXIMUM_RESPONSE_SIZE: u32 = 0x420050;
pub const MESSAGE_EXTENSION: u32 = 0x420051;
pub const MODULUS: u32 = 0x420052;
pub const NAME: u32 = 0x420053;
pub const NAME_TYPE: u32 = 0x420054;
pub const NAME_VALUE: u32 = 0x420055;
pub const OBJECT_GROUP: u32 = 0x420056;
pub const OBJECT_TYPE: u32 = 0x420057;
pub const OFFSET: u32 = 0x420058;
pub const OPAQUE_DATA_TYPE: u32 = 0x420059;
pub const OPAQUE_DATA_VALUE: u32 = 0x42005A;
pub const OPAQUE_OBJECT: u32 = 0x42005B;
pub const OPERATION: u32 = 0x42005C;
pub const OPERATION_POLICY_NAME: u32 = 0x42005D;
pub const P: u32 = 0x42005E;
pub const PADDING_METHOD: u32 = 0x42005F;
pub const PRIME_EXPONENT_P: u32 = 0x420060;
pub const PRIME_EXPONENT_Q: u32 = 0x420061;
pub const PRIME_FIELD_SIZE: u32 = 0x420062;
pub const PRIVATE_EXPONENT: u32 = 0x420063;
pub const PRIVATE_KEY: u32 = 0x420064;
pub const PRIVATE_KEY_TEMPLATE_ATTRIBUTE: u32 = 0x420065;
pub const PRIVATE_KEY_UNIQUE_IDENTIFIER: u32 = 0x420066;
pub const PROCESS_START_DATE: u32 = 0x420067;
pub const PROTECT_STOP_DATE: u32 = 0x420068;
pub const PROTOCOL_VERSION: u32 = 0x420069;
pub const PROTOCOL_VERSION_MAJOR: u32 = 0x42006A;
pub const PROTOCOL_VERSION_MINOR: u32 = 0x42006B;
pub const PUBLIC_EXPONENT: u32 = 0x42006C;
pub const PUBLIC_KEY: u32 = 0x42006D;
pub const PUBLIC_KEY_TEMPLATE_ATTRIBUTE: u32 = 0x42006E;
pub const PUBLIC_KEY_UNIQUE_IDENTIFIER: u32 = 0x42006F;
pub const PUT_FUNCTION: u32 = 0x420070;
pub const Q: u32 = 0x420071;
pub const Q_STRING: u32 = 0x420072;
pub const QLENGTH: u32 = 0x420073;
pub const QUERY_FUNCTION: u32 = 0x420074;
pub const RECOMMENDED_CURVE: u32 = 0x420075;
pub const REPLACED_UNIQUE_IDENTIFIER: u32 = 0x420076;
pub const REQUEST_BATCH_ITEM: u32 = 0x42000F;
pub const REQUEST_HEADER: u32 = 0x420077;
pub const REQUEST_MESSAGE: u32 = 0x420078;
pub const REQUEST_PAYLOAD: u32 = 0x420079;
pub const RESPONSE_BATCH_ITEM: u32 = 0x42000F;
pub const RESPONSE_HEADER: u32 = 0x42007A;
pub const RESPONSE_MESSAGE: u32 = 0x42007B;
pub const RESPONSE_PAYLOAD: u32 = 0x42007C;
pub const RESULT_MESSAGE: u32 = 0x42007D;
pub const RESULT_REASON: u32 = 0x42007E;
pub const RESULT_STATUS: u32 = 0x42007F;
pub const REVOCATION_MESSAGE: u32 = 0x420080;
pub const REVOCATION_REASON: u32 = 0x420081;
pub const REVOCATION_REASON_CODE: u32 = 0x420082;
pub const KEY_ROLE_TYPE: u32 = 0x420083;
pub const SALT: u32 = 0x420084;
pub const SECRET_DATA: u32 = 0x420085;
pub const SECRET_DATA_TYPE: u32 = 0x420086;
pub const SERIAL_NUMBER: u32 = 0x420087;
pub const SERVER_INFORMATION: u32 = 0x420088;
pub const SPLIT_KEY: u32 = 0x420089;
pub const SPLIT_KEY_METHOD: u32 = 0x42008A;
pub const SPLIT_KEY_PARTS: u32 = 0x42008B;
pub const SPLIT_KEY_THRESHOLD: u32 = 0x42008C;
pub const STATE: u32 = 0x42008D;
pub const STORAGE_STATUS_MASK: u32 = 0x42008E;
pub const SYMMETRIC_KEY: u32 = 0x42008F;
pub const TEMPLATE: u32 = 0x420090;
pub const TEMPLATE_ATTRIBUTE: u32 = 0x420091;
pub const TIME_STAMP: u32 = 0x420092;
pub const UNIQUE_BATCH_ITEM_ID: u32 = 0x420093;
pub const UNIQUE_IDENTIFIER: u32 = 0x420094;
pub const USAGE_LIMITS: u32 = 0x420095;
pub const USAGE_LIMITS_COUNT: u32 = 0x420096;
pub const USAGE_LIMITS_TOTAL: u32 = 0x420097;
pub const USAGE_LIMITS_UNIT: u32 = 0x420098;
pub const USERNAME: u32 = 0x420099;
pub const VALIDITY_DATE: u32 = 0x42009A;
pub const VALIDITY_INDICATOR: u32 = 0x42009B;
pub const VENDOR_EXTENSION: u32 = 0x42009C;
pub const VENDOR_IDENTIFICATION: u32 = 0x42009D;
pub const WRAPPING_METHOD: u32 = 0x42009E;
pub const X: u32 = 0x42009F;
pub const Y: u32 = 0x4200A0;
pub const PASSWORD: u32 = 0x4200A1;
pub const DEVICE_IDENTIFIER: u32 = 0x4200A2;
pub const ENCODING_OPTION: u32 = 0x4200A3;
pub const EXTENSION_INFORMATION: u32 = 0x4200A4;
pub const EXTENSION_NAME: u32 = 0x4200A5;
pub const EXTENSION_TAG: u32 = 0x4200A6;
pub const EXTENSION_TYPE: u32 = 0x4200A7;
pub const FRESH: u32 = 0x4200A8;
pub const MACHINE_IDENTIFIER: u32 = 0x4200A9;
pub const MEDIA_IDENTIFIER: u32 = 0x4200AA;
pub const NETWORK_IDENTIFIER: u32 = 0x4200AB;
pub const OBJECT_GROUP_MEMBER: u32 = 0x4200AC;
pub const CERTIFICATE_LENGTH: u32 = 0x4200AD;
pub const DIGITAL_SIGNATURE_ALGORITHM: u32 = 0x4200AE;
pub const CERTIFICATE_SERIAL_NUMBER: u32 = 0x4200AF;
pub const DEVICE_SERIAL_NUMBER: u32 = 0x4200B0;
pub const ISSUER_ALTERNATIVE_NAME: u32 = 0x4200B1;
pub const ISSUER_DISTINGUISHED_NAME: u32 = 0x4200B2;
pub const SUBJECT_ALTERNATIVE_NAME: u32 = 0x4200B3;
pub const SUBJECT_DISTINGUISHED_NAME: u32 = 0x4200B4;
pub const X_509_CERTIFICATE_IDENTIFIER: u32 = 0x4200B5;
pub const X_509_CERTIFICATE_ISSUER: u32 = 0x4200B6;
pub const X_509_CERTIFICATE_SUBJECT: u32 = 0x4200B7;
pub const KEY_VALUE_LOCATION: u32 = 0x4200B8;
pub const KEY_VALUE_LOCATION_VALUE: u32 = 0x4200B9;
pub const KEY_VALUE_LOCATION_TYPE: u32 = 0x4200BA;
pub const KEY_VALUE_PRESENT: u32 = 0x4200BB;
pub const ORIGINAL_CREATION_DATE: u32 = 0x4200BC;
pub const PGP_KEY: u32 = 0x4200BD;
pub const PGP_KEY_VERSION: u32 = 0x4200BE;
pub const ALTERNATIVE_NAME: u32 = 0x4200BF;
pub const ALTERNATIVE_NAME_VALUE: u32 = 0x4200C0;
pub const ALTERNATIVE_NAME_TYPE: u32 = 0x4200C1;
pub const DATA: u32 = 0x4200C2;
pub const SIGNATURE_DATA: u32 = 0x4200C3;
pub const DATA_LENGTH: u32 = 0x4200C4;
pub const RANDOM_IV: u32 = 0x4200C5;
pub const MAC_DATA: u32 = 0x4200C6;
pub const ATTESTATION_TYPE: u32 = 0x4200C7;
pub const NONCE: u32 = 0x4200C8;
pub const NONCE_ID: u32 = 0x4200C9;
pub const NONCE_VALUE: u32 = 0x4200CA;
pub const ATTESTATION_MEASUREMENT: u32 = 0x4200CB;
pub const ATTESTATION_ASSERTION: u32 = 0x4200CC;
pub const IV_LENGTH: u32 = 0x4200CD;
pub const TAG_LENGTH: u32 = 0x4200CE;
pub const FIXED_FIELD_LENGTH: u32 = 0x4200CF;
pub const COUNTER_LENGTH: u32 = 0x4200D0;
pub const INITIAL_COUNTER_VALUE: u32 = 0x4200D1;
pub const INVOCATION_FIELD_LENGTH: u32 = 0x4200D2;
pub const ATTESTATION_CAPABLE_INDICATOR: u32 = 0x4200D3;
pub const OFFSET_ITEMS: u32 = 0x4200D4;
pub const LOCATED_ITEMS: u32 = 0x4200D5;
pub const CORRELATION_VALUE: u32 = 0x4200D6;
pub const INIT_INDICATOR: u32 = 0x4200D7;
pub const FINAL_INDICATOR: u32 = 0x4200D8;
pub const RNG_PARAMETERS: u32 = 0x4200D9;
pub const RNG_ALGORITHM: u32 = 0x4200DA;
pub const DRBG_ALGORITHM: u32 = 0x4200DB;
pub const FIPS186_VARIATION: u32 = 0x4200DC;
pub const PREDICTION_RESISTANCE: u32 = 0x4200DD;
pub const RANDOM_NUMBER_GENERATOR: u32 = 0x4200DE;
pub const VALIDATION_INFORMATION: u32 = 0x4200DF;
pub const VALIDATION_AUTHORITY_TYPE: u32 = 0x4200E0;
pub const VALIDATION_AUTHORITY_COUNTRY: u32 = 0x4200E1;
pub const VALIDATION_AUTHORITY_URI: u32 = 0x4200E2;
pub const VALIDATION_VERSION_MAJOR: u32 = 0x4200E3;
pub const VALIDATION_VERSION_MINOR: u32 = 0x4200E4;
pub const VALIDATION_TYPE: u32 = 0x4200E5;
pub const VALIDATION_LEVEL: u32 = 0x4200E6;
pub const VALIDATION_CERTIFICATE_IDENTIFIER: u32 = 0x4200E7;
pub const VALIDATION_CERTIFICATE_URI: u32 = 0x4200E8;
pub const VALIDATION_VENDOR_URI: u32 = 0x4200E9;
pub const VALIDATION_PROFILE: u32 = 0x4200EA;
pub const PROFILE_INFORMATION: u32 = 0x4200EB;
pub const PROFILE_NAME: u32 = 0x4200EC;
pub const SERVER_URI: u32 = 0x4200ED;
pub const SERVER_PORT: u32 = 0x4200EE;
pub const STREAMING_CAPABILITY: u32 = 0x4200EF;
pub const ASYNCHRONOUS_CAPABILITY: u32 = 0x4200F0;
pub const ATTESTATION_CAPABILITY: u32 = 0x4200F1;
pub const UNWRAP_MODE: u32 = 0x4200F2;
pub const DESTROY_ACTION: u32 = 0x4200F3;
pub const SHREDDING_ALGORITHM: u32 = 0x4200F4;
pub const RNG_MODE: u32 = 0x4200F5;
pub const CLIENT_REGISTRATION_METHOD: u32 = 0x4200F6;
pub const CAPABILITY_INFORMATION: u32 = 0x4200F7;
pub const KEY_WRAP_TYPE: u32 = 0x4200F8;
pub const BATCH_UNDO_CAPABILITY: u32 = 0x4200F9;
pub const BATCH_CONTINUE_CAPABILITY: u32 = 0x4200FA;
pub const PKCS12_FRIENDLY_NAME: u32 = 0x4200FB;
pub const DESCRIPTION: u32 = 0x4200FC;
pub const COMMENT: u32 = 0x4200FD;
pub const AUTHENTICATED_ENCRYPTION_ADDITIONAL_DATA: u32 = 0x4200FE;
pub const AUTHENTICATED_ENCRYPTION_TAG: u32 = 0x4200FF;
pub const SALT_LENGTH: u32 = 0x420100;
pub const MASK_GENERATOR: u32 = 0x420101;
pub const MASK_GENERATOR_HASHING_ALGORITHM: u32 = 0x420102;
pub const P_SOURCE: u32 = 0x420103;
pub const TRAILER_FIELD: u32 = 0x420104;
pub const CLIENT_CORRELATION_VALUE: u32 = 0x420105;
pub const SERVER_CORRELATION_VALUE: u32 = 0x420106;
pub const DIGESTED_DATA: u32 = 0x420107;
pub const CERTIFICATE_SUBJECT_CN: u32 = 0x420108;
pub const CERTIFICATE_SUBJECT_O: u32 = 0x420109;
pub const CERTIFICATE_SUBJECT_OU: u32 = 0x42010A;
pub const CERTIFICATE_SUBJECT_EMAIL: u32 = 0x42010B;
pub const CERTIFICATE_SUBJECT_C: u32 = 0x42010C;
pub const CERTIFICATE_SUBJECT_ST: u32 = 0x42010D;
pub const CERTIFICATE_SUBJECT_L: u32 = 0x42010E;
pub const CERTIFICATE_SUBJECT_UID: u32 = 0x42010F;
pub const CERTIFICATE_SUBJECT_SERIAL_NUMBER: u32 = 0x420110;
pub const CERTIFICATE_SUBJECT_TITLE: u32 = 0x420111;
pub const CERTIFICATE_SUBJECT_DC: u32 = 0x420112;
pub const CERTIFICATE_SUBJECT_DN_QUALIFIER: u32 = 0x420113;
pub const CERTIFICATE_ISSUER_CN: u32 = 0x420114;
pub const CERTIFICATE_ISSUER_O: u32 = 0x420115;
pub const CERTIFICATE_ISSUER_OU: u32 = 0x420116;
pub const CERTIFICATE_ISSUER_EMAIL: u32 = 0x420117;
pub const CERTIFICATE_ISSUER_C: u32 = 0x420118;
pub const CERTIFICATE_ISSUER_ST: u32 = 0x420119;
pub const CERTIFICATE_ISSUER_L: u32 = 0x42011A;
pub const CERTIFICATE_ISSUER_UID: u32 = 0x42011B;
pub const CERTIFICATE_ISSUER_SERIAL_NUMBER: u32 = 0x42011C;
pub const CERTIFICATE_ISSUER_TITLE: u32 = 0x42011D;
pub const CERTIFICATE_ISSUER_DC: u32 = 0x42011E;
pub const CERTIFICATE_ISSUER_DN_QUALIFIER: u32 = 0x42011F;
pub const SENSITIVE: u32 = 0x420120;
pub const ALWAYS_SENSITIVE: u32 = 0x420121;
pub const EXTRACTABLE: u32 = 0x420122;
pub const NEVER_EXTRACTABLE: u32 = 0x420123;
pub const REPLACE_EXISTING: u32 = 0x420124;
pub const ATTRIBUTES: u32 = 0x420125;
pub const COMMON_ATTRIBUTES: u32 = 0x420126;
pub const PRIVATE_KEY_ATTRIBUTES: u32 = 0x420127;
pub const PUBLIC_KEY_ATTRIBUTES: u32 = 0x420128;
pub const EXTENSION_ENUMERATION: u32 = 0x420129;
pub const EXTENSION_ATTRIBUTE: u32 = 0x42012A;
pub const EXTENSION_PARENT_STRUCTURE_TAG: u32 = 0x42012B;
pub const EXTENSION_DESCRIPTION: u32 = 0x42012C;
pub const SERVER_NAME: u32 = 0x42012D;
pub const SERVER_SERIAL_NUMBER: u32 = 0x42012E;
pub const SERVER_VERSION: u32 = 0x42012F;
pub const SERVER_LOAD: u32 = 0x420130;
pub const PRODUCT_NAME: u32 = 0x420131;
pub const BUILD_LEVEL: u32 = 0x420132;
pub const BUILD_DATE: u32 = 0x420133;
pub const CLUSTER_INFO: u32 = 0x420134;
pub const ALTERNATE_FAILOVER_ENDPOINTS: u32 = 0x420135;
pub const SHORT_UNIQUE_IDENTIFIER: u32 = 0x420136;
pub const RESERVED: u32 = 0x420137;
pub const TAG: u32 = 0x420138;
pub const CERTIFICATE_REQUEST_UNIQUE_IDENTIFIER: u32 = 0x420139;
pub const NIST_KEY_TYPE: u32 = 0x42013A;
pub const ATTRIBUTE_REFERENCE: u32 = 0x42013B;
pub const CURRENT_ATTRIBUTE: u32 = 0x42013C;
pub const NEW_ATTRIBUTE: u32 = 0x42013D;
pub const CERTIFICATE_REQUEST_VALUE: u32 = 0x420140;
pub const LOG_MESSAGE: u32 = 0x420141;
pub const PROFILE_VERSION: u32 = 0x420142;
pub const PROFILE_VERSION_MAJOR: u32 = 0x420143;
pub const PROFILE_VERSION_MINOR: u32 = 0x420144;
pub const PROTECTION_LEVEL: u32 = 0x420145;
pub const PROTECTION_PERIOD: u32 = 0x420146;
pub const QUANTUM_SAFE: u32 = 0x420147;
pub const QUANTUM_SAFE_CAPABILITY: u32 = 0x420148;
pub const TICKET: u32 = 0x420149;
pub const TICKET_TYPE: u32 = 0x42014A;
pub const TICKET_VALUE: u32 = 0x42014B;
pub const REQUEST_COUNT: u32 = 0x42014C;
pub const RIGHTS: u32 = 0x42014D;
pub const OBJECTS: u32 = 0x42014E;
pub const OPERATIONS: u32 = 0x42014F;
pub const RIGHT: u32 = 0x420150;
pub const ENDPOINT_ROLE: u32 = 0x420151;
pub const DEFAULTS_INFORMATION: u32 = 0x420152;
pub const OBJECT_DEFAULTS: u32 = 0x420153;
pub const EPHEMERAL: u32 = 0x420154;
pub const SERVER_HASHED_PASSWORD: u32 = 0x420155;
pub const ONE_TIME_PASSWORD: u32 = 0x420156;
pub const HASHED_PASSWORD: u32 = 0x420157;
pub const ADJUSTMENT_TYPE: u32 = 0x420158;
pub const PKCS11_INTERFACE: u32 = 0x420159;
pub const PKCS11_FUNCTION: u32 = 0x42015A;
pub const PKCS11_INPUT_PARAMETERS: u32 = 0x42015B;
pub const PKCS11_OUTPUT_PARAMETERS: u32 = 0x42015C;
pub const PKCS11_RETURN_CODE: u32 = 0x42015D;
pub const PROTECTION_STORAGE_MASK: u32 = 0x42015E;
pub const PROTECTION_STORAGE_MASKS: u32 = 0x42015F;
pub const INTEROP_FUNCTION: u32 = 0x420160;
pub const INTEROP_IDENTIFIER: u32 = 0x420161;
pub const ADJUSTMENT_VALUE: u32 = 0x420162;
pub const COMMON_PROTECTION_STORAGE_MASKS: u32 = 0x420163;
pub const PRIVATE_PROTECTION_STORAGE_MASKS: u32 = 0x420164;
pub const PUBLIC_PROTECTION_STORAGE_MASKS: u32 = 0x420165;

/// Every known tag with its name, for diagnostics and the XML encoding.
pub const NAMES: &[(u32, &str)] = &[
    (ACTIVATION_DATE, "ActivationDate"),
    (APPLICATION_DATA, "ApplicationData"),
    (APPLICATION_NAMESPACE, "ApplicationNamespace"),
    (
        APPLICATION_SPECIFIC_INFORMATION,
        "ApplicationSpecificInformation",
    ),
    (ARCHIVE_DATE, "ArchiveDate"),
    (
        ASYNCHRONOUS_CORRELATION_VALUE,
        "AsynchronousCorrelationValue",
    ),
    (ASYNCHRONOUS_INDICATOR, "AsynchronousIndicator"),
    (ATTRIBUTE, "Attribute"),
    (ATTRIBUTE_INDEX, "AttributeIndex"),
    (ATTRIBUTE_NAME, "AttributeName"),
    (ATTRIBUTE_VALUE, "AttributeValue"),
    (AUTHENTICATION, "Authentication"),
    (BATCH_COUNT, "BatchCount"),
    (
        BATCH_ERROR_CONTINUATION_OPTION,
        "BatchErrorContinuationOption",
    ),
    (BATCH_ITEM, "BatchItem"),
    (BATCH_ORDER_OPTION, "BatchOrderOption"),
    (BLOCK_CIPHER_MODE, "BlockCipherMode"),
    (CANCELLATION_RESULT, "CancellationResult"),
    (CERTIFICATE, "Certificate"),
    (CERTIFICATE_IDENTIFIER, "CertificateIdentifier"),
    (CERTIFICATE_ISSUER, "CertificateIssuer"),
    (
        CERTIFICATE_ISSUER_ALTERNATIVE_NAME,
        "CertificateIssuerAlternativeName",
    ),
    (
        CERTIFICATE_ISSUER_DISTINGUISHED_NAME,
        "CertificateIssuerDistinguishedName",
    ),
    (CERTIFICATE_REQUEST, "CertificateRequest"),
    (CERTIFICATE_REQUEST_TYPE, "CertificateRequestType"),
    (CERTIFICATE_SUBJECT, "CertificateSubject"),
    (
        CERTIFICATE_SUBJECT_ALTERNATIVE_NAME,
        "CertificateSubjectAlternativeName",
    ),
    (
        CERTIFICATE_SUBJECT_DISTINGUISHED_NAME,
        "CertificateSubjectDistinguishedName",
    ),
    (CERTIFICATE_TYPE, "CertificateType"),
    (CERTIFICATE_VALUE, "CertificateValue"),
    (COMMON_TEMPLATE_ATTRIBUTE, "CommonTemplateAttribute"),
    (COMPROMISE_DATE, "CompromiseDate"),
    (COMPROMISE_OCCURRENCE_DATE, "CompromiseOccurrenceDate"),
    (CONTACT_INFORMATION, "ContactInformation"),
    (CREDENTIAL, "Credential"),
    (CREDENTIAL_TYPE, "CredentialType"),
    (CREDENTIAL_VALUE, "CredentialValue"),
    (CRITICALITY_INDICATOR, "CriticalityIndicator"),
    (CRT_COEFFICIENT, "CRTCoefficient"),
    (CRYPTOGRAPHIC_ALGORITHM, "CryptographicAlgorithm"),
    (
        CRYPTOGRAPHIC_DOMAIN_PARAMETERS,
        "CryptographicDomainParameters",
    ),
    (CRYPTOGRAPHIC_LENGTH, "CryptographicLength"),
    (CRYPTOGRAPHIC_PARAMETERS, "CryptographicParameters"),
    (CRYPTOGRAPHIC_USAGE_MASK, "CryptographicUsageMask"),
    (CUSTOM_ATTRIBUTE, "CustomAttribute"),
    (D, "D"),
    (DEACTIVATION_DATE, "DeactivationDate"),
    (DERIVATION_DATA, "DerivationData"),
    (DERIVATION_METHOD, "DerivationMethod"),
    (DERIVATION_PARAMETERS, "DerivationParameters"),
    (DESTROY_DATE, "DestroyDate"),
    (DIGEST, "Digest"),
    (DIGEST_VALUE, "DigestValue"),
    (ENCRYPTION_KEY_INFORMATION, "EncryptionKeyInformation"),
    (G, "G"),
    (HASHING_ALGORITHM, "HashingAlgorithm"),
    (INITIAL_DATE, "InitialDate"),
    (INITIALIZATION_VECTOR, "InitializationVector"),
    (ISSUER, "Issuer"),
    (ITERATION_COUNT, "IterationCount"),
    (IV_COUNTER_NONCE, "IVCounterNonce"),
    (J, "J"),
    (KEY, "Key"),
    (KEY_BLOCK, "KeyBlock"),
    (KEY_COMPRESSION_TYPE, "KeyCompressionType"),
    (KEY_FORMAT_TYPE, "KeyFormatType"),
    (KEY_MATERIAL, "KeyMaterial"),
    (KEY_PART_IDENTIFIER, "KeyPartIdentifier"),
    (KEY_VALUE, "KeyValue"),
    (KEY_WRAPPING_DATA, "KeyWrappingData"),
    (KEY_WRAPPING_SPECIFICATION, "KeyWrappingSpecification"),
    (LAST_CHANGE_DATE, "LastChangeDate"),
    (LEASE_TIME, "LeaseTime"),
    (LINK, "Link"),
    (LINK_TYPE, "LinkType"),
    (LINKED_OBJECT_IDENTIFIER, "LinkedObjectIdentifier"),
    (MAC_SIGNATURE, "MACSignature"),
    (MAC_SIGNATURE_KEY_INFORMATION, "MACSignatureKeyInformation"),
    (MAXIMUM_ITEMS, "MaximumItems"),
    (MAXIMUM_RESPONSE_SIZE, "MaximumResponseSize"),
    (MESSAGE_EXTENSION, "MessageExtension"),
    (MODULUS, "Modulus"),
    (NAME, "Name"),
    (NAME_TYPE, "NameType"),
    (NAME_VALUE, "NameValue"),
    (OBJECT_GROUP, "ObjectGroup"),
    (OBJECT_TYPE, "ObjectType"),
    (OFFSET, "Offset"),
    (OPAQUE_DATA_TYPE, "OpaqueDataType"),
    (OPAQUE_DATA_VALUE, "OpaqueDataValue"),
    (OPAQUE_OBJECT, "OpaqueObject"),
    (OPERATION, "Operation"),
    (OPERATION_POLICY_NAME, "OperationPolicyName"),
    (P, "P"),
    (PADDING_METHOD, "PaddingMethod"),
    (PRIME_EXPONENT_P, "PrimeExponentP"),
    (PRIME_EXPONENT_Q, "PrimeExponentQ"),
    (PRIME_FIELD_SIZE, "PrimeFieldSize"),
    (PRIVATE_EXPONENT, "PrivateExponent"),
    (PRIVATE_KEY, "PrivateKey"),
    (
        PRIVATE_KEY_TEMPLATE_ATTRIBUTE,
        "PrivateKeyTemplateAttribute",
    ),
    (PRIVATE_KEY_UNIQUE_IDENTIFIER, "PrivateKeyUniqueIdentifier"),
    (PROCESS_START_DATE, "ProcessStartDate"),
    (PROTECT_STOP_DATE, "ProtectStopDate"),
    (PROTOCOL_VERSION, "ProtocolVersion"),
    (PROTOCOL_VERSION_MAJOR, "ProtocolVersionMajor"),
    (PROTOCOL_VERSION_MINOR, "ProtocolVersionMinor"),
    (PUBLIC_EXPONENT, "PublicExponent"),
    (PUBLIC_KEY, "PublicKey"),
    (PUBLIC_KEY_TEMPLATE_ATTRIBUTE, "PublicKeyTemplateAttribute"),
    (PUBLIC_KEY_UNIQUE_IDENTIFIER, "PublicKeyUniqueIdentifier"),
    (PUT_FUNCTION, "PutFunction"),
    (Q, "Q"),
    (Q_STRING, "QString"),
    (QLENGTH, "Qlength"),
    (QUERY_FUNCTION, "QueryFunction"),
    (RECOMMENDED_CURVE, "RecommendedCurve"),
    (REPLACED_UNIQUE_IDENTIFIER, "ReplacedUniqueIdentifier"),
    (REQUEST_BATCH_ITEM, "RequestBatchItem"),
    (REQUEST_HEADER, "RequestHeader"),
    (REQUEST_MESSAGE, "RequestMessage"),
    (REQUEST_PAYLOAD, "RequestPayload"),
    (RESPONSE_BATCH_ITEM, "ResponseBatchItem"),
    (RESPONSE_HEADER, "ResponseHeader"),
    (RESPONSE_MESSAGE, "ResponseMessage"),
    (RESPONSE_PAYLOAD, "ResponsePayload"),
    (RESULT_MESSAGE, "ResultMessage"),
    (RESULT_REASON, "ResultReason"),
    (RESULT_STATUS, "ResultStatus"),
    (REVOCATION_MESSAGE, "RevocationMessage"),
    (REVOCATION_REASON, "RevocationReason"),
    (REVOCATION_REASON_CODE, "RevocationReasonCode"),
    (KEY_ROLE_TYPE, "KeyRoleType"),
    (SALT, "Salt"),
    (SECRET_DATA, "SecretData"),
    (SECRET_DATA_TYPE, "SecretDataType"),
    (SERIAL_NUMBER, "SerialNumber"),
    (SERVER_INFORMATION, "ServerInformation"),
    (SPLIT_KEY, "SplitKey"),
    (SPLIT_KEY_METHOD, "SplitKeyMethod"),
    (SPLIT_KEY_PARTS, "SplitKeyParts"),
    (SPLIT_KEY_THRESHOLD, "SplitKeyThreshold"),
    (STATE, "State"),
    (STORAGE_STATUS_MASK, "StorageStatusMask"),
    (SYMMETRIC_KEY, "SymmetricKey"),
    (TEMPLATE, "Template"),
    (TEMPLATE_ATTRIBUTE, "TemplateAttribute"),
    (TIME_STAMP, "TimeStamp"),
    (UNIQUE_BATCH_ITEM_ID, "UniqueBatchItemID"),
    (UNIQUE_IDENTIFIER, "UniqueIdentifier"),
    (USAGE_LIMITS, "UsageLimits"),
    (USAGE_LIMITS_COUNT, "UsageLimitsCount"),
    (USAGE_LIMITS_TOTAL, "UsageLimitsTotal"),
    (USAGE_LIMITS_UNIT, "UsageLimitsUnit"),
    (USERNAME, "Username"),
    (VALIDITY_DATE, "ValidityDate"),
    (VALIDITY_INDICATOR, "ValidityIndicator"),
    (VENDOR_EXTENSION, "VendorExtension"),
    (VENDOR_IDENTIFICATION, "VendorIdentification"),
    (WRAPPING_METHOD, "WrappingMethod"),
    (X, "X"),
    (Y, "Y"),
    (PASSWORD, "Password"),
    (DEVICE_IDENTIFIER, "DeviceIdentifier"),
    (ENCODING_OPTION, "EncodingOption"),
    (EXTENSION_INFORMATION, "ExtensionInformation"),
    (EXTENSION_NAME, "ExtensionName"),
    (EXTENSION_TAG, "ExtensionTag"),
    (EXTENSION_TYPE, "ExtensionType"),
    (FRESH, "Fresh"),
    (MACHINE_IDENTIFIER, "MachineIdentifier"),
    (MEDIA_IDENTIFIER, "MediaIdentifier"),
    (NETWORK_IDENTIFIER, "NetworkIdentifier"),
    (OBJECT_GROUP_MEMBER, "ObjectGroupMember"),
    (CERTIFICATE_LENGTH, "CertificateLength"),
    (DIGITAL_SIGNATURE_ALGORITHM, "DigitalSignatureAlgorithm"),
    (CERTIFICATE_SERIAL_NUMBER, "CertificateSerialNumber"),
    (DEVICE_SERIAL_NUMBER, "DeviceSerialNumber"),
    (ISSUER_ALTERNATIVE_NAME, "IssuerAlternativeName"),
    (ISSUER_DISTINGUISHED_NAME, "IssuerDistinguishedName"),
    (SUBJECT_ALTERNATIVE_NAME, "SubjectAlternativeName"),
    (SUBJECT_DISTINGUISHED_NAME, "SubjectDistinguishedName"),
    (X_509_CERTIFICATE_IDENTIFIER, "X_509CertificateIdentifier"),
    (X_509_CERTIFICATE_ISSUER, "X_509CertificateIssuer"),
    (X_509_CERTIFICATE_SUBJECT, "X_509CertificateSubject"),
    (KEY_VALUE_LOCATION, "KeyValueLocation"),
    (KEY_VALUE_LOCATION_VALUE, "KeyValueLocationValue"),
    (KEY_VALUE_LOCATION_TYPE, "KeyValueLocationType"),
    (KEY_VALUE_PRESENT, "KeyValuePresent"),
    (ORIGINAL_CREATION_DATE, "OriginalCreationDate"),
    (PGP_KEY, "PGPKey"),
    (PGP_KEY_VERSION, "PGPKeyVersion"),
    (ALTERNATIVE_NAME, "AlternativeName"),
    (ALTERNATIVE_NAME_VALUE, "AlternativeNameValue"),
    (ALTERNATIVE_NAME_TYPE, "AlternativeNameType"),
    (DATA, "Data"),
    (SIGNATURE_DATA, "SignatureData"),
    (DATA_LENGTH, "DataLength"),
    (RANDOM_IV, "RandomIV"),
    (MAC_DATA, "MACData"),
    (ATTESTATION_TYPE, "AttestationType"),
    (NONCE, "Nonce"),
    (NONCE_ID, "NonceID"),
    (NONCE_VALUE, "NonceValue"),
    (ATTESTATION_MEASUREMENT, "AttestationMeasurement"),
    (ATTESTATION_ASSERTION, "AttestationAssertion"),
    (IV_LENGTH, "IVLength"),
    (TAG_LENGTH, "TagLength"),
    (FIXED_FIELD_LENGTH, "FixedFieldLength"),
    (COUNTER_LENGTH, "CounterLength"),
    (INITIAL_COUNTER_VALUE, "InitialCounterValue"),
    (INVOCATION_FIELD_LENGTH, "InvocationFieldLength"),
    (ATTESTATION_CAPABLE_INDICATOR, "AttestationCapableIndicator"),
    (OFFSET_ITEMS, "OffsetItems"),
    (LOCATED_ITEMS, "LocatedItems"),
    (CORRELATION_VALUE, "CorrelationValue"),
    (INIT_INDICATOR, "InitIndicator"),
    (FINAL_INDICATOR, "FinalIndicator"),
    (RNG_PARAMETERS, "RNGParameters"),
    (RNG_ALGORITHM, "RNGAlgorithm"),
    (DRBG_ALGORITHM, "DRBGAlgorithm"),
    (FIPS186_VARIATION, "FIPS186Variation"),
    (PREDICTION_RESISTANCE, "PredictionResistance"),
    (RANDOM_NUMBER_GENERATOR, "RandomNumberGenerator"),
    (VALIDATION_INFORMATION, "ValidationInformation"),
    (VALIDATION_AUTHORITY_TYPE, "ValidationAuthorityType"),
    (VALIDATION_AUTHORITY_COUNTRY, "ValidationAuthorityCountry"),
    (VALIDATION_AUTHORITY_URI, "ValidationAuthorityURI"),
    (VALIDATION_VERSION_MAJOR, "ValidationVersionMajor"),
    (VALIDATION_VERSION_MINOR, "ValidationVersionMinor"),
    (VALIDATION_TYPE, "ValidationType"),
    (VALIDATION_LEVEL, "ValidationLevel"),
    (
        VALIDATION_CERTIFICATE_IDENTIFIER,
        "ValidationCertificateIdentifier",
    ),
    (VALIDATION_CERTIFICATE_URI, "ValidationCertificateURI"),
    (VALIDATION_VENDOR_URI, "ValidationVendorURI"),
    (VALIDATION_PROFILE, "ValidationProfile"),
    (PROFILE_INFORMATION, "ProfileInformation"),
    (PROFILE_NAME, "ProfileName"),
    (SERVER_URI, "ServerURI"),
    (SERVER_PORT, "ServerPort"),
    (STREAMING_CAPABILITY, "StreamingCapability"),
    (ASYNCHRONOUS_CAPABILITY, "AsynchronousCapability"),
    (ATTESTATION_CAPABILITY, "AttestationCapability"),
    (UNWRAP_MODE, "UnwrapMode"),
    (DESTROY_ACTION, "DestroyAction"),
    (SHREDDING_ALGORITHM, "ShreddingAlgorithm"),
    (RNG_MODE, "RNGMode"),
    (CLIENT_REGISTRATION_METHOD, "ClientRegistrationMethod"),
    (CAPABILITY_INFORMATION, "CapabilityInformation"),
    (KEY_WRAP_TYPE, "KeyWrapType"),
    (BATCH_UNDO_CAPABILITY, "BatchUndoCapability"),
    (BATCH_CONTINUE_CAPABILITY, "BatchContinueCapability"),
    (PKCS12_FRIENDLY_NAME, "PKCS_12FriendlyName"),
    (DESCRIPTION, "Description"),
    (COMMENT, "Comment"),
    (
        AUTHENTICATED_ENCRYPTION_ADDITIONAL_DATA,
        "AuthenticatedEncryptionAdditionalData",
    ),
    (AUTHENTICATED_ENCRYPTION_TAG, "AuthenticatedEncryptionTag"),
    (SALT_LENGTH, "SaltLength"),
    (MASK_GENERATOR, "MaskGenerator"),
    (
        MASK_GENERATOR_HASHING_ALGORITHM,
        "MaskGeneratorHashingAlgorithm",
    ),
    (P_SOURCE, "PSource"),
    (TRAILER_FIELD, "TrailerField"),
    (CLIENT_CORRELATION_VALUE, "ClientCorrelationValue"),
    (SERVER_CORRELATION_VALUE, "ServerCorrelationValue"),
    (DIGESTED_DATA, "DigestedData"),
    (CERTIFICATE_SUBJECT_CN, "CertificateSubjectCn"),
    (CERTIFICATE_SUBJECT_O, "CertificateSubjectO"),
    (CERTIFICATE_SUBJECT_OU, "CertificateSubjectOu"),
    (CERTIFICATE_SUBJECT_EMAIL, "CertificateSubjectEmail"),
    (CERTIFICATE_SUBJECT_C, "CertificateSubjectC"),
    (CERTIFICATE_SUBJECT_ST, "CertificateSubjectSt"),
    (CERTIFICATE_SUBJECT_L, "CertificateSubjectL"),
    (CERTIFICATE_SUBJECT_UID, "CertificateSubjectUid"),
    (
        CERTIFICATE_SUBJECT_SERIAL_NUMBER,
        "CertificateSubjectSerialNumber",
    ),
    (CERTIFICATE_SUBJECT_TITLE, "CertificateSubjectTitle"),
    (CERTIFICATE_SUBJECT_DC, "CertificateSubjectDc"),
    (
        CERTIFICATE_SUBJECT_DN_QUALIFIER,
        "CertificateSubjectDnQualifier",
    ),
    (CERTIFICATE_ISSUER_CN, "CertificateIssuerCn"),
    (CERTIFICATE_ISSUER_O, "CertificateIssuerO"),
    (CERTIFICATE_ISSUER_OU, "CertificateIssuerOu"),
    (CERTIFICATE_ISSUER_EMAIL, "CertificateIssuerEmail"),
    (CERTIFICATE_ISSUER_C, "CertificateIssuerC"),
    (CERTIFICATE_ISSUER_ST, "CertificateIssuerSt"),
    (CERTIFICATE_ISSUER_L, "CertificateIssuerL"),
    (CERTIFICATE_ISSUER_UID, "CertificateIssuerUid"),
    (
        CERTIFICATE_ISSUER_SERIAL_NUMBER,
        "CertificateIssuerSerialNumber",
    ),
    (CERTIFICATE_ISSUER_TITLE, "CertificateIssuerTitle"),
    (CERTIFICATE_ISSUER_DC, "CertificateIssuerDc"),
    (
        CERTIFICATE_ISSUER_DN_QUALIFIER,
        "CertificateIssuerDnQualifier",
    ),
    (SENSITIVE, "Sensitive"),
    (ALWAYS_SENSITIVE, "AlwaysSensitive"),
    (EXTRACTABLE, "Extractable"),
    (NEVER_EXTRACTABLE, "NeverExtractable"),
    (REPLACE_EXISTING, "ReplaceExisting"),
    (ATTRIBUTES, "Attributes"),
    (COMMON_ATTRIBUTES, "CommonAttributes"),
    (PRIVATE_KEY_ATTRIBUTES, "PrivateKeyAttributes"),
    (PUBLIC_KEY_ATTRIBUTES, "PublicKeyAttributes"),
    (EXTENSION_ENUMERATION, "ExtensionEnumeration"),
    (EXTENSION_ATTRIBUTE, "ExtensionAttribute"),
    (
        EXTENSION_PARENT_STRUCTURE_TAG,
        "ExtensionParentStructureTag",
    ),
    (EXTENSION_DESCRIPTION, "ExtensionDescription"),
    (SERVER_NAME, "ServerName"),
    (SERVER_SERIAL_NUMBER, "ServerSerialNumber"),
    (SERVER_VERSION, "ServerVersion"),
    (SERVER_LOAD, "ServerLoad"),
    (PRODUCT_NAME, "ProductName"),
    (BUILD_LEVEL, "BuildLevel"),
    (BUILD_DATE, "BuildDate"),
    (CLUSTER_INFO, "ClusterInfo"),
    (ALTERNATE_FAILOVER_ENDPOINTS, "AlternateFailoverEndpoints"),
    (SHORT_UNIQUE_IDENTIFIER, "ShortUniqueIdentifier"),
    (RESERVED, "Reserved"),
    (TAG, "Tag"),
    (
        CERTIFICATE_REQUEST_UNIQUE_IDENTIFIER,
        "CertificateRequestUniqueIdentifier",
    ),
    (NIST_KEY_TYPE, "NISTKeyType"),
    (ATTRIBUTE_REFERENCE, "AttributeReference"),
    (CURRENT_ATTRIBUTE, "CurrentAttribute"),
    (NEW_ATTRIBUTE, "NewAttribute"),
    (CERTIFICATE_REQUEST_VALUE, "CertificateRequestValue"),
    (LOG_MESSAGE, "LogMessage"),
    (PROFILE_VERSION, "ProfileVersion"),
    (PROFILE_VERSION_MAJOR, "ProfileVersionMajor"),
    (PROFILE_VERSION_MINOR, "ProfileVersionMinor"),
    (PROTECTION_LEVEL, "ProtectionLevel"),
    (PROTECTION_PERIOD, "ProtectionPeriod"),
    (QUANTUM_SAFE, "QuantumSafe"),
    (QUANTUM_SAFE_CAPABILITY, "QuantumSafeCapability"),
    (TICKET, "Ticket"),
    (TICKET_TYPE, "TicketType"),
    (TICKET_VALUE, "TicketValue"),
    (REQUEST_COUNT, "RequestCount"),
    (RIGHTS, "Rights"),
    (OBJECTS, "Objects"),
    (OPERATIONS, "Operations"),
    (RIGHT, "Right"),
    (ENDPOINT_ROLE, "EndpointRole"),
    (DEFAULTS_INFORMATION, "DefaultsInformation"),
    (OBJECT_DEFAULTS, "ObjectDefaults"),
    (EPHEMERAL, "Ephemeral"),
    (SERVER_HASHED_PASSWORD, "ServerHashedPassword"),
    (ONE_TIME_PASSWORD, "OneTimePassword"),
    (HASHED_PASSWORD, "HashedPassword"),
    (ADJUSTMENT_TYPE, "AdjustmentType"),
    (PKCS11_INTERFACE, "PKCS_11Interface"),
    (PKCS11_FUNCTION, "PKCS_11Function"),
    (PKCS11_INPUT_PARAMETERS, "PKCS_11InputParameters"),
    (PKCS11_OUTPUT_PARAMETERS, "PKCS_11OutputParameters"),
    (PKCS11_RETURN_CODE, "PKCS_11ReturnCode"),
    (PROTECTION_STORAGE_MASK, "ProtectionStorageMask"),
    (PROTECTION_STORAGE_MASKS, "ProtectionStorageMasks"),
    (INTEROP_FUNCTION, "InteropFunction"),
    (INTEROP_IDENTIFIER, "InteropIdentifier"),
    (ADJUSTMENT_VALUE, "AdjustmentValue"),
    (
        COMMON_PROTECTION_STORAGE_MASKS,
        "CommonProtectionStorageMasks",
    ),
    (
        PRIVATE_PROTECTION_STORAGE_MASKS,
        "PrivateProtectionStorageMasks",
    ),
    (
        PUBLIC_PROTECTION_STORAGE_MASKS,
        "PublicProtectionStorageMasks",
    ),
];

/// The name of `tag`, if known.
pub fn name(tag: u32) -> Option<&'static str> {
    NAMES.iter().find(|(t, _)| *t == tag).map(|(_, n)| *n)
}
