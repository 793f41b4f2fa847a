"""Interleaved measurements through the bench runner, and their raw samples as rows.

    Budget(quick)                                   # how many samples each section takes
    measure(device, harness, labelled, settings) -> {(label, threads): BenchRecord}
    sample_rows(section, records) -> list[dict]     # one row per raw sample
    stats_rows(section, records, macs) -> list[dict]
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

from bench_runner.protocol import MeasurementSettings, run_protocol
from bench_runner.records import ArtifactInfo, BenchRecord


@dataclass(frozen=True)
class Budget:
    """Sample counts: the full run or a quick smoke run (`--quick`)."""

    quick: bool = False

    def host(self, threads: tuple[int, ...]) -> MeasurementSettings:
        """Host settings: runs/min_seconds are totals per artifact over all rounds."""
        if self.quick:
            return MeasurementSettings(threads=threads, warmup=2, runs=12, min_seconds=0.3, rounds=3)
        return MeasurementSettings(threads=threads, warmup=3, runs=48, min_seconds=3.0, rounds=6)

    def emulated(self) -> MeasurementSettings:
        """Emulated ARM: every inference takes about a second at the reduced resolution."""
        if self.quick:
            return MeasurementSettings(threads=(1,), warmup=1, runs=2, min_seconds=0.0, rounds=1, timeout_seconds=3600)
        return MeasurementSettings(threads=(1,), warmup=1, runs=15, min_seconds=0.0, rounds=3,
                                   timeout_seconds=3600, max_cv=0.25)


def measure(device, harness, labelled: Mapping[str, ArtifactInfo], settings: MeasurementSettings) -> dict:
    """All artifacts of `labelled` interleaved in one agent process per thread count;
    returns {(label, threads): record}. Failed records are kept (status "failed")."""
    labels = list(labelled)
    records = run_protocol(device, harness, [labelled[label] for label in labels], settings)
    by_path: dict[tuple[str, int], BenchRecord] = {(r.artifact_path, r.threads): r for r in records}
    return {
        (label, threads): by_path[(str(labelled[label].path), threads)]
        for label in labels
        for threads in settings.threads
    }


def sample_rows(section: str, records: Mapping[tuple[str, int], BenchRecord]) -> list[dict]:
    """Every raw sample with its artifact, configuration and round."""
    rows = []
    for (label, threads), record in records.items():
        for index, (sample, round_number) in enumerate(zip(record.samples_ms, record.round_index)):
            rows.append({
                "section": section, "device": record.device_name, "emulated": record.emulated,
                "label": label, "model": record.model, "backend": record.backend, "quant": record.quant,
                "runtime": record.runtime, "threads": threads, "round": round_number, "index": index,
                "latency_ms": sample,
            })
    return rows


def stats_rows(section: str, records: Mapping[tuple[str, int], BenchRecord], macs: Mapping[str, int]) -> list[dict]:
    """One summary row per artifact and thread count, with achieved GMAC/s."""
    rows = []
    for (label, threads), record in records.items():
        stats = record.stats
        row = {"section": section, "device": record.device_name, "label": label, "backend": record.backend,
               "quant": record.quant, "threads": threads, "status": record.status, "error": record.error or "",
               "macs": macs.get(label)}
        if stats is not None:
            row.update(n=stats.n, p50_ms=stats.p50_ms, ci95_low_ms=stats.ci95_low_ms, ci95_high_ms=stats.ci95_high_ms,
                       p90_ms=stats.p90_ms, min_ms=stats.min_ms, cv=stats.cv, stable=record.stable,
                       stability_note=record.stability_note,
                       gmacs_per_s=(macs[label] / (stats.p50_ms / 1e3) / 1e9) if macs.get(label) else None)
        rows.append(row)
    return rows


@dataclass(frozen=True)
class Section:
    """One section's outcome: Markdown for SUMMARY.md and named row sets, each written to
    results/benchmarks/<name>.csv."""

    name: str
    markdown: str
    tables: dict


def labelled_artifacts(artifacts: Mapping[str, object]) -> dict[str, ArtifactInfo]:
    """{label: ArtifactInfo} from {label: lowering Artifact}."""
    return {label: ArtifactInfo.from_path(artifact.path) for label, artifact in artifacts.items()}
