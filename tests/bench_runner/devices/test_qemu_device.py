"""The emulated ARM64 device without running QEMU: argv mapping, files, fingerprint."""

from pathlib import Path

import pytest

from bench_runner.devices.base import Device, DeviceError
from bench_runner.devices.qemu import QemuArm64Device, emulated_argv, emulated_process_env
from bench_runner.devices.qemu_setup import QemuEnvironment
from bench_runner.profiles import DeviceProfile


@pytest.fixture
def fake_env(tmp_path: Path) -> QemuEnvironment:
    root = tmp_path / "qemu-arm64"
    sysroot = root / "sysroot"
    (sysroot / "usr/bin").mkdir(parents=True)
    (sysroot / "usr/bin/env").write_text("")
    return QemuEnvironment(
        root=root,
        qemu=root / "qemu-aarch64",
        sysroot=sysroot,
        python=sysroot / "usr/bin/python3.11",
        site_dir=root / "site",
        executorch_root=tmp_path / "qemu-arm64-executorch" / "site" / "executorch",
        versions={"qemu": "7.2.0 (test)", "python": "3.11.2-6", "debian_suites": "bookworm"},
    )


@pytest.mark.parametrize("name", ["python", "python3", "python3.11"])
def test_python_becomes_the_sysroot_python_under_qemu(fake_env, name):
    argv = emulated_argv(fake_env, "cortex-a53", [name, "agent.py", "plan.json"])
    assert argv == [
        str(fake_env.qemu), "-cpu", "cortex-a53", "-L", str(fake_env.sysroot),
        str(fake_env.python), "agent.py", "plan.json",
    ]


def test_bare_program_is_looked_up_in_the_sysroot(fake_env):
    assert emulated_argv(fake_env, "max", ["env"])[5] == str(fake_env.sysroot / "usr/bin/env")


def test_host_only_program_is_refused_with_the_reason(fake_env):
    with pytest.raises(DeviceError, match="aarch64 executables only"):
        emulated_argv(fake_env, "cortex-a76", ["taskset", "f0", "python3"])


def test_path_program_is_passed_through(fake_env):
    assert emulated_argv(fake_env, "cortex-a76", ["./runner", "-x"])[5:] == ["./runner", "-x"]


def test_process_env_drops_host_python_settings_and_points_at_both_site_dirs(fake_env):
    env = emulated_process_env(fake_env, {"PATH": "/usr/bin", "PYTHONHOME": "/venv", "VIRTUAL_ENV": "/venv"})
    assert "PYTHONHOME" not in env and "VIRTUAL_ENV" not in env
    assert env["PATH"] == "/usr/bin"
    assert env["PYTHONPATH"] == str(fake_env.site_dir)


def test_push_pull_cleanup_stay_in_the_workdir(fake_env, tmp_path: Path):
    device = QemuArm64Device(fake_env)
    assert isinstance(device, Device)
    assert Path(device.workdir).parent == fake_env.root.parent / "qemu-arm64-work"
    local = tmp_path / "model.onnx"
    local.write_bytes(b"\x08\x07")
    device.push(local, "artifacts/model.onnx")
    assert (Path(device.workdir) / "artifacts/model.onnx").read_bytes() == b"\x08\x07"
    device.pull("artifacts/model.onnx", tmp_path / "back" / "model.onnx")
    assert (tmp_path / "back" / "model.onnx").read_bytes() == b"\x08\x07"
    with pytest.raises(DeviceError, match="no such file"):
        device.pull("missing.json", tmp_path / "missing.json")
    device.cleanup()
    assert not Path(device.workdir).exists()


def test_info_says_emulated_arm64_with_the_qemu_version(fake_env):
    info = QemuArm64Device(fake_env, cpu="cortex-a53", name="a53").info()
    assert info.emulated is True
    assert (info.kind, info.name, info.abi) == ("qemu-arm64", "a53", "arm64-v8a")
    assert info.cpu_model == "QEMU cortex-a53 (emulated)"
    assert "QEMU 7.2.0 (test)" in info.os and "bookworm" in info.os
    assert info.cores >= 1


def test_from_profile_before_setup_says_how_to_set_up(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("VITDEPLOY_CACHE", str(tmp_path / "empty-cache"))
    with pytest.raises(DeviceError, match="vitdeploy devices setup qemu-arm64"):
        QemuArm64Device.from_profile(DeviceProfile(name="qemu-arm64", kind="qemu-arm64", qemu_cpu="cortex-a76"))
