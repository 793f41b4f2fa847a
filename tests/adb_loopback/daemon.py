"""A stand-in for a phone's adbd on 127.0.0.1: the ADB handshake, AUTH, streams, services.

Each client connection gets a reader thread; each opened stream gets a service thread.
The handshake follows protocol.txt: the client's CNXN, then (when authentication is on)
AUTH TOKEN from the device, AUTH SIGNATURE or RSAPUBLICKEY from the client, and the
device's CNXN with its banner once a trusted key signed the token, or once the user
"tapped Allow" (`auto_accept`) for a new public key.
"""

from __future__ import annotations

import itertools
import os
import signal
import socket
import subprocess
import threading
import time
from typing import Iterable, Sequence

from tests.adb_loopback import wire
from tests.adb_loopback.device_root import FakeDeviceRoot
from tests.adb_loopback.rsa_auth import BadPublicKey, TOKEN_SIZE, parse_android_public_key, signature_matches
from tests.adb_loopback.services import run_shell, run_sync
from tests.adb_loopback.stream import Stream

MAX_PAYLOAD = 256 * 1024

# Only what this device implements: SEND creates missing parent folders.
FEATURES = ("fixed_push_mkdir",)


class LoopbackAdbd:
    """An adbd on 127.0.0.1 (a free port) serving the fake device in `root`.

    `trusted_keys` are Android-format public keys (the contents of an `adbkey.pub`),
    like the device's adb_keys file; `auto_accept` trusts any new public key a client
    offers, as a user tapping "Allow" would; `require_auth=False` skips AUTH entirely.
    `command_prefix` is put before `/bin/sh -c CMD` for every shell command (a hook to run
    commands through an emulator). `unplug_on` makes the device vanish, like a pulled
    cable, as soon as a shell command containing that text starts. `shell_commands` and
    `pushed` (the device path of every file a SEND stored) record what clients did.
    """

    def __init__(
        self,
        root: FakeDeviceRoot,
        *,
        trusted_keys: Iterable[bytes] = (),
        auto_accept: bool = False,
        require_auth: bool = True,
        command_prefix: Sequence[str] = (),
        unplug_on: str | None = None,
    ) -> None:
        self.root = root
        self.trusted_keys: list[bytes] = list(trusted_keys)
        self.auto_accept = auto_accept
        self.require_auth = require_auth
        self.command_prefix = tuple(command_prefix)
        self.unplug_on = unplug_on
        self.shell_commands: list[str] = []
        self.pushed: list[str] = []
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._connections: list[_Connection] = []
        self._processes: list[subprocess.Popen] = []
        self._lock = threading.Lock()
        self._unplugged = threading.Event()
        self._accept_thread = threading.Thread(target=self._accept_loop, name="loopback-adbd", daemon=True)

    @property
    def address(self) -> str:
        """"127.0.0.1:PORT", as `adb connect` and AndroidDevice take it."""
        return f"127.0.0.1:{self.port}"

    @property
    def banner(self) -> bytes:
        """The CNXN identity: "device::" then properties and the features this device implements."""
        props = self.root.layout.props
        names = ("ro.product.name", "ro.product.model", "ro.product.device")
        fields = [f"{name}={props.get(name, '')}" for name in names]
        fields.append("features=" + ",".join(FEATURES))
        return ("device::" + ";".join(fields)).encode("utf-8")

    def start(self) -> LoopbackAdbd:
        self._accept_thread.start()
        return self

    def unplug(self) -> None:
        """Vanish: stop listening and drop every connection without a goodbye."""
        self._unplugged.set()
        try:
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept()
        except OSError:
            pass
        self._listener.close()
        with self._lock:
            connections = list(self._connections)
        for connection in connections:
            connection.drop()

    def stop(self) -> None:
        """Unplug, then kill whatever the device's shell commands left running."""
        self.unplug()
        if self._accept_thread.is_alive():
            self._accept_thread.join()
        with self._lock:
            processes = list(self._processes)
        for process in processes:
            if process.poll() is None:
                try:
                    os.killpg(process.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            process.wait()

    def wait_for_commands(self, timeout: float) -> bool:
        """True once every shell command started so far has ended, waiting up to `timeout` s."""
        deadline = time.monotonic() + timeout
        with self._lock:
            processes = list(self._processes)
        for process in processes:
            try:
                process.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                return False
        return True

    def __enter__(self) -> LoopbackAdbd:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def is_trusted(self, token: bytes, signature: bytes) -> bool:
        for blob in self.trusted_keys:
            try:
                key = parse_android_public_key(blob)
            except BadPublicKey:
                continue
            if signature_matches(key, token, signature):
                return True
        return False

    def offer_key(self, blob: bytes) -> bool:
        """A client offered a new public key: trust it if the user would tap Allow."""
        if not self.auto_accept:
            return False
        try:
            parse_android_public_key(blob)
        except BadPublicKey:
            return False
        self.trusted_keys.append(blob.split(b"\0", 1)[0])
        return True

    def open_service(self, stream: Stream, destination: str) -> None:
        """Run the service `destination` names on `stream`; unknown ones are refused (CLSE)."""
        if destination.startswith("shell:") and destination != "shell:":
            command = destination[len("shell:") :]
            self.shell_commands.append(command)
            vanish = self.unplug_on is not None and self.unplug_on in command
            run_shell(stream, command, self.root, self.command_prefix, self._track, self.unplug if vanish else None)
        elif destination == "sync:":
            run_sync(stream, self.root, self.pushed.append)
        else:
            stream.refuse()

    def _track(self, process: subprocess.Popen) -> None:
        with self._lock:
            self._processes.append(process)

    def forget_connection(self, connection: _Connection) -> None:
        with self._lock:
            if connection in self._connections:
                self._connections.remove(connection)

    def _accept_loop(self) -> None:
        while not self._unplugged.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            connection = _Connection(self, client)
            with self._lock:
                self._connections.append(connection)
            threading.Thread(target=connection.serve, name="loopback-adbd-connection", daemon=True).start()


class _Connection:
    """One client connection: handshake, then messages dispatched to streams."""

    def __init__(self, daemon: LoopbackAdbd, sock: socket.socket) -> None:
        self._daemon = daemon
        self._sock = sock
        self._send_lock = threading.Lock()
        self._streams: dict[int, Stream] = {}
        self._streams_lock = threading.Lock()
        self._ids = itertools.count(1)
        self._version = wire.VERSION_CHECKSUMMED
        self._peer_max_payload = 4096

    def serve(self) -> None:
        try:
            self._handshake()
            while True:
                self._dispatch(self._receive())
        except (OSError, wire.ProtocolViolation):
            pass
        finally:
            self.drop()

    def drop(self) -> None:
        with self._streams_lock:
            streams = list(self._streams.values())
            self._streams.clear()
        for stream in streams:
            stream.on_closed()
        try:
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._sock.close()
        self._daemon.forget_connection(self)

    def send(self, message: wire.Message) -> None:
        with self._send_lock:
            self._sock.sendall(wire.encode(message))

    def _receive(self) -> wire.Message:
        message = wire.receive(self._sock, MAX_PAYLOAD)
        if not message.checksum_ok and self._version < wire.VERSION_SKIP_CHECKSUM:
            raise wire.ProtocolViolation(f"{message.command!r} payload checksum mismatch")
        return message

    def _handshake(self) -> None:
        while True:
            message = wire.receive(self._sock, MAX_PAYLOAD)
            if message.command == wire.CNXN:
                break
        self._version = min(message.arg0, wire.VERSION_SKIP_CHECKSUM)
        if self._version < wire.VERSION_CHECKSUMMED:
            raise wire.ProtocolViolation(f"unknown protocol version {message.arg0:#x}")
        if not message.checksum_ok and self._version < wire.VERSION_SKIP_CHECKSUM:
            raise wire.ProtocolViolation("CNXN payload checksum mismatch")
        self._peer_max_payload = message.arg1
        if self._daemon.require_auth:
            self._authenticate()
        self.send(wire.Message(wire.CNXN, wire.VERSION_SKIP_CHECKSUM, MAX_PAYLOAD, self._daemon.banner))

    def _authenticate(self) -> None:
        token = os.urandom(TOKEN_SIZE)
        self.send(wire.Message(wire.AUTH, wire.AUTH_TOKEN, 0, token))
        while True:
            message = self._receive()
            if message.command != wire.AUTH:
                continue
            if message.arg0 == wire.AUTH_SIGNATURE:
                if self._daemon.is_trusted(token, message.data):
                    return
                token = os.urandom(TOKEN_SIZE)
                self.send(wire.Message(wire.AUTH, wire.AUTH_TOKEN, 0, token))
            elif message.arg0 == wire.AUTH_RSAPUBLICKEY and self._daemon.offer_key(message.data):
                return

    def _dispatch(self, message: wire.Message) -> None:
        if message.command == wire.OPEN:
            self._open(message)
            return
        with self._streams_lock:
            stream = self._streams.get(message.arg1)
        if stream is None:
            return
        if message.command == wire.OKAY:
            stream.on_ready()
        elif message.command == wire.WRTE:
            stream.on_data(message.data)
            self.send(wire.Message(wire.OKAY, stream.local_id, stream.remote_id))
        elif message.command == wire.CLSE:
            with self._streams_lock:
                self._streams.pop(stream.local_id, None)
            stream.on_closed()
            self.send(wire.Message(wire.CLSE, stream.local_id, stream.remote_id))

    def _open(self, message: wire.Message) -> None:
        if message.arg0 == 0:
            return
        destination = message.data.split(b"\0", 1)[0].decode("utf-8", "replace")
        stream = Stream(
            next(self._ids),
            message.arg0,
            min(self._peer_max_payload, MAX_PAYLOAD),
            self.send,
            self._forget_stream,
        )
        with self._streams_lock:
            self._streams[stream.local_id] = stream
        threading.Thread(
            target=self._daemon.open_service, args=(stream, destination), name="loopback-adbd-service", daemon=True
        ).start()

    def _forget_stream(self, stream: Stream) -> None:
        with self._streams_lock:
            self._streams.pop(stream.local_id, None)
