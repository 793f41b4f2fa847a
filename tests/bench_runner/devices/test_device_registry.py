"""The registry of device kinds: every kind module's kind is in it, and profiles, opening
and `vitdeploy devices` all follow it."""

import importlib
import pkgutil

import pytest

import bench_runner.devices
from bench_runner.devices import DEVICE_KINDS, device_kind, open_device
from bench_runner.devices.base import DeviceError
from bench_runner.devices.kinds import DeviceKind
from bench_runner.profiles import ProfileError, default_profile, parse_profile
from deploy.cli import main

NAMES = [kind.name for kind in DEVICE_KINDS]


def test_every_kind_a_device_module_defines_is_registered_once():
    modules = [importlib.import_module(m.name) for m in pkgutil.iter_modules(bench_runner.devices.__path__, "bench_runner.devices.")]
    defined = {value for module in modules for value in vars(module).values() if isinstance(value, DeviceKind)}
    assert defined == set(DEVICE_KINDS)
    assert len(set(NAMES)) == len(NAMES)


@pytest.mark.parametrize("kind", DEVICE_KINDS, ids=NAMES)
def test_every_kind_opens_from_its_bare_profile_or_says_what_is_missing(kind, tmp_path, monkeypatch):
    monkeypatch.setenv("VITDEPLOY_CACHE", str(tmp_path))
    profile = default_profile(kind.name)
    try:
        device = open_device(profile)
    except DeviceError as exc:
        assert kind.name in str(exc)
    else:
        assert device.kind == device.info().kind == kind.name


def test_unknown_kinds_are_clear_errors():
    with pytest.raises(DeviceError, match="unknown device kind 'watch'; known kinds: " + ", ".join(NAMES)):
        device_kind("watch")


def test_profiles_accept_exactly_the_registered_kinds():
    assert [parse_profile({"kind": name}, "p.toml", "p").kind for name in NAMES] == NAMES
    with pytest.raises(ProfileError, match="'watch' is not one of " + ", ".join(NAMES)):
        parse_profile({"kind": "watch"}, "p.toml", "p")


def test_only_kinds_with_a_qemu_cpu_accept_a_qemu_table():
    for kind in DEVICE_KINDS:
        data = {"kind": kind.name, "qemu": {"cpu": "cortex-a53"}}
        if kind.qemu_cpu is None:
            with pytest.raises(ProfileError, match=r"\[qemu\] cpu: applies only to kind"):
                parse_profile(data, "p.toml", "p")
        else:
            assert parse_profile(data, "p.toml", "p").qemu_cpu == "cortex-a53"
            assert default_profile(kind.name).qemu_cpu == kind.qemu_cpu


def test_devices_lists_a_row_for_each_kind(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("VITDEPLOY_CACHE", str(tmp_path / "cache"))
    for name in NAMES:
        (tmp_path / f"my-{name}.toml").write_text(f'kind = "{name}"\n')
    assert main(["devices", "--profiles", str(tmp_path), "--connect-timeout", "0.1"]) == 0
    devices = capsys.readouterr().out.split("\nProfiles in ")[0].splitlines()[2:]
    assert [line.split()[:2] for line in devices] == [[name, f"my-{name}"] for name in NAMES]


def test_devices_lists_the_always_listed_kinds_without_a_profile(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("VITDEPLOY_CACHE", str(tmp_path / "cache"))
    assert main(["devices", "--profiles", str(tmp_path)]) == 0
    devices = capsys.readouterr().out.split("\nProfiles in ")[0].splitlines()[2:]
    assert [line.split()[:2] for line in devices] == [[k.name, k.name] for k in DEVICE_KINDS if k.always_listed]


def test_setup_offers_only_the_kinds_that_have_a_set_up_step(capsys):
    for kind in DEVICE_KINDS:
        if kind.setup is None:
            with pytest.raises(SystemExit):
                main(["devices", "setup", kind.name])
            assert "invalid choice" in capsys.readouterr().err
