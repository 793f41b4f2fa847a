"""The local executor: every step in this process, one after another."""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, Iterator

from deploy.config import SweepConfig
from deploy.sweep_steps import Log, Lowered, LoweringJob, Measured, lower_and_evaluate, measure_device


class LocalExecutor:
    """Lowers each job and measures each device in turn, writing straight into the results folder."""

    def __init__(self, config: SweepConfig) -> None:
        self.config = config

    def __enter__(self) -> LocalExecutor:
        return self

    def __exit__(self, *exc_info) -> None:
        return None

    def lower(self, jobs: Iterable[LoweringJob], evaluated: set[str], log: Log) -> Iterator[Lowered]:
        for job in jobs:
            yield lower_and_evaluate(self.config, job, self.config.results / "artifacts" / job.label, evaluated, log)

    def measure(self, artifacts: list[Path], log: Log) -> Iterator[Measured]:
        from bench_runner.store import ResultsStore

        store = ResultsStore(self.config.results / "store")
        for device in self.config.devices:
            yield measure_device(self.config, device, artifacts, store, log)
