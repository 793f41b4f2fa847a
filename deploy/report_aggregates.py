"""Tables of the records whose tool reported only an aggregate, one table per device.

Some tools print no per-run times, only a mean (and a trimmed mean) over N runs:
ExecuTorch's Android benchmark app, executor_runner before ExecuTorch v1.3. Their
records have no raw samples, so no p50, no interval and no Pareto standing: they are
shown apart from the device tables, as means, and never ranked. Repetitions of the same
measurement are pooled as the protocol pools rounds (`pool_aggregates`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pandas as pd

from bench_runner.harness.base import pool_aggregates
from bench_runner.protocol import aggregate_problems
from deploy.report_rows import ROW_KEY, describe_artifacts
from deploy.report_tables import EMULATED_CAVEAT, format_ms

AGGREGATE_RULE = (
    "From the tool's aggregate: mean / trimmed mean over N runs, no raw samples, no interval. These rows are "
    "not ranked, not on the Pareto front and not comparable with p50s."
)
POOLED_TRIMMED_MEAN = (
    "A trimmed mean over several rounds or repetitions is the run-weighted mean of each tool run's trimmed mean "
    "(the tool's runs are not available to trim them together); the per-round values are in the records."
)


@dataclass(frozen=True)
class AggregateTable:
    """The aggregate-only measurements of one device.

    `rows` (a DataFrame, one row per artifact x threads x harness, repetitions pooled,
    by mean) carries `label`, `threads`, `aggregate` (the pooled ToolAggregate),
    `runs`, `mean_ms`, `trimmed_mean_ms`, `load_ms`, `flagged` (a repetition showed a
    problem), `stable` (False when flagged, else None: an aggregate cannot show that
    a measurement is stable) and `stability_note` (the problems).
    """

    device_name: str
    emulated: bool
    title: str
    rows: pd.DataFrame
    notes: tuple[str, ...]

    @property
    def slug(self) -> str:
        """A file-name-safe name: device and "aggregates"."""
        return f"{re.sub(r'[^A-Za-z0-9_.-]+', '-', self.device_name).strip('-')}-aggregates"


def aggregate_records(latency: pd.DataFrame) -> pd.DataFrame:
    """The successful records that carry a tool's aggregate instead of raw samples."""
    return latency[(latency["status"] == "ok") & latency["aggregate"].notna()]


def aggregate_tables(latency: pd.DataFrame) -> list[AggregateTable]:
    """One AggregateTable per device that has aggregate-only records, in device name order."""
    records = aggregate_records(latency)
    if records.empty:
        return []
    rows = describe_artifacts(_pool(records))
    tables = []
    for device_name, group in rows.groupby("device_name", sort=True):
        group = group.sort_values(["threads", "mean_ms", "label"]).reset_index(drop=True)
        emulated = bool(group["emulated"].any())
        title = f"{device_name}{f' (emulated: {EMULATED_CAVEAT})' if emulated else ''}: from the tool's aggregate"
        tables.append(AggregateTable(
            device_name=str(device_name), emulated=emulated, title=title, rows=group, notes=_notes(group),
        ))
    return tables


def _pool(records: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for _, group in records.groupby(ROW_KEY, sort=True):
        group = group.sort_values(["timestamp", "run_id", "repetition"])
        first = group.iloc[0]
        aggregate = pool_aggregates(list(group["aggregate"]))
        notes = sorted({
            aggregate_problems(note)
            for note, stable in zip(group["stability_note"], group["stable"])
            if stable is not None and not stable
        })
        rows.append({
            **{name: first[name] for name in (
                "device_name", "device_kind", "emulated", "device", "harness", "threads", "artifact_sha256",
                "artifact_path", "manifest", "model", "backend", "quant", "runtime", "input_shape",
            )},
            "record_keys": tuple(group["key"]),
            "repetitions": len(group),
            "aggregate": aggregate,
            "runs": aggregate.runs,
            "mean_ms": aggregate.mean_ms,
            "trimmed_mean_ms": aggregate.trimmed_mean_ms,
            "load_ms": aggregate.load_ms,
            "flagged": bool(notes),
            "stable": False if notes else None,
            "stability_note": "; ".join(notes),
        })
    return pd.DataFrame(rows)


def _notes(group: pd.DataFrame) -> tuple[str, ...]:
    notes = [AGGREGATE_RULE]
    notes += [f"Source: {source}." for source in dict.fromkeys(a.source for a in group["aggregate"])]
    if any(a.trimmed_mean_is_pooled for a in group["aggregate"]):
        notes.append(POOLED_TRIMMED_MEAN)
    for row in group[group["flagged"]].itertuples():
        notes.append(f"† {row.label}: {row.stability_note}; measure again on a quiet machine.")
    return tuple(notes)


def aggregate_cells(table: AggregateTable) -> tuple[list[str], list[list[str]]]:
    """The display headers and cells of an aggregate table (shared by Markdown and HTML)."""
    rows = table.rows
    harnesses = rows["harness"].nunique() > 1
    headers = ["model", "res.", "quant", "backend"] + (["harness"] if harnesses else [])
    headers += ["threads", "mean ms", "trimmed mean ms", "runs", "load ms"]
    cells = []
    for _, row in rows.iterrows():
        line = [row["model_label"], row["resolution"], row["quant"], row["backend"]]
        line += [row["harness"]] if harnesses else []
        mark = " †" if row["flagged"] else ""
        line += [str(int(row["threads"])), format_ms(row["mean_ms"]) + mark, format_ms(row["trimmed_mean_ms"]),
                 str(int(row["runs"])), format_ms(row["load_ms"])]
        cells.append([str(cell) for cell in line])
    return headers, cells
