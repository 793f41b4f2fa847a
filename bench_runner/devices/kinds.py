"""What sets one kind of device apart, declared once in that kind's module.

Each device module (host, qemu, android, apple) defines its `DeviceKind`s and
`bench_runner.devices.DEVICE_KINDS` registers them; profile validation, opening a
device, `vitdeploy devices` and its `setup` action all read that registry.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Protocol

from bench_runner.devices.base import Device, DeviceError

if TYPE_CHECKING:
    from bench_runner.profiles import DeviceProfile

Log = Callable[[str], None]


class SetUp(Protocol):
    """Builds what a kind needs, once; `log` receives progress lines."""

    def __call__(self, log: Log) -> None: ...


@dataclass(frozen=True)
class NativeRunner:
    """How a kind runs `.pte` files with vitdeploy's native runner: the `target` it is
    built for ("host", "aarch64": `bench_runner.native_runner.build.TOOLCHAINS`),
    `executorch_root(profile)`, the executorch package whose runtime libraries it links
    (DeviceError when that is not there yet, saying how to get it), and whether it is
    the kind's `default` harness for `.pte` files (else it runs them when asked for by
    name, `--harness vitdeploy-runner`)."""

    target: str
    executorch_root: Callable[[DeviceProfile], Path]
    default: bool = True


@dataclass(frozen=True)
class DeviceKind:
    """One kind of device, the `kind` of a profile.

    `open(profile)` returns the device or raises DeviceError saying what is missing.
    `emulated`: its times are not a real device's. `always_listed`: `vitdeploy devices`
    shows it even when no profile names it. `qemu_cpu`: the QEMU CPU model its profiles
    default to; only kinds with one accept a `[qemu]` table. `logcat`: native tools may
    log to Android's logcat instead of stderr. `setup`: builds what the kind needs, once
    (`vitdeploy devices setup KIND`, and a sweep before first use); None when nothing
    needs building. `probe(profile, timeout_s)`: replaces the default check of `status`.
    `native_runner`: set where vitdeploy's native runner can run `.pte` files on the kind.
    `on_host_cpus`: its measurements run on the CPUs of the machine that drives it (the
    host itself, a Mac, an emulator), so a scheduler must reserve them; a phone's do not.
    `aarch64_bundle`: it has no glibc and no Python of its own, so where a profile names
    no device Python, vitdeploy's own programs (the native runner, the Python agent)
    reach it as the pushed aarch64 bundle (`bench_runner.bundle`).
    """

    name: str
    open: Callable[[DeviceProfile], Device]
    emulated: bool = False
    always_listed: bool = False
    qemu_cpu: str | None = None
    logcat: bool = False
    setup: SetUp | None = None
    probe: Callable[[DeviceProfile, float], tuple[str, str]] | None = None
    native_runner: NativeRunner | None = None
    on_host_cpus: bool = False
    aarch64_bundle: bool = False

    def status(self, profile: DeviceProfile, timeout_s: float) -> tuple[str, str]:
        """The state ("ready", "unavailable", ...) and details `vitdeploy devices` shows for
        `profile`; by default, whether the device opens and what its fingerprint says."""
        if self.probe is not None:
            return self.probe(profile, timeout_s)
        try:
            info = self.open(profile).info()
        except DeviceError as exc:
            return "unavailable", str(exc)
        return "ready", info.summary() + (" - times are not a phone's" if self.emulated else "")
