#!/usr/bin/env python3
"""Generates crates/kmip/src/enum_names.rs: the enumeration and mask value names of KMIP 1.0-2.1, keyed by the tag
that carries them, in the spelling of the KMIP XML/JSON encodings (spaces removed, '-' and '.' turned into '_').

The numbers come from PyKMIP's enums module (the protocol facts it records); the spellings are derived from its
member names. Run: python3 scripts/gen/kmip_enum_names.py <path to kmip/core/enums.py> > crates/kmip/src/enum_names.rs
"""
import importlib.util, sys, enum

spec = importlib.util.spec_from_file_location("enums", sys.argv[1])
E = importlib.util.module_from_spec(spec)
spec.loader.exec_module(E)

SKIP = {"OrderedEnum", "Tags", "Types", "ItemType", "KMIPVersion", "ConformanceClause", "Policy", "Data"}
# Classes whose values are bit masks carried in an Integer.
MASKS = {"CryptographicUsageMask", "StorageStatusMask", "ProtectionStorageMask"}
# Extra tags carrying the values of a class besides the tag of the same name.
EXTRA_TAGS = {
    "HashingAlgorithm": ["MaskGeneratorHashingAlgorithm", "PSourceHashingAlgorithm"],
    "CryptographicAlgorithm": [],
    "RevocationReasonCode": [],
    "ProtectionStorageMask": ["ProtectionStorageMasks", "CommonProtectionStorageMasks",
                              "PrivateProtectionStorageMasks", "PublicProtectionStorageMasks"],
}
ACRONYMS = {
    "AES", "DES", "RSA", "DSA", "DH", "ECDH", "ECMQV", "ECDSA", "EC", "HMAC", "SHA1", "SHA224", "SHA256",
    "SHA384", "SHA512", "MD2", "MD4", "MD5", "SHA", "CBC", "ECB", "PCBC", "CFB", "OFB", "CTR", "CMAC", "CCM",
    "GCM", "XTS", "AEAD", "OAEP", "PKCS5", "PKCS1", "PSS", "ANSI", "X9", "PKCS", "X", "PGP", "ID", "URI",
    "RNG", "DRBG", "NIST", "FIPS186", "MAC", "CRL", "IDEA", "CAST5", "RC2", "RC4", "RC5", "ARIA", "SEED",
    "CRYSTALS", "TLS", "SSL", "SSH", "HOTP", "TOTP", "KMIP", "CV", "PKCS11", "CHACHA20", "POLY1305",
    "TDEA", "SKIPJACK", "TWOFISH", "BLOWFISH", "CMS", "SM2", "SM3", "SM4", "GOSTR3410", "GOST28147",
    "SHA3", "ED25519", "ED448", "P", "K", "B", "SECP", "SECT", "ANSIX9", "BRAINPOOL", "NISTKW", "KDF",
    "HKDF", "PBKDF2", "DSS", "DSAWITH", "UUID", "KEK", "DEK", "HSM", "TPM", "SAML", "CA", "IV",
    "ECPRIVATEKEY", "PKCS8", "PKCS10", "PKCS12", "PKCS7", "CRT", "DER", "PEM", "BASE64", "ASN1", "GF2",
    "SUITEB", "V1", "V2", "V3", "TLS1", "TDES", "HTTPS", "JSON", "XML", "HQC", "SPHINCS", "ML", "KEM", "SLH",
}
# Spellings the derivation cannot produce (checked against the OASIS XML test cases).
EXCEPTIONS = {
    ("CryptographicAlgorithm", "TRIPLE_DES"): "DES3",
    ("DigitalSignatureAlgorithm", "SHA1_WITH_RSA_ENCRYPTION"): "SHA_1WithRSAEncryption",
    ("DigitalSignatureAlgorithm", "SHA224_WITH_RSA_ENCRYPTION"): "SHA_224WithRSAEncryption",
    ("DigitalSignatureAlgorithm", "SHA256_WITH_RSA_ENCRYPTION"): "SHA_256WithRSAEncryption",
    ("DigitalSignatureAlgorithm", "SHA384_WITH_RSA_ENCRYPTION"): "SHA_384WithRSAEncryption",
    ("DigitalSignatureAlgorithm", "SHA512_WITH_RSA_ENCRYPTION"): "SHA_512WithRSAEncryption",
    ("RNGAlgorithm", "ANSI_X931"): "ANSIX9_31",
    ("RNGAlgorithm", "ANSI_X9_31"): "ANSIX9_31",
    ("SplitKeyMethod", "POLYNOMIAL_SHARING_GF_2_8"): "PolynomialSharingGF2_8",
    ("SplitKeyMethod", "POLYNOMIAL_SHARING_GF_2_16"): "PolynomialSharingGF2_16",
    ("SplitKeyMethod", "POLYNOMIAL_SHARING_PRIME_FIELD"): "PolynomialSharingPrimeField",
    ("KeyFormatType", "EC_PRIVATE_KEY"): "ECPrivateKey",
    ("KeyFormatType", "TRANSPARENT_EC_PRIVATE_KEY"): "TransparentECPrivateKey",
    ("KeyFormatType", "TRANSPARENT_EC_PUBLIC_KEY"): "TransparentECPublicKey",
    ("LinkType", "PKCS12_CERTIFICATE_LINK"): "PKCS_12CertificateLink",
    ("LinkType", "PKCS12_PASSWORD_LINK"): "PKCS_12PasswordLink",
    ("ObjectType", "PGP_KEY"): "PGPKey",
    ("BlockCipherMode", "NIST_KEY_WRAP"): "NISTKeyWrap",
    ("BlockCipherMode", "AES_KEY_WRAP_PADDING"): "AESKeyWrapPadding",
    ("BlockCipherMode", "X9_102_AESKW"): "X9_102AESKW",
    ("BlockCipherMode", "X9_102_TDKW"): "X9_102TDKW",
    ("BlockCipherMode", "X9_102_AKW1"): "X9_102AKW1",
    ("BlockCipherMode", "X9_102_AKW2"): "X9_102AKW2",
    ("MaskGenerator", "MFG1"): "MGF1",
    ("MaskGenerator", "MGF1"): "MGF1",
    ("CredentialType", "USERNAME_AND_PASSWORD"): "UsernameAndPassword",
    ("ObjectType", "OPAQUE_DATA"): "OpaqueObject",
}

# Values KMIP 2.0/2.1 define that PyKMIP's module does not record (protocol numbers from the KMIP 2.1 specification).
ADDED = {
    "Operation": [("SET_DEFAULTS", 0x36), ("SET_CONSTRAINTS", 0x37), ("GET_CONSTRAINTS", 0x38),
                  ("QUERY_ASYNCHRONOUS_REQUESTS", 0x39), ("PROCESS", 0x3A), ("PING", 0x3B)],
    "ResultReason": [("PRIVATE_PROTECTION_STORAGE_UNAVAILABLE", 0x48),
                     ("PUBLIC_PROTECTION_STORAGE_UNAVAILABLE", 0x49), ("UNKNOWN_OBJECT_GROUP", 0x4A),
                     ("CONSTRAINT_VIOLATION", 0x4B), ("DUPLICATE_PROCESS_REQUEST", 0x4C)],
}

def word(w):
    if w.isdigit():
        return w
    if w in ACRONYMS or any(c.isdigit() for c in w) and w.upper() == w and len(w) <= 8:
        return w
    return w.capitalize()

def spell(cls, member):
    if (cls, member) in EXCEPTIONS:
        return EXCEPTIONS[(cls, member)]
    parts = member.split("_")
    out = ""
    prev = None
    for p in parts:
        w = word(p)
        # '-' in the specification name (SHA-256, PKCS#1 -> PKCS_1, X.509 -> X_509): keep an underscore between
        # an acronym and a number or between two acronyms.
        if prev is not None and (p.isdigit() or (prev == prev.upper() and w == w.upper() and not prev.isdigit())):
            out += "_"
        out += w
        prev = w
    return out

print("//! Names of KMIP enumeration and mask values per tag, as the XML and JSON encodings spell them.")
print("//! Generated by scripts/gen/kmip_enum_names.py from protocol numbers; do not edit by hand.")
print()
print("#![allow(missing_docs)]")
print()
enum_rows, mask_rows = [], []
tag_names = {m.name: m.value for m in E.Tags}
def tagconst(camel):
    import re
    s = re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", camel).upper()
    return s
for name in dir(E):
    cls = getattr(E, name)
    if not isinstance(cls, type) or not issubclass(cls, enum.Enum) or name in SKIP:
        continue
    members = [(m.name, m.value) for m in cls if isinstance(m.value, int)]
    known = {v for _, v in members}
    members += [(n, v) for n, v in ADDED.get(name, []) if v not in known]
    if not members:
        continue
    const = "V_" + tagconst(name)
    rows = ",\n".join(f'    (0x{v:08X}, "{spell(name, n)}")' for n, v in members)
    print(f"pub const {const}: &[(u32, &str)] = &[\n{rows},\n];")
    tag_of_class = {"PKCS11Function": "PKCS_11Function", "PKCS11ReturnCode": "PKCS_11ReturnCode"}.get(name, name)
    for t in [tag_of_class] + EXTRA_TAGS.get(name, []):
        tc = tagconst(t)
        if tc in tag_names or t != name or name in ("PKCS11Function", "PKCS11ReturnCode"):
            (mask_rows if name in MASKS else enum_rows).append((t, const))
print()
print("/// (tag name, values) for every tag whose Enumeration values have names.")
print("pub const ENUMS: &[(&str, &[(u32, &str)])] = &[")
for t, c in enum_rows:
    print(f'    ("{t}", {c}),')
print("];")
print()
print("/// (tag name, bits) for every tag whose Integer value is a mask with named bits.")
print("pub const MASKS: &[(&str, &[(u32, &str)])] = &[")
for t, c in mask_rows:
    print(f'    ("{t}", {c}),')
print("];")
