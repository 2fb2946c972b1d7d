#!/usr/bin/env python3
"""Writes binary TTLV seed inputs for the fuzz targets.

Two sources, both written as raw TTLV files named by the SHA-256 of their contents:

* built-in requests: every operation the server handles, in KMIP 1.0-1.4, 2.0 and 2.1 (and two versions it does not
  speak), single items and batches (ID Placeholder chains, Continue / Stop / Undo, Maximum Response Size, Client
  Correlation Value, the on-behalf-of extension, critical and non-critical Message Extensions, request Time Stamps,
  2.x Unique Identifier enumerations), plus one item of every TTLV type;
* optionally (--oasis DIR) every Request Message of the OASIS KMIP XML test cases under DIR, converted to binary
  TTLV here (tag numbers come from crates/kmip/src/tags.rs; a message with an enumeration name this script does not
  know is skipped rather than guessed).

The XML files themselves are never copied: only the TTLV this script encodes is written.

    python3 fuzz/make_corpus.py fuzz/seeds [--oasis /work/shared/vectors/oasis-kmip-xml]

The minimised corpus under fuzz/corpus/ is made from these seeds with `cargo fuzz cmin` (see fuzz/README.md).
"""

import argparse
import datetime
import hashlib
import pathlib
import re
import struct
import sys
import xml.etree.ElementTree as ET

ROOT = pathlib.Path(__file__).resolve().parent.parent

# --- TTLV encoding -------------------------------------------------------------------------------------------------

STRUCTURE, INTEGER, LONG_INTEGER, BIG_INTEGER, ENUMERATION, BOOLEAN = 1, 2, 3, 4, 5, 6
TEXT_STRING, BYTE_STRING, DATE_TIME, INTERVAL, DATE_TIME_EXTENDED = 7, 8, 9, 0x0A, 0x0B


def pad(b):
    return b + b"\0" * (-len(b) % 8)


def item(tag, ty, value):
    """Encodes one item; value is a list of encoded children for a structure."""
    if ty == STRUCTURE:
        raw = b"".join(value)
    elif ty in (INTEGER,):
        raw = struct.pack(">i", value)
    elif ty in (ENUMERATION, INTERVAL):
        raw = struct.pack(">I", value & 0xFFFFFFFF)
    elif ty in (LONG_INTEGER, DATE_TIME, DATE_TIME_EXTENDED):
        raw = struct.pack(">q", value)
    elif ty == BOOLEAN:
        raw = struct.pack(">Q", 1 if value else 0)
    elif ty == BIG_INTEGER:
        raw = bytes(value) or b"\0"
        fill = b"\xff" if raw[0] & 0x80 else b"\0"
        raw = fill * (-len(raw) % 8) + raw
    elif ty == TEXT_STRING:
        raw = value.encode()
    elif ty == BYTE_STRING:
        raw = bytes(value)
    else:
        raise ValueError(ty)
    return tag.to_bytes(3, "big") + bytes([ty]) + struct.pack(">I", len(raw)) + pad(raw)


# --- Tags, read from the crate so the two never disagree ------------------------------------------------------------


def load_tags():
    src = (ROOT / "crates/kmip/src/tags.rs").read_text()
    consts = {m[1]: int(m[2], 16) for m in re.finditer(r"pub const (\w+): u32 = (0x[0-9A-Fa-f]+);", src)}
    names = {}
    for m in re.finditer(r'\(\s*(\w+),\s*"(\w+)",?\s*\)', src):
        if m[1] in consts:
            names[m[2].lower()] = consts[m[1]]
    return consts, names


CONST, BY_NAME = load_tags()
T = type("Tags", (), CONST)  # T.REQUEST_MESSAGE etc.
ON_BEHALF_OF = 0x540001


def s(tag, *children):
    return item(tag, STRUCTURE, list(children))


def i32(tag, v):
    return item(tag, INTEGER, v)


def enum(tag, v):
    return item(tag, ENUMERATION, v)


def text(tag, v):
    return item(tag, TEXT_STRING, v)


def byts(tag, v):
    return item(tag, BYTE_STRING, v)


# --- Built-in requests -----------------------------------------------------------------------------------------------

OP = dict(CREATE=0x01, REGISTER=0x03, LOCATE=0x08, GET=0x0A, GET_ATTRIBUTES=0x0B, GET_ATTRIBUTE_LIST=0x0C,
          ACTIVATE=0x12, REVOKE=0x13, DESTROY=0x14, QUERY=0x18, DISCOVER_VERSIONS=0x1E, ENCRYPT=0x1F,
          DECRYPT=0x20, MAC=0x23, RNG_RETRIEVE=0x25, SET_ATTRIBUTE=0x31)
VERSIONS = [(1, 0), (1, 1), (1, 2), (1, 3), (1, 4), (2, 0), (2, 1)]


def version(v):
    return s(T.PROTOCOL_VERSION, i32(T.PROTOCOL_VERSION_MAJOR, v[0]), i32(T.PROTOCOL_VERSION_MINOR, v[1]))


def request(v, items, continuation=None, correlation=None, max_size=None, on_behalf_of=None, batch_ids=True,
            time_stamp=None, extension=None):
    header = [version(v)]
    if time_stamp is not None:
        header.append(item(T.TIME_STAMP, DATE_TIME, time_stamp))
    if max_size is not None:
        header.append(i32(T.MAXIMUM_RESPONSE_SIZE, max_size))
    if correlation is not None:
        header.append(text(T.CLIENT_CORRELATION_VALUE, correlation))
    if continuation is not None:
        header.append(enum(T.BATCH_ERROR_CONTINUATION_OPTION, continuation))
    if on_behalf_of is not None:
        header.append(text(ON_BEHALF_OF, on_behalf_of))
    header.append(i32(T.BATCH_COUNT, len(items)))
    batch = []
    for n, (op, payload) in enumerate(items):
        children = [enum(T.OPERATION, op)]
        if batch_ids:
            children.append(byts(T.UNIQUE_BATCH_ITEM_ID, bytes([n + 1])))
        if extension is not None:
            children.append(extension)
        children.append(s(T.REQUEST_PAYLOAD, *payload))
        batch.append(s(T.BATCH_ITEM, *children))
    return s(T.REQUEST_MESSAGE, s(T.REQUEST_HEADER, *header), *batch)


def attrs(v, *pairs):
    """Attributes in v's encoding; pairs are (1.x name, 2.x tag, encoder(tag) -> item)."""
    if v[0] >= 2:
        return [s(T.ATTRIBUTES, *(make(tag) for _, tag, make in pairs))]
    return [s(T.TEMPLATE_ATTRIBUTE, *(s(T.ATTRIBUTE, text(T.ATTRIBUTE_NAME, name), make(T.ATTRIBUTE_VALUE))
                                      for name, _, make in pairs))]


def aes_attrs(v, name="key-1"):
    return attrs(
        v,
        ("Cryptographic Algorithm", T.CRYPTOGRAPHIC_ALGORITHM, lambda t: enum(t, 3)),
        ("Cryptographic Length", T.CRYPTOGRAPHIC_LENGTH, lambda t: i32(t, 256)),
        ("Cryptographic Usage Mask", T.CRYPTOGRAPHIC_USAGE_MASK, lambda t: i32(t, 0x0C)),
        ("Name", T.NAME, lambda t: s(t, text(T.NAME_VALUE, name), enum(T.NAME_TYPE, 1))),
    )


def uid(u=None):
    return [] if u is None else [text(T.UNIQUE_IDENTIFIER, u)]


def crypto_params(mode=9, padding=None, random_iv=None, tag_len=None):
    c = [enum(T.BLOCK_CIPHER_MODE, mode)]
    if padding is not None:
        c.append(enum(T.PADDING_METHOD, padding))
    c.append(enum(T.CRYPTOGRAPHIC_ALGORITHM, 3))
    if random_iv is not None:
        c.append(item(T.RANDOM_IV, BOOLEAN, random_iv))
    if tag_len is not None:
        c.append(i32(T.TAG_LENGTH, tag_len))
    return s(T.CRYPTOGRAPHIC_PARAMETERS, *c)


def builtin():
    out = []
    for v in VERSIONS:
        create = (OP["CREATE"], [enum(T.OBJECT_TYPE, 2), *aes_attrs(v)])
        key = s(T.SYMMETRIC_KEY, s(T.KEY_BLOCK, enum(T.KEY_FORMAT_TYPE, 1),
                                   s(T.KEY_VALUE, byts(T.KEY_MATERIAL, bytes(range(32)))),
                                   enum(T.CRYPTOGRAPHIC_ALGORITHM, 3), i32(T.CRYPTOGRAPHIC_LENGTH, 256)))
        register = (OP["REGISTER"], [enum(T.OBJECT_TYPE, 2), *aes_attrs(v, "imported"), key])
        names = ([item(T.ATTRIBUTE_REFERENCE, ENUMERATION, T.CRYPTOGRAPHIC_ALGORITHM)] if v[0] >= 2
                 else [text(T.ATTRIBUTE_NAME, "Cryptographic Algorithm"), text(T.ATTRIBUTE_NAME, "Name")])
        aead = v >= (1, 4)
        encrypt = [*uid(), crypto_params(9, tag_len=16 if aead else None), byts(T.DATA, b"hello fuzzer")]
        if aead:
            encrypt.append(byts(T.AUTHENTICATED_ENCRYPTION_ADDITIONAL_DATA, b"aad"))
        decrypt = [*uid(), crypto_params(9), byts(T.DATA, b"\x01" * 12), byts(T.IV_COUNTER_NONCE, b"\x02" * 12)]
        if aead:
            decrypt.append(byts(T.AUTHENTICATED_ENCRYPTION_TAG, b"\x03" * 16))
        locate_attrs = (attrs(v, ("Name", T.NAME, lambda t: s(t, text(T.NAME_VALUE, "key-1"), enum(T.NAME_TYPE, 1))))
                        if v[0] >= 2 else
                        [s(T.ATTRIBUTE, text(T.ATTRIBUTE_NAME, "Object Type"), enum(T.ATTRIBUTE_VALUE, 2))])
        locate = [i32(T.MAXIMUM_ITEMS, 10), *([i32(T.OFFSET_ITEMS, 0)] if v >= (1, 3) else []), *locate_attrs]
        revoke = [*uid(), s(T.REVOCATION_REASON, enum(T.REVOCATION_REASON_CODE, 2),
                            text(T.REVOCATION_MESSAGE, "lost")),
                  item(T.COMPROMISE_OCCURRENCE_DATE, DATE_TIME, 1_700_000_000)]
        # One message per operation.
        for op, payload in [
            create, register,
            (OP["GET"], uid("obj-0")),
            (OP["GET"], [*uid("obj-0"), enum(T.KEY_FORMAT_TYPE, 7)]),
            (OP["GET_ATTRIBUTES"], [*uid("obj-0"), *names]),
            (OP["GET_ATTRIBUTE_LIST"], uid("obj-0")),
            (OP["ACTIVATE"], uid("obj-0")),
            (OP["REVOKE"], [*uid("obj-0"), *revoke]),
            (OP["DESTROY"], uid("obj-0")),
            (OP["LOCATE"], locate),
            (OP["QUERY"], [enum(T.QUERY_FUNCTION, q) for q in (1, 2, 3)]),
            (OP["DISCOVER_VERSIONS"], [version(x) for x in ((2, 0), (1, 4), (1, 0))]),
            (OP["DISCOVER_VERSIONS"], []),
            (OP["RNG_RETRIEVE"], [i32(T.DATA_LENGTH, 32)]),
            (OP["ENCRYPT"], [*uid("obj-0"), *encrypt]),
            (OP["MAC"], [*uid("obj-0"), byts(T.DATA, b"mac me")]),
        ]:
            out.append(request(v, [(op, payload)]))
        # A whole key life in one batch, linked by the ID Placeholder.
        life = [create, (OP["ACTIVATE"], []), (OP["ENCRYPT"], encrypt), (OP["DECRYPT"], decrypt),
                (OP["GET_ATTRIBUTES"], names), (OP["LOCATE"], locate), (OP["REVOKE"], revoke),
                (OP["DESTROY"], []), (OP["GET"], [])]
        out.append(request(v, life, continuation=1, correlation="corr-1" if v >= (1, 4) else None))
        out.append(request(v, life, continuation=2))
        out.append(request(v, [register, (OP["ACTIVATE"], []), (OP["ENCRYPT"], encrypt)], max_size=400))
        out.append(request(v, [create, (OP["GET"], [])], continuation=3))
        out.append(request(v, [create, create], continuation=3, on_behalf_of="tenant-a/service-b"))
        out.append(request(v, [(OP["QUERY"], [enum(T.QUERY_FUNCTION, 1)])], batch_ids=False, max_size=-1))
        # Message Extensions (critical: the item is refused; not critical: ignored), a request Time Stamp in the
        # past, far ahead and at the ends of the Date-Time range (the server accepts at most 300 s ahead).
        for critical in (True, False):
            ext = s(T.MESSAGE_EXTENSION, text(T.VENDOR_IDENTIFICATION, "acme"),
                    item(T.CRITICALITY_INDICATOR, BOOLEAN, critical), s(T.VENDOR_EXTENSION))
            out.append(request(v, [create, (OP["GET"], [])], continuation=1, extension=ext))
        for stamp in (1_700_000_000, 4_000_000_000, -(2 ** 63), 2 ** 63 - 1):
            out.append(request(v, [create, (OP["GET"], [])], time_stamp=stamp,
                               correlation="corr-2" if v >= (1, 3) else None))
        # 2.x: a Unique Identifier enumeration naming an earlier item (Create, Register, Locate), the ID Placeholder
        # enumeration, an undefined one, and the Integer form the server refuses.
        if v[0] >= 2:
            for ref in (0x01, 0x03, 0x0B, 0x0C, 0x11, 0x7F):
                out.append(request(v, [create, (OP["ACTIVATE"], [enum(T.UNIQUE_IDENTIFIER, ref)]),
                                       (OP["GET"], [enum(T.UNIQUE_IDENTIFIER, ref)])], continuation=1))
            out.append(request(v, [register, (OP["LOCATE"], locate), (OP["GET"], [enum(T.UNIQUE_IDENTIFIER, 0x0B)]),
                                   (OP["DESTROY"], [enum(T.UNIQUE_IDENTIFIER, 0x0C)])], continuation=2))
            out.append(request(v, [(OP["GET"], [i32(T.UNIQUE_IDENTIFIER, 1)])]))
    # Versions the server does not speak: only Discover Versions is answered.
    for v in [(3, 0), (0, 9)]:
        out.append(request(v, [(OP["DISCOVER_VERSIONS"], []), (OP["CREATE"], [enum(T.OBJECT_TYPE, 2)])],
                           continuation=1))
    # One item of every TTLV type, in a structure the KMIP parser rejects (for the codec target).
    out.append(s(0x420000, i32(0x420001, -1), item(0x420002, LONG_INTEGER, -(2 ** 40)),
                 item(0x420003, BIG_INTEGER, b"\x80" + b"\x01" * 8), enum(0x420004, 0xFFFFFFFF),
                 item(0x420005, BOOLEAN, True), text(0x420006, "text"), byts(0x420007, b"\xff\x00"),
                 item(0x420008, DATE_TIME, 0), item(0x420009, INTERVAL, 86400),
                 item(0x42000A, DATE_TIME_EXTENDED, 1_700_000_000_000_000), s(0x42000B)))
    return out


# --- OASIS XML test cases --------------------------------------------------------------------------------------------


def norm(name):
    return re.sub(r"[^0-9a-z]", "", name.lower())


OPERATIONS = ["Create", "Create Key Pair", "Register", "Re-key", "Derive Key", "Certify", "Re-certify", "Locate",
              "Check", "Get", "Get Attributes", "Get Attribute List", "Add Attribute", "Modify Attribute",
              "Delete Attribute", "Obtain Lease", "Get Usage Allocation", "Activate", "Revoke", "Destroy", "Archive",
              "Recover", "Validate", "Query", "Cancel", "Poll", "Notify", "Put", "Re-key Key Pair",
              "Discover Versions", "Encrypt", "Decrypt", "Sign", "Signature Verify", "MAC", "MAC Verify",
              "RNG Retrieve", "RNG Seed", "Hash", "Create Split Key", "Join Split Key", "Import", "Export"]


def table(**kw):
    return {norm(k): v for k, v in kw.items()}


# Enumeration values from the KMIP 1.4 specification, section 9.1.3.2, for the enumerations the test cases use.
ENUMS = {
    "operation": {norm(n): i + 1 for i, n in enumerate(OPERATIONS)},
    "objecttype": table(Certificate=1, SymmetricKey=2, PublicKey=3, PrivateKey=4, SplitKey=5, Template=6,
                        SecretData=7, OpaqueObject=8, PGPKey=9),
    "cryptographicalgorithm": table(DES=1, DES3=2, AES=3, RSA=4, DSA=5, ECDSA=6, HMAC_SHA1=7, HMAC_SHA224=8,
                                    HMAC_SHA256=9, HMAC_SHA384=10, HMAC_SHA512=11, HMAC_MD5=12, DH=13, ECDH=14,
                                    ECMQV=15, Blowfish=16, Camellia=17, CAST5=18, IDEA=19, MARS=20, RC2=21, RC4=22,
                                    RC5=23, SKIPJACK=24, Twofish=25, EC=26),
    "blockciphermode": table(CBC=1, ECB=2, PCBC=3, CFB=4, OFB=5, CTR=6, CMAC=7, CCM=8, GCM=9, CBC_MAC=10, XTS=11,
                             AESKeyWrapPadding=12, NISTKeyWrap=13),
    "paddingmethod": table(**{"None": 1}, OAEP=2, PKCS5=3, SSL3=4, Zeros=5, ANSI_X9_23=6, ISO_10126=7,
                           PKCS1_v1_5=8, X9_31=9, PSS=10),
    "hashingalgorithm": table(MD2=1, MD4=2, MD5=3, SHA_1=4, SHA_224=5, SHA_256=6, SHA_384=7, SHA_512=8,
                              RIPEMD_160=9, Tiger=10, Whirlpool=11, SHA_512_224=12, SHA_512_256=13),
    "keyformattype": table(Raw=1, Opaque=2, PKCS_1=3, PKCS_8=4, X_509=5, ECPrivateKey=6,
                           TransparentSymmetricKey=7),
    "nametype": table(UninterpretedTextString=1, URI=2),
    "revocationreasoncode": table(Unspecified=1, KeyCompromise=2, CACompromise=3, AffiliationChanged=4,
                                  Superseded=5, CessationOfOperation=6, PrivilegeWithdrawn=7),
    "queryfunction": table(QueryOperations=1, QueryObjects=2, QueryServerInformation=3,
                           QueryApplicationNamespaces=4, QueryExtensionList=5, QueryExtensionMap=6,
                           QueryAttestationTypes=7, QueryRNGs=8, QueryValidations=9, QueryProfiles=10,
                           QueryCapabilities=11, QueryClientRegistrationMethods=12),
    "linktype": table(CertificateLink=0x101, PublicKeyLink=0x102, PrivateKeyLink=0x103,
                      DerivationBaseObjectLink=0x104, DerivedKeyLink=0x105, ReplacementObjectLink=0x106,
                      ReplacedObjectLink=0x107, ParentLink=0x108, ChildLink=0x109, PreviousLink=0x10A,
                      NextLink=0x10B),
    "state": table(PreActive=1, Active=2, Deactivated=3, Compromised=4, Destroyed=5, DestroyedCompromised=6),
    "credentialtype": table(UsernameAndPassword=1, Device=2, Attestation=3),
    "batcherrorcontinuationoption": table(Continue=1, Stop=2, Undo=3),
    "certificatetype": table(X_509=1, PGP=2),
}
USAGE_MASK = table(Sign=1, Verify=2, Encrypt=4, Decrypt=8, WrapKey=0x10, UnwrapKey=0x20, Export=0x40,
                   MACGenerate=0x80, MACVerify=0x100, DeriveKey=0x200, ContentCommitment=0x400,
                   KeyAgreement=0x800, CertificateSign=0x1000, CRLSign=0x2000, GenerateCryptogram=0x4000,
                   ValidateCryptogram=0x8000, TranslateEncrypt=0x10000, TranslateDecrypt=0x20000,
                   TranslateWrap=0x40000, TranslateUnwrap=0x80000)
NOW = 1_700_000_000


class Skip(Exception):
    pass


def placeholder(value, n=16):
    return hashlib.sha256(value.encode()).digest()[:n]


def convert(el, attribute_name=None):
    """One XML element to TTLV; attribute_name is the sibling Attribute Name, for Attribute Values."""
    tag_attr = el.get("tag")
    if tag_attr:
        tag = int(tag_attr, 16)
    else:
        tag = BY_NAME.get(el.tag.lower())
        if tag is None:
            raise Skip(f"unknown tag {el.tag}")
    ty = el.get("type", "Structure")
    value = el.get("value", "")
    enum_name = norm(attribute_name) if attribute_name and el.tag == "AttributeValue" else norm(el.tag)
    if ty == "Structure":
        name = None
        children = []
        for c in el:
            if c.tag == "AttributeName":
                name = c.get("value")
            children.append(convert(c, name))
        return s(tag, *children)
    if ty in ("Integer", "Interval", "LongInteger"):
        if re.fullmatch(r"-?\d+", value):
            v = int(value)
        elif value.lower().startswith("0x"):
            v = int(value, 16)
        else:
            try:
                v = sum(USAGE_MASK[norm(w)] for w in value.split())
            except KeyError:
                raise Skip(f"unknown mask {value}") from None
        return item(tag, {"Integer": INTEGER, "Interval": INTERVAL, "LongInteger": LONG_INTEGER}[ty], v)
    if ty == "Enumeration":
        if value.lower().startswith("0x"):
            return enum(tag, int(value, 16))
        known = ENUMS.get(enum_name, {})
        if norm(value) not in known:
            raise Skip(f"unknown {el.tag} enumeration {value}")
        return enum(tag, known[norm(value)])
    if ty == "Boolean":
        return item(tag, BOOLEAN, value.lower() in ("true", "1"))
    if ty == "TextString":
        return text(tag, value)
    if ty in ("ByteString", "BigInteger"):
        raw = placeholder(value) if value.startswith("$") else bytes.fromhex(value)
        if ty == "BigInteger" and not raw:
            raw = b"\0"
        return item(tag, BYTE_STRING if ty == "ByteString" else BIG_INTEGER, raw)
    if ty in ("DateTime", "DateTimeExtended"):
        m = re.fullmatch(r"\$NOW([+-]\d+)?", value)
        if m:
            v = NOW + int(m[1] or 0)
        else:
            v = int(datetime.datetime.fromisoformat(value).timestamp())
        if ty == "DateTimeExtended":
            return item(tag, DATE_TIME_EXTENDED, v * 1_000_000)
        return item(tag, DATE_TIME, v)
    raise Skip(f"unknown type {ty}")


def oasis(directory):
    out, skipped = [], {}
    for path in sorted(pathlib.Path(directory).rglob("*.xml")):
        try:
            root = ET.parse(path).getroot()
        except ET.ParseError:
            skipped["XML parse error"] = skipped.get("XML parse error", 0) + 1
            continue
        for message in root.iter("RequestMessage"):
            try:
                out.append(convert(message))
            except Skip as e:
                skipped[str(e)] = skipped.get(str(e), 0) + 1
    return out, skipped


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out", type=pathlib.Path, help="folder to write the seeds to")
    p.add_argument("--oasis", type=pathlib.Path, help="folder of OASIS KMIP XML test cases to convert")
    args = p.parse_args()
    seeds = builtin()
    n_builtin = len(seeds)
    skipped = {}
    if args.oasis:
        converted, skipped = oasis(args.oasis)
        seeds += converted
    args.out.mkdir(parents=True, exist_ok=True)
    unique = {hashlib.sha256(b).hexdigest(): b for b in seeds}
    for name, b in unique.items():
        (args.out / name).write_bytes(b)
    print(f"{n_builtin} built-in seeds, {len(seeds) - n_builtin} converted from OASIS XML, "
          f"{len(unique)} distinct written to {args.out}; {sum(skipped.values())} XML requests skipped",
          file=sys.stderr)
    for reason, n in sorted(skipped.items(), key=lambda kv: -kv[1])[:10]:
        print(f"  skipped {n}: {reason}", file=sys.stderr)


if __name__ == "__main__":
    main()
