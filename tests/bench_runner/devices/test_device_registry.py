import pytest

from bench_runner import devices
from bench_runner.devices import DEVICE_KINDS, device_class, open_device
from bench_runner.devices.base import DeviceError
from bench_runner.devices.host import HostDevice
from bench_runner.profiles import KINDS, DeviceProfile


def test_every_profile_kind_has_a_device_class():
    assert set(DEVICE_KINDS) == set(KINDS)


def test_host_profile_opens_a_host_device():
    device = open_device(DeviceProfile(name="my-host", kind="host"))
    assert isinstance(device, HostDevice) and device.name == "my-host"


def test_unknown_or_absent_kinds_are_clear_errors(monkeypatch):
    with pytest.raises(DeviceError, match="unknown device kind 'watch'"):
        device_class("watch")
    monkeypatch.setitem(devices.DEVICE_KINDS, "android", "bench_runner.devices.not_written_yet:Phone")
    with pytest.raises(DeviceError, match="'android' is not available"):
        device_class("android")
