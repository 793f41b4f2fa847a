"""The one protocol every device kind speaks, and the facts a device reports about itself."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, Sequence, runtime_checkable

from vitdeploy.errors import VitdeployError


class DeviceError(VitdeployError):
    """A device could not be reached, vanished, or refused a command.

    The message names the device and says what the user can do about it.
    """


@dataclass(frozen=True)
class CommandResult:
    """What a command run on a device returned."""

    exit_code: int
    stdout: str
    stderr: str


@dataclass(frozen=True)
class DeviceInfo:
    """A device's fingerprint: enough to tell two measurement contexts apart.

    `frequencies_khz` holds the current frequency of each core where the OS exposes it;
    `thermal_c` maps thermal zone names to degrees Celsius.
    """

    kind: str
    name: str
    abi: str
    cpu_model: str
    cores: int
    os: str
    emulated: bool = False
    frequencies_khz: tuple[int, ...] = ()
    thermal_c: dict[str, float] = field(default_factory=dict)

    def summary(self) -> str:
        """One line for listings: ABI, CPU, cores and OS."""
        return f"{self.abi}, {self.cpu_model}, {self.cores} cores, {self.os}"

    def to_dict(self) -> dict:
        return {
            "kind": self.kind,
            "name": self.name,
            "abi": self.abi,
            "cpu_model": self.cpu_model,
            "cores": self.cores,
            "os": self.os,
            "emulated": self.emulated,
            "frequencies_khz": list(self.frequencies_khz),
            "thermal_c": dict(self.thermal_c),
        }


@runtime_checkable
class Device(Protocol):
    """A place that can hold files and run commands: the host, an emulated CPU, a phone.

    `workdir` is the device-side directory where artifacts and harnesses are pushed.
    """

    kind: str
    name: str
    workdir: str

    def push(self, local: Path, remote: str) -> None:
        """Copy a local file to `remote` (a path on the device)."""

    def run(self, argv: Sequence[str], timeout: float) -> CommandResult:
        """Run `argv` on the device; raise DeviceError on timeout or loss of the device."""

    def pull(self, remote: str, local: Path) -> None:
        """Copy a device file back to `local`."""

    def info(self) -> DeviceInfo:
        """Read the device's fingerprint now (frequencies and temperatures change)."""

    def cleanup(self) -> None:
        """Remove what this session pushed to the device."""
