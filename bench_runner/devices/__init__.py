"""Device kinds, one module each, behind the Device protocol of `base`.

`DEVICE_KINDS` maps a profile's `kind` to the class that opens it, as "module:Class";
each class has `from_profile(profile) -> Device`. Modules are imported only when their
kind is opened, so a kind whose dependencies are missing never breaks the others.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from bench_runner.devices.base import Device, DeviceError

if TYPE_CHECKING:
    from bench_runner.profiles import DeviceProfile

DEVICE_KINDS: dict[str, str] = {
    "host": "bench_runner.devices.host:HostDevice",
    "qemu-arm64": "bench_runner.devices.qemu:QemuArm64Device",
    "android": "bench_runner.devices.android:AndroidDevice",
    "ios": "bench_runner.devices.apple:AppleDevice",
    "macos": "bench_runner.devices.apple:AppleDevice",
}


def device_class(kind: str) -> type:
    """The class that opens devices of `kind`; DeviceError if the kind is unknown or absent."""
    if kind not in DEVICE_KINDS:
        raise DeviceError(f"unknown device kind {kind!r}; known kinds: {', '.join(DEVICE_KINDS)}")
    module_name, class_name = DEVICE_KINDS[kind].split(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name != module_name:
            raise
        raise DeviceError(
            f"device kind {kind!r} is not available in this installation ({module_name} is missing)"
        ) from None
    return getattr(module, class_name)


def open_device(profile: DeviceProfile) -> Device:
    """Open the device a profile describes."""
    return device_class(profile.kind).from_profile(profile)
