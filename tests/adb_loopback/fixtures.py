"""pytest fixtures around the loopback device; import them by name into a conftest.py.

- `session_adb_key`: the private key of a pair generated once per test session.
- `adb_key_home`: a temp adb key folder (ANDROID_USER_HOME points at it) holding a key
  pair (one pair generated per session, copied in); yields the folder.
- `loopback_root`: a FakeDeviceRoot in a temp directory.
- `loopback_adbd`: a started LoopbackAdbd that requires AUTH and trusts the key of
  `adb_key_home`; stopped (and its leftover commands killed) after the test.
- `loopback_android`: an AndroidDevice connected to `loopback_adbd`.
- `emulated_phone_root`, `emulated_phone_adbd`: the same for the emulated phone
  (`tests.adb_loopback.emulated_phone`: aarch64 programs run under QEMU, no Python);
  they need `qemu_arm64`, the emulated CPU built once per user cache, as
  `vitdeploy devices setup qemu-arm64` builds it.

When a program on the device reads device paths out of a pushed file (a plan, a
config), give the AndroidDevice `workdir=str(loopback_root.host_path(DEFAULT_WORKDIR))`:
such a path means the same folder on the device and on the host.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Iterator

import pytest

from bench_runner.devices.adb_keys import ensure_adb_key
from bench_runner.devices.android import AndroidDevice
from tests.adb_loopback.daemon import LoopbackAdbd
from tests.adb_loopback.device_root import FakeDeviceRoot
from tests.adb_loopback.emulated_phone import EmulatedPhoneRoot, build_exec_shim


@pytest.fixture(scope="session")
def session_adb_key(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return ensure_adb_key(tmp_path_factory.mktemp("adb-key"))


@pytest.fixture
def adb_key_home(session_adb_key: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "android-user-home"
    home.mkdir(mode=0o700)
    for source in (session_adb_key, session_adb_key.with_suffix(".pub")):
        shutil.copy2(source, home / source.name)
    monkeypatch.setenv("ANDROID_USER_HOME", str(home))
    return home


@pytest.fixture
def loopback_root(tmp_path: Path) -> FakeDeviceRoot:
    return FakeDeviceRoot(tmp_path / "device")


@pytest.fixture
def loopback_adbd(loopback_root: FakeDeviceRoot, adb_key_home: Path) -> Iterator[LoopbackAdbd]:
    public_key = (adb_key_home / "adbkey.pub").read_bytes()
    with LoopbackAdbd(loopback_root, trusted_keys=[public_key]) as adbd:
        yield adbd


@pytest.fixture
def loopback_android(loopback_adbd: LoopbackAdbd, adb_key_home: Path) -> Iterator[AndroidDevice]:
    device = AndroidDevice(address=loopback_adbd.address, key_dir=adb_key_home, connect_timeout_s=10.0)
    yield device.connect()
    device.close()


@pytest.fixture(scope="session")
def aarch64_exec_shim(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_exec_shim(tmp_path_factory.mktemp("aarch64-exec"))


@pytest.fixture(scope="session")
def qemu_arm64():
    """The emulated CPU's environment, built on first use (as `vitdeploy devices setup qemu-arm64`)."""
    from bench_runner.devices.qemu_setup import setup_qemu_arm64
    from vitdeploy.user_cache import user_cache_dir

    return setup_qemu_arm64(user_cache_dir(), log=lambda line: None)


@pytest.fixture
def emulated_phone_root(tmp_path: Path, aarch64_exec_shim: Path, qemu_arm64) -> EmulatedPhoneRoot:
    return EmulatedPhoneRoot(tmp_path / "phone", qemu_arm64, aarch64_exec_shim)


@pytest.fixture
def emulated_phone_adbd(emulated_phone_root: EmulatedPhoneRoot, adb_key_home: Path) -> Iterator[LoopbackAdbd]:
    public_key = (adb_key_home / "adbkey.pub").read_bytes()
    with LoopbackAdbd(emulated_phone_root, trusted_keys=[public_key]) as adbd:
        yield adbd
