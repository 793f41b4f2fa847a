"""Apple devices: a Mac measures Core ML (and the other runtimes) through the Python
agent on itself; an iPhone or iPad needs a Mac with Xcode and a benchmark app.

vitdeploy drives a Mac only from that Mac: run `vitdeploy bench --device <mac profile>`
there, and the Mac is the host (the agent runs Core ML through coremltools). Elsewhere,
opening an Apple profile fails with a message saying what is needed; nothing pretends
to have run.
"""

from __future__ import annotations

import platform
from typing import NoReturn

from bench_runner.devices.base import DeviceError
from bench_runner.devices.host import HostDevice
from bench_runner.devices.kinds import DeviceKind


class MacDevice(HostDevice):
    """The Mac vitdeploy runs on, measured like the host under its own profile."""

    kind = "macos"

    @classmethod
    def from_profile(cls, profile, system: str | None = None) -> MacDevice:
        """This Mac under a macOS profile; DeviceError on any other system."""
        system = system or platform.system()
        if system != "Darwin":
            raise DeviceError(
                f"device profile {profile.name!r} is a Mac: Core ML predictions need macOS, and "
                f"this machine runs {system}. Copy the artifacts to the Mac and run `vitdeploy bench "
                f"ARTIFACT... --device {profile.name}` there"
            )
        return cls(name=profile.name)


def refuse_ios(profile) -> NoReturn:
    """An iOS profile never opens: say where its Core ML artifacts can be timed instead."""
    raise DeviceError(
        f"device profile {profile.name!r} is an iOS device: vitdeploy cannot drive iOS "
        "devices. Lower Core ML artifacts here (`vitdeploy lower ... --backend coreml "
        f"--device {profile.name}`) and time them in Xcode's Core ML performance report on a "
        "Mac with the device attached, or measure on a Mac with a macOS profile"
    )


MACOS = DeviceKind(name=MacDevice.kind, open=MacDevice.from_profile, on_host_cpus=True)
IOS = DeviceKind(name="ios", open=refuse_ios)
