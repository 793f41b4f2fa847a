"""Apple profiles open a Mac only on macOS, and say what is needed everywhere else."""

import pytest

from bench_runner.devices import open_device
from bench_runner.devices.apple import MacDevice
from bench_runner.devices.base import DeviceError
from bench_runner.profiles import find_profile


def test_mac_profile_on_linux_says_macos_is_needed():
    with pytest.raises(DeviceError, match="Core ML predictions need macOS.*run `vitdeploy bench"):
        MacDevice.from_profile(find_profile("mac-m1"), system="Linux")


def test_mac_profile_on_macos_is_the_host_under_the_profile_name():
    device = MacDevice.from_profile(find_profile("mac-m1"), system="Darwin")
    assert isinstance(device, MacDevice)
    assert device.name == "mac-m1" and device.kind == "macos"


def test_ios_profile_is_refused():
    with pytest.raises(DeviceError, match="cannot drive iOS"):
        open_device(find_profile("iphone-15"))
