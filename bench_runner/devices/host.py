"""The host as a device: files are copied into a private working directory and every
command runs as a separate process, so an artifact never executes inside the caller."""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from bench_runner.devices.base import CommandResult, DeviceError, DeviceInfo
from bench_runner.devices.kinds import DeviceKind, NativeRunner
from bench_runner.devices.process import run_process_group

if TYPE_CHECKING:
    from bench_runner.profiles import DeviceProfile

CPU_FLAGS_OF_INTEREST = ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile", "asimd", "asimddp", "sve")


def read_frequencies_khz(sysfs: Path = Path("/sys")) -> tuple[int, ...]:
    """Current frequency of each CPU in CPU order, where cpufreq is exposed."""
    cpu_dir = sysfs / "devices/system/cpu"
    paths = sorted(cpu_dir.glob("cpu[0-9]*/cpufreq/scaling_cur_freq"), key=lambda p: int(p.parent.parent.name[3:]))
    frequencies = []
    for path in paths:
        try:
            frequencies.append(int(path.read_text().strip()))
        except (OSError, ValueError):
            continue
    return tuple(frequencies)


def read_thermal_c(sysfs: Path = Path("/sys")) -> dict[str, float]:
    """Temperature of each thermal zone in degrees Celsius, keyed by the zone's type."""
    readings: dict[str, float] = {}
    for zone in sorted((sysfs / "class/thermal").glob("thermal_zone[0-9]*")):
        try:
            millidegrees = int((zone / "temp").read_text().strip())
            name = (zone / "type").read_text().strip() or zone.name
        except (OSError, ValueError):
            continue
        if name in readings:
            name = f"{name}@{zone.name}"
        readings[name] = millidegrees / 1000.0
    return readings


def describe_cpu(cpuinfo: str) -> str:
    """The CPU model named in /proc/cpuinfo text, with the vector extensions that matter."""
    model = ""
    flags: list[str] = []
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        key = key.strip().lower()
        if key in ("model name", "hardware", "cpu model") and not model:
            model = value.strip()
        elif key in ("flags", "features") and not flags:
            flags = value.split()
    model = model or platform.processor() or platform.machine()
    present = [flag for flag in CPU_FLAGS_OF_INTEREST if flag in flags]
    return f"{model} ({', '.join(present)})" if present else model


class HostDevice:
    """This machine. `python` is the interpreter that runs the agent (the caller's own)."""

    kind = "host"

    def __init__(self, name: str = "host") -> None:
        self.name = name
        self.python = sys.executable
        self.workdir = str(Path(tempfile.gettempdir()) / f"vitdeploy-host-{os.getpid()}-{id(self):x}")

    @classmethod
    def from_profile(cls, profile) -> HostDevice:
        return cls(name=profile.name)

    def push(self, local: Path, remote: str) -> None:
        source, target = Path(local), Path(remote)
        if not source.exists():
            raise DeviceError(f"{self.name}: cannot push {source}: no such file")
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target, dirs_exist_ok=True)
        else:
            shutil.copyfile(source, target)

    def pull(self, remote: str, local: Path) -> None:
        if not Path(remote).is_file():
            raise DeviceError(f"{self.name}: cannot pull {remote}: no such file")
        Path(local).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(remote, local)

    def run(self, argv: Sequence[str], timeout: float) -> CommandResult:
        """Run `argv` as a new process group; on timeout the whole group is killed."""
        try:
            return run_process_group(argv, timeout)
        except OSError as exc:
            raise DeviceError(f"{self.name}: cannot start {argv[0]!r}: {exc}") from None
        except subprocess.TimeoutExpired:
            raise DeviceError(
                f"{self.name}: {Path(argv[0]).name} did not finish within {timeout:g} s and was killed; "
                "raise the timeout (--timeout or timeout_seconds in the profile) or measure fewer runs"
            ) from None

    def info(self) -> DeviceInfo:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            cpuinfo = ""
        return DeviceInfo(
            kind=self.kind,
            name=self.name,
            abi=platform.machine(),
            cpu_model=describe_cpu(cpuinfo),
            cores=os.cpu_count() or 1,
            os=platform.platform(),
            emulated=False,
            frequencies_khz=read_frequencies_khz(),
            thermal_c=read_thermal_c(),
        )

    def cleanup(self) -> None:
        shutil.rmtree(self.workdir, ignore_errors=True)


def _installed_executorch(profile: DeviceProfile) -> Path:
    from bench_runner.native_runner.build import installed_executorch

    return installed_executorch()


HOST = DeviceKind(
    name=HostDevice.kind, open=HostDevice.from_profile, always_listed=True,
    native_runner=NativeRunner("host", _installed_executorch, default=False), on_host_cpus=True,
)
