"""The adb key pair: where it lives, its permissions, and that an existing pair is reused."""

from __future__ import annotations

import stat

from cryptography.hazmat.primitives import serialization

from bench_runner.devices.adb_keys import adb_key_dir, ensure_adb_key, load_adb_signer
from tests.adb_loopback.rsa_auth import parse_android_public_key


def _mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_key_folder_follows_android_user_home_then_home(tmp_path, monkeypatch):
    monkeypatch.setenv("ANDROID_USER_HOME", str(tmp_path / "custom"))
    assert adb_key_dir() == tmp_path / "custom"
    monkeypatch.delenv("ANDROID_USER_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert adb_key_dir() == tmp_path / "home" / ".android"


def test_a_new_pair_is_private_and_in_android_format(tmp_path):
    folder = tmp_path / "new" / ".android"
    private_key = ensure_adb_key(folder)
    assert private_key == folder / "adbkey"
    assert _mode(folder) == 0o700
    assert _mode(private_key) == 0o600
    public = parse_android_public_key((folder / "adbkey.pub").read_bytes())
    loaded = serialization.load_pem_private_key(private_key.read_bytes(), password=None)
    assert public.public_numbers() == loaded.public_key().public_numbers()


def test_an_existing_pair_is_reused_and_a_missing_public_half_rebuilt(tmp_path):
    folder = tmp_path / ".android"
    ensure_adb_key(folder)
    private_before = (folder / "adbkey").read_bytes()
    public_before = (folder / "adbkey.pub").read_bytes()
    (folder / "adbkey.pub").unlink()
    ensure_adb_key(folder)
    assert (folder / "adbkey").read_bytes() == private_before
    assert (folder / "adbkey.pub").read_bytes().split()[0] == public_before.split()[0]


def test_the_signer_offers_the_public_key_file(adb_key_home):
    signer = load_adb_signer(adb_key_home)
    assert signer.GetPublicKey() == (adb_key_home / "adbkey.pub").read_bytes()
