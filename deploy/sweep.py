"""A sweep: models x lowering targets x devices x thread counts, end to end.

Each model is obtained (trained on the embedded dataset, loaded from a checkpoint, or
random), lowered through the artifact cache and verified, evaluated in its own runtime
on the host, benchmarked on every device in interleaved rounds, and reported. A sweep
is resumable: lowering and training come from their caches, evaluations and benchmark
records already in the results folder are not repeated. A failed cell is reported and
the rest goes on.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable

from deploy.config import SweepConfig
from vitdeploy.errors import VitdeployError

Log = Callable[[str], None]


@dataclass(frozen=True)
class CellFailure:
    """One part of the sweep that failed: `stage` (model, lower, eval, bench, report),
    `what` (a model label, target or device) and the error's message."""

    stage: str
    what: str
    error: str


@dataclass(frozen=True)
class SweepOutcome:
    """What a sweep produced. `report_markdown` maps device name to its Markdown tables."""

    results_dir: Path
    artifacts: tuple[Path, ...]
    failures: tuple[CellFailure, ...]
    notes: tuple[str, ...] = ()
    report_dir: Path | None = None
    report_markdown: dict[str, str] = field(default_factory=dict)


def run_sweep(config: SweepConfig, log: Log = print) -> SweepOutcome:
    """Run every cell of `config`; failures are collected, not raised."""
    sweep = _Sweep(config, log)
    artifacts = sweep.lower_all()
    sweep.evaluate(artifacts)
    for device in config.devices:
        sweep.bench(device, artifacts)
    report_dir, markdown = sweep.report()
    return SweepOutcome(
        results_dir=config.results,
        artifacts=tuple(artifacts),
        failures=tuple(sweep.failures),
        notes=tuple(sweep.notes),
        report_dir=report_dir,
        report_markdown=markdown,
    )


class _Sweep:
    def __init__(self, config: SweepConfig, log: Log) -> None:
        self.config = config
        self.log = log
        self.failures: list[CellFailure] = []
        self.notes: list[str] = []
        config.results.mkdir(parents=True, exist_ok=True)

    def fail(self, stage: str, what: str, exc: Exception) -> None:
        message = str(exc).strip() or type(exc).__name__
        self.failures.append(CellFailure(stage, what, message))
        self.log(f"  FAILED {stage} {what}: {message}")

    def lower_all(self) -> list[Path]:
        from lowering.export import parse_targets

        targets, skipped = parse_targets(list(self.config.backends), list(self.config.quant))
        self.notes.extend(skipped)
        artifacts: list[Path] = []
        for entry in self.config.models:
            self.log(f"model {entry.label}: {entry.name} {_describe(entry.overrides)}")
            try:
                model = self.obtain(entry)
            except VitdeployError as exc:
                self.fail("model", entry.label, exc)
                continue
            try:
                groups = self.lowering_groups(model, targets)
            except VitdeployError as exc:
                self.fail("lower", entry.label, exc)
                continue
            for group in groups:
                artifacts.extend(self.lower_isolating_failures(entry.label, group))
        return artifacts

    def lowering_groups(self, model, targets):
        """`targets` grouped by the model they lower (`lowering.int8_ranges`), calibrated
        on the sweep's data set. A group's targets share the export work."""
        from lowering.data.calibration import calibration_set
        from lowering.export import CalibrationSet
        from lowering.int8_ranges import lowering_groups

        calibration = CalibrationSet(*calibration_set(model.image_format, self.config.dataset,
                                                      self.config.calibration_images))
        return lowering_groups(model, targets, calibration, self.config.int8_ranges)

    def lower_isolating_failures(self, label, group) -> list[Path]:
        """Lower a group's targets together; if that fails, again one by one (the ones
        built come from the cache), so that only the failing cells are reported."""
        try:
            return self.lower(label, group)
        except VitdeployError as exc:
            if len(group.targets) == 1:
                self.fail("lower", f"{label} {group.targets[0]}", exc)
                return []
        return [path for target in group.targets
                for path in self.lower_isolating_failures(label, replace(group, targets=(target,)))]

    def obtain(self, entry):
        """The model of one entry in training form, with its provenance."""
        from lowering.sources import ModelInput, open_model

        if entry.train:
            from lowering.training import TrainingSettings, train_or_load

            settings = TrainingSettings(**self.config.training)
            model, result = train_or_load(entry.name, settings, **entry.overrides)
            origin = "from the weights cache" if result.cache_hit else f"in {result.train_seconds:.0f} s"
            self.log(f"  trained {origin}: val top-1 {100 * result.val_top1:.2f}%")
            return ModelInput.from_registry_model(model, result.source)
        return open_model(entry.name, checkpoint=entry.checkpoint, overrides=entry.overrides,
                          input_shape=entry.input_shape)

    def lower(self, label, group) -> list[Path]:
        from lowering.export import lower_model

        spec = group.lowering_spec(verification_images=self.verification_images(group.model.image_format))
        out_dir = self.config.results / "artifacts" / label
        built = lower_model(group.model, spec, out_dir=out_dir, label=label,
                            log=lambda message: self.log(f"  {message}"))
        return [artifact.path for artifact in built]

    def verification_images(self, spec):
        """Real images for the numerical check: random inputs exaggerate int8 error."""
        import numpy as np
        import torch

        from deploy.evaluate import evaluation_dataset
        from lowering.verify import MIN_INPUTS

        dataset = evaluation_dataset(spec, self.config.dataset, limit=MIN_INPUTS)
        return torch.from_numpy(np.concatenate([images for images, _ in dataset.batches(MIN_INPUTS)]))

    def evaluate(self, artifacts: list[Path]) -> None:
        from deploy.evaluate import append_accuracy, evaluate_artifact
        from vitdeploy.manifest import read_manifest
        from lowering.runtime import RuntimeUnavailableError

        done = self.evaluated()
        for path in artifacts:
            manifest = read_manifest(path)
            if manifest.sha256 in done:
                continue
            try:
                result = evaluate_artifact(path, self.config.dataset, limit=self.config.eval_limit)
            except RuntimeUnavailableError as exc:
                self.notes.append(f"{path.parent.name}/{path.name}: not evaluated: {exc}")
                continue
            except VitdeployError as exc:
                self.fail("eval", path.name, exc)
                continue
            append_accuracy(self.config.results, [result])
            self.log(f"eval {path.parent.name}/{path.name}: top-1 {100 * result.top1:.2f}% on {result.num_images} images")

    def evaluated(self) -> set[str]:
        """Artifacts whose deployed accuracy the results folder already holds."""
        from deploy.evaluate import ACCURACY_FILE
        from deploy.report.inputs import load_accuracy

        accuracy = self.config.results / ACCURACY_FILE
        if not accuracy.is_file():
            return set()
        return {record.artifact_sha256 for record in load_accuracy([accuracy]) if record.kind == "deployed"}

    def bench(self, device_name: str, artifacts: list[Path]) -> None:
        from bench_runner.devices import open_device
        from bench_runner.profiles import find_profile
        from bench_runner.protocol import run_on_profile
        from bench_runner.records import ArtifactInfo
        from bench_runner.store import ResultsStore

        try:
            profile = find_profile(device_name)
            self.prepare_device(profile)
            device = open_device(profile)
        except VitdeployError as exc:
            self.fail("bench", device_name, exc)
            return
        runtimes = getattr(device, "runtimes", None)
        infos, unmeasured = [], {}
        for path in artifacts:
            info = ArtifactInfo.from_path(path)
            if runtimes is not None and info.runtime not in runtimes:
                unmeasured.setdefault(info.runtime, []).append(f"{path.parent.name}/{path.name}")
                continue
            infos.append(info)
        for runtime, names in unmeasured.items():
            self.notes.append(f"{device_name}: {runtime} is not installed there; not measured: "
                              f"{', '.join(names)} ({len(names)} artifact{'' if len(names) == 1 else 's'})")
        if not infos:
            return
        overrides = {**self.config.measurement, **self.config.device_measurement.get(device_name, {})}
        settings = profile.measurement.with_overrides(threads=self.config.threads, **overrides)
        store = ResultsStore(self.config.results / "store")
        self.log(f"bench on {device_name}: {len(infos)} artifacts, threads {list(settings.threads)}, "
                 f"{settings.rounds} interleaved rounds")
        try:
            records = run_on_profile(device, profile, infos, settings, store=store, resume=True,
                                     progress=lambda p: self.log(f"  {p.message}"))
        except VitdeployError as exc:
            self.fail("bench", device_name, exc)
            return
        finally:
            device.cleanup()
        for record in records:
            if not record.ok:
                self.failures.append(CellFailure("bench", f"{device_name} {record.model}", record.error or "failed"))

    def prepare_device(self, profile) -> None:
        """Set up the profile's kind on first use (once per user; later calls return at once)."""
        from bench_runner.devices import device_kind

        kind = device_kind(profile.kind)
        if kind.setup is not None:
            kind.setup(lambda line: self.log(f"  {line}"))

    def report(self) -> tuple[Path | None, dict[str, str]]:
        from deploy.report import build_report, markdown_for_device, write_report

        try:
            report = build_report(self.config.results, baseline=self.config.baseline)
            files = write_report(report, self.config.results / "report")
        except VitdeployError as exc:
            self.fail("report", str(self.config.results), exc)
            return None, {}
        return files.markdown.parent, {device: markdown_for_device(report, device) for device in report.devices}


def _describe(overrides: dict) -> str:
    return " ".join(f"{key}={value}" for key, value in overrides.items())
