"""Report rows: one per artifact x device x threads x harness, its repetitions pooled.

    rows = sampled_rows(records)      # records with raw samples: the device tables' rows
    rows = aggregate_rows(records)    # records with only a tool's aggregate: never ranked

Repetitions of the same measurement are pooled. With raw samples they are concatenated
and every statistic (p50, its 95% bootstrap interval, p90, ...) is recomputed from the
pool with `LatencyStats.from_samples`; each repetition's own median is kept alongside.
A tool's aggregates are pooled as the protocol pools rounds (`pool_aggregates`). Model
facts (params, MACs, verification) come from the artifact's manifest, read by
`inputs.manifest_facts`.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Iterable, Sequence

from bench_runner.harness.base import ToolAggregate, pool_aggregates
from bench_runner.protocol import aggregate_problems
from bench_runner.records import BenchRecord
from bench_runner.stats import LatencyStats
from deploy.report.inputs import AccuracyRecord, ManifestFacts, manifest_facts
from deploy.report.labels import row_labels
from vitdeploy.metrics import Metric

# `ReportRow.pareto` of a row without deployed accuracy, and of a tool-aggregate row.
UNRATED = "n/a"
NOT_RANKED = "not ranked"
_FINGERPRINT_FIELDS = ("kind", "name", "abi", "cpu_model", "cores", "os", "emulated")


@dataclass(frozen=True)
class ReportRow:
    """One artifact measured on one device at one thread count by one harness, repetitions pooled.

    `records` are the pooled BenchRecords in time order (timestamp, run, repetition); the
    identity fields are the first one's. A row has either raw samples and `stats` (their
    pool's statistics) or, from a tool that printed only a mean over N runs, an
    `aggregate` and no `stats`: such a row has no p50, no interval, and is never ranked.
    `stable` is None where a tool aggregate cannot show it.

    `spec` is the model's spec as its manifest records it (None if it does not).
    `metric` is what the model declares its accuracy is measured by (its manifest's spec;
    a classifier's top-1 when it does not say; None for an embedding model).
    `deployed` is the artifact's accuracy run in its own runtime; `simulated` and `eager`
    are a PyTorch model's (fake-quant, eager) and never decide the front. The last
    fields are the row's standing in its device table (set by `tables.device_tables`):
    the `baseline` row's label, the speed-up over it with its 95% interval, `pareto`
    ("yes", "tie", "no"; UNRATED without deployed accuracy, NOT_RANKED for an aggregate)
    and `pareto_others`, the labels of the rows that dominate it or tie with it; `budget`
    whether it fits the report's latency budget (`statistics.budget_state`; None without one).
    """

    device_name: str
    device_kind: str
    emulated: bool
    threads: int
    harness: str
    artifact_sha256: str
    artifact_path: str
    model: str
    backend: str
    quant: str
    runtime: str
    resolution: str
    model_label: str
    label: str
    params: int | None
    macs: int | None
    spec: dict | None
    metric: Metric | None
    reparameterized: bool | None
    verified: str | None
    lowering_toolchain: dict | None
    records: tuple[BenchRecord, ...]
    stats: LatencyStats | None
    aggregate: ToolAggregate | None
    stable: bool | None
    stability_note: str
    deployed: AccuracyRecord | None = None
    simulated: AccuracyRecord | None = None
    eager: AccuracyRecord | None = None
    baseline: str | None = None
    speedup: float | None = None
    speedup_ci_low: float | None = None
    speedup_ci_high: float | None = None
    pareto: str = UNRATED
    pareto_others: tuple[str, ...] = ()
    budget: str | None = None

    @property
    def samples_ms(self) -> tuple[float, ...]:
        """The pooled raw samples, in run and repetition order."""
        return tuple(sample for record in self.records for sample in record.samples_ms)

    @property
    def sample_rounds(self) -> tuple[tuple[str, str, int, int], ...]:
        """Per sample, the round it was measured in: (run id, harness, repetition, round).

        Artifacts measured by one harness in the same run, repetition and round ran
        interleaved, side by side: speed-ups pair them round by round.
        """
        return tuple((record.run_id, record.harness, int(record.repetition), int(index))
                     for record in self.records for index in record.round_index)

    @property
    def repetitions(self) -> int:
        """How many records (repetitions of the measurement) the row pools."""
        return len(self.records)

    @property
    def repetition_p50_ms(self) -> tuple[float, ...]:
        """Each repetition's own median (none for a tool-aggregate row)."""
        return tuple(float(record.stats.p50_ms) for record in self.records if record.stats is not None)

    @property
    def record_keys(self) -> tuple[str, ...]:
        """The pooled records' keys, to find them in the results store."""
        return tuple(record.key for record in self.records)

    @property
    def device_fingerprint(self) -> str:
        """The fingerprint of the device as the first record describes it."""
        return fingerprint(self.records[0].device)


def fingerprint(device: dict) -> str:
    """A short hash of a device's identity (not of its momentary frequencies or heat)."""
    identity = json.dumps({k: device.get(k) for k in _FINGERPRINT_FIELDS}, sort_keys=True)
    return hashlib.sha256(identity.encode()).hexdigest()[:12]


def sampled_rows(records: Iterable[BenchRecord]) -> list[ReportRow]:
    """One row per successful measurement with raw samples, in device, threads, artifact and harness order."""
    return _pooled([record for record in records if record.ok and record.aggregate is None])


def aggregate_rows(records: Iterable[BenchRecord]) -> list[ReportRow]:
    """One row per successful measurement that has only a tool's aggregate, in the same order."""
    return _pooled([record for record in records if record.ok and record.aggregate is not None])


def _pooled(records: list[BenchRecord]) -> list[ReportRow]:
    measurements: dict[tuple, list[BenchRecord]] = {}
    for record in records:
        key = (record.device_name, record.threads, record.artifact_sha256, record.harness)
        measurements.setdefault(key, []).append(record)
    groups = [tuple(sorted(measurements[key], key=lambda r: (r.started_at or r.timestamp, r.run_id, r.repetition)))
              for key in sorted(measurements)]
    facts = [manifest_facts(group[0].manifest) for group in groups]
    labels = row_labels([group[0] for group in groups], facts)
    return [_row(group, f, model_label, label) for group, f, (model_label, label) in zip(groups, facts, labels)]


def _row(records: tuple[BenchRecord, ...], facts: ManifestFacts, model_label: str, label: str) -> ReportRow:
    first = records[0]
    if first.aggregate is None:
        stats = LatencyStats.from_samples([s for record in records for s in record.samples_ms], seed=int(first.seed))
        aggregate = None
        notes = sorted({record.stability_note for record in records if record.stability_note})
        stable = all(record.stable for record in records)
    else:
        stats = None
        aggregate = pool_aggregates([record.aggregate for record in records])
        notes = sorted({aggregate_problems(record.stability_note)
                        for record in records if record.stable is not None and not record.stable})
        stable = False if notes else None
    return ReportRow(
        device_name=first.device_name, device_kind=first.device_kind, emulated=first.emulated, threads=first.threads,
        harness=first.harness, artifact_sha256=first.artifact_sha256, artifact_path=first.artifact_path,
        model=first.model, backend=first.backend, quant=first.quant, runtime=first.runtime,
        resolution=_resolution(first.input_shape), model_label=model_label, label=label,
        params=facts.params, macs=facts.macs, spec=facts.spec, metric=facts.metric, reparameterized=facts.reparameterized, verified=facts.verified,
        lowering_toolchain=facts.lowering_toolchain, records=records, stats=stats, aggregate=aggregate,
        stable=stable, stability_note="; ".join(notes), pareto=UNRATED if aggregate is None else NOT_RANKED,
    )


def _resolution(shape: Sequence[int]) -> str:
    if len(shape) < 2:
        return "?"
    height, width = shape[-2], shape[-1]
    return str(height) if height == width else f"{height}x{width}"
