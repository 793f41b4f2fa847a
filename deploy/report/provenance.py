"""A device table's provenance: the device, its state, the settings, samples, toolchains and accuracy behind it."""

from __future__ import annotations

from datetime import datetime
from typing import Callable, Iterable, Sequence

from bench_runner.records import BenchRecord
from bench_runner.stats import BOOTSTRAP_RESAMPLES
from deploy.report.rows import ReportRow, fingerprint
from deploy.report.statistics import ACCURACY_SEED, MIN_PAIRED_ROUNDS, SPEEDUP_SEED
from vitdeploy.metrics import TOP1


def provenance(rows: Sequence[ReportRow], dataset: str | None, baseline: ReportRow | None) -> tuple[tuple[str, str], ...]:
    """(what, value) pairs that say where the numbers of one device table come from."""
    records = [record for row in rows for record in row.records]
    readings = [record.device for record in records]
    described = [
        f"{d.get('name')} [{key}]: {d.get('kind')}, {d.get('cpu_model')}, {d.get('abi')}, {d.get('cores')} cores, "
        f"{d.get('os')}{', EMULATED' if d.get('emulated') else ''}"
        for key, d in {fingerprint(d): d for d in readings}.items()
    ]
    frequencies = [f for d in readings for f in d.get("frequencies_khz") or ()]
    temperatures = [t for d in readings for t in (d.get("thermal_c") or {}).values()]
    state = []
    if frequencies:
        state.append(f"CPU {min(frequencies) / 1000:.0f}-{max(frequencies) / 1000:.0f} MHz")
    if temperatures:
        state.append(f"up to {max(temperatures):.0f} °C")

    def setting(read: Callable[[BenchRecord], object]) -> str:
        return _distinct(value for row in rows for value in sorted({read(record) for record in row.records}, key=str))

    settings = ", ".join([
        f"threads {rows[0].threads}",
        f"warm-up {setting(lambda r: r.warmup)} runs per round",
        f"at least {setting(lambda r: r.runs)} timed runs and {setting(lambda r: r.min_seconds)} s per artifact",
        f"{setting(lambda r: r.rounds)} interleaved rounds",
        f"cool-down {setting(lambda r: r.cooldown_seconds)} s",
        f"CPU mask {setting(lambda r: r.cpu_mask)}",
        f"harness {_distinct(row.harness for row in rows)}",
    ])
    repetitions = sorted({row.repetitions for row in rows})
    entries = [
        ("device", "; ".join(described)),
        ("device state before measuring", ", ".join(state) or "not readable on this device"),
        ("settings", settings),
        ("samples", "column n = raw samples behind each row; "
                    + ("one repetition per row" if repetitions == [1] else
                       f"{_distinct(repetitions)} repetitions per row, their raw samples pooled (each repetition's "
                       "median is in the CSV)")),
        ("measured", f"{_measured(records)}, run {setting(lambda r: r.run_id)}"),
        ("toolchain on the device", _versions(record.toolchain.get("device") for record in records)),
        ("toolchain measuring", _versions(record.toolchain.get("measuring") for record in records)),
        ("toolchain lowering", _versions(row.lowering_toolchain for row in rows if row.lowering_toolchain is not None)),
        ("accuracy", _accuracy(rows, dataset)),
    ]
    if baseline is not None:
        entries.append(("speed-up", (
            f"against {baseline.label}: median(baseline) / median(row), above 1 = faster; "
            f"95% interval by bootstrap ({BOOTSTRAP_RESAMPLES} resamples, seed {SPEEDUP_SEED}) of whole rounds, "
            f"the same rounds for both rows, where they were measured interleaved in at least {MIN_PAIRED_ROUNDS} "
            "shared rounds; otherwise of both rows' single raw samples, drawn independently"
        )))
    return tuple(entries)


def _accuracy(rows: Sequence[ReportRow], dataset: str | None) -> str:
    rated = [row.deployed for row in rows if row.deployed is not None]
    if not rated:
        return "no deployed accuracy for these artifacts: latency only, no Pareto front"
    images = _distinct(int(record.num_images) for record in rated)
    metric = rated[0].metric
    interval = ("Wilson's 95% score interval" if metric is TOP1
                else "the normal 95% interval of the mean of the per-image errors")
    return (f"deployed {metric.title} on '{dataset}', {images} images scored per artifact, each artifact run in its "
            f"own runtime (`vitdeploy eval`); the front uses only deployed accuracy; {metric.title} intervals: "
            f"{interval}; two artifacts' {metric.title} compared by the paired bootstrap of their difference on the "
            f"same images ({BOOTSTRAP_RESAMPLES} resamples, seed {ACCURACY_SEED})")


def _measured(records: Sequence[BenchRecord]) -> str:
    """From the first round's start to the last round's end, and the time spent in harness calls;
    the records' write times when any of them predates measurement times."""
    if not all(record.round_times for record in records):
        return (f"{min(r.timestamp for r in records)} to {max(r.timestamp for r in records)} "
                "(write times; these records predate measurement times)")
    spans = [span for record in records for span in record.round_times]
    return (f"{min(r.started_at for r in records)} to {max(r.ended_at for r in records)}, "
            f"{_duration(_covered_seconds(spans))} in harness calls (the union of the rounds' spans: "
            "a call that measured several rows counts once)")


def _covered_seconds(spans: Iterable[tuple[str, str]]) -> float:
    """The seconds covered by the union of ISO 8601 (start, end) spans."""
    total, reached = 0.0, None
    for start, end in sorted((datetime.fromisoformat(s), datetime.fromisoformat(e)) for s, e in spans):
        start = start if reached is None else max(start, reached)
        total += max((end - start).total_seconds(), 0.0)
        reached = end if reached is None else max(end, reached)
    return total


def _duration(seconds: float) -> str:
    """"12.3 s", "4 min 5 s", "2 h 3 min"."""
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, seconds = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if hours else f"{minutes} min {seconds} s"


def _distinct(values: Iterable) -> str:
    seen = []
    for value in values:
        text = "none" if value is None else (f"{value:g}" if isinstance(value, float) else str(value))
        if text not in seen:
            seen.append(text)
    return " / ".join(seen)


def _versions(dicts: Iterable[dict | None]) -> str:
    merged: dict[str, list[str]] = {}
    for versions in dicts:
        for name, version in sorted((versions or {}).items()):
            merged.setdefault(name, [])
            if str(version) not in merged[name]:
                merged[name].append(str(version))
    return ", ".join(f"{name} {' / '.join(v)}" for name, v in merged.items()) or "not recorded"
