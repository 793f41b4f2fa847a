"""The emulated ARM64 CPU: aarch64 programs run on the host under user-mode QEMU.

`qemu-aarch64 -cpu MODEL -L SYSROOT PROGRAM ...` translates one aarch64 process; the
emulated process sees the host's file system (with SYSROOT's files shadowing the host's
at the same absolute paths), so pushing a file is a local copy into a working directory.
There is no binfmt_misc registration here: an emulated program cannot start another
program, so each command must be a single process (the Python agent is one, and so is
the native runner that runs `.pte` files: `bench_runner.native_runner`).

Emulated timings are about 250-500x the host's and do not depend on the CPU model: they
are a functional and relative signal, never a phone's latency. `info()` says
`emulated=True` so every record carries that.

The build (`qemu_setup`) is imported when the emulated CPU is opened or set up, not
with this module, so that registering the kind stays cheap.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Mapping, Sequence

from bench_runner.devices.base import CommandResult, DeviceError, DeviceInfo
from bench_runner.devices.kinds import DeviceKind, Log, NativeRunner
from bench_runner.devices.process import run_process_group
from vitdeploy.user_cache import user_cache_dir

if TYPE_CHECKING:
    from bench_runner.devices.qemu_setup import QemuEnvironment
    from bench_runner.profiles import DeviceProfile

DEFAULT_CPU = "cortex-a76"
PYTHON_NAMES = ("python", "python3", "python3.11")
SYSROOT_PROGRAM_DIRS = ("usr/bin", "bin", "usr/sbin", "sbin")


def emulated_argv(env: QemuEnvironment, cpu: str, argv: Sequence[str]) -> list[str]:
    """The host command that runs `argv` on the emulated CPU.

    A leading "python", "python3" or "python3.11" becomes the sysroot's Python; another
    bare program name is looked up in the sysroot; a path is used as it is (it must be
    an aarch64 executable).
    """
    if not argv:
        raise DeviceError("qemu-arm64: nothing to run (empty argv)")
    program = argv[0]
    if program in PYTHON_NAMES:
        executable = str(env.python)
    elif "/" not in program:
        found = [env.sysroot / d / program for d in SYSROOT_PROGRAM_DIRS if (env.sysroot / d / program).is_file()]
        if not found:
            raise DeviceError(
                f"qemu-arm64: no program {program!r} in the arm64 sysroot {env.sysroot}; the emulated CPU "
                "runs aarch64 executables only (give a path to one, or run it through python3)"
            )
        executable = str(found[0])
    else:
        executable = program
    return [str(env.qemu), "-cpu", cpu, "-L", str(env.sysroot), executable, *argv[1:]]


def emulated_process_env(env: QemuEnvironment, host_env: Mapping[str, str]) -> dict[str, str]:
    """The environment of an emulated process: the host's, without its Python and QEMU
    settings, with PYTHONPATH pointing at the aarch64 wheels."""
    kept = {k: v for k, v in host_env.items() if not k.startswith(("PYTHON", "QEMU_", "VIRTUAL_ENV"))}
    return {**kept, "PYTHONPATH": env.python_path, "PYTHONNOUSERSITE": "1"}


class QemuArm64Device:
    """An emulated ARM64 CPU (`kind` "qemu-arm64") built by `setup_qemu_arm64`.

    `cpu` is a QEMU CPU model (`qemu-aarch64 -cpu help` lists them); `cortex-a76` and
    `cortex-a53` are phone-like, `max` exposes features (SME) no phone has. The working
    directory is a fresh folder under the environment's cache that `cleanup()` removes.
    """

    kind = "qemu-arm64"

    def __init__(self, env: QemuEnvironment, cpu: str = DEFAULT_CPU, name: str = "qemu-arm64") -> None:
        self.env = env
        self.cpu = cpu
        self.name = name
        self.workdir = str(env.root.parent / "qemu-arm64-work" / f"session-{uuid.uuid4().hex[:12]}")

    @classmethod
    def from_profile(cls, profile: DeviceProfile) -> QemuArm64Device:
        """Open the emulated CPU a profile describes, using the environment in the user cache."""
        from bench_runner.devices.qemu_setup import find_qemu_arm64

        cache = user_cache_dir()
        env = find_qemu_arm64(cache)
        if env is None:
            raise DeviceError(
                f"{profile.name}: the emulated ARM64 CPU is not set up in {cache}; "
                "run `vitdeploy devices setup qemu-arm64` first"
            )
        return cls(env, cpu=profile.qemu_cpu or DEFAULT_CPU, name=profile.name)

    @property
    def runtimes(self) -> frozenset[str]:
        """The runtimes the emulated environment runs: ONNX Runtime in its Python, and
        ExecuTorch through the native runner once its layer is built."""
        return frozenset({"onnxruntime"} | ({"executorch"} if self.env.executorch_root else set()))

    def _local(self, remote: str) -> Path:
        return Path(self.workdir) / remote if not os.path.isabs(remote) else Path(remote)

    def push(self, local: Path, remote: str) -> None:
        """Copy a local file or folder to `remote` (relative paths are inside the workdir)."""
        if not Path(local).exists():
            raise DeviceError(f"{self.name}: cannot push {local}: no such file")
        target = self._local(remote)
        target.parent.mkdir(parents=True, exist_ok=True)
        if Path(local).is_dir():
            shutil.copytree(local, target, dirs_exist_ok=True)
        else:
            shutil.copy2(local, target)

    def pull(self, remote: str, local: Path) -> None:
        """Copy `remote` (relative paths are inside the workdir) back to `local`."""
        source = self._local(remote)
        if not source.exists():
            raise DeviceError(f"{self.name}: cannot pull {remote}: no such file in {self.workdir}")
        Path(local).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, local)

    def run(self, argv: Sequence[str], timeout: float) -> CommandResult:
        """Run `argv` under `qemu-aarch64` in the workdir; DeviceError if it outlives `timeout` s."""
        command = emulated_argv(self.env, self.cpu, argv)
        Path(self.workdir).mkdir(parents=True, exist_ok=True)
        try:
            return run_process_group(
                command, timeout, cwd=self.workdir, env=emulated_process_env(self.env, os.environ)
            )
        except OSError as exc:
            raise DeviceError(
                f"{self.name}: cannot start {self.env.qemu}: {exc}; run `vitdeploy devices setup qemu-arm64` again"
            ) from None
        except subprocess.TimeoutExpired:
            raise DeviceError(
                f"{self.name}: {' '.join(argv)} did not finish within {timeout:g} s under emulation "
                "(about 250-500x slower than the host) and was killed; give it a longer timeout or fewer runs"
            ) from None

    def info(self) -> DeviceInfo:
        """The emulated CPU's fingerprint; `emulated` is always True."""
        versions = self.env.versions
        return DeviceInfo(
            kind=self.kind,
            name=self.name,
            abi="arm64-v8a",
            cpu_model=f"QEMU {self.cpu} (emulated)",
            cores=os.cpu_count() or 1,
            os=(
                f"QEMU {versions.get('qemu', '?')} user-mode on the host; Debian arm64 sysroot "
                f"({versions.get('debian_suites', '?')}), Python {versions.get('python', '?')}"
            ),
            emulated=QEMU_ARM64.emulated,
        )

    def cleanup(self) -> None:
        """Remove the working directory and everything pushed into it."""
        shutil.rmtree(self.workdir, ignore_errors=True)


def set_up(log: Log) -> None:
    """Build the emulated CPU in the user cache (once; later calls return at once)."""
    from bench_runner.devices.qemu_setup import find_qemu_arm64, setup_qemu_arm64

    cache = user_cache_dir()
    if find_qemu_arm64(cache) is None:
        log("setting up the emulated ARM64 CPU (once; about a minute)")
    env = setup_qemu_arm64(cache, log=log)
    executorch = f", ExecuTorch {env.versions['executorch']} (native runner)" if env.executorch_root else ""
    log(f"qemu-arm64 ready in {env.root}: QEMU {env.versions.get('qemu', '?')}, "
        f"Python {env.versions.get('python', '?')}{executorch}")


def executorch_root(profile: DeviceProfile) -> Path:
    """The aarch64 executorch package the emulated CPU's native runner links."""
    from bench_runner.devices.qemu_setup import find_qemu_arm64

    env = find_qemu_arm64(user_cache_dir())
    if env is None or env.executorch_root is None:
        raise DeviceError(
            f"{profile.name}: ExecuTorch is not set up for the emulated CPU; install Debian's "
            "g++-aarch64-linux-gnu and run `vitdeploy devices setup qemu-arm64`"
        )
    return env.executorch_root


QEMU_ARM64 = DeviceKind(
    name=QemuArm64Device.kind,
    open=QemuArm64Device.from_profile,
    emulated=True,
    always_listed=True,
    qemu_cpu=DEFAULT_CPU,
    setup=set_up,
    native_runner=NativeRunner("aarch64", executorch_root),
    on_host_cpus=True,
)
