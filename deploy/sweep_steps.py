"""The work of a sweep that may run anywhere: lowering and evaluating one job, measuring
on one device.

An executor (`deploy.executors`) decides where each step runs, in this process or as a
Ray task on another machine; the steps only read their inputs and report back what
they produced. Lowering writes artifacts into the folder it is given; measuring
appends records to the store it is given. Everything else (accuracy records, failures,
notes) is returned for the driver to keep, so that the results folder has one writer.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from vitdeploy.errors import VitdeployError

if TYPE_CHECKING:
    from deploy.config import SweepConfig
    from deploy.evaluate import AccuracyResult
    from lowering.int8_ranges import LoweringGroup

Log = Callable[[str], None]


@dataclass(frozen=True)
class CellFailure:
    """One part of the sweep that failed: `stage` (model, lower, eval, bench, report),
    `what` (a model label, target or device) and the error's message."""

    stage: str
    what: str
    error: str


@dataclass(frozen=True)
class LoweringJob:
    """One model's targets that lower together: the model's sweep `label` and its group
    (`lowering.int8_ranges.LoweringGroup`)."""

    label: str
    group: LoweringGroup


@dataclass(frozen=True)
class Lowered:
    """What one lowering job produced: its artifacts in target order, the accuracy of
    those not evaluated before, and its failures and notes."""

    artifacts: tuple[Path, ...] = ()
    accuracy: tuple[AccuracyResult, ...] = ()
    failures: tuple[CellFailure, ...] = ()
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Measured:
    """What measuring on one device reported besides its records (which are in the store)."""

    failures: tuple[CellFailure, ...] = ()
    notes: tuple[str, ...] = ()


def failure(stage: str, what: str, exc: Exception, log: Log) -> CellFailure:
    """A failed cell, logged as it happens."""
    message = str(exc).strip() or type(exc).__name__
    log(f"  FAILED {stage} {what}: {message}")
    return CellFailure(stage, what, message)


def lower_and_evaluate(config: SweepConfig, job: LoweringJob, out_dir: Path, evaluated: set[str],
                       log: Log) -> Lowered:
    """Lower `job` into `out_dir` (a failing target alone is reported; the others are
    kept), then evaluate each artifact whose sha256 is not in `evaluated`."""
    failures: list[CellFailure] = []
    artifacts = _lower_isolating_failures(config, job.label, job.group, out_dir, failures, log)
    accuracy, notes = _evaluate(config, artifacts, evaluated, failures, log)
    return Lowered(tuple(artifacts), tuple(accuracy), tuple(failures), tuple(notes))


def _lower_isolating_failures(config, label, group, out_dir, failures, log) -> list[Path]:
    """Lower a group's targets together; if that fails, again one by one (the ones
    built come from the cache), so that only the failing cells are reported."""
    try:
        return _lower(config, label, group, out_dir, log)
    except VitdeployError as exc:
        if len(group.targets) == 1:
            failures.append(failure("lower", f"{label} {group.targets[0]}", exc, log))
            return []
    return [path for target in group.targets
            for path in _lower_isolating_failures(config, label, replace(group, targets=(target,)), out_dir,
                                                  failures, log)]


def _lower(config, label, group, out_dir, log) -> list[Path]:
    from lowering.data import verification_images
    from lowering.export import lower_model

    spec = group.lowering_spec(verification_images=verification_images(group.model.image_format, config.dataset))
    built = lower_model(group.model, spec, out_dir=out_dir, label=label, log=lambda message: log(f"  {message}"))
    return [artifact.path for artifact in built]


def _evaluate(config, artifacts, evaluated, failures, log):
    from deploy.evaluate import evaluate_artifact
    from lowering.runtime import RuntimeUnavailableError
    from vitdeploy.manifest import read_manifest

    accuracy, notes = [], []
    for path in artifacts:
        if read_manifest(path).sha256 in evaluated:
            continue
        try:
            result = evaluate_artifact(path, config.dataset, limit=config.eval_limit)
        except RuntimeUnavailableError as exc:
            notes.append(f"{path.parent.name}/{path.name}: not evaluated: {exc}")
            continue
        except VitdeployError as exc:
            failures.append(failure("eval", path.name, exc, log))
            continue
        accuracy.append(result)
        log(f"eval {path.parent.name}/{path.name}: {result.headline} on {result.num_images} images")
    return accuracy, notes


def measure_device(config: SweepConfig, device_name: str, artifacts: list[Path], store, log: Log) -> Measured:
    """Measure `artifacts` on one device in interleaved rounds, appending each
    configuration's records to `store` (a `bench_runner.store.ResultsStore`, or anything
    with its `root`, `append` and `completed_keys`) and skipping the keys it holds."""
    from bench_runner.devices import open_device
    from bench_runner.profiles import find_profile
    from bench_runner.protocol import run_on_profile
    from bench_runner.records import ArtifactInfo

    try:
        profile = find_profile(device_name)
        _prepare_device(profile, log)
        device = open_device(profile)
    except VitdeployError as exc:
        return Measured(failures=(failure("bench", device_name, exc, log),))
    runtimes = getattr(device, "runtimes", None)
    infos, unmeasured, notes = [], {}, []
    for path in artifacts:
        info = ArtifactInfo.from_path(path)
        if runtimes is not None and info.runtime not in runtimes:
            unmeasured.setdefault(info.runtime, []).append(f"{path.parent.name}/{path.name}")
            continue
        infos.append(info)
    for runtime, names in unmeasured.items():
        notes.append(f"{device_name}: {runtime} is not installed there; not measured: "
                     f"{', '.join(names)} ({len(names)} artifact{'' if len(names) == 1 else 's'})")
    if not infos:
        device.cleanup()
        return Measured(notes=tuple(notes))
    settings = profile.measurement.with_overrides(threads=config.threads, **measurement_overrides(config, device_name))
    log(f"bench on {device_name}: {len(infos)} artifacts, threads {list(settings.threads)}, "
        f"{settings.rounds} interleaved rounds")
    try:
        records = run_on_profile(device, profile, infos, settings, store=store, resume=True,
                                 progress=lambda p: log(f"  {p.message}"))
    except VitdeployError as exc:
        return Measured(failures=(failure("bench", device_name, exc, log),), notes=tuple(notes))
    finally:
        device.cleanup()
    failures = tuple(CellFailure("bench", f"{device_name} {record.model}", record.error or "failed")
                     for record in records if not record.ok)
    return Measured(failures, tuple(notes))


def measurement_overrides(config: SweepConfig, device_name: str) -> dict:
    """The sweep's measurement settings for one device: `[bench]`, then `[bench.device.NAME]`."""
    return {**config.measurement, **config.device_measurement.get(device_name, {})}


def _prepare_device(profile, log: Log) -> None:
    """Set up the profile's kind on first use (once per user; later calls return at once)."""
    from bench_runner.devices import device_kind

    kind = device_kind(profile.kind)
    if kind.setup is not None:
        kind.setup(lambda line: log(f"  {line}"))
