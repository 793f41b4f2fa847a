"""Debian's `adb` client against the loopback adbd, so the loopback is not an echo of adb-shell.

The client starts its own adb server on a free 127.0.0.1 port with HOME in a temp folder
(its key pair lives in $HOME/.android); the server is killed after each test. The server's
port lies below the kernel's ephemeral range, so the loopback adbd (which binds port 0)
can never be handed the same port: an adb client that finds an adbd where it expects its
server waits forever for a reply.
"""

from __future__ import annotations

import hashlib
import os
import random
import shutil
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pytest

from bench_runner.devices.adb_keys import ensure_adb_key
from tests.adb_loopback import FakeDeviceRoot, LoopbackAdbd

_ADB_ENVIRONMENT_KNOBS = ("ANDROID_USER_HOME", "ANDROID_SDK_HOME", "ADB_VENDOR_KEYS", "ANDROID_SERIAL")


@dataclass(frozen=True)
class DebianAdb:
    """Runs the `adb` client with a private HOME and adb server port."""

    home: Path
    environment: dict[str, str]

    @property
    def key_dir(self) -> Path:
        return self.home / ".android"

    def __call__(self, *args: str, timeout: float = 30) -> subprocess.CompletedProcess:
        return subprocess.run(
            ["adb", *args],
            env=self.environment,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
        )


def _free_port_below_ephemeral_range() -> int:
    low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    candidates = list(range(10_000, low))
    random.shuffle(candidates)
    for port in candidates:
        try:
            with socket.create_server(("127.0.0.1", port)):
                return port
        except OSError:
            continue
    raise RuntimeError(f"no free 127.0.0.1 port between 10000 and {low}")


@pytest.fixture
def debian_adb(tmp_path: Path) -> Iterator[DebianAdb]:
    if shutil.which("adb") is None:
        pytest.skip("Debian's adb client is not installed (apt-get install adb; .ci/run installs it)")
    home = tmp_path / "home"
    home.mkdir()
    server_port = _free_port_below_ephemeral_range()
    environment = {key: value for key, value in os.environ.items() if key not in _ADB_ENVIRONMENT_KNOBS}
    environment.update(HOME=str(home), TMPDIR=str(tmp_path), ANDROID_ADB_SERVER_PORT=str(server_port))
    adb = DebianAdb(home, environment)
    try:
        yield adb
    finally:
        adb("kill-server")


def _key_body(public_key: bytes) -> bytes:
    """The base64 key without the trailing " user@host" and NUL."""
    return public_key.split(b"\0", 1)[0].split()[0]


def test_debian_adb_signs_in_with_a_trusted_key_and_runs_shell_commands(debian_adb, loopback_root):
    ensure_adb_key(debian_adb.key_dir)
    trusted = (debian_adb.key_dir / "adbkey.pub").read_bytes()
    with LoopbackAdbd(loopback_root, trusted_keys=[trusted]) as adbd:
        connected = debian_adb("connect", adbd.address)
        assert f"connected to {adbd.address}" in connected.stdout

        devices = debian_adb("devices", "-l").stdout
        assert f"{adbd.address}" in devices and "model:Loopback_ADB_device" in devices

        echo = debian_adb("-s", adbd.address, "shell", "echo", "hi")
        assert (echo.returncode, echo.stdout) == (0, "hi\n")
        model = debian_adb("-s", adbd.address, "shell", "getprop", "ro.product.model")
        assert model.stdout == "Loopback ADB device\n"
    assert adbd.shell_commands == ["echo hi", "getprop ro.product.model"]


def test_debian_adb_pushes_and_pulls_a_binary_file(debian_adb, loopback_root, tmp_path):
    ensure_adb_key(debian_adb.key_dir)
    payload = os.urandom(1024 * 1024 + 4097)
    local = tmp_path / "model.onnx"
    local.write_bytes(payload)
    remote = "/data/local/tmp/vitdeploy/new-folder/model.onnx"
    with LoopbackAdbd(loopback_root, trusted_keys=[(debian_adb.key_dir / "adbkey.pub").read_bytes()]) as adbd:
        debian_adb("connect", adbd.address)
        pushed = debian_adb("-s", adbd.address, "push", str(local), remote)
        assert pushed.returncode == 0, pushed.stderr
        assert hashlib.sha256(loopback_root.host_path(remote).read_bytes()).digest() == hashlib.sha256(payload).digest()

        listing = debian_adb("-s", adbd.address, "shell", "ls", "/data/local/tmp/vitdeploy/new-folder")
        assert listing.stdout.split() == ["model.onnx"]

        back = tmp_path / "back.onnx"
        pulled = debian_adb("-s", adbd.address, "pull", remote, str(back))
        assert pulled.returncode == 0, pulled.stderr
        assert hashlib.sha256(back.read_bytes()).digest() == hashlib.sha256(payload).digest()

        missing = debian_adb("-s", adbd.address, "pull", "/data/local/tmp/absent", str(tmp_path / "absent"))
        assert missing.returncode != 0
        assert not (tmp_path / "absent").exists()


def test_debian_adb_new_key_works_once_the_user_allows_it(debian_adb, tmp_path):
    root = FakeDeviceRoot(tmp_path / "device")
    with LoopbackAdbd(root, auto_accept=True) as adbd:
        debian_adb("connect", adbd.address)
        waited = debian_adb("-s", adbd.address, "wait-for-device", timeout=30)
        assert waited.returncode == 0, waited.stderr
        assert debian_adb("-s", adbd.address, "shell", "echo", "allowed").stdout == "allowed\n"
    # The key the device accepted is the one Debian's adb generated for itself.
    client_key = (debian_adb.key_dir / "adbkey.pub").read_bytes()
    assert [_key_body(key) for key in adbd.trusted_keys] == [_key_body(client_key)]


def test_debian_adb_with_an_unknown_key_stays_unauthorized(debian_adb, loopback_root):
    ensure_adb_key(debian_adb.key_dir)
    with LoopbackAdbd(loopback_root, trusted_keys=[]) as adbd:
        debian_adb("connect", adbd.address)
        shell = debian_adb("-s", adbd.address, "shell", "echo", "should-not-run")
        assert shell.returncode != 0
        assert "unauthorized" in shell.stderr
    assert adbd.shell_commands == []
