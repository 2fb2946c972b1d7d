"""Drive a running OpenKCM edge with PyKMIP's unmodified ProxyKmipClient, in one KMIP version.

Usage: client_lifecycle.py HOST PORT CA CERT KEY KMIP_VERSION(1.0|1.1|1.2|1.3|1.4|2.0)

Runs every operation an application uses: Create, Register (Symmetric Key, Secret Data, Opaque Object), Get,
Get Attributes, Get Attribute List, Locate (by Name and by a custom x- attribute), Activate, Encrypt, Decrypt, MAC,
Re-key, Revoke and Destroy. Encrypt, Decrypt and MAC exist from KMIP 1.2 on: in 1.0 and 1.1 the check is that the
server refuses them with Operation Not Supported.

Each operation is one check. A failed check does not stop the others (so one run shows every operation's result);
it prints one line per check:
    RESULT <version> <operation> PASS <what was verified>
    RESULT <version> <operation> FAIL <the server's result reason and message, or the failed assertion>
then "PYKMIP LIFECYCLE OK" only if every check passed, and exits non-zero otherwise.

PyKMIP 0.11 quirks worked around here (each is a client limitation, not server behaviour):
  * it cannot decode the Revocation Reason and Link attributes (its attribute value factory raises
    NotImplementedError while reading the response), so a Get Attributes without names fails on every revoked key
    and on both keys of a Re-key (they carry Replaced/Replacement Object Links). Attributes are therefore always
    asked for by name, and Re-key's links are checked through Get Attribute List (names only, not their targets);
  * in KMIP 2.0 it cannot encode a custom attribute: Create, Locate and Get Attributes turn attribute names into 2.0
    tags through enums.convert_attribute_name_to_tag, which raises ValueError ("Unrecognized attribute name:
    'x-…'") for any "x-" name. The 2.0 Create and Locate with a custom attribute are therefore encoded here
    (an Attributes structure holding the vendor Attribute {Vendor Identification "x", Attribute Name, Attribute
    Value}, KMIP 2.0's form of a custom attribute, as this server also answers it) and sent over the same client
    connection with KMIPProxy.send_request_payload; PyKMIP decodes the responses;
  * in KMIP 2.0 it cannot decode a vendor attribute in a Get Attributes response either (ValueError "Unrecognized
    attribute type: Tags.ATTRIBUTE", also for a Get Attributes without names on a key that has one), so in 2.0 the
    stored value is checked by Locate alone (the value finds the key, another value does not) and the name by Get
    Attribute List, whose 2.0 vendor Attribute References PyKMIP does decode.
"""
import hashlib
import hmac
import os
import sys

from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from kmip import enums
from kmip.core import exceptions as core_exceptions
from kmip.core import objects as cobjects
from kmip.core import primitives, utils
from kmip.core.factories import attributes
from kmip.core.messages import payloads
from kmip.pie import objects as pobjects
from kmip.pie.client import ProxyKmipClient
from kmip.pie.exceptions import KmipOperationFailure

VERSIONS = {
    "1.0": enums.KMIPVersion.KMIP_1_0,
    "1.1": enums.KMIPVersion.KMIP_1_1,
    "1.2": enums.KMIPVersion.KMIP_1_2,
    "1.3": enums.KMIPVersion.KMIP_1_3,
    "1.4": enums.KMIPVersion.KMIP_1_4,
    "2.0": enums.KMIPVersion.KMIP_2_0,
}

# Failures PyKMIP raises for a refused operation: the Pie client's, and the lower-level proxy's.
REFUSALS = (KmipOperationFailure, core_exceptions.OperationFailure)

CBC = {
    "block_cipher_mode": enums.BlockCipherMode.CBC,
    "padding_method": enums.PaddingMethod.PKCS5,
    "cryptographic_algorithm": enums.CryptographicAlgorithm.AES,
}
PLAINTEXT = b"PyKMIP says hello to OpenKCM over mTLS"


class Blocked(Exception):
    """A check could not run because an earlier one it depends on failed."""


def reason_of(e):
    return "%s: %s" % (getattr(e.reason, "name", e.reason), getattr(e, "message", None) or str(e))


class Run:
    def __init__(self, version, client):
        self.version = version
        self.kmip_version = VERSIONS[version]
        self.client = client
        self.results = []
        self.factory = attributes.AttributeFactory()

    def at_least(self, version):
        return self.kmip_version >= VERSIONS[version]

    def check(self, operation, fn):
        """Runs one check; records PASS with its summary or FAIL with the server's reason, and goes on."""
        try:
            detail = fn()
        except Blocked as e:
            self.record(operation, False, "not run: %s" % e)
        except REFUSALS as e:
            self.record(operation, False, "server refused: " + reason_of(e))
        except Exception as e:  # an assertion, or a client-side failure: the check failed, say how
            self.record(operation, False, "%s: %s" % (type(e).__name__, e))
        else:
            self.record(operation, True, detail or "ok")

    def record(self, operation, passed, detail):
        self.results.append((operation, passed))
        line = "RESULT %s %s %s %s" % (self.version, operation, "PASS" if passed else "FAIL", detail)
        print(line.replace("\n", " "), flush=True)

    def refused_with(self, fn, reason):
        """Calls fn, which must be refused with `reason`; returns the server's message."""
        try:
            fn()
        except REFUSALS as e:
            assert e.reason == reason, "expected %s, got %s" % (reason.name, reason_of(e))
            return "refused as expected, %s" % reason_of(e)
        raise AssertionError("expected a refusal with %s, but the operation succeeded" % reason.name)

    def attrs(self, uid, names):
        _, got = self.client.get_attributes(uid, names)
        return {a.attribute_name.value: a.attribute_value for a in got}


def v2_vendor_attribute(name, value):
    """A KMIP 2.0 vendor attribute: Attribute {Vendor Identification, Attribute Name, Attribute Value}."""
    return Fields(
        enums.Tags.ATTRIBUTE,
        [
            primitives.TextString("x", enums.Tags.VENDOR_IDENTIFICATION),
            primitives.TextString(name, enums.Tags.ATTRIBUTE_NAME),
            primitives.TextString(value, enums.Tags.ATTRIBUTE_VALUE),
        ],
    )


class Fields(primitives.Struct):
    """A structure written as the given fields, in order (for encodings PyKMIP 0.11 cannot produce)."""

    def __init__(self, tag, fields):
        super().__init__(tag=tag)
        self.fields = fields

    def write(self, output_buffer, kmip_version=enums.KMIPVersion.KMIP_1_0):
        local = utils.BytearrayStream()
        for f in self.fields:
            f.write(local, kmip_version=kmip_version)
        self.length = local.length()
        super().write(output_buffer, kmip_version=kmip_version)
        output_buffer.write(local.buffer)


class FieldsRequestPayload(payloads.RequestPayload):
    """A request payload written as the given fields (sent with KMIPProxy.send_request_payload)."""

    def __init__(self, fields):
        super().__init__()
        self.payload = Fields(enums.Tags.REQUEST_PAYLOAD, fields)

    def write(self, output_buffer, kmip_version=enums.KMIPVersion.KMIP_1_0):
        self.payload.write(output_buffer, kmip_version=kmip_version)


def main():
    host, port, ca, cert, key, version = sys.argv[1:7]
    client = ProxyKmipClient(
        hostname=host,
        port=int(port),
        cert=cert,
        key=key,
        ca=ca,
        ssl_version="PROTOCOL_SSLv23",
        config_file=os.devnull,
        kmip_version=VERSIONS[version],
    )
    with client:
        run = Run(version, client)
        lifecycle(run)
    failed = [op for op, passed in run.results if not passed]
    if failed:
        print("PYKMIP %s FAILED: %s" % (version, ", ".join(failed)), flush=True)
        sys.exit(1)
    print("PYKMIP LIFECYCLE OK", flush=True)


def lifecycle(run):
    c = run.client
    v = run.version
    suffix = os.urandom(4).hex()  # keeps names and values unique across runs against one server
    name = "pykmip-%s-%s" % (v, suffix)
    st = {}  # what later checks need from earlier ones

    def create():
        uid = c.create(enums.CryptographicAlgorithm.AES, 256, name=name)
        assert isinstance(uid, str) and uid, "Create returned %r" % (uid,)
        st["uid"] = uid
        return "AES-256 named %s: %s" % (name, uid)

    def need(*keys):
        for k in keys:
            if k not in st:
                raise Blocked("%s is missing because an earlier check failed" % k)
        return [st[k] for k in keys]

    def get_attributes():
        (uid,) = need("uid")
        a = run.attrs(uid, ["State", "Name", "Cryptographic Algorithm", "Cryptographic Length", "Unique Identifier",
                            "Object Type"])
        assert a["State"].value == enums.State.PRE_ACTIVE, a
        assert a["Object Type"].value == enums.ObjectType.SYMMETRIC_KEY, a
        assert a["Cryptographic Algorithm"].value == enums.CryptographicAlgorithm.AES, a
        assert a["Cryptographic Length"].value == 256, a
        assert a["Name"].name_value.value == name, a
        assert a["Unique Identifier"].value == uid, a
        return "Pre-Active Symmetric Key, AES, 256, its name and identifier"

    def get_attribute_list():
        (uid,) = need("uid")
        listed = set(c.get_attribute_list(uid))
        want = {"Unique Identifier", "Object Type", "State", "Name", "Cryptographic Algorithm",
                "Cryptographic Length", "Cryptographic Usage Mask", "Initial Date"}
        assert want <= listed, "missing %s in %s" % (want - listed, sorted(listed))
        return "%d names" % len(listed)

    def activate():
        (uid,) = need("uid")
        c.activate(uid)
        a = run.attrs(uid, ["State", "Activation Date"])
        assert a["State"].value == enums.State.ACTIVE, a
        assert a["Activation Date"].value > 0, a
        return "Active, Activation Date set"

    def get():
        (uid,) = need("uid")
        raw = c.get(uid).value
        assert len(raw) == 32, "expected 32 key bytes, got %d" % len(raw)
        st["raw"] = raw
        return "32 key bytes"

    def encrypt():
        uid, raw = need("uid", "raw")
        if not run.at_least("1.2"):
            return run.refused_with(lambda: c.encrypt(PLAINTEXT, uid=uid, cryptographic_parameters=CBC),
                                    enums.ResultReason.OPERATION_NOT_SUPPORTED)
        iv = os.urandom(16)
        ct, returned_iv = c.encrypt(PLAINTEXT, uid=uid, cryptographic_parameters=CBC, iv_counter_nonce=iv)
        assert returned_iv is None, "the server returned an IV although the client gave one"
        # Decrypt outside the product with the key Get returned.
        dec = Cipher(algorithms.AES(raw), modes.CBC(iv)).decryptor()
        unpadder = padding.PKCS7(128).unpadder()
        out = unpadder.update(dec.update(ct) + dec.finalize()) + unpadder.finalize()
        assert out == PLAINTEXT, "outside decryption mismatch"
        ct2, iv2 = c.encrypt(PLAINTEXT, uid=uid, cryptographic_parameters=CBC)
        assert iv2 is not None and len(iv2) == 16, "expected a server-generated 16-byte IV, got %r" % (iv2,)
        st["cts"] = [(ct, iv), (ct2, iv2)]
        return "AES-256-CBC/PKCS5 with client IV (decrypted outside the product) and server IV"

    def decrypt():
        (uid,) = need("uid")
        if not run.at_least("1.2"):
            return run.refused_with(
                lambda: c.decrypt(b"\0" * 16, uid=uid, cryptographic_parameters=CBC, iv_counter_nonce=b"\0" * 16),
                enums.ResultReason.OPERATION_NOT_SUPPORTED)
        (cts,) = need("cts")
        for ct, iv in cts:
            back = c.decrypt(ct, uid=uid, cryptographic_parameters=CBC, iv_counter_nonce=iv)
            assert back == PLAINTEXT, "server decryption mismatch"
        return "both ciphertexts back to the plaintext"

    def locate_by_name():
        (uid,) = need("uid")
        found = c.locate(attributes=[run.factory.create_attribute(enums.AttributeType.NAME, name)])
        assert found == [uid], "locate by name returned %r, expected [%s]" % (found, uid)
        missing = c.locate(attributes=[run.factory.create_attribute(enums.AttributeType.NAME, name + "-other")])
        assert missing == [], "locate by an unused name returned %r" % (missing,)
        return "found exactly the key; an unused name finds nothing"

    def register_symmetric_key():
        material = os.urandom(16)
        sk = pobjects.SymmetricKey(enums.CryptographicAlgorithm.AES, 128, material,
                                   masks=[enums.CryptographicUsageMask.ENCRYPT, enums.CryptographicUsageMask.DECRYPT],
                                   name="pykmip-reg-%s-%s" % (v, suffix))
        uid = c.register(sk)
        got = c.get(uid)
        assert got.value == material, "Get returned other key material"
        assert got.cryptographic_algorithm == enums.CryptographicAlgorithm.AES and got.cryptographic_length == 128
        a = run.attrs(uid, ["Object Type", "State", "Cryptographic Usage Mask"])
        assert a["Object Type"].value == enums.ObjectType.SYMMETRIC_KEY, a
        assert a["State"].value == enums.State.PRE_ACTIVE, a
        detail = "AES-128 %s, Get returns the registered bytes" % uid
        if run.at_least("1.2"):
            # The registered key encrypts on the server, the same bytes decrypt outside it.
            c.activate(uid)
            ct, iv = c.encrypt(PLAINTEXT, uid=uid, cryptographic_parameters=CBC)
            dec = Cipher(algorithms.AES(material), modes.CBC(iv)).decryptor()
            unpadder = padding.PKCS7(128).unpadder()
            assert unpadder.update(dec.update(ct) + dec.finalize()) + unpadder.finalize() == PLAINTEXT
            detail += "; its ciphertext decrypts outside the product"
        return detail

    def register_secret_data():
        secret = b"correct horse battery staple " + suffix.encode()
        sd = pobjects.SecretData(secret, enums.SecretDataType.PASSWORD, name="pykmip-sd-%s-%s" % (v, suffix))
        uid = c.register(sd)
        got = c.get(uid)
        assert isinstance(got, pobjects.SecretData), type(got)
        assert got.value == secret and got.data_type == enums.SecretDataType.PASSWORD, (got.value, got.data_type)
        a = run.attrs(uid, ["Object Type"])
        assert a["Object Type"].value == enums.ObjectType.SECRET_DATA, a
        return "Password %s, Get returns the same bytes and type" % uid

    def register_opaque_object():
        blob = os.urandom(200)
        uid = c.register(pobjects.OpaqueObject(blob, enums.OpaqueDataType.NONE, name="pykmip-op-%s-%s" % (v, suffix)))
        got = c.get(uid)
        assert isinstance(got, pobjects.OpaqueObject), type(got)
        assert got.value == blob and got.opaque_type == enums.OpaqueDataType.NONE, got.opaque_type
        a = run.attrs(uid, ["Object Type"])
        assert a["Object Type"].value == enums.ObjectType.OPAQUE_DATA, a
        # A Pre-Active object is destroyed without a revoke.
        c.destroy(uid)
        run.refused_with(lambda: c.get(uid), destroyed_reason(run))
        return "200 bytes %s, Get returns them; destroyed while Pre-Active" % uid

    def locate_by_custom_attribute():
        attr_name = "x-pykmip-team"
        value = "payments-" + suffix
        uid = create_with_custom_attribute(run, attr_name, value)
        found = locate_by_custom(run, attr_name, value)
        assert found == [uid], "locate by %s returned %r, expected [%s]" % (attr_name, found, uid)
        other = locate_by_custom(run, attr_name, value + "-other")
        assert other == [], "locate by another %s value returned %r" % (attr_name, other)
        listed = c.get_attribute_list(uid)
        assert attr_name in listed, "Get Attribute List lacks %s: %r" % (attr_name, listed)
        detail = "created with %s, found exactly it; another value finds nothing; listed by name" % attr_name
        if not run.at_least("2.0"):
            a = run.attrs(uid, [attr_name])
            assert a[attr_name].value == value, a
            detail += "; Get Attributes returns the value"
        return detail

    def mac():
        uid = c.create(enums.CryptographicAlgorithm.HMAC_SHA256, 256,
                       cryptographic_usage_mask=[enums.CryptographicUsageMask.MAC_GENERATE])
        c.activate(uid)
        data = b"message to authenticate " + suffix.encode()
        if not run.at_least("1.2"):
            return run.refused_with(lambda: c.mac(data, uid=uid, algorithm=enums.CryptographicAlgorithm.HMAC_SHA256),
                                    enums.ResultReason.OPERATION_NOT_SUPPORTED)
        raw = c.get(uid).value
        mac_uid, mac_data = c.mac(data, uid=uid, algorithm=enums.CryptographicAlgorithm.HMAC_SHA256)
        assert mac_uid == uid, "MAC answered for %r, not %r" % (mac_uid, uid)
        want = hmac.new(raw, data, hashlib.sha256).digest()
        assert mac_data == want, "HMAC-SHA256 differs from one computed outside the product"
        return "HMAC-SHA256 equals the one computed outside the product with the fetched key"

    def rekey():
        uid, raw = need("uid", "raw")
        new = c.rekey(uid=uid)
        assert new and new != uid, "Re-key returned %r" % (new,)
        got = c.get(new).value
        assert len(got) == 32 and got != raw, "the replacement key is not fresh 256-bit material"
        a = run.attrs(new, ["Cryptographic Algorithm", "Cryptographic Length", "Name"])
        assert a["Cryptographic Algorithm"].value == enums.CryptographicAlgorithm.AES, a
        assert a["Cryptographic Length"].value == 256, a
        # KMIP (Re-key): the replacement takes the existing key's names; the existing key loses them.
        assert a["Name"].name_value.value == name, a
        found = c.locate(attributes=[run.factory.create_attribute(enums.AttributeType.NAME, name)])
        assert found == [new], "after Re-key the name locates %r, expected [%s]" % (found, new)
        # Replaced/Replacement Object Links (PyKMIP cannot decode Link values: checked by name only).
        assert "Link" in c.get_attribute_list(new), "the replacement key has no Link"
        assert "Link" in c.get_attribute_list(uid), "the replaced key has no Link"
        return "replacement %s: new AES-256 material, took the name, both keys linked" % new

    def revoke():
        uid, raw = need("uid", "raw")
        c.revoke(enums.RevocationReasonCode.CESSATION_OF_OPERATION, uid)
        a = run.attrs(uid, ["State", "Deactivation Date"])
        assert a["State"].value == enums.State.DEACTIVATED, a
        assert a["Deactivation Date"].value > 0, a
        # KMIP (State): a Deactivated key SHALL NOT apply cryptographic protection, but may still process protected
        # data; Get is not restricted by this state.
        assert c.get(uid).value == raw, "Get of the Deactivated key returned other material"
        detail = "Deactivated; Get still returns the key"
        if run.at_least("1.2"):
            (cts,) = need("cts")
            ct, iv = cts[0]
            back = c.decrypt(ct, uid=uid, cryptographic_parameters=CBC, iv_counter_nonce=iv)
            assert back == PLAINTEXT, "Decrypt with the Deactivated key returned other data"
            wrong_state = (enums.ResultReason.WRONG_KEY_LIFECYCLE_STATE if run.at_least("2.0")
                           else enums.ResultReason.PERMISSION_DENIED)
            detail += "; Decrypt still works; Encrypt " + run.refused_with(
                lambda: c.encrypt(PLAINTEXT, uid=uid, cryptographic_parameters=CBC), wrong_state)
        return detail

    def destroy():
        (uid,) = need("uid")
        c.destroy(uid)
        a = run.attrs(uid, ["State", "Destroy Date"])
        assert a["State"].value == enums.State.DESTROYED, a
        return "Destroyed; Get " + run.refused_with(lambda: c.get(uid), destroyed_reason(run))

    run.check("create", create)
    run.check("get_attributes", get_attributes)
    run.check("get_attribute_list", get_attribute_list)
    run.check("activate", activate)
    run.check("get", get)
    run.check("encrypt", encrypt)
    run.check("decrypt", decrypt)
    run.check("locate_by_name", locate_by_name)
    run.check("register_symmetric_key", register_symmetric_key)
    run.check("register_secret_data", register_secret_data)
    run.check("register_opaque_object", register_opaque_object)
    run.check("locate_by_custom_attribute", locate_by_custom_attribute)
    run.check("mac", mac)
    run.check("rekey", rekey)
    run.check("revoke", revoke)
    run.check("destroy", destroy)


def destroyed_reason(run):
    """KMIP 2.0 has Object Destroyed; 1.x servers answer Item Not Found for a destroyed object."""
    return enums.ResultReason.OBJECT_DESTROYED if run.at_least("2.0") else enums.ResultReason.ITEM_NOT_FOUND


def create_with_custom_attribute(run, attr_name, value):
    """Creates an AES-256 key carrying a custom attribute; returns its unique identifier."""
    c, f = run.client, run.factory
    standard = [
        f.create_attribute(enums.AttributeType.CRYPTOGRAPHIC_ALGORITHM, enums.CryptographicAlgorithm.AES),
        f.create_attribute(enums.AttributeType.CRYPTOGRAPHIC_LENGTH, 256),
        f.create_attribute(enums.AttributeType.CRYPTOGRAPHIC_USAGE_MASK,
                           [enums.CryptographicUsageMask.ENCRYPT, enums.CryptographicUsageMask.DECRYPT]),
    ]
    if not run.at_least("2.0"):
        # PyKMIP encodes 1.x custom attributes itself (Attribute Name "x-…", a Text String value).
        template = cobjects.TemplateAttribute(attributes=standard + [f.create_attribute(attr_name, value)])
        result = c.proxy.create(enums.ObjectType.SYMMETRIC_KEY, template)
        if result.result_status.value != enums.ResultStatus.SUCCESS:
            raise KmipOperationFailure(result.result_status.value, result.result_reason.value,
                                       result.result_message.value)
        return result.uuid
    # 2.0: standard attributes by their tags, the custom one as a vendor attribute (see the module docstring).
    values = []
    for a in standard:
        value_item = a.attribute_value
        value_item.tag = enums.convert_attribute_name_to_tag(a.attribute_name.value)
        values.append(value_item)
    payload = FieldsRequestPayload([
        primitives.Enumeration(enums.ObjectType, enums.ObjectType.SYMMETRIC_KEY, tag=enums.Tags.OBJECT_TYPE),
        Fields(enums.Tags.ATTRIBUTES, values + [v2_vendor_attribute(attr_name, value)]),
    ])
    response = c.proxy.send_request_payload(enums.Operation.CREATE, payload)
    return response.unique_identifier


def locate_by_custom(run, attr_name, value):
    """Locate by one custom attribute; returns the unique identifiers found."""
    if not run.at_least("2.0"):
        return run.client.locate(attributes=[run.factory.create_attribute(attr_name, value)])
    payload = FieldsRequestPayload([Fields(enums.Tags.ATTRIBUTES, [v2_vendor_attribute(attr_name, value)])])
    response = run.client.proxy.send_request_payload(enums.Operation.LOCATE, payload)
    return list(response.unique_identifiers or [])


if __name__ == "__main__":
    main()
