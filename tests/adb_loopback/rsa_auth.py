"""adbd's side of ADB authentication: Android's RSA public key format and token signatures.

A host key travels as base64 of a little-endian struct followed by " user@host":
modulus size in 32-bit words (64 for RSA-2048), n0inv = -1/n mod 2^32, the modulus,
rr = (2^2048)^2 mod n, the public exponent. The host signs the 20-byte token as if it
were a SHA-1 digest (PKCS#1 v1.5 with the SHA-1 DigestInfo). Formats from AOSP's
libcrypto_utils/android_pubkey and adb_auth sources.
"""

from __future__ import annotations

import base64
import binascii
import struct

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa, utils

MODULUS_BYTES = 256
TOKEN_SIZE = 20
_KEY_STRUCT = struct.Struct(f"<II{MODULUS_BYTES}s{MODULUS_BYTES}sI")


class BadPublicKey(ValueError):
    """The bytes are not a well-formed Android RSA public key."""


def parse_android_public_key(blob: bytes) -> rsa.RSAPublicKey:
    """Decode `base64(struct) [user@host]` (NUL-terminated or not) into an RSA key.

    Checks the word count and the two precomputed Montgomery values against the
    modulus, so a corrupted key is refused rather than half-trusted.
    """
    text = blob.split(b"\0", 1)[0].strip()
    if not text:
        raise BadPublicKey("empty public key")
    try:
        raw = base64.b64decode(text.split()[0], validate=True)
    except binascii.Error as exc:
        raise BadPublicKey(f"not base64: {exc}") from None
    if len(raw) != _KEY_STRUCT.size:
        raise BadPublicKey(f"{len(raw)} bytes instead of {_KEY_STRUCT.size}")
    words, n0inv, modulus_le, rr_le, exponent = _KEY_STRUCT.unpack(raw)
    if words != MODULUS_BYTES // 4:
        raise BadPublicKey(f"modulus of {words} words instead of {MODULUS_BYTES // 4}")
    modulus = int.from_bytes(modulus_le, "little")
    if modulus % 2 == 0 or (modulus * n0inv) % 2**32 != 2**32 - 1:
        raise BadPublicKey("n0inv does not match the modulus")
    if int.from_bytes(rr_le, "little") != pow(2, 2 * 8 * MODULUS_BYTES, modulus):
        raise BadPublicKey("rr does not match the modulus")
    if exponent not in (3, 65537):
        raise BadPublicKey(f"unsupported exponent {exponent}")
    return rsa.RSAPublicNumbers(exponent, modulus).public_key()


def signature_matches(key: rsa.RSAPublicKey, token: bytes, signature: bytes) -> bool:
    """True when `signature` is `key`'s PKCS#1 v1.5 signature of `token` as a SHA-1 digest."""
    try:
        key.verify(signature, token, padding.PKCS1v15(), utils.Prehashed(hashes.SHA1()))
    except (InvalidSignature, ValueError):
        return False
    return True
