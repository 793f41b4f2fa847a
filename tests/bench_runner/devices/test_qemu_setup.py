"""Setting up the emulated ARM64 CPU, without the network: the cache location and failures."""

import shutil
from pathlib import Path

import pytest

from bench_runner.devices import qemu_setup
from vitdeploy.user_cache import user_cache_dir
from bench_runner.devices.qemu_setup import AptSource, QemuSetupError, find_qemu_arm64, setup_qemu_arm64


def test_cache_dir_prefers_vitdeploy_cache_then_xdg_then_home(monkeypatch, tmp_path: Path):
    monkeypatch.setenv("VITDEPLOY_CACHE", str(tmp_path / "explicit"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert user_cache_dir() == tmp_path / "explicit"
    monkeypatch.delenv("VITDEPLOY_CACHE")
    assert user_cache_dir() == tmp_path / "xdg" / "vitdeploy"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert user_cache_dir() == tmp_path / "home" / ".cache" / "vitdeploy"


def test_nothing_is_found_before_setup(tmp_path: Path):
    assert find_qemu_arm64(tmp_path) is None


def test_setup_without_usable_apt_source_names_the_fix_and_leaves_nothing(monkeypatch, tmp_path: Path):
    monkeypatch.setattr(qemu_setup, "read_system_sources", lambda: [])
    with pytest.raises(QemuSetupError, match=r"no usable apt source.*/etc/apt/sources.list"):
        setup_qemu_arm64(tmp_path, log=lambda line: None)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(shutil.which("apt-get") is None, reason="needs a Debian-based host")
def test_missing_mirror_fails_at_the_private_apt_update(monkeypatch, tmp_path: Path):
    missing = AptSource(("deb",), ("file:/nonexistent/vitdeploy-mirror",), ("bookworm",), ("main",))
    monkeypatch.setattr(qemu_setup, "read_system_sources", lambda: [missing])
    with pytest.raises(QemuSetupError, match=r"apt-get update \(private arm64 state\) failed.*/etc/apt/sources.list"):
        setup_qemu_arm64(tmp_path, log=lambda line: None)
    assert list(tmp_path.iterdir()) == []
