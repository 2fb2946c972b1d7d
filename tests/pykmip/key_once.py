"""One PyKMIP call against a running OpenKCM edge, for tests that need a real client across restarts.

Usage: key_once.py HOST PORT CA CERT KEY create
       key_once.py HOST PORT CA CERT KEY get UID

`create` makes an AES-256 key and prints its unique identifier; `get` prints the key bytes of UID as hex.
A refusal prints "REFUSED <reason>: <message>" and exits 3; any other failure exits 1.
"""
import os
import sys

from kmip import enums
from kmip.pie.client import ProxyKmipClient
from kmip.pie.exceptions import KmipOperationFailure


def main():
    host, port, ca, cert, key, action = sys.argv[1:7]
    client = ProxyKmipClient(
        hostname=host,
        port=int(port),
        cert=cert,
        key=key,
        ca=ca,
        ssl_version="PROTOCOL_SSLv23",
        config_file=os.devnull,
        kmip_version=enums.KMIPVersion.KMIP_1_4,
    )
    try:
        with client:
            if action == "create":
                print(client.create(enums.CryptographicAlgorithm.AES, 256))
            elif action == "get":
                print(client.get(sys.argv[7]).value.hex())
            else:
                print("unknown action " + action, file=sys.stderr)
                return 1
    except KmipOperationFailure as e:
        print("REFUSED %s: %s" % (e.reason, e.message))
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
