"""Fixtures for the device tests: the loopback ADB device and the emulated phone (see tests/adb_loopback)."""

from tests.adb_loopback.fixtures import (
    aarch64_exec_shim,
    adb_key_home,
    emulated_phone_adbd,
    emulated_phone_root,
    loopback_adbd,
    loopback_android,
    loopback_root,
    qemu_arm64,
    session_adb_key,
)

__all__ = ["aarch64_exec_shim", "adb_key_home", "emulated_phone_adbd", "emulated_phone_root", "loopback_adbd",
           "loopback_android", "loopback_root", "qemu_arm64", "session_adb_key"]
