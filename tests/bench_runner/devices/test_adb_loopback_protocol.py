"""The loopback adbd's own protocol checks, driven by hand-built messages (no client library)."""

from __future__ import annotations

import base64
import socket
import struct

import pytest
from adb_shell.auth.sign_cryptography import CryptographySigner

from tests.adb_loopback import LoopbackAdbd, wire
from tests.adb_loopback.rsa_auth import BadPublicKey, parse_android_public_key, signature_matches

TOKEN = bytes(range(20))


@pytest.fixture
def signer(adb_key_home) -> CryptographySigner:
    return CryptographySigner(str(adb_key_home / "adbkey"))


def _connect(adbd: LoopbackAdbd) -> socket.socket:
    return socket.create_connection(("127.0.0.1", adbd.port), timeout=10)


def _send(sock: socket.socket, message: wire.Message) -> None:
    sock.sendall(wire.encode(message))


def _receive(sock: socket.socket) -> wire.Message:
    return wire.receive(sock, 1024 * 1024)


def _hello(version: int = wire.VERSION_CHECKSUMMED) -> wire.Message:
    return wire.Message(wire.CNXN, version, 256 * 1024, b"host::features=\0")


def test_signature_check_accepts_the_key_holder_only(signer):
    key = parse_android_public_key(signer.GetPublicKey())
    signature = signer.Sign(TOKEN)
    assert signature_matches(key, TOKEN, signature)
    assert not signature_matches(key, bytes(20), signature)
    assert not signature_matches(key, TOKEN, signature[:-1] + bytes([signature[-1] ^ 1]))


def test_a_public_key_with_a_wrong_montgomery_value_is_refused(signer):
    text = signer.GetPublicKey()
    raw = bytearray(base64.b64decode(text.split()[0]))
    struct.pack_into("<I", raw, 4, struct.unpack_from("<I", raw, 4)[0] ^ 1)  # n0inv
    with pytest.raises(BadPublicKey, match="n0inv"):
        parse_android_public_key(base64.b64encode(bytes(raw)) + b" someone@somewhere\0")
    with pytest.raises(BadPublicKey, match="bytes instead of"):
        parse_android_public_key(base64.b64encode(bytes(raw[:-4])))


def test_auth_retries_with_a_new_token_then_accepts_a_trusted_signature(loopback_root, signer):
    with LoopbackAdbd(loopback_root, trusted_keys=[signer.GetPublicKey()]) as adbd, _connect(adbd) as sock:
        _send(sock, _hello())
        first = _receive(sock)
        assert (first.command, first.arg0, len(first.data)) == (wire.AUTH, wire.AUTH_TOKEN, 20)

        _send(sock, wire.Message(wire.AUTH, wire.AUTH_SIGNATURE, 0, b"\x01" * 256))
        second = _receive(sock)
        assert (second.command, second.arg0) == (wire.AUTH, wire.AUTH_TOKEN)
        assert second.data != first.data

        _send(sock, wire.Message(wire.AUTH, wire.AUTH_SIGNATURE, 0, signer.Sign(second.data)))
        welcome = _receive(sock)
        assert welcome.command == wire.CNXN
        assert welcome.data.startswith(b"device::")
        assert b"ro.product.model=Loopback ADB device" in welcome.data
        assert welcome.data.endswith(b"features=fixed_push_mkdir")


def test_an_unknown_service_is_refused_with_a_close(loopback_root):
    with LoopbackAdbd(loopback_root, require_auth=False) as adbd, _connect(adbd) as sock:
        _send(sock, _hello())
        assert _receive(sock).command == wire.CNXN
        _send(sock, wire.Message(wire.OPEN, 7, 0, b"reboot:\0"))
        refusal = _receive(sock)
        assert (refusal.command, refusal.arg0, refusal.arg1) == (wire.CLSE, 0, 7)


def test_a_bad_checksum_closes_a_checksummed_connection(loopback_root):
    with LoopbackAdbd(loopback_root, require_auth=False) as adbd, _connect(adbd) as sock:
        _send(sock, _hello(wire.VERSION_CHECKSUMMED))
        assert _receive(sock).command == wire.CNXN
        corrupted = bytearray(wire.encode(wire.Message(wire.OPEN, 7, 0, b"shell:echo hi\0")))
        corrupted[-2] ^= 0x01
        sock.sendall(corrupted)
        assert sock.recv(1) == b""


def test_checksums_are_not_checked_from_version_0x01000001(loopback_root):
    with LoopbackAdbd(loopback_root, require_auth=False) as adbd, _connect(adbd) as sock:
        _send(sock, _hello(wire.VERSION_SKIP_CHECKSUM))
        assert _receive(sock).command == wire.CNXN
        unsummed = bytearray(wire.encode(wire.Message(wire.OPEN, 7, 0, b"shell:echo hi\0")))
        unsummed[16:20] = bytes(4)
        sock.sendall(unsummed)
        opened = _receive(sock)
        assert (opened.command, opened.arg1) == (wire.OKAY, 7)
        output = _receive(sock)
        assert (output.command, output.data) == (wire.WRTE, b"hi\n")


def test_the_command_prefix_hook_wraps_every_shell_command(loopback_root):
    with LoopbackAdbd(loopback_root, require_auth=False, command_prefix=("env", "VIA_PREFIX=yes")) as adbd:
        with _connect(adbd) as sock:
            _send(sock, _hello(wire.VERSION_SKIP_CHECKSUM))
            assert _receive(sock).command == wire.CNXN
            _send(sock, wire.Message(wire.OPEN, 3, 0, b"shell:echo $VIA_PREFIX\0"))
            assert _receive(sock).command == wire.OKAY
            assert _receive(sock).data == b"yes\n"
