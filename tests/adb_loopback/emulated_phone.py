"""An emulated phone: the loopback device whose shell runs aarch64 programs under user-mode QEMU.

The shell is the host's `/bin/sh`, with nothing on its PATH but a toolbox of host
utilities (as a phone's toybox: no Python), and with `aarch64_exec.c` preloaded: an
aarch64 ELF file that any command executes runs under `qemu-aarch64` of the emulated CPU
(`qemu_setup`), whose `-L` prefix is the fake root, so an aarch64 program sees the
phone's folders (/data/local/tmp ...) at their device paths and an ARM /proc/cpuinfo.
Nothing of the emulated CPU's sysroot is visible: programs bring their own glibc, as on
Android.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from bench_runner.devices.qemu_setup import ARM_CPUINFO_PROCESSOR, QemuEnvironment
from tests.adb_loopback.device_root import DeviceLayout, FakeDeviceRoot

SHIM_SOURCE = Path(__file__).with_name("aarch64_exec.c")
# What Android's toybox offers and vitdeploy's commands use, taken from the host.
TOOLBOX = ("sh", "cat", "chmod", "cp", "echo", "kill", "ls", "mkdir", "mv", "printf", "rm", "sleep", "taskset",
           "tar", "true", "false", "uname", "head", "tail", "wc", "sha256sum")
QEMU_CPU = "cortex-a76"
EMULATED_CORES = 4


def build_exec_shim(directory: Path) -> Path:
    """Compile `aarch64_exec.c` into `directory`/aarch64_exec.so with the host's C compiler."""
    compiler = shutil.which("gcc") or shutil.which("cc")
    if compiler is None:
        raise RuntimeError("the emulated phone needs a C compiler: install Debian's gcc")
    library = Path(directory) / "aarch64_exec.so"
    subprocess.run([compiler, "-shared", "-fPIC", "-O2", "-Wall", "-Wextra", "-o", str(library), str(SHIM_SOURCE),
                    "-ldl"], check=True, capture_output=True, text=True)
    return library


class EmulatedPhoneRoot(FakeDeviceRoot):
    """A FakeDeviceRoot whose shell commands run aarch64 programs on the emulated CPU `qemu`."""

    def __init__(self, path: Path, qemu: QemuEnvironment, shim: Path, layout: DeviceLayout | None = None) -> None:
        self.qemu = qemu
        self.shim = Path(shim)
        super().__init__(path, layout or DeviceLayout(frequencies_khz=(2_000_000,) * EMULATED_CORES))

    def shell_environment(self) -> dict[str, str]:
        environment = {
            name: value for name, value in super().shell_environment().items()
            if not name.startswith(("PYTHON", "VIRTUAL_ENV", "QEMU_", "LD_"))
        }
        environment.update({
            "PATH": str(self.host_path("/system/bin")),
            "LD_PRELOAD": str(self.shim),
            "VITDEPLOY_PHONE_QEMU": str(self.qemu.qemu),
            "QEMU_CPU": QEMU_CPU,
            "QEMU_LD_PREFIX": str(self.path),
            "QEMU_UNSET_ENV": "LD_PRELOAD",
        })
        return environment

    def _build(self) -> None:
        super()._build()
        toolbox = self.host_path("/system/bin")
        for name in TOOLBOX:
            found = shutil.which(name)
            if found is not None:
                (toolbox / name).symlink_to(found)
        cpuinfo = self.path / "proc" / "cpuinfo"
        cpuinfo.parent.mkdir(exist_ok=True)
        cpuinfo.write_text(
            "\n".join(ARM_CPUINFO_PROCESSOR.format(index=i) for i in range(EMULATED_CORES)) + "\n", encoding="utf-8"
        )
