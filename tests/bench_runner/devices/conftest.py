"""Fixtures for the device tests: the loopback ADB device (see tests/adb_loopback)."""

from tests.adb_loopback.fixtures import adb_key_home, loopback_adbd, loopback_android, loopback_root, session_adb_key

__all__ = ["adb_key_home", "loopback_adbd", "loopback_android", "loopback_root", "session_adb_key"]
