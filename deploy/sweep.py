"""A sweep: models x lowering targets x devices x thread counts, end to end.

Each model is obtained (trained on the embedded dataset, loaded from a checkpoint, or
random), lowered through the artifact cache and verified, evaluated in its own runtime
on the host, benchmarked on every device in interleaved rounds, and reported. A sweep
is resumable: lowering and training come from their caches, evaluations and benchmark
records already in the results folder are not repeated. A failed cell is reported and
the rest goes on.

This module is the driver: it obtains the models, hands lowering jobs and devices to an
executor (`deploy.executors`: in this process, or Ray tasks over a cluster), keeps what
they report in the results folder, and writes the report. The steps themselves are in
`deploy.sweep_steps`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

from deploy.config import SweepConfig
from deploy.sweep_steps import CellFailure, LoweringJob, failure
from vitdeploy.errors import VitdeployError

Log = Callable[[str], None]

__all__ = ["CellFailure", "SweepOutcome", "run_sweep"]


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
    """Run every cell of `config` on the executor it names; failures are collected, not raised."""
    from deploy.executors import open_executor

    executor = open_executor(config)
    sweep = _Sweep(config, log)
    with executor:
        artifacts = sweep.lower_all(executor)
        sweep.bench_all(executor, artifacts)
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
        self.failures.append(failure(stage, what, exc, self.log))

    def lower_all(self, executor) -> list[Path]:
        from deploy.evaluate import append_accuracy
        from lowering.export import parse_targets

        targets, skipped = parse_targets(list(self.config.backends), list(self.config.quant))
        self.notes.extend(skipped)
        artifacts: list[Path] = []
        for lowered in executor.lower(self.jobs(targets), self.evaluated(), self.log):
            artifacts.extend(lowered.artifacts)
            self.failures.extend(lowered.failures)
            self.notes.extend(lowered.notes)
            if lowered.accuracy:
                append_accuracy(self.config.results, list(lowered.accuracy))
        return artifacts

    def jobs(self, targets) -> Iterator[LoweringJob]:
        """The lowering jobs of every model, each model obtained when its jobs are due."""
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
                yield LoweringJob(entry.label, group)

    def lowering_groups(self, model, targets):
        """`targets` grouped by the model they lower (`lowering.int8_ranges`), calibrated
        on the sweep's data set. A group's targets share the export work."""
        from lowering.data.calibration import calibration_set
        from lowering.export import CalibrationSet
        from lowering.int8_ranges import lowering_groups

        calibration = CalibrationSet(*calibration_set(model.image_format, self.config.dataset,
                                                      self.config.calibration_images))
        return lowering_groups(model, targets, calibration, self.config.int8_ranges)

    def obtain(self, entry):
        """The model of one entry in training form, with its provenance."""
        from lowering.sources import ModelInput, open_model

        if entry.train:
            from lowering.training import TrainingSettings, train_or_load

            settings = TrainingSettings(**self.config.training)
            model, result = train_or_load(entry.name, settings, **entry.overrides)
            origin = "from the weights cache" if result.cache_hit else f"in {result.train_seconds:.0f} s"
            self.log(f"  trained {origin}: {result.headline}")
            return ModelInput.from_registry_model(model, result.source)
        return open_model(entry.name, checkpoint=entry.checkpoint, overrides=entry.overrides,
                          input_shape=entry.input_shape)

    def evaluated(self) -> set[str]:
        """Artifacts whose deployed accuracy the results folder already holds."""
        from deploy.evaluate import ACCURACY_FILE
        from deploy.report.inputs import load_accuracy

        accuracy = self.config.results / ACCURACY_FILE
        if not accuracy.is_file():
            return set()
        return {record.artifact_sha256 for record in load_accuracy([accuracy]) if record.kind == "deployed"}

    def bench_all(self, executor, artifacts: list[Path]) -> None:
        for measured in executor.measure(artifacts, self.log):
            self.failures.extend(measured.failures)
            self.notes.extend(measured.notes)

    def report(self) -> tuple[Path | None, dict[str, str]]:
        from deploy.report import build_report, markdown_for_device, write_report

        try:
            report = build_report(self.config.results, baseline=self.config.baseline,
                                  device_budgets_ms=device_budgets_ms(self.config))
            files = write_report(report, self.config.results / "report")
        except VitdeployError as exc:
            self.fail("report", str(self.config.results), exc)
            return None, {}
        return files.markdown.parent, {device: markdown_for_device(report, device) for device in report.devices}


def device_budgets_ms(config: SweepConfig) -> dict[str, float]:
    """Each device's latency budget by its profile name: the sweep's for that device, else
    the sweep's for every device, else its profile's; devices with none are left out."""
    from bench_runner.profiles import find_profile

    budgets = {}
    for device in config.devices:
        profile = find_profile(device)
        budget = config.device_budget_ms.get(device, config.budget_ms)
        budget = profile.budget_ms if budget is None else budget
        if budget is not None:
            budgets[profile.name] = budget
    return budgets


def _describe(overrides: dict) -> str:
    return " ".join(f"{key}={value}" for key, value in overrides.items())
