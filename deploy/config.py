"""The sweep configuration: models x lowering x devices x threads, in one TOML file.

Loading validates types, names and combinations and reads nothing but the file itself
(and the device profiles it names); it starts no work.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deploy.executors import EXECUTORS
from lowering.data.sources import EMBEDDED as EMBEDDED_DATASET
from lowering.int8_ranges import INT8_RANGES
from vitdeploy.errors import VitdeployError


class ConfigError(VitdeployError):
    """The sweep configuration has a wrong key, type or value."""


@dataclass(frozen=True)
class ModelEntry:
    """One model of the sweep.

    `name` is any model source (`lowering.sources`): a registry name, a `.pt2` or a
    Hugging Face folder (paths relative to the config file), or `package.module:callable`.
    A registry model's weights come from `checkpoint`, or from training on the embedded
    dataset (`train`), or are random (neither: useful for latency only); a branched model
    is reparameterized before lowering. `input_shape` fixes the input of programs with
    dynamic shapes and of factories.
    """

    label: str
    name: str
    overrides: dict[str, Any] = field(default_factory=dict)
    checkpoint: Path | None = None
    train: bool = False
    input_shape: tuple[int, ...] | None = None


@dataclass(frozen=True)
class ExecutorConfig:
    """Where a sweep's work runs (`[executor]`): `kind` "local" (this process, one step
    after another) or "ray" (Ray tasks; see `deploy.executors.ray_cluster`). `address`:
    the Ray cluster to join ("auto": the one `ray start` or `vitdeploy worker` started on
    this machine, or "HOST:PORT"); None: $RAY_ADDRESS if set, else a Ray instance of this
    machine alone, started for the sweep with all its devices attached."""

    kind: str = "local"
    address: str | None = None


@dataclass(frozen=True)
class SweepConfig:
    """What a sweep lowers, where it measures, and where results go.

    `measurement` overrides every device profile's measurement settings;
    `device_measurement[name]` overrides them again for one device. `budget_ms` is the
    latency budget the report marks rows against on every device, `device_budget_ms[name]`
    one device's (either over the device profile's `budget_ms`). `executor` says where
    the work runs.
    """

    name: str
    results: Path
    models: tuple[ModelEntry, ...]
    backends: tuple[str, ...] = ("executorch", "onnx")
    quant: tuple[str, ...] = ("fp32",)
    int8_ranges: str = "runtime"
    devices: tuple[str, ...] = ("host",)
    threads: tuple[int, ...] | None = None
    measurement: dict[str, Any] = field(default_factory=dict)
    device_measurement: dict[str, dict[str, Any]] = field(default_factory=dict)
    dataset: str = EMBEDDED_DATASET
    calibration_images: int = 32
    eval_limit: int | None = None
    baseline: str | None = None
    budget_ms: float | None = None
    device_budget_ms: dict[str, float] = field(default_factory=dict)
    training: dict[str, Any] = field(default_factory=dict)
    executor: ExecutorConfig = field(default_factory=ExecutorConfig)
    source: Path | None = None


_TOP = {"name", "results", "model", "lowering", "bench", "data", "training", "executor"}
_MODEL = {"label", "name", "overrides", "checkpoint", "train", "input_shape"}
_LOWERING = {"backends", "quant", "int8_ranges"}
_MEASUREMENT = {"warmup", "runs", "min_seconds", "rounds", "cooldown_seconds"}
_BUDGET = "budget_ms"
_BENCH = {"devices", "threads", "baseline", "device", _BUDGET} | _MEASUREMENT
_DATA = {"dataset", "calibration_images", "eval_limit"}
_EXECUTOR = {"kind", "address"}


def load_sweep_config(path: str | Path) -> SweepConfig:
    """Read and validate a sweep TOML file.

    `results` is taken from the current directory; checkpoints and data folders from
    the file's own folder.
    """
    path = Path(path)
    try:
        table = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"sweep configuration not found: {path}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from None
    return parse_sweep_config(table, base=path.parent, source=path)


def parse_sweep_config(table: dict, base: Path, source: Path | None = None) -> SweepConfig:
    """Validate a sweep configuration already read from TOML."""
    where = str(source or "sweep configuration")
    _known(table, _TOP, where)
    lowering = _table(table, "lowering", _LOWERING, where)
    bench = _table(table, "bench", _BENCH, where)
    data = _table(table, "data", _DATA, where)
    training = _table(table, "training", _training_keys(), where)
    executor = _executor(_table(table, "executor", _EXECUTOR, where), where)
    models = tuple(_model(entry, base, f"{where} [[model]] #{i + 1}")
                   for i, entry in enumerate(_list(table, "model", where, dict)))
    if not models:
        raise ConfigError(f"{where}: no [[model]] entries; add at least one")
    labels = [m.label for m in models]
    duplicates = sorted({label for label in labels if labels.count(label) > 1})
    if duplicates:
        raise ConfigError(f"{where}: model labels must be unique; repeated: {', '.join(duplicates)}")
    dataset = data.get("dataset", EMBEDDED_DATASET)
    if any(m.train for m in models) and dataset != EMBEDDED_DATASET:
        raise ConfigError(
            f"{where}: `train = true` trains on the embedded dataset; set [data] dataset = "
            f"\"{EMBEDDED_DATASET}\" or give those models a checkpoint"
        )
    backends = tuple(_strings(lowering, "backends", where, ("executorch", "onnx")))
    quant = tuple(_strings(lowering, "quant", where, ("fp32",)))
    _check_targets(backends, quant, where)
    int8_ranges = lowering.get("int8_ranges", INT8_RANGES[0])
    if int8_ranges not in INT8_RANGES:
        raise ConfigError(f"{where}: [lowering] int8_ranges must be one of {', '.join(INT8_RANGES)}")
    devices = tuple(_strings(bench, "devices", where, ("host",)))
    _check_devices(devices, where)
    baseline = bench.get("baseline")
    if baseline is not None and baseline not in labels:
        raise ConfigError(f"{where}: [bench] baseline {baseline!r} is not a model label ({', '.join(labels)})")
    measurement = {k: v for k, v in bench.items() if k in _MEASUREMENT}
    per_device = bench.get("device", {})
    if not isinstance(per_device, dict) or not all(isinstance(v, dict) for v in per_device.values()):
        raise ConfigError(f"{where}: [bench.device.NAME] tables hold measurement settings per device")
    for device, settings in per_device.items():
        _known(settings, _MEASUREMENT | {_BUDGET}, f"{where} [bench.device.{device}]")
    threads = bench.get("threads")
    device_budgets = {device: _budget(settings[_BUDGET], f"{where} [bench.device.{device}]")
                      for device, settings in per_device.items() if _BUDGET in settings}
    return SweepConfig(
        name=str(table.get("name", source.stem if source else "sweep")),
        results=Path(str(table.get("results", "results/sweep"))).expanduser(),
        models=models,
        backends=backends,
        quant=quant,
        int8_ranges=int8_ranges,
        devices=devices,
        threads=tuple(_ints(threads, "bench.threads", where)) if threads is not None else None,
        measurement=measurement,
        device_measurement={device: {k: v for k, v in settings.items() if k != _BUDGET}
                            for device, settings in per_device.items()},
        dataset=str(dataset) if dataset == EMBEDDED_DATASET else str(_path(dataset, base)),
        calibration_images=int(data.get("calibration_images", 32)),
        eval_limit=data.get("eval_limit"),
        baseline=baseline,
        budget_ms=_budget(bench[_BUDGET], f"{where} [bench]") if _BUDGET in bench else None,
        device_budget_ms=device_budgets,
        training=training,
        executor=executor,
        source=source,
    )


def _budget(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ConfigError(f"{where}: budget_ms must be a positive number of milliseconds, got {value!r}")
    return float(value)


def _executor(table: dict, where: str) -> ExecutorConfig:
    kind = table.get("kind", "local")
    if kind not in EXECUTORS:
        raise ConfigError(f"{where}: [executor] kind must be one of {', '.join(EXECUTORS)}, got {kind!r}")
    address = table.get("address")
    if address is not None and (not isinstance(address, str) or not address):
        raise ConfigError(f"{where}: [executor] address must be a string such as \"auto\" or \"HOST:6379\"")
    if address is not None and kind != "ray":
        raise ConfigError(f"{where}: [executor] address is for kind = \"ray\"")
    return ExecutorConfig(kind, address)


def _check_targets(backends: tuple[str, ...], quant: tuple[str, ...], where: str) -> None:
    from lowering.export import BACKENDS, QUANT_MODES

    unknown = [b for b in backends if b not in BACKENDS]
    if unknown:
        raise ConfigError(f"{where}: unknown backend(s) {', '.join(unknown)}; valid: {', '.join(BACKENDS)}")
    modes = {mode for backend in backends for mode in QUANT_MODES[backend]}
    unknown = [q for q in quant if q not in modes]
    if unknown:
        raise ConfigError(
            f"{where}: no backend of {', '.join(backends)} has quantization mode(s) {', '.join(unknown)}; "
            f"valid: {', '.join(sorted(modes))}"
        )


def _check_devices(devices: tuple[str, ...], where: str) -> None:
    from bench_runner.profiles import find_profile

    for device in devices:
        try:
            find_profile(device)
        except VitdeployError as exc:
            raise ConfigError(f"{where}: device {device!r}: {exc}") from None


def _training_keys() -> set[str]:
    from dataclasses import fields

    from lowering.training import TrainingSettings

    return {f.name for f in fields(TrainingSettings)}


def _model(entry: dict, base: Path, where: str) -> ModelEntry:
    _known(entry, _MODEL, where)
    for key in ("label", "name"):
        if not isinstance(entry.get(key), str):
            raise ConfigError(f"{where}: `{key}` must be a string")
    from lowering.models import resolve_spec
    from lowering.sources import source_kind_of

    overrides = entry.get("overrides", {})
    if not isinstance(overrides, dict):
        raise ConfigError(f"{where}: `overrides` must be a table, e.g. {{ depth = 6, branches = 2 }}")
    checkpoint = entry.get("checkpoint")
    train = bool(entry.get("train", False))
    if checkpoint and train:
        raise ConfigError(f"{where}: give either `checkpoint` or `train = true`, not both")
    name = entry["name"]
    local = _path(name, base)
    if name.endswith(".pt2") or local.is_dir():
        if not local.exists():
            raise ConfigError(f"{where}: model file {local} does not exist")
        name = str(local)
    kind = source_kind_of(name)
    if kind != "registry" and (train or overrides):
        raise ConfigError(f"{where}: `train` and `overrides` apply to registry models; {entry['name']} is not one ({kind})")
    if kind == "registry" and checkpoint is None:
        try:
            resolve_spec(name, **overrides)
        except VitdeployError as exc:
            raise ConfigError(f"{where}: {exc}") from None
    shape = entry.get("input_shape")
    if shape is not None and (not isinstance(shape, list) or len(shape) != 4
                              or not all(isinstance(d, int) and d > 0 for d in shape)):
        raise ConfigError(f"{where}: `input_shape` must be four positive integers, e.g. [1, 3, 224, 224]")
    return ModelEntry(
        label=entry["label"],
        name=name,
        overrides=dict(overrides),
        checkpoint=_path(checkpoint, base) if checkpoint else None,
        train=train,
        input_shape=tuple(shape) if shape else None,
    )


def _known(table: dict, allowed: set[str], where: str) -> None:
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(unknown)}; valid: {', '.join(sorted(allowed))}")


def _table(table: dict, key: str, allowed: set[str], where: str) -> dict:
    value = table.get(key, {})
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: [{key}] must be a table")
    _known(value, allowed, f"{where} [{key}]")
    return value


def _list(table: dict, key: str, where: str, kind: type) -> list:
    value = table.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, kind) for v in value):
        raise ConfigError(f"{where}: `{key}` must be a list of {kind.__name__}")
    return value


def _strings(table: dict, key: str, where: str, default: tuple[str, ...]) -> list[str]:
    if key not in table:
        return list(default)
    values = _list(table, key, where, str)
    if not values:
        raise ConfigError(f"{where}: `{key}` is empty")
    return values


def _ints(value: Any, key: str, where: str) -> list[int]:
    if not isinstance(value, list) or not value or not all(isinstance(v, int) and v > 0 for v in value):
        raise ConfigError(f"{where}: `{key}` must be a non-empty list of positive integers")
    return value


def _path(value: Any, base: Path) -> Path:
    path = Path(str(value)).expanduser()
    return path if path.is_absolute() else base / path
