#!/usr/bin/python3
"""How a downstream service checks a HITL decision receipt before it acts (README, Trust model).

Usage: verify_receipt.py RECEIPT JWKS_FILE INPUT_FILE
Prints the claims and exits 0 when the receipt is signed by a published key and approved
exactly this input; exits 1 with the reason otherwise.
"""
import base64
import hashlib
import json
import sys

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature


def b64(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def verify(receipt, jwks, action_input):
    head, body, signature = receipt.split(".")
    header = json.loads(b64(head))
    assert header["alg"] == "ES256", "not ES256"
    jwk = next(k for k in jwks["keys"] if k["kid"] == header["kid"])
    key = ec.EllipticCurvePublicNumbers(
        int.from_bytes(b64(jwk["x"]), "big"), int.from_bytes(b64(jwk["y"]), "big"), ec.SECP256R1()).public_key()
    raw = b64(signature)
    der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
    key.verify(der, f"{head}.{body}".encode(), ec.ECDSA(hashes.SHA256()))  # raises when forged
    claims = json.loads(b64(body))
    canonical = json.dumps(action_input, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    assert claims["input_sha256"] == hashlib.sha256(canonical).hexdigest(), "not the input that was approved"
    return claims


if __name__ == "__main__":
    try:
        print(json.dumps(verify(sys.argv[1], json.load(open(sys.argv[2])), json.load(open(sys.argv[3])))))
    except Exception as failure:  # any refusal: a bad signature, another key, another input
        print("invalid:", failure or type(failure).__name__)
        sys.exit(1)
