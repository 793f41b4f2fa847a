"""Device profiles: one TOML file per device in device_profiles/, loaded into frozen data.

device_profiles/ is a data-only package beside bench_runner, so the shipped profiles
are found through importlib.resources in an installed copy as in the repository.

A profile says what a device is (`kind`), how to reach it (`[connection]`), how to
measure on it (`[measurement]`, the defaults of MeasurementSettings), what to lower for
it (`[lowering]`), and where the native harness binaries are (`[harness]`). Loading
only reads: nothing is checked on the device or the file system beyond the TOML file.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, fields
from importlib.resources import files
from pathlib import Path
from typing import Any

from bench_runner.devices import DEVICE_KINDS, device_kind
from bench_runner.protocol import MeasurementSettings, SettingsError
from vitdeploy.errors import VitdeployError

KINDS = tuple(kind.name for kind in DEVICE_KINDS)

PROFILES_DIR = Path(files("device_profiles"))


class ProfileError(VitdeployError):
    """A device profile is missing, unreadable, or has a wrong key or value."""


@dataclass(frozen=True)
class Connection:
    """How to reach an Android device: a USB `serial`, or a TCP `address` ("host:port")."""

    serial: str | None = None
    address: str | None = None


@dataclass(frozen=True)
class LoweringDefaults:
    """What to lower for this device: backends, quantization schemes, input size.

    The names are lowering's: `vitdeploy lower --device` checks them against its backends.
    """

    backends: tuple[str, ...] = ("executorch", "onnx")
    quantization: tuple[str, ...] = ("fp32",)
    input_size: int = 224
    coreml_deployment_target: str | None = None


@dataclass(frozen=True)
class HarnessPaths:
    """Where the harnesses are.

    `executor_runner` and `onnxruntime_perf_test` are local binaries built for the device
    (pushed before a run); `python` is the device-side Python interpreter for the agent;
    `benchmark_app` the package name of ExecuTorch's Android benchmark app.
    """

    executor_runner: Path | None = None
    onnxruntime_perf_test: Path | None = None
    python: str | None = None
    benchmark_app: str | None = None


@dataclass(frozen=True)
class DeviceProfile:
    """One device as its profile describes it. `source` is the TOML file, if any;
    `budget_ms` is the latency budget a sweep's report marks this device's rows against."""

    name: str
    kind: str
    description: str = ""
    source: Path | None = None
    connection: Connection = field(default_factory=Connection)
    qemu_cpu: str | None = None
    measurement: MeasurementSettings = field(default_factory=MeasurementSettings)
    lowering: LoweringDefaults = field(default_factory=LoweringDefaults)
    harness: HarnessPaths = field(default_factory=HarnessPaths)
    budget_ms: float | None = None


class _Checker:
    """Reads typed values out of one TOML table, naming file and key in every error."""

    def __init__(self, table: dict[str, Any], source: str, section: str | None) -> None:
        self._table = table
        self._source = source
        self._where = f"[{section}] " if section else ""

    def fail(self, key: str, message: str) -> ProfileError:
        return ProfileError(f"{self._source}: {self._where}{key}: {message}")

    def reject_unknown(self, allowed: tuple[str, ...]) -> None:
        for key in self._table:
            if key not in allowed:
                raise self.fail(key, f"unknown key; allowed keys are {', '.join(allowed)}")

    def has(self, key: str) -> bool:
        return key in self._table

    def string(self, key: str, default: str | None = None) -> str | None:
        value = self._table.get(key, default)
        if value is not None and (not isinstance(value, str) or not value):
            raise self.fail(key, f"must be a non-empty string, got {value!r}")
        return value

    def integer(self, key: str, default: int) -> int:
        value = self._table.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(key, f"must be an integer, got {value!r}")
        return value

    def number(self, key: str, default: float) -> float:
        value = self._table.get(key, default)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.fail(key, f"must be a number, got {value!r}")
        return float(value)

    def integers(self, key: str, default: tuple[int, ...]) -> tuple[int, ...]:
        value = self._table.get(key, list(default))
        if not isinstance(value, list) or any(isinstance(v, bool) or not isinstance(v, int) for v in value):
            raise self.fail(key, f"must be a list of integers, got {value!r}")
        return tuple(value)

    def strings(self, key: str, default: tuple[str, ...], choices: tuple[str, ...] | None = None) -> tuple[str, ...]:
        value = self._table.get(key, list(default))
        if not isinstance(value, list) or any(not isinstance(v, str) for v in value):
            raise self.fail(key, f"must be a list of strings, got {value!r}")
        if choices is not None:
            for item in value:
                if item not in choices:
                    raise self.fail(key, f"{item!r} is not one of {', '.join(choices)}")
        return tuple(value)

    def section(self, name: str) -> _Checker:
        value = self._table.get(name, {})
        if not isinstance(value, dict):
            raise self.fail(name, "must be a table ([" + name + "])")
        return _Checker(value, self._source, name)


def _local_path(value: str | None, base: Path | None) -> Path | None:
    if value is None:
        return None
    path = Path(value).expanduser()
    if not path.is_absolute() and base is not None:
        path = base / path
    return path


def _measurement(table: _Checker) -> MeasurementSettings:
    defaults = MeasurementSettings()
    names = tuple(f.name for f in fields(MeasurementSettings))
    table.reject_unknown(names)
    values: dict[str, Any] = {}
    for name in names:
        if not table.has(name):
            continue
        default = getattr(defaults, name)
        if name == "threads":
            values[name] = table.integers(name, default)
        elif name == "cpu_mask":
            values[name] = table.string(name)
        elif isinstance(default, int):
            values[name] = table.integer(name, default)
        else:
            values[name] = table.number(name, default)
    try:
        return MeasurementSettings(**values)
    except SettingsError as exc:
        raise table.fail("measurement", str(exc)) from None


def parse_profile(data: dict[str, Any], source: str, default_name: str) -> DeviceProfile:
    """Build a DeviceProfile from parsed TOML `data`; `source` names the file in errors."""
    top = _Checker(data, source, None)
    top.reject_unknown(("name", "kind", "description", "budget_ms", "connection", "qemu", "measurement", "lowering",
                        "harness"))
    kind = top.string("kind")
    if kind is None:
        raise top.fail("kind", f"missing; say which kind of device this is: one of {', '.join(KINDS)}")
    if kind not in KINDS:
        raise top.fail("kind", f"{kind!r} is not one of {', '.join(KINDS)}")

    connection = top.section("connection")
    connection.reject_unknown(("serial", "address"))
    qemu = top.section("qemu")
    qemu.reject_unknown(("cpu",))
    qemu_cpu = device_kind(kind).qemu_cpu
    if qemu.has("cpu") and qemu_cpu is None:
        emulated_by_qemu = " or ".join(repr(k.name) for k in DEVICE_KINDS if k.qemu_cpu)
        raise qemu.fail("cpu", f"applies only to kind {emulated_by_qemu}, not {kind!r}")
    lowering = top.section("lowering")
    lowering.reject_unknown(("backends", "quantization", "input_size", "coreml_deployment_target"))
    harness = top.section("harness")
    harness.reject_unknown(("executor_runner", "onnxruntime_perf_test", "python", "benchmark_app"))

    base_dir = Path(source).parent if source else None
    default_lowering = LoweringDefaults()
    input_size = lowering.integer("input_size", default_lowering.input_size)
    if input_size < 1:
        raise lowering.fail("input_size", f"must be positive, got {input_size}")
    budget_ms = top.number("budget_ms", 0.0) if top.has("budget_ms") else None
    if budget_ms is not None and not budget_ms > 0:
        raise top.fail("budget_ms", f"must be a positive number of milliseconds, got {budget_ms}")
    return DeviceProfile(
        name=top.string("name", default_name),
        kind=kind,
        description=top.string("description", "") if top.has("description") else "",
        source=Path(source) if source else None,
        connection=Connection(serial=connection.string("serial"), address=connection.string("address")),
        qemu_cpu=qemu.string("cpu", qemu_cpu),
        measurement=_measurement(top.section("measurement")),
        lowering=LoweringDefaults(
            backends=lowering.strings("backends", default_lowering.backends),
            quantization=lowering.strings("quantization", default_lowering.quantization),
            input_size=input_size,
            coreml_deployment_target=lowering.string("coreml_deployment_target"),
        ),
        harness=HarnessPaths(
            executor_runner=_local_path(harness.string("executor_runner"), base_dir),
            onnxruntime_perf_test=_local_path(harness.string("onnxruntime_perf_test"), base_dir),
            python=harness.string("python"),
            benchmark_app=harness.string("benchmark_app"),
        ),
        budget_ms=budget_ms,
    )


def load_profile(path: Path) -> DeviceProfile:
    """Read and validate one profile file; relative harness paths are taken from its folder."""
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ProfileError(f"{path}: no such device profile") from None
    except tomllib.TOMLDecodeError as exc:
        raise ProfileError(f"{path}: not valid TOML: {exc}") from None
    return parse_profile(data, str(path), Path(path).stem)


def profile_paths(directory: Path | None = None) -> list[Path]:
    """The profile files in `directory` (default: the shipped device_profiles/)."""
    directory = Path(directory) if directory is not None else PROFILES_DIR
    return sorted(directory.glob("*.toml")) if directory.is_dir() else []


def default_profile(kind: str) -> DeviceProfile:
    """The profile of a bare kind: named after it, with the kind's defaults."""
    return DeviceProfile(name=kind, kind=kind, qemu_cpu=device_kind(kind).qemu_cpu)


def find_profile(name_or_path: str, directory: Path | None = None) -> DeviceProfile:
    """The profile a user named: a TOML path, a profile name in `directory`, or a bare kind
    (which gets `default_profile`)."""
    candidate = Path(name_or_path).expanduser()
    if candidate.suffix == ".toml" or candidate.is_file():
        return load_profile(candidate)
    for path in profile_paths(directory):
        if path.stem == name_or_path:
            return load_profile(path)
    if name_or_path in KINDS:
        return default_profile(name_or_path)
    known = [p.stem for p in profile_paths(directory)]
    raise ProfileError(
        f"no device profile named {name_or_path!r}; known profiles: {', '.join(known) or 'none'} "
        f"(in {Path(directory) if directory else PROFILES_DIR}); device kinds: {', '.join(KINDS)}. "
        "Pass a profile name, a .toml path, or a kind."
    )
