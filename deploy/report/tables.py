"""One table per device, thread count and metric: its rows ranked, with baseline speed-ups and the Pareto front.

Models judged by different metrics (a classifier's top-1, a regression model's mean
absolute error) never share a front: each metric on a device gets a table of its own.

`device_tables` builds them from the accuracy-joined sampled rows; `cells.table_cells`
turns one into display text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Mapping, Sequence

from bench_runner.records import BenchRecord
from deploy.report.accuracy import REFERENCE_ACCURACY, AccuracyComparison
from deploy.report.failures import failure_notes
from deploy.report.inputs import ReportError
from deploy.report.provenance import provenance
from deploy.report.rows import UNRATED, ReportRow
from deploy.report.statistics import DOMINATED, FRONT, TIE, budget_state, pareto_front, speedup
from vitdeploy.metrics import TOP1, Metric

_INTERVALS = {True: "Top-1 intervals are Wilson's 95%.",
              False: "Intervals are the normal 95% intervals of the mean over images."}


def front_rule(metric: Metric) -> str:
    """How the Pareto column of a table judged by `metric` reads."""
    better = "higher" if metric.higher_is_better else "lower"
    return (
        f"Pareto ({metric.title}, {better} is better): yes = on the accuracy-latency front; tie = on the front only "
        "because a row at least as accurate has an overlapping p50 interval, or a row faster beyond both p50 "
        f"intervals is less accurate by no more than the paired 95% interval of the {metric.title} difference "
        "allows (the two are not ranked); no = a row at least as accurate is faster beyond both 95% intervals; "
        f"n/a = no deployed {metric.title}. {_INTERVALS[metric is TOP1]}"
    )
EMULATED_CAVEAT = "relative timings only, not a phone's latency"
_PARETO_TEXT = {FRONT: "yes", TIE: "tie", DOMINATED: "no"}


@dataclass(frozen=True)
class DeviceTable:
    """The report of one device at one thread count, for the models judged by `metric`.

    `rows` (one per artifact x harness, fastest first) carry their standing: speed-up
    over `baseline` (a row label), Pareto state and, given `budget_ms`, whether they fit
    it. `title` names the device and, for an
    emulated one, says its timings are relative only. `provenance` is (what, value)
    pairs; `notes` explain or qualify single rows.
    """

    device_name: str
    threads: int
    emulated: bool
    title: str
    rows: tuple[ReportRow, ...]
    baseline: str | None
    has_accuracy: bool
    provenance: tuple[tuple[str, str], ...]
    notes: tuple[str, ...]
    budget_ms: float | None = None
    metric: Metric = TOP1

    @property
    def slug(self) -> str:
        """A file-name-safe name: device and threads, and the metric where it is not top-1."""
        metric = "" if self.metric is TOP1 else f"-{self.metric.name}"
        return f"{re.sub(r'[^A-Za-z0-9_.-]+', '-', self.device_name).strip('-')}-{self.threads}t{metric}"


def device_title(name: str, cpu_model: str, emulated: bool, threads: int) -> str:
    """"host, 1 thread"; an emulated device also names its CPU and says what its timings mean."""
    if emulated:
        cpu = re.sub(r"^QEMU\s+|\s*\(emulated\)$", "", cpu_model, flags=re.IGNORECASE)
        cpu = re.sub(r"\bcortex-a(\d+)", lambda m: f"Cortex-A{m.group(1)}", cpu, flags=re.IGNORECASE)
        name = f"{name} (emulated {cpu}: {EMULATED_CAVEAT})"
    return f"{name}, {threads} thread{'' if threads == 1 else 's'}"


def device_tables(
    rows: Sequence[ReportRow], failed: Sequence[BenchRecord], baseline: str | None, dataset: str | None,
    budget_ms: float | None = None, device_budgets_ms: Mapping[str, float] | None = None,
) -> list[DeviceTable]:
    """One DeviceTable per device, thread count and metric, in name, thread and metric
    order (top-1 first); rows of a model that declares no metric join the top-1 table.

    `baseline` is a row label ("model/backend/quant") or a model name (its fp32 row is
    preferred, then backends alphabetically); None takes the fp32 row of the first
    model alphabetically. A named baseline that no table holds raises ReportError.
    `failed` records are named in their table's notes. `budget_ms` marks each row within,
    over or at that latency budget; `device_budgets_ms[device]` replaces it on one device.
    """
    if baseline is not None and not any(_matches_baseline(row, baseline) for row in rows):
        models = ", ".join(sorted({row.model_label for row in rows}))
        labels = ", ".join(sorted({row.label for row in rows}))
        raise ReportError(f"baseline {baseline!r} matches no measured row; give a model name ({models}) "
                          f"or a row label ({labels})")
    groups: dict[tuple[str, int, Metric], list[ReportRow]] = {}
    for row in rows:
        groups.setdefault((row.device_name, row.threads, row.metric or TOP1), []).append(row)
    tables = []
    for (device_name, threads, metric), group in sorted(groups.items(), key=lambda item: _table_order(*item[0])):
        group = sorted(group, key=lambda row: (row.stats.p50_ms, row.label))
        baseline_row = _baseline_row(group, baseline)
        group, unpaired = _ranked(group, baseline_row)
        budget = (device_budgets_ms or {}).get(device_name, budget_ms)
        if budget is not None:
            group = [replace(row, budget=budget_state(row.stats.ci95_low_ms, row.stats.ci95_high_ms, budget))
                     for row in group]
        failures = [record for record in failed if record.device_name == device_name and record.threads == threads]
        emulated = any(row.emulated for row in group)
        cpu_model = str(group[0].records[0].device.get("cpu_model", ""))
        tables.append(DeviceTable(
            device_name=str(device_name),
            threads=int(threads),
            emulated=emulated,
            title=device_title(str(device_name), cpu_model, emulated, int(threads))
            + ("" if metric is TOP1 else f": models judged by {metric.title}"),
            rows=tuple(group),
            baseline=None if baseline_row is None else baseline_row.label,
            has_accuracy=any(row.deployed is not None for row in group),
            provenance=provenance(group, dataset, baseline_row),
            notes=_notes(group, failures, baseline, baseline_row, unpaired, metric),
            budget_ms=budget,
            metric=metric,
        ))
    return tables


def _table_order(device_name: str, threads: int, metric: Metric) -> tuple:
    return device_name, threads, metric is not TOP1, metric.name


def _matches_baseline(row: ReportRow, baseline: str) -> bool:
    return baseline in (row.label, row.model_label, row.model)


def _baseline_row(group: list[ReportRow], baseline: str | None) -> ReportRow | None:
    if baseline is not None:
        exact = [row for row in group if row.label == baseline]
        if exact:
            return exact[0]
    candidates = [row for row in group if baseline is None or _matches_baseline(row, baseline)]
    if not candidates:
        return None
    fp32 = [row for row in candidates if row.quant == "fp32"]
    return min(fp32 or candidates, key=lambda row: (row.model_label, row.backend, row.label))


def _ranked(group: list[ReportRow], baseline: ReportRow | None) -> tuple[list[ReportRow], list[str]]:
    """The rows with their speed-up over `baseline` and their standing on the front, and
    the labels of rows whose accuracy the front compared by value alone (no per-image
    results on the same images)."""
    rated = [row for row in group if row.deployed is not None]
    comparison = AccuracyComparison([row.deployed for row in rated])
    statuses = pareto_front([row.deployed.goodness for row in rated], [row.stats.ci95_low_ms for row in rated],
                            [row.stats.ci95_high_ms for row in rated], comparison.clearly_less_accurate)
    standing = {row.label: status for row, status in zip(rated, statuses)}
    ranked = []
    for row in group:
        ratio, low, high = _speedup(row, baseline)
        status = standing.get(row.label)
        ranked.append(replace(
            row, baseline=None if baseline is None else baseline.label, speedup=ratio, speedup_ci_low=low,
            speedup_ci_high=high, pareto=UNRATED if status is None else _PARETO_TEXT[status.state],
            pareto_others=() if status is None else tuple(rated[j].label for j in status.others),
        ))
    unpaired = sorted({rated[k].label for pair in comparison.unpaired for k in pair})
    return ranked, unpaired


def _speedup(row: ReportRow, baseline: ReportRow | None) -> tuple[float | None, float | None, float | None]:
    """The row's speed-up over the baseline and its 95% interval (none for the baseline itself)."""
    if baseline is None:
        return None, None, None
    if row.label == baseline.label:
        return 1.0, None, None
    measured = speedup(baseline.samples_ms, row.samples_ms, baseline_rounds=baseline.sample_rounds,
                       row_rounds=row.sample_rounds)
    return measured.ratio, measured.ci_low, measured.ci_high


def _notes(
    group: list[ReportRow], failures: list[BenchRecord], baseline: str | None, baseline_row: ReportRow | None,
    unpaired: list[str], metric: Metric,
) -> tuple[str, ...]:
    notes = []
    if any(row.deployed is not None for row in group):
        notes.append(front_rule(metric))
        if unpaired:
            notes.append(f"Compared by {metric.title} alone, without per-image results on the same images (evaluate "
                         "them again with `vitdeploy eval` to pair them): " + ", ".join(unpaired) + ".")
        missing = [row.label for row in group if row.deployed is None]
        if missing:
            notes.append(f"No deployed {metric.title} (not on the front, n/a): " + ", ".join(missing) + ".")
    for header, accuracy_of in REFERENCE_ACCURACY:
        if any(accuracy_of(row) is not None for row in group):
            notes.append(f"'{header}' is a PyTorch model's accuracy, not the artifact's; it never enters the front.")
    if baseline is not None and baseline_row is None:
        notes.append(f"Baseline {baseline} was not measured here: no speed-ups.")
    for row in group:
        if not row.stable:
            notes.append(f"† {row.label}: unstable measurement ({row.stability_note}); measure again on a quiet machine.")
    unverified: dict[str, list[str]] = {}
    for row in group:
        if row.verified != "passed":
            state = "not recorded in the manifest" if row.verified is None else row.verified
            unverified.setdefault(state, []).append(row.label)
    for state in sorted(unverified):
        notes.append(f"Verification against the eager model {state}: " + ", ".join(unverified[state]) + ".")
    notes.extend(failure_notes(failures))
    return tuple(notes)
