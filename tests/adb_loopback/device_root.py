"""A directory that stands in for a phone's file system, and the mapping of device paths into it.

Device paths are absolute ("/data/local/tmp/x"); they land under the root directory, so
nothing the loopback device does touches the host's own "/". The root holds a fake
`getprop`, per-core cpufreq files and thermal zones, so a client has something to read.

Shell commands get their device paths rewritten as text, so a path inside a quoted
argument is rewritten too, and the host path of the root can show in their output.
"""

from __future__ import annotations

import os
import posixpath
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_PROPS = {
    "ro.product.name": "vitdeploy_loopback",
    "ro.product.model": "Loopback ADB device",
    "ro.product.device": "loopback",
    "ro.product.cpu.abi": "arm64-v8a",
    "ro.soc.model": "LoopbackSoC",
    "ro.build.fingerprint": "vitdeploy/loopback/loopback:14/LOOP.0001/1:userdebug/test-keys",
}

# Top-level device folders that shell commands see inside the root; every other absolute
# path in a command (/bin/sh, /proc, /dev/null) stays the host's.
MAPPED_TOP_LEVEL = ("data", "sdcard", "sys", "system")
_MAPPED_PATH = re.compile(r"(?<![\w./-])/(?:" + "|".join(MAPPED_TOP_LEVEL) + r")(?![\w.-])")


@dataclass(frozen=True)
class DeviceLayout:
    """What the fake device reports: properties, per-core frequencies, thermal zones (m°C)."""

    props: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_PROPS))
    frequencies_khz: tuple[int, ...] = (1_800_000, 1_800_000, 2_400_000, 2_400_000)
    thermal_millicelsius: dict[str, int] = field(
        default_factory=lambda: {"cpu-thermal": 41_500, "battery": 30_000}
    )


class FakeDeviceRoot:
    """The fake device's "/" under `path`, built from a DeviceLayout."""

    def __init__(self, path: Path, layout: DeviceLayout | None = None) -> None:
        self.path = Path(path)
        self.layout = layout or DeviceLayout()
        self._build()

    def host_path(self, device_path: str) -> Path:
        """Where the device path `device_path` lives on the host ("/" is the root itself).

        A path that already lies inside the root is taken as it is: a device working
        folder named by its host path is valid on both sides, so programs that read
        device paths out of pushed files (not only from their arguments) find them.
        """
        absolute = Path(posixpath.normpath("/" + device_path.lstrip("/")))
        if absolute == self.path or self.path in absolute.parents:
            return absolute
        return self.path / absolute.relative_to("/")

    def translate_command(self, command: str) -> str:
        """Rewrite the mapped device paths in a shell command so they point into the root."""
        return _MAPPED_PATH.sub(lambda match: str(self.path) + match.group(0), command)

    def shell_environment(self) -> dict[str, str]:
        """The environment of device shell commands: the fake `getprop` comes first on PATH."""
        environment = dict(os.environ)
        environment["PATH"] = f"{self.host_path('/system/bin')}:{environment.get('PATH', '/usr/bin:/bin')}"
        environment["TMPDIR"] = str(self.host_path("/data/local/tmp"))
        return environment

    def _build(self) -> None:
        for folder in ("/data/local/tmp", "/sdcard", "/system/bin"):
            self.host_path(folder).mkdir(parents=True, exist_ok=True)
        self._write_getprop()
        cpu_dir = self.host_path("/sys/devices/system/cpu")
        cpu_dir.mkdir(parents=True, exist_ok=True)
        cores = len(self.layout.frequencies_khz)
        if cores:
            (cpu_dir / "possible").write_text(f"0-{cores - 1}\n")
        for index, frequency in enumerate(self.layout.frequencies_khz):
            cpufreq = cpu_dir / f"cpu{index}" / "cpufreq"
            cpufreq.mkdir(parents=True, exist_ok=True)
            (cpufreq / "scaling_cur_freq").write_text(f"{frequency}\n")
        thermal_dir = self.host_path("/sys/class/thermal")
        thermal_dir.mkdir(parents=True, exist_ok=True)
        for index, (zone, millicelsius) in enumerate(self.layout.thermal_millicelsius.items()):
            zone_dir = thermal_dir / f"thermal_zone{index}"
            zone_dir.mkdir(exist_ok=True)
            (zone_dir / "type").write_text(f"{zone}\n")
            (zone_dir / "temp").write_text(f"{millicelsius}\n")

    def _write_getprop(self) -> None:
        """A POSIX sh `getprop`: one property by name, or all of them as `[name]: [value]`."""
        cases = "".join(
            f"  {shlex.quote(name)}) printf '%s\\n' {shlex.quote(value)} ;;\n"
            for name, value in self.layout.props.items()
        )
        listing = "".join(
            f"  printf '[%s]: [%s]\\n' {shlex.quote(name)} {shlex.quote(value)}\n"
            for name, value in sorted(self.layout.props.items())
        )
        script = (
            "#!/bin/sh\n"
            'if [ $# -eq 0 ]; then\n'
            f"{listing}"
            "  exit 0\n"
            "fi\n"
            'case "$1" in\n'
            f"{cases}"
            "  *) echo ;;\n"
            "esac\n"
        )
        getprop = self.host_path("/system/bin/getprop")
        getprop.write_text(script)
        getprop.chmod(0o755)
