"""Tables of the records whose tool reported only an aggregate, one table per device.

Some tools print no per-run times, only a mean (and a trimmed mean) over N runs:
ExecuTorch's Android benchmark app, executor_runner before ExecuTorch v1.3. Their
records have no raw samples, so no p50, no interval and no Pareto standing: they are
shown apart from the device tables, as means, and never ranked (`rows.aggregate_rows`
pools them).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Sequence

from deploy.report.rows import ReportRow
from deploy.report.tables import EMULATED_CAVEAT

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

    `rows` (one per artifact x threads x harness, by threads then mean) carry their
    pooled `aggregate`; `stable` is False where a repetition showed a problem (named in
    `stability_note`), else None: an aggregate cannot show that a measurement is stable.
    """

    device_name: str
    emulated: bool
    title: str
    rows: tuple[ReportRow, ...]
    notes: tuple[str, ...]

    @property
    def slug(self) -> str:
        """A file-name-safe name: device and "aggregates"."""
        return f"{re.sub(r'[^A-Za-z0-9_.-]+', '-', self.device_name).strip('-')}-aggregates"


def aggregate_tables(rows: Sequence[ReportRow]) -> list[AggregateTable]:
    """One AggregateTable per device of the tool-aggregate `rows`, in device name order."""
    devices: dict[str, list[ReportRow]] = {}
    for row in rows:
        devices.setdefault(row.device_name, []).append(row)
    tables = []
    for device_name in sorted(devices):
        group = tuple(sorted(devices[device_name], key=lambda row: (row.threads, row.aggregate.mean_ms, row.label)))
        emulated = any(row.emulated for row in group)
        title = f"{device_name}{f' (emulated: {EMULATED_CAVEAT})' if emulated else ''}: from the tool's aggregate"
        tables.append(AggregateTable(
            device_name=str(device_name), emulated=emulated, title=title, rows=group, notes=_notes(group),
        ))
    return tables


def _notes(rows: Sequence[ReportRow]) -> tuple[str, ...]:
    notes = [AGGREGATE_RULE]
    notes += [f"Source: {source}." for source in dict.fromkeys(row.aggregate.source for row in rows)]
    if any(row.aggregate.trimmed_mean_is_pooled for row in rows):
        notes.append(POOLED_TRIMMED_MEAN)
    for row in rows:
        if row.stable is False:
            notes.append(f"† {row.label}: {row.stability_note}; measure again on a quiet machine.")
    return tuple(notes)
