"""ADB messages on the wire: a 24-byte little-endian header and an optional payload.

Header words: command, arg0, arg1, payload length, payload checksum (the byte sum, which
protocol version 0x01000001 and later no longer check), magic (command ^ 0xffffffff).
Format from AOSP's adb/protocol.txt.
"""

from __future__ import annotations

import socket
import struct
from dataclasses import dataclass

HEADER = struct.Struct("<6I")

CNXN = b"CNXN"
AUTH = b"AUTH"
OPEN = b"OPEN"
OKAY = b"OKAY"
WRTE = b"WRTE"
CLSE = b"CLSE"
COMMANDS = (CNXN, AUTH, OPEN, OKAY, WRTE, CLSE)

AUTH_TOKEN = 1
AUTH_SIGNATURE = 2
AUTH_RSAPUBLICKEY = 3

VERSION_CHECKSUMMED = 0x01000000
VERSION_SKIP_CHECKSUM = 0x01000001


class ProtocolViolation(Exception):
    """The peer sent something that is not a valid ADB message: the connection must close."""


@dataclass(frozen=True)
class Message:
    """One message; `checksum_ok` says whether a received payload matched its header's sum."""

    command: bytes
    arg0: int
    arg1: int
    data: bytes = b""
    checksum_ok: bool = True


def command_word(command: bytes) -> int:
    return int.from_bytes(command, "little")


def checksum(data: bytes) -> int:
    return sum(data) & 0xFFFFFFFF


def encode(message: Message) -> bytes:
    word = command_word(message.command)
    header = HEADER.pack(
        word, message.arg0, message.arg1, len(message.data), checksum(message.data), word ^ 0xFFFFFFFF
    )
    return header + message.data


def _receive_exactly(sock: socket.socket, size: int) -> bytes:
    chunks = bytearray()
    while len(chunks) < size:
        chunk = sock.recv(size - len(chunks))
        if not chunk:
            raise ConnectionResetError("peer closed the connection")
        chunks += chunk
    return bytes(chunks)


def receive(sock: socket.socket, max_payload: int) -> Message:
    """Read one message; raise ProtocolViolation on a bad header or an oversized payload.

    Whether a checksum mismatch matters depends on the negotiated version: the caller
    decides from `Message.checksum_ok`.
    """
    word, arg0, arg1, length, data_checksum, magic = HEADER.unpack(_receive_exactly(sock, HEADER.size))
    command = word.to_bytes(4, "little")
    if command not in COMMANDS:
        raise ProtocolViolation(f"unknown command {command!r}")
    if magic != word ^ 0xFFFFFFFF:
        raise ProtocolViolation(f"bad magic {magic:#x} for {command!r}")
    if length > max_payload:
        raise ProtocolViolation(f"{command!r} payload of {length} bytes exceeds {max_payload}")
    data = _receive_exactly(sock, length) if length else b""
    return Message(command, arg0, arg1, data, checksum_ok=checksum(data) == data_checksum)
