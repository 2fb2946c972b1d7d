"""Drive a running OpenKCM edge with PyKMIP's unmodified ProxyKmipClient.

Usage: client_lifecycle.py HOST PORT CA CERT KEY KMIP_VERSION(1.2|1.4|2.0)
Prints one line per step and "PYKMIP LIFECYCLE OK" at the end; exits non-zero on the first failure.
"""
import os
import sys

from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from kmip import enums
from kmip.core.factories import attributes
from kmip.pie.client import ProxyKmipClient
from kmip.pie.exceptions import KmipOperationFailure

VERSIONS = {
    "1.2": enums.KMIPVersion.KMIP_1_2,
    "1.4": enums.KMIPVersion.KMIP_1_4,
    "2.0": enums.KMIPVersion.KMIP_2_0,
}


def step(msg):
    print(msg, flush=True)


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
    name = "pykmip-" + version + "-" + os.urandom(4).hex()
    with client:
        uid = client.create(enums.CryptographicAlgorithm.AES, 256, name=name)
        step("created " + uid)
        client.activate(uid)
        step("activated")
        key_obj = client.get(uid)
        raw = key_obj.value
        assert len(raw) == 32, "expected 32 key bytes, got %d" % len(raw)
        step("got 32 key bytes")

        _, attrs = client.get_attributes(uid, ["State", "Name", "Cryptographic Length"])
        by_name = {a.attribute_name.value: a.attribute_value for a in attrs}
        assert by_name["State"].value == enums.State.ACTIVE, by_name
        assert by_name["Cryptographic Length"].value == 256, by_name
        assert by_name["Name"].name_value.value == name, by_name
        listed = client.get_attribute_list(uid)
        assert {"Unique Identifier", "State", "Name", "Cryptographic Algorithm"} <= set(listed), listed
        step("get attributes and attribute list")

        params = {
            "block_cipher_mode": enums.BlockCipherMode.CBC,
            "padding_method": enums.PaddingMethod.PKCS5,
            "cryptographic_algorithm": enums.CryptographicAlgorithm.AES,
        }
        plaintext = b"PyKMIP says hello to OpenKCM over mTLS"
        iv = os.urandom(16)
        ciphertext, returned_iv = client.encrypt(plaintext, uid=uid, cryptographic_parameters=params, iv_counter_nonce=iv)
        assert ciphertext != plaintext and len(ciphertext) % 16 == 0
        # Decrypt outside the product with the fetched key.
        dec = Cipher(algorithms.AES(raw), modes.CBC(iv)).decryptor()
        padded = dec.update(ciphertext) + dec.finalize()
        unpadder = padding.PKCS7(128).unpadder()
        assert unpadder.update(padded) + unpadder.finalize() == plaintext, "outside decryption mismatch"
        step("encrypted (CBC/PKCS5) and decrypted outside the product")
        back = client.decrypt(ciphertext, uid=uid, cryptographic_parameters=params, iv_counter_nonce=iv)
        assert back == plaintext, "server decryption mismatch"
        step("decrypted through the edge")
        # Server-generated IV.
        ct2, iv2 = client.encrypt(plaintext, uid=uid, cryptographic_parameters=params)
        assert iv2 is not None and len(iv2) == 16, "expected a server-generated IV"
        assert client.decrypt(ct2, uid=uid, cryptographic_parameters=params, iv_counter_nonce=iv2) == plaintext
        step("server-generated IV round trip")

        factory = attributes.AttributeFactory()
        found = client.locate(attributes=[factory.create_attribute(enums.AttributeType.NAME, name)])
        assert found == [uid], "locate by name returned %r" % (found,)
        step("located by name")

        client.revoke(enums.RevocationReasonCode.CESSATION_OF_OPERATION, uid)
        step("revoked")
        try:
            client.get(uid)
        except KmipOperationFailure as e:
            step("get after revoke refused: %s" % e.reason)
        else:
            raise AssertionError("get of a revoked key succeeded")
        client.destroy(uid)
        step("destroyed")
        try:
            client.get(uid)
        except KmipOperationFailure as e:
            step("get after destroy refused: %s" % e.reason)
        else:
            raise AssertionError("get of a destroyed key succeeded")
    print("PYKMIP LIFECYCLE OK", flush=True)


if __name__ == "__main__":
    main()
