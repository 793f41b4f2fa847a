"""Device kinds, one module each, behind the Device protocol of `base`.

`DEVICE_KINDS` registers every kind's `DeviceKind` (see `kinds`): a profile's `kind`
names one of them, and the kind opens the device. Adding a kind takes its module and
one entry here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bench_runner.devices.android import ANDROID
from bench_runner.devices.apple import IOS, MACOS
from bench_runner.devices.base import Device, DeviceError
from bench_runner.devices.host import HOST
from bench_runner.devices.kinds import DeviceKind
from bench_runner.devices.qemu import QEMU_ARM64

if TYPE_CHECKING:
    from bench_runner.profiles import DeviceProfile

DEVICE_KINDS: tuple[DeviceKind, ...] = (HOST, QEMU_ARM64, ANDROID, MACOS, IOS)


def device_kind(name: str) -> DeviceKind:
    """The registered kind called `name`; DeviceError if there is none."""
    for kind in DEVICE_KINDS:
        if kind.name == name:
            return kind
    raise DeviceError(f"unknown device kind {name!r}; known kinds: {', '.join(k.name for k in DEVICE_KINDS)}")


def open_device(profile: DeviceProfile) -> Device:
    """Open the device a profile describes."""
    return device_kind(profile.kind).open(profile)
