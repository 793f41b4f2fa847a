"""One-time build of the emulated ARM64 CPU: a static QEMU, an arm64 sysroot, aarch64 wheels.

Nothing is installed into the system. `apt-get` runs against a private state directory
whose sources are converted from the system's apt configuration (so the mirror is
whatever the system uses), packages are unpacked with `dpkg -x`, and the aarch64 wheels
go into a target directory through pip's configured indexes. A second layer holds the
aarch64 executorch wheel (its runtime libraries and headers, no torch) and builds the
native runner against it (`bench_runner.native_runner`), which is how `.pte` files run
under emulation: an aarch64 torch would be needed for ExecuTorch's Python bindings, and
the package index has that only as a CUDA build. Everything is built in a
temporary directory beside the final one and renamed into place, with a stamp file
holding the versions; once built, `setup_qemu_arm64` returns at once.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Mapping, Sequence

from bench_runner.devices.base import DeviceError

RECIPE_VERSION = 2
QEMU_PACKAGE = "qemu-user-static"
# coreutils: the native harnesses read /proc with `cat` before and after each artifact.
SYSROOT_PACKAGES = ("python3.11", "libstdc++6", "libatomic1", "libgomp1", "coreutils")
SYSROOT_PYTHON = "usr/bin/python3.11"
WHEEL_PLATFORM = "manylinux_2_28_aarch64"
WHEEL_PYTHON_VERSION = "3.11"
ONNXRUNTIME_WHEELS = ("numpy", "onnxruntime")
EXECUTORCH_WHEELS = ("executorch",)
RUNNER_TARGET = "aarch64"
STAMP_NAME = "stamp.json"
DAMAGED_DOWNLOAD_FIX = "the download may be damaged; run the setup again"
BASE_DIR_NAME = "qemu-arm64"
EXECUTORCH_DIR_NAME = "qemu-arm64-executorch"
# Cortex-A76 identification in the kernel's /proc/cpuinfo format. ONNX Runtime's CPU
# detection reads this file; QEMU 7.2 would otherwise show the host's x86 one.
ARM_CPUINFO_PROCESSOR = (
    "processor\t: {index}\n"
    "BogoMIPS\t: 50.00\n"
    "Features\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid "
    "asimdrdm lrcpc dcpop asimddp\n"
    "CPU implementer\t: 0x41\n"
    "CPU architecture: 8\n"
    "CPU variant\t: 0x4\n"
    "CPU part\t: 0xd0b\n"
    "CPU revision\t: 1\n"
)

Log = Callable[[str], None]


class QemuSetupError(DeviceError):
    """A step of building the emulated ARM64 environment failed; the message names the fix."""


@dataclass(frozen=True)
class QemuEnvironment:
    """A built emulated-ARM64 environment.

    `qemu` is the static `qemu-aarch64` binary, `sysroot` the arm64 root given to `-L`,
    `python` the sysroot's Python 3.11, `site_dir` the aarch64 wheels (numpy, onnxruntime),
    `executorch_root` the aarch64 executorch wheel's package directory (runtime libraries
    and headers for the native runner; None until its layer is built). `versions` holds
    what the stamps recorded: "qemu", "python", "debian_suites" and one entry per wheel.
    """

    root: Path
    qemu: Path
    sysroot: Path
    python: Path
    site_dir: Path
    executorch_root: Path | None = None
    versions: Mapping[str, str] = field(default_factory=dict, hash=False)

    @property
    def python_path(self) -> str:
        """The PYTHONPATH that makes the emulated Python see the aarch64 wheels."""
        return str(self.site_dir)


# --- apt sources: the system's configuration turned into a private one -----------------

ONE_LINE_MULTIVALUE_OPTIONS = {
    "arch": "Architectures",
    "arch+": "Architectures-Add",
    "arch-": "Architectures-Remove",
    "lang": "Languages",
    "lang+": "Languages-Add",
    "lang-": "Languages-Remove",
    "target": "Targets",
    "target+": "Targets-Add",
    "target-": "Targets-Remove",
}


@dataclass(frozen=True)
class AptSource:
    """One entry of an apt sources configuration, in deb822 terms.

    `options` holds the remaining fields (Signed-By, Architectures, Enabled, ...) as
    (field name, raw value) pairs; a multi-line value (an embedded key) keeps its
    continuation lines.
    """

    types: tuple[str, ...]
    uris: tuple[str, ...]
    suites: tuple[str, ...]
    components: tuple[str, ...] = ()
    options: tuple[tuple[str, str], ...] = ()

    def option(self, name: str) -> str | None:
        """The value of option `name` (field names are case-insensitive), or None."""
        for key, value in self.options:
            if key.lower() == name.lower():
                return value
        return None


def parse_one_line_sources(text: str, origin: str = "sources.list") -> list[AptSource]:
    """Parse the one-line format (`deb [opt=val ...] URI SUITE [COMPONENT...]`)."""
    sources = []
    for number, raw in enumerate(text.splitlines(), start=1):
        tokens = raw.split("#", 1)[0].split()
        if not tokens:
            continue
        kind, rest = tokens[0], tokens[1:]
        options: list[tuple[str, str]] = []
        if rest and rest[0].startswith("["):
            option_text = " ".join(rest)
            end = option_text.find("]")
            if end < 0:
                raise QemuSetupError(f"{origin}:{number}: unclosed '[' in {raw.strip()!r}")
            options = [_one_line_option(item, origin, number) for item in option_text[1:end].split()]
            rest = option_text[end + 1 :].split()
        if len(rest) < 2:
            raise QemuSetupError(f"{origin}:{number}: expected 'TYPE URI SUITE [COMPONENT...]', got {raw.strip()!r}")
        sources.append(AptSource((kind,), (rest[0],), (rest[1],), tuple(rest[2:]), tuple(options)))
    return sources


def _one_line_option(item: str, origin: str, number: int) -> tuple[str, str]:
    name, sep, value = item.partition("=")
    if not sep:
        raise QemuSetupError(f"{origin}:{number}: option {item!r} has no '='")
    if name in ONE_LINE_MULTIVALUE_OPTIONS:
        return ONE_LINE_MULTIVALUE_OPTIONS[name], value.replace(",", " ")
    return name, value


def parse_deb822_sources(text: str, origin: str = "debian.sources") -> list[AptSource]:
    """Parse the deb822 format (`.sources` files): stanzas of `Field: value` lines."""
    sources = []
    for stanza in _deb822_stanzas(text):
        fields = {key.lower(): (key, value) for key, value in stanza}
        missing = [name for name in ("types", "uris", "suites") if name not in fields]
        if missing:
            raise QemuSetupError(f"{origin}: a stanza lacks {', '.join(missing)}: {dict(stanza)}")
        listed = {"types", "uris", "suites", "components"}
        sources.append(
            AptSource(
                types=tuple(fields["types"][1].split()),
                uris=tuple(fields["uris"][1].split()),
                suites=tuple(fields["suites"][1].split()),
                components=tuple(fields.get("components", ("", ""))[1].split()),
                options=tuple((key, value) for key, value in stanza if key.lower() not in listed),
            )
        )
    return sources


def _deb822_stanzas(text: str) -> list[list[tuple[str, str]]]:
    stanzas: list[list[tuple[str, str]]] = []
    current: list[tuple[str, str]] = []
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        if not line.strip():
            if current:
                stanzas.append(current)
                current = []
        elif line[0] in " \t" and current:
            key, value = current[-1]
            current[-1] = (key, f"{value}\n{line.rstrip()}")
        else:
            key, _, value = line.partition(":")
            current.append((key.strip(), value.strip()))
    if current:
        stanzas.append(current)
    return stanzas


def read_system_sources(etc_apt: Path = Path("/etc/apt")) -> list[AptSource]:
    """Every entry of the system's apt sources: `sources.list`, `sources.list.d/*.list|*.sources`."""
    sources: list[AptSource] = []
    main = etc_apt / "sources.list"
    if main.is_file():
        sources += parse_one_line_sources(main.read_text(encoding="utf-8"), str(main))
    parts = etc_apt / "sources.list.d"
    for path in sorted(parts.glob("*")) if parts.is_dir() else []:
        if path.suffix == ".list":
            sources += parse_one_line_sources(path.read_text(encoding="utf-8"), str(path))
        elif path.suffix == ".sources":
            sources += parse_deb822_sources(path.read_text(encoding="utf-8"), str(path))
    return sources


def private_sources(sources: Sequence[AptSource], architectures: Sequence[str]) -> list[AptSource]:
    """The binary (`deb`) entries that can serve `architectures`, restricted to them.

    Disabled entries (`Enabled: no`), source-only entries and entries limited to other
    architectures are dropped.
    """
    kept = []
    for source in sources:
        if "deb" not in source.types or (source.option("Enabled") or "yes").lower() == "no":
            continue
        options = [(k, v) for k, v in source.options if k.lower() != "enabled"]
        restriction = source.option("Architectures")
        if restriction is not None:
            usable = [arch for arch in restriction.split() if arch in architectures]
            if not usable:
                continue
            options = [(k, " ".join(usable) if k.lower() == "architectures" else v) for k, v in options]
        kept.append(replace(source, types=("deb",), options=tuple(options)))
    return kept


def render_deb822(sources: Sequence[AptSource]) -> str:
    """Write entries as a deb822 `.sources` file."""
    stanzas = []
    for source in sources:
        lines = [
            f"Types: {' '.join(source.types)}",
            f"URIs: {' '.join(source.uris)}",
            f"Suites: {' '.join(source.suites)}",
        ]
        if source.components:
            lines.append(f"Components: {' '.join(source.components)}")
        lines += [f"{key}: {value}" for key, value in source.options]
        stanzas.append("\n".join(lines) + "\n")
    return "\n".join(stanzas)


def private_apt_config(state_dir: Path, architectures: Sequence[str]) -> str:
    """An apt.conf, read after the system's, that keeps all of apt's state in `state_dir`.

    The system's configuration (proxies, keyrings) still applies, but its sources,
    preferences, installed-package database and caches do not, and the hooks the system
    runs after `apt-get update` are cleared so nothing outside `state_dir` changes.
    """
    d = state_dir
    arch_list = " ".join(f'"{arch}";' for arch in architectures)
    return "\n".join(
        [
            f'Dir::State "{d}/state";',
            f'Dir::State::lists "{d}/state/lists";',
            f'Dir::State::status "{d}/state/status";',
            f'Dir::Cache "{d}/cache";',
            f'Dir::Cache::archives "{d}/cache/archives";',
            f'Dir::Etc::SourceList "{d}/sources.list";',
            f'Dir::Etc::SourceParts "{d}/sources.list.d";',
            f'Dir::Etc::Preferences "{d}/preferences";',
            f'Dir::Etc::PreferencesParts "{d}/preferences.d";',
            f'APT::Architecture "{architectures[0]}";',
            "#clear APT::Architectures;",
            f"APT::Architectures {{ {arch_list} }};",
            'APT::Sandbox::User "root";',
            'Acquire::Languages "none";',
            "#clear APT::Update::Pre-Invoke;",
            "#clear APT::Update::Post-Invoke;",
            "#clear APT::Update::Post-Invoke-Success;",
            "#clear DPkg::Pre-Invoke;",
            "#clear DPkg::Post-Invoke;",
            "#clear DPkg::Pre-Install-Pkgs;",
            "",
        ]
    )


# --- the build ---------------------------------------------------------------------------


def find_qemu_arm64(cache_root: Path) -> QemuEnvironment | None:
    """The environment already built under `cache_root`, or None if there is none (yet)."""
    base = _read_stamp(Path(cache_root) / BASE_DIR_NAME)
    if base is None or base["request"]["recipe"] != RECIPE_VERSION:
        return None
    env = _environment(Path(cache_root) / BASE_DIR_NAME, base)
    layer_dir = Path(cache_root) / EXECUTORCH_DIR_NAME
    layer = _read_stamp(layer_dir)
    if layer is None or layer.get("base_stamp") != base.get("created"):
        return env
    versions = {**env.versions, **layer["wheels"]}
    return replace(env, executorch_root=layer_dir / "site" / "executorch", versions=versions)


def setup_qemu_arm64(cache_root: Path, log: Log = print) -> QemuEnvironment:
    """Build (once) and return the emulated ARM64 environment under `cache_root`.

    The first call needs the network (the system's apt mirror and pip's index); a second
    call with the same request returns at once. The wheels are pinned to the versions
    installed on the host where there are any, so host and emulated records compare the
    same runtime. The executorch layer (its aarch64 wheel, about 17 MB, and the native
    runner built against it) needs Debian's aarch64 cross compiler; without it the layer
    is left out and the log says how to add it. Raises QemuSetupError naming the failed
    step and the fix.
    """
    cache_root = Path(cache_root)
    cache_root.mkdir(parents=True, exist_ok=True)
    base_request = {"recipe": RECIPE_VERSION, "wheels": _host_pins(ONNXRUNTIME_WHEELS)}
    base_dir = cache_root / BASE_DIR_NAME
    stamp = _read_stamp(base_dir)
    if stamp is None or stamp.get("request") != base_request:
        _build_atomically(base_dir, lambda build: _build_base(build, base_request, log), log)
    from bench_runner.native_runner.build import TOOLCHAINS

    cross = TOOLCHAINS[RUNNER_TARGET]
    if shutil.which(cross.compiler) is None:
        log(f"qemu-arm64: {cross.compiler} is not installed, so .pte artifacts cannot run under emulation; "
            f"install Debian's {cross.package} (sudo apt-get install -y {cross.package}) and run the setup again")
    else:
        base_stamp = _read_stamp(base_dir)
        base = _environment(base_dir, base_stamp)
        layer_request = {"recipe": RECIPE_VERSION, "wheels": _host_pins(EXECUTORCH_WHEELS)}
        layer_dir = cache_root / EXECUTORCH_DIR_NAME
        layer = _read_stamp(layer_dir)
        if layer is None or layer.get("request") != layer_request or layer.get("base_stamp") != base_stamp["created"]:
            _build_atomically(
                layer_dir, lambda build: _build_executorch_layer(build, layer_request, base, base_stamp, log), log
            )
    env = find_qemu_arm64(cache_root)
    if env is None:
        raise QemuSetupError(f"{base_dir / STAMP_NAME} is unreadable after the build; delete {base_dir} and retry")
    return env


def _environment(root: Path, stamp: Mapping) -> QemuEnvironment:
    versions = {
        "qemu": stamp["qemu"],
        "python": stamp["packages"]["python3.11"],
        "debian_suites": " ".join(stamp["apt_suites"]),
        **stamp["wheels"],
    }
    return QemuEnvironment(
        root=root,
        qemu=root / "qemu-aarch64",
        sysroot=root / "sysroot",
        python=root / "sysroot" / SYSROOT_PYTHON,
        site_dir=root / "site",
        versions=versions,
    )


def _read_stamp(directory: Path) -> dict | None:
    try:
        return json.loads((directory / STAMP_NAME).read_text(encoding="utf-8"))
    except (FileNotFoundError, NotADirectoryError, json.JSONDecodeError):
        return None


def _host_pins(distributions: Sequence[str]) -> dict[str, str | None]:
    pins: dict[str, str | None] = {}
    for name in distributions:
        try:
            pins[name] = importlib.metadata.version(name).split("+")[0]
        except importlib.metadata.PackageNotFoundError:
            pins[name] = None
    return pins


def _build_atomically(final: Path, build: Callable[[Path], None], log: Log) -> None:
    """Run `build` into a fresh directory beside `final`, then move it into place."""
    started = time.monotonic()
    staging = Path(tempfile.mkdtemp(prefix=f".{final.name}-building-", dir=final.parent))
    try:
        build(staging)
        if final.exists():
            retired = Path(tempfile.mkdtemp(prefix=f".{final.name}-old-", dir=final.parent))
            final.rename(retired / final.name)
            shutil.rmtree(retired, ignore_errors=True)
        try:
            staging.rename(final)
        except OSError:
            if not (final / STAMP_NAME).is_file():
                raise
            shutil.rmtree(staging)  # another process finished the same build first
        log(f"{final.name}: ready in {final} ({time.monotonic() - started:.0f} s)")
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _build_base(build: Path, request: Mapping, log: Log) -> None:
    started = time.monotonic()
    host_arch = _run_step(
        "dpkg --print-architecture", ["dpkg", "--print-architecture"],
        "the emulated ARM64 CPU needs a Debian-based host with dpkg and apt",
    ).strip()
    apt_dir = build / "apt"
    suites = _write_private_apt(apt_dir, list(dict.fromkeys(["arm64", host_arch])))
    log(f"qemu-arm64: apt sources from the system configuration, suites {' '.join(suites)}")
    apt = ["apt-get", "-c", str(apt_dir / "apt.conf"), "-q"]
    sources_fix = "check the network and the mirrors in /etc/apt/sources.list and /etc/apt/sources.list.d/"

    log("qemu-arm64: apt-get update (private arm64 state)")
    _run_step("apt-get update (private arm64 state)", [*apt, "update", "--error-on=any"], sources_fix)

    log(f"qemu-arm64: downloading {QEMU_PACKAGE} and the arm64 sysroot packages")
    qemu_debs = apt_dir / "qemu-deb"
    qemu_debs.mkdir()
    _run_step(
        f"apt-get download {QEMU_PACKAGE}", [*apt, "download", f"{QEMU_PACKAGE}:{host_arch}"],
        f"{sources_fix}; the package must exist for {host_arch} in the configured suites", cwd=qemu_debs,
    )
    _run_step(
        f"apt-get install --download-only {' '.join(SYSROOT_PACKAGES)} (arm64)",
        [*apt, "install", "--download-only", "--no-install-recommends", "-y", *SYSROOT_PACKAGES],
        f"{sources_fix}; the suites must carry arm64 packages including python3.11 (Debian 12 'bookworm' does)",
    )

    log("qemu-arm64: unpacking with dpkg -x")
    qemu_version = _unpack_qemu(next(qemu_debs.glob("*.deb")), build)
    sysroot = build / "sysroot"
    packages = _unpack_sysroot(sorted((apt_dir / "cache" / "archives").glob("*.deb")), sysroot)
    _write_arm_cpuinfo(sysroot, os.cpu_count() or 1)
    shutil.rmtree(apt_dir)

    log(f"qemu-arm64: pip install aarch64 wheels {_requirements(request['wheels'])}")
    wheels = _install_wheels(build / "site", _requirements(request["wheels"]), no_deps=False)
    _check_emulated_import(
        build / "qemu-aarch64", sysroot, [build / "site"], "ssl, sqlite3, ctypes, numpy, onnxruntime",
        "the emulated environment is incomplete; run the setup again, and report the error if it persists",
    )
    _write_stamp(
        build,
        {
            "request": request,
            "qemu": qemu_version,
            "packages": packages,
            "apt_suites": suites,
            "wheels": {name: wheels[name] for name in request["wheels"]},
            "site_packages": wheels,
            "cpuinfo_processors": os.cpu_count() or 1,
            "build_seconds": round(time.monotonic() - started, 1),
        },
    )


def _build_executorch_layer(
    build: Path, request: Mapping, base: QemuEnvironment, base_stamp: Mapping, log: Log
) -> None:
    from bench_runner.native_runner.build import build_runner

    started = time.monotonic()
    requirements = _requirements(request["wheels"])
    log(f"qemu-arm64: the aarch64 wheel {' '.join(requirements)} (ExecuTorch's runtime libraries, no torch)")
    wheels = _install_wheels(build / "site", requirements, no_deps=True)
    runner = build_runner(build / "site" / "executorch", RUNNER_TARGET, base.root.parent, log)
    log("qemu-arm64: starting the native runner under emulation")
    _run_step(
        "the native runner under emulation", [str(base.qemu), "-L", str(base.sysroot), str(runner), "--version"],
        "the aarch64 runner does not start under emulation; delete the qemu-arm64 folders of the cache and run "
        "the setup again",
    )
    _write_stamp(
        build,
        {
            "request": request,
            "base_stamp": base_stamp["created"],
            "wheels": {name: wheels[name] for name in request["wheels"]},
            "build_seconds": round(time.monotonic() - started, 1),
        },
    )


def _write_private_apt(apt_dir: Path, architectures: Sequence[str]) -> list[str]:
    sources = private_sources(read_system_sources(), architectures)
    if not sources:
        raise QemuSetupError(
            "no usable apt source: /etc/apt/sources.list and /etc/apt/sources.list.d/ hold no enabled "
            f"'deb' entry for {', '.join(architectures)}; add the Debian mirror there"
        )
    for sub in ("state/lists/partial", "cache/archives/partial", "sources.list.d", "preferences.d"):
        (apt_dir / sub).mkdir(parents=True)
    (apt_dir / "state" / "status").touch()
    (apt_dir / "sources.list.d" / "system.sources").write_text(render_deb822(sources), encoding="utf-8")
    (apt_dir / "apt.conf").write_text(private_apt_config(apt_dir, architectures), encoding="utf-8")
    return sorted({suite for source in sources for suite in source.suites})


def _unpack_qemu(deb: Path, build: Path) -> str:
    unpacked = build / "qemu-package"
    _run_step(f"dpkg -x {deb.name}", ["dpkg", "-x", str(deb), str(unpacked)], DAMAGED_DOWNLOAD_FIX)
    binary = next(
        (p for p in (unpacked / "usr/bin/qemu-aarch64-static", unpacked / "usr/bin/qemu-aarch64") if p.is_file()),
        None,
    )
    if binary is None:
        raise QemuSetupError(f"{deb.name} holds no usr/bin/qemu-aarch64-static; is it Debian's {QEMU_PACKAGE}?")
    target = build / "qemu-aarch64"
    binary.rename(target)
    shutil.rmtree(unpacked)
    banner = _run_step("qemu-aarch64 --version", [str(target), "--version"], "the extracted QEMU does not run here")
    return banner.splitlines()[0].removeprefix("qemu-aarch64 version ").strip()


def _unpack_sysroot(debs: Sequence[Path], sysroot: Path) -> dict[str, str]:
    """Unpack every .deb into `sysroot`; return {package: version}."""
    packages = {}
    for deb in debs:
        _run_step(f"dpkg -x {deb.name}", ["dpkg", "-x", str(deb), str(sysroot)], DAMAGED_DOWNLOAD_FIX)
        name, version = _run_step(
            f"dpkg-deb -f {deb.name}", ["dpkg-deb", "-f", str(deb), "Package", "Version"], DAMAGED_DOWNLOAD_FIX
        ).splitlines()
        packages[name.split(":", 1)[1].strip()] = version.split(":", 1)[1].strip()
    _link_merged_usr(sysroot)
    _relativize_symlinks(sysroot)
    return packages


def _link_merged_usr(sysroot: Path) -> None:
    """Give a merged-/usr sysroot its top-level links (/lib -> usr/lib ...) if packages lack them."""
    for name in ("bin", "sbin", "lib"):
        if not (sysroot / name).exists() and (sysroot / "usr" / name).is_dir():
            (sysroot / name).symlink_to(f"usr/{name}")


def _relativize_symlinks(sysroot: Path) -> None:
    """Point absolute symlinks inside the sysroot, not at the host's files of the same name."""
    for link in [p for p in sysroot.rglob("*") if p.is_symlink()]:
        target = os.readlink(link)
        if target.startswith("/"):
            link.unlink()
            link.symlink_to(os.path.relpath(sysroot / target.lstrip("/"), link.parent))


def _write_arm_cpuinfo(sysroot: Path, processors: int) -> None:
    (sysroot / "proc").mkdir(exist_ok=True)
    text = "\n".join(ARM_CPUINFO_PROCESSOR.format(index=i) for i in range(processors))
    (sysroot / "proc" / "cpuinfo").write_text(text + "\n", encoding="utf-8")


def _check_emulated_import(qemu: Path, sysroot: Path, site_dirs: Sequence[Path], modules: str, fix: str) -> None:
    _run_step(
        f"import {modules} under emulation",
        [str(qemu), "-L", str(sysroot), str(sysroot / SYSROOT_PYTHON), "-c", f"import {modules}"],
        fix,
        env={"PATH": os.environ.get("PATH", ""), "PYTHONPATH": os.pathsep.join(map(str, site_dirs))},
    )


def _requirements(pins: Mapping[str, str | None]) -> list[str]:
    return [f"{name}=={version}" if version else name for name, version in pins.items()]


def _install_wheels(target: Path, requirements: Sequence[str], no_deps: bool) -> dict[str, str]:
    """pip-install aarch64 wheels into `target`; return {distribution: version} installed there."""
    _run_step(
        "pip install aarch64 wheels",
        [
            sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
            "--target", str(target), "--platform", WHEEL_PLATFORM, "--only-binary=:all:",
            "--python-version", WHEEL_PYTHON_VERSION, "--implementation", "cp",
            *(["--no-deps"] if no_deps else []), *requirements,
        ],
        "check that pip reaches its package index (pip config list) and that the pinned versions "
        f"have {WHEEL_PLATFORM} wheels",
    )
    installed = {}
    for meta in target.glob("*.dist-info"):
        name, version = meta.name.removesuffix(".dist-info").rsplit("-", 1)
        installed[name.lower().replace("_", "-")] = version
    return installed


def _write_stamp(build: Path, content: dict) -> None:
    content = {**content, "created": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    (build / STAMP_NAME).write_text(json.dumps(content, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def _run_step(
    step: str, argv: Sequence[str], fix: str, cwd: Path | None = None, env: Mapping[str, str] | None = None
) -> str:
    """Run one setup command; on failure raise QemuSetupError naming the step and the fix."""
    try:
        done = subprocess.run(list(argv), cwd=cwd, env=env, capture_output=True, text=True)
    except FileNotFoundError:
        raise QemuSetupError(f"{step} failed: {argv[0]} is not installed; {fix}") from None
    if done.returncode != 0:
        detail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-8:])
        raise QemuSetupError(f"{step} failed (exit {done.returncode}): {fix}.\n{detail}")
    return done.stdout
