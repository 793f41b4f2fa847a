"""Compile runner.cpp against an executorch wheel's runtime libraries, once per content.

    binary = build_runner(installed_executorch(), "host")      # or "aarch64"

`wheel_root` is the wheel's `executorch` package directory (holding `include/`, `lib/`
and `version.py`): the installed one for the host, an unpacked aarch64 wheel's for
"aarch64". The result lives in the user cache under `native-runner/<target>-<key>/`,
keyed by the source, the build flags, the compiler's version and the wheel's headers
and libraries; it holds the binary and copies of the libraries it links, found through
an `$ORIGIN` run path, so the directory works wherever it is copied (a device's workdir).
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import platform
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from bench_runner.elf import elf_machine
from bench_runner.harness.base import HarnessError
from vitdeploy.user_cache import user_cache_dir

SOURCE = Path(__file__).with_name("runner.cpp")
BINARY_NAME = "vitdeploy_et_runner"
CACHE_DIR_NAME = "native-runner"
# Registration-only libraries (kernels, the delegate) export nothing the runner calls, so
# they are linked with --no-as-needed: dropped, they fail only at run time ("Backend
# XnnpackBackend is not registered", "Missing operator").
LIBRARIES = (
    "executorch",
    "executorch_kernels_optimized",
    "executorch_kernels_quantized",
    "executorch_backend_xnnpack",
    "executorch_threadpool",
)
# Linking the thread pool is what makes the wheel's CMake package add this definition.
THREADPOOL_DEFINITION = "ET_USE_THREADPOOL"
COMPILER_TIMEOUT_SECONDS = 600

Log = Callable[[str], None]


class RunnerBuildError(HarnessError):
    """The native runner cannot be built: no compiler, an unusable wheel, a failed compile."""


@dataclass(frozen=True)
class Toolchain:
    """The compiler of one target, the Debian package that provides it and the CPU it builds for."""

    compiler: str
    package: str
    machine: str


TOOLCHAINS = {
    "host": Toolchain("g++", "g++", platform.machine()),
    "aarch64": Toolchain("aarch64-linux-gnu-g++", "g++-aarch64-linux-gnu", "aarch64"),
}


def installed_executorch() -> Path:
    """The executorch package directory of this interpreter (found without importing it)."""
    spec = importlib.util.find_spec("executorch")
    if spec is None or not spec.submodule_search_locations:
        raise RunnerBuildError("executorch is not installed in this Python; install vitdeploy's requirements")
    return Path(next(iter(spec.submodule_search_locations)))


def build_runner(wheel_root: Path, target: str = "host", cache_root: Path | None = None, log: Log = print) -> Path:
    """Return the runner binary for `target` built against `wheel_root`, compiling it if needed.

    `cache_root` defaults to the user cache. A build goes into a temporary directory
    renamed into place, so a second call (or another process) finds it complete and
    returns at once. Raises RunnerBuildError when the compiler is missing (naming the
    Debian package), the wheel lacks what the runner needs, or the compile fails.
    """
    toolchain = _toolchain(target)
    compiler = shutil.which(toolchain.compiler)
    if compiler is None:
        raise RunnerBuildError(
            f"{toolchain.compiler} is not on PATH: the {target} native runner needs it; install the "
            f"Debian package {toolchain.package} (sudo apt-get install -y {toolchain.package})"
        )
    if not SOURCE.is_file():
        raise RunnerBuildError(f"the runner's source {SOURCE} is missing: reinstall vitdeploy")
    wheel_root = Path(wheel_root).resolve()
    _check_wheel(wheel_root, toolchain.machine)
    key = _cache_key(wheel_root, _compiler_version(compiler))
    final = Path(cache_root or user_cache_dir()) / CACHE_DIR_NAME / f"{target}-{key[:20]}"
    binary = final / BINARY_NAME
    if not binary.is_file():
        log(f"native runner: compiling the {target} runner with {compiler} against {wheel_root}")
        _build_into(final, compiler, wheel_root)
    return binary


def _build_into(final: Path, compiler: str, wheel_root: Path) -> None:
    """Compile in a scratch directory beside `final`, then rename it into place."""
    final.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{final.name}-", dir=final.parent))
    try:
        _compile(compiler, wheel_root, scratch)
        scratch.chmod(0o755)
        try:
            os.rename(scratch, final)
        except OSError as exc:
            if not (final / BINARY_NAME).is_file():  # not another process's finished build
                raise RunnerBuildError(f"cannot move the built runner to {final} ({exc}); delete it, retry") from None
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _toolchain(target: str) -> Toolchain:
    if target not in TOOLCHAINS:
        raise RunnerBuildError(f"unknown native runner target {target!r}; choose from {', '.join(TOOLCHAINS)}")
    return TOOLCHAINS[target]


def _check_wheel(root: Path, machine: str) -> None:
    missing = [name for name in ("include", "version.py", "lib/cmake/executorch/executorch-config.cmake")
               if not (root / name).exists()]
    missing += [f"lib/lib{name}.so" for name in LIBRARIES if not (root / "lib" / f"lib{name}.so").is_file()]
    if missing:
        raise RunnerBuildError(
            f"{root} is not an executorch wheel's package directory with the shared runtime: it lacks "
            f"{', '.join(missing)} (the runner needs an executorch wheel from 1.5 on)"
        )
    found = elf_machine(root / "lib" / "libexecutorch.so") or "no CPU (not an ELF file)"
    if found != machine:
        raise RunnerBuildError(f"the libraries under {root / 'lib'} are built for {found}, not {machine}")


def _executorch_version(root: Path) -> str:
    match = re.search(r'^__version__\s*=\s*"([^"]+)"', (root / "version.py").read_text(encoding="utf-8"), re.M)
    if match is None:
        raise RunnerBuildError(f"{root / 'version.py'} names no __version__")
    return match.group(1)


def _compile_definitions(root: Path) -> list[str]:
    """What the wheel's CMake package tells consumers to define, plus the thread pool's."""
    config = root / "lib" / "cmake" / "executorch" / "executorch-config.cmake"
    for arguments in re.findall(r"set\(EXECUTORCH_COMPILE_DEFINITIONS\s+([^)]+)\)", config.read_text(encoding="utf-8")):
        names = [name.strip('"') for name in arguments.split()]
        if names:
            return names + [THREADPOOL_DEFINITION]
    raise RunnerBuildError(f"{config} sets no EXECUTORCH_COMPILE_DEFINITIONS; is it an executorch 1.5+ wheel?")


def compiler_arguments(root: Path, source: Path, output: Path) -> list[str]:
    """The compiler's arguments (after its name) that build `output` from `source` against `root`."""
    include = root / "include"
    definitions = _compile_definitions(root) + [f'VITDEPLOY_EXECUTORCH_VERSION="{_executorch_version(root)}"']
    return [
        "-std=c++17", "-O2", "-Wall", "-Wextra",
        *(f"-D{name}" for name in definitions),
        # System include directories: the wheel's own headers warn about deprecated members.
        "-isystem", str(include),
        "-isystem", str(include / "executorch" / "runtime" / "core" / "portable_type" / "c10"),
        str(source), "-o", str(output),
        "-L", str(root / "lib"),
        "-Wl,--push-state,--no-as-needed", *(f"-l{name}" for name in LIBRARIES), "-Wl,--pop-state",
        "-Wl,--enable-new-dtags,-rpath,$ORIGIN",
        "-pthread",
    ]


def _compiler_version(compiler: str) -> str:
    result = subprocess.run([compiler, "--version"], capture_output=True, text=True, timeout=60)
    if result.returncode != 0:
        raise RunnerBuildError(f"{compiler} --version failed: {result.stderr.strip()}")
    return result.stdout.strip()


def _cache_key(root: Path, compiler_version: str) -> str:
    digest = hashlib.sha256()
    digest.update(SOURCE.read_bytes())
    # The arguments with the wheel's path taken out: the same wheel elsewhere gives the same key.
    arguments = compiler_arguments(root, Path("SOURCE"), Path("OUTPUT"))
    digest.update("\0".join(argument.replace(str(root), "WHEEL") for argument in arguments).encode())
    digest.update(compiler_version.encode())
    for path in sorted((root / "include").rglob("*")):
        if path.is_file():
            digest.update(f"{path.relative_to(root)}\0{path.stat().st_size}\n".encode())
    for library in sorted((root / "lib").glob("*.so")):
        digest.update(f"{library.name}\0{library.stat().st_size}\n".encode())
        digest.update(library.read_bytes())
    return digest.hexdigest()


def _compile(compiler: str, root: Path, directory: Path) -> None:
    for name in LIBRARIES:
        shutil.copy2(root / "lib" / f"lib{name}.so", directory / f"lib{name}.so")
    argv = [compiler, *compiler_arguments(root, SOURCE, directory / BINARY_NAME)]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=COMPILER_TIMEOUT_SECONDS)
    if result.returncode != 0:
        tail = "\n".join(result.stderr.strip().splitlines()[-20:])
        raise RunnerBuildError(f"compiling the native runner failed (status {result.returncode}):\n{tail}")
