"""The aarch64 bundle: vitdeploy's own programs for a phone that has nothing built for it.

    bundle = build_bundle("executorch", env, runner=binary)   # or build_bundle("onnxruntime", env)
    remote = install_bundle(device, bundle, log)               # pushes once per content
    device.run([*launch_argv(remote, bundle), *arguments], timeout)

A part is a self-contained folder: the program (`executorch`: the native runner beside
its ExecuTorch libraries; `onnxruntime`: Python 3.11 with its standard library, numpy
and ONNX Runtime), and under `lib/` the glibc loader and every shared library the
program's ELF files need, taken from the emulated CPU's Debian arm64 sysroot
(`qemu_setup`), so the same files run under emulation and on the phone. Android has no
glibc, so the program is started through the bundle's own loader:
`lib/ld-linux-aarch64.so.1 --library-path lib PROGRAM ...`.

A built part lives in the user cache, keyed by what it is built from; on the device it
sits beside the working folder (which each session's cleanup removes) in a folder named
after its content digest, with a stamp file pushed last. A device whose stamp matches
gets nothing pushed; every installation is checked by starting the program once, and a
part that does not start is pushed again once before the error.
"""

from __future__ import annotations

import compileall
import hashlib
import json
import posixpath
import py_compile
import shlex
import shutil
import sys
import tarfile
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from bench_runner.devices.base import Device, DeviceError
from bench_runner.elf import elf_machine, needed_libraries
from bench_runner.harness.base import HarnessError
from vitdeploy.user_cache import user_cache_dir

# Bump when what a part holds changes: built parts are keyed by it.
RECIPE_VERSION = 1
PARTS = ("executorch", "onnxruntime")
STAMP_NAME = ".vitdeploy-bundle.json"
LIB_DIR = "lib"
LOADER = f"{LIB_DIR}/ld-linux-aarch64.so.1"
CACHE_DIR_NAME = "phone-bundles"
DEVICE_DIR_NAME = "vitdeploy-bundles"
SYSROOT_LIBRARY_DIRS = ("lib/aarch64-linux-gnu", "usr/lib/aarch64-linux-gnu")
PYTHON = "bin/python3.11"
STDLIB = "lib/python3.11"
SITE = "lib/python3/dist-packages"  # where Debian's site module looks, relative to the prefix
RUNNER_DIR = "runner"
# What the agent never imports: tests, GUI and packaging tools, ONNX Runtime's offline tools.
PRUNED = frozenset({"test", "tests", "idlelib", "tkinter", "turtledemo", "ensurepip", "lib2to3", "pydoc_data",
                    "config-3.11-aarch64-linux-gnu", "__pycache__"})
# ONNX Runtime's C API library too: its Python binding holds the runtime itself.
PRUNED_SITE = ("onnxruntime/transformers", "onnxruntime/tools", "onnxruntime/quantization", "onnxruntime/datasets",
               "onnxruntime/capi/libonnxruntime.so.*")
# What starts each part's program once; its output must name the part.
SMOKE_ARGUMENTS = {
    "executorch": ("--version",),
    "onnxruntime": ("-c", "import numpy, onnxruntime; print('onnxruntime', onnxruntime.__version__)"),
}
SMOKE_TIMEOUT_SECONDS = 120.0
GLIBC_FALLBACK = (
    "vitdeploy's aarch64 bundle starts glibc programs through their own loader, which most Android phones "
    "run but some refuse; build ExecuTorch's executor_runner and ONNX Runtime's onnxruntime_perf_test for "
    "the phone and name them in the profile's [harness] section instead"
)

Log = Callable[[str], None]


def _to_stderr(line: str) -> None:
    print(line, file=sys.stderr)


@dataclass(frozen=True)
class Bundle:
    """A built part in the local folder `path`: `program` (relative) is what it starts,
    `digest` the sha256 of its files (names, modes, contents)."""

    part: str
    path: Path
    program: str
    digest: str
    files: int
    size_bytes: int

    @property
    def name(self) -> str:
        """The part's folder name on a device: the part and its content digest."""
        return f"{self.part}-{self.digest[:16]}"

    def stamp(self) -> str:
        """The stamp file's text, the last thing pushed: a device holding it holds the part."""
        return json.dumps({"part": self.part, "digest": self.digest, "program": self.program,
                           "files": self.files, "size_bytes": self.size_bytes}, sort_keys=True) + "\n"


def bundle_source():
    """The emulated CPU's environment, which the bundle is built from; HarnessError if absent."""
    from bench_runner.devices.qemu_setup import find_qemu_arm64

    env = find_qemu_arm64(user_cache_dir())
    if env is None or env.executorch_root is None:
        raise HarnessError(
            "vitdeploy's aarch64 bundle for phones is built from the emulated ARM64 CPU's Debian arm64 packages, "
            "which are not set up: install Debian's g++-aarch64-linux-gnu and run "
            "`vitdeploy devices setup qemu-arm64` once"
        )
    return env


def build_bundle(part: str, env, runner: Path | None = None, cache_root: Path | None = None,
                 log: Log = _to_stderr) -> Bundle:
    """The bundle part `part` built from the emulated CPU's environment `env` (a
    `QemuEnvironment`); the `executorch` part needs the aarch64 `runner` binary. Built
    once into the user cache (or `cache_root`); later calls return at once."""
    if part not in PARTS:
        raise HarnessError(f"unknown bundle part {part!r}; choose from {', '.join(PARTS)}")
    if part == "executorch" and runner is None:
        raise HarnessError("the executorch bundle part needs the aarch64 native runner")
    key = _source_key(part, env, runner)
    final = Path(cache_root or user_cache_dir()) / CACHE_DIR_NAME / f"{part}-{key[:20]}"
    if not (final / STAMP_NAME).is_file():
        log(f"phone bundle: assembling the aarch64 {part} part from {env.sysroot}")
        final.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{final.name}-", dir=final.parent))
        try:
            program = _assemble(part, env, runner, staging)
            _write_stamp(staging, part, program)
            staging.chmod(0o755)
            try:
                staging.rename(final)
            except OSError:
                if not (final / STAMP_NAME).is_file():
                    raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return read_bundle(final)


def read_bundle(path: Path) -> Bundle:
    """The bundle part in folder `path`, as its stamp describes it."""
    stamp = json.loads((Path(path) / STAMP_NAME).read_text(encoding="utf-8"))
    return Bundle(stamp["part"], Path(path), stamp["program"], stamp["digest"], stamp["files"], stamp["size_bytes"])


def launch_argv(remote: str, bundle: Bundle) -> list[str]:
    """The device argv prefix that starts the part's program from its folder `remote`."""
    return [posixpath.join(remote, LOADER), "--library-path", posixpath.join(remote, LIB_DIR),
            posixpath.join(remote, bundle.program)]


def device_bundle_dir(device: Device) -> str:
    """Where a device keeps bundle parts: beside its working folder, which sessions remove."""
    return posixpath.join(posixpath.dirname(device.workdir.rstrip("/")), DEVICE_DIR_NAME)


def install_bundle(device: Device, bundle: Bundle, log: Log = _to_stderr) -> str:
    """Make `bundle` present and startable on `device`; return its folder there.

    Nothing is pushed when the device already holds the part's stamp. The part must
    start (SMOKE_ARGUMENTS) after installing; a part already there that does not start
    is removed and pushed again once. HarnessError when the device is not arm64 or the
    part does not start even freshly pushed.
    """
    abi = device.info().abi
    if abi and not abi.startswith("arm64"):
        raise HarnessError(
            f"device {device.name} reports ABI {abi}, and vitdeploy's phone bundle is built for arm64-v8a only; "
            "name native tools built for this ABI in the profile's [harness] section"
        )
    remote = posixpath.join(device_bundle_dir(device), bundle.name)
    stamp = device.run(["cat", posixpath.join(remote, STAMP_NAME)], timeout=60)
    fresh = stamp.exit_code != 0 or stamp.stdout != bundle.stamp()
    if fresh:
        _push(device, bundle, remote, log)
    problem = _start_problem(device, bundle, remote)
    if problem is not None and not fresh:
        log(f"phone bundle: {bundle.name} on {device.name} does not start ({problem}); pushing it again")
        _push(device, bundle, remote, log)
        problem = _start_problem(device, bundle, remote)
    if problem is not None:
        raise HarnessError(f"the aarch64 bundle {bundle.name} does not start on device {device.name}: {problem}. "
                           + GLIBC_FALLBACK)
    return remote


def _push(device: Device, bundle: Bundle, remote: str, log: Log) -> None:
    """Replace every part of the same kind on the device with `bundle`: one tar archive
    (a push per file costs a round trip each, and a part has thousands), unpacked there
    by the device's `tar`, then the stamp."""
    started = time.monotonic()
    log(f"phone bundle: pushing {bundle.name} ({bundle.size_bytes / 1e6:.1f} MB, {bundle.files} files) to "
        f"{device.name}:{remote}, once")
    folder = device_bundle_dir(device)
    archive = posixpath.join(folder, f"{bundle.name}.tar")
    with tempfile.TemporaryDirectory(prefix="vitdeploy-bundle-") as scratch:
        local = Path(scratch) / "part.tar"
        with tarfile.open(local, "w", format=tarfile.USTAR_FORMAT) as tar:
            for path in sorted(bundle.path.rglob("*")):
                if path.is_file() and path.name != STAMP_NAME:
                    tar.add(path, path.relative_to(bundle.path).as_posix(), recursive=False)
        clear = f"rm -rf {shlex.quote(folder)}/{bundle.part}-* && mkdir -p {shlex.quote(remote)}"
        _run_or_fail(device, ["sh", "-c", clear], f"clear {folder}")
        device.push(local, archive)
    _run_or_fail(device, ["sh", "-c", f"tar -xf {shlex.quote(archive)} -C {shlex.quote(remote)}; status=$?; "
                                      f"rm -f {shlex.quote(archive)}; exit $status"], f"unpack {archive}")
    device.push(bundle.path / STAMP_NAME, posixpath.join(remote, STAMP_NAME))
    log(f"phone bundle: {bundle.name} pushed in {time.monotonic() - started:.1f} s")


def _run_or_fail(device: Device, argv: list[str], doing: str) -> None:
    result = device.run(argv, timeout=600)
    if result.exit_code != 0:
        said = (result.stderr or result.stdout).strip()
        raise DeviceError(f"device {device.name} could not {doing} (exit status {result.exit_code}): {said}; "
                          "check free space (`adb shell df /data/local/tmp`)")


def _start_problem(device: Device, bundle: Bundle, remote: str) -> str | None:
    """None when the part's program starts, names its part and exits 0; else what went
    wrong, in a line."""
    result = device.run([*launch_argv(remote, bundle), *SMOKE_ARGUMENTS[bundle.part]], timeout=SMOKE_TIMEOUT_SECONDS)
    if result.exit_code == 0 and bundle.part in result.stdout:
        return None
    said = (result.stderr or result.stdout).strip().splitlines()
    return f"exit status {result.exit_code}" + (f": {said[-1]}" if said else ", and it printed nothing")


# --- assembling a part --------------------------------------------------------------------


def _source_key(part: str, env, runner: Path | None) -> str:
    digest = hashlib.sha256(f"recipe {RECIPE_VERSION}\npart {part}\n".encode())
    digest.update((env.root / "stamp.json").read_bytes())
    if runner is not None:
        digest.update(f"runner {Path(runner).parent.name}\n".encode())
    return digest.hexdigest()


def _assemble(part: str, env, runner: Path | None, into: Path) -> str:
    """Copy the part's files into `into`; return the program's relative path."""
    if part == "executorch":
        shutil.copytree(Path(runner).parent, into / RUNNER_DIR)
        program = f"{RUNNER_DIR}/{Path(runner).name}"
    else:
        (into / PYTHON).parent.mkdir(parents=True)
        shutil.copy2(env.sysroot / "usr" / "bin" / "python3.11", into / PYTHON)
        _copy_pruned(env.sysroot / "usr" / "lib" / "python3.11", into / STDLIB)
        _copy_pruned(env.site_dir, into / SITE)
        for pattern in PRUNED_SITE:
            for path in (into / SITE).glob(pattern):
                shutil.rmtree(path) if path.is_dir() else path.unlink()
        _precompile(into / STDLIB)
        _precompile(into / SITE)
        program = PYTHON
    _copy_libraries(env.sysroot, into)
    return program


def _copy_pruned(source: Path, target: Path) -> None:
    shutil.copytree(source, target, symlinks=False, ignore=lambda _dir, names: [n for n in names if n in PRUNED])


def _precompile(folder: Path) -> None:
    """Byte-compile the Python files under `folder` here (the pyc format does not depend
    on the CPU), so the phone does not compile them at its first start; only when this
    interpreter is the bundle's Python version."""
    if sys.version_info[:2] == (3, 11):
        compileall.compile_dir(folder, quiet=2, workers=1,
                               invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH)


def _copy_libraries(sysroot: Path, into: Path) -> None:
    """Put into `lib/` the loader and every library the part's aarch64 ELF files need
    that the part does not hold itself, found in the sysroot."""
    search = [sysroot / directory for directory in SYSROOT_LIBRARY_DIRS]
    (into / LIB_DIR).mkdir(exist_ok=True)
    held = {path.name for path in into.rglob("*") if path.is_file()}
    wanted = ["ld-linux-aarch64.so.1"]
    queue = [path for path in into.rglob("*") if path.is_file() and _is_aarch64(path)]
    while queue:
        for name in needed_libraries(queue.pop()):
            if name in held or name in wanted:
                continue
            found = next((directory / name for directory in search if (directory / name).exists()), None)
            if found is not None:
                wanted.append(name)
                queue.append(found)
    for name in wanted:
        source = next(directory / name for directory in search if (directory / name).exists())
        shutil.copy2(source, into / LIB_DIR / name, follow_symlinks=True)


def _is_aarch64(path: Path) -> bool:
    try:
        return elf_machine(path) == "aarch64"
    except OSError:
        return False


def _write_stamp(folder: Path, part: str, program: str) -> None:
    digest, files, size = hashlib.sha256(), 0, 0
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            relative = path.relative_to(folder).as_posix()
            digest.update(f"{relative}\0{path.stat().st_mode & 0o111:o}\0".encode())
            digest.update(hashlib.sha256(path.read_bytes()).digest())
            files, size = files + 1, size + path.stat().st_size
    stamp = {"part": part, "digest": digest.hexdigest(), "program": program, "files": files, "size_bytes": size}
    (folder / STAMP_NAME).write_text(json.dumps(stamp, sort_keys=True) + "\n", encoding="utf-8")
