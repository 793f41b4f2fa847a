"""The answer to a user's question: which artifacts are fastest at a given top-1 on each device.

They are the row with the lowest p50 among those with at least that deployed top-1,
listed together with every such row whose p50 interval overlaps its own (the data cannot
rank them); tables of models judged by another metric are not asked. (Which rows fit a
latency budget is `statistics.budget_state`, a column of every table.)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from deploy.report.rows import ReportRow
from deploy.report.tables import DeviceTable
from vitdeploy.metrics import TOP1


@dataclass(frozen=True)
class FastestAtAccuracy:
    """On one device table, the fastest rows with deployed top-1 at least `min_top1_pct`,
    ties together (fastest first); empty when none reaches it."""

    table: DeviceTable
    min_top1_pct: float
    rows: tuple[ReportRow, ...]

    @property
    def text(self) -> str:
        """One line: "host, 1 thread: a (3.1 ms, 97.2 %), tied with b (3.2 ms, 97.5 %)"."""
        if not self.rows:
            best = max((row.deployed.value for row in self.table.rows if row.deployed), default=None)
            reached = "no deployed accuracy" if best is None else f"the best deployed top-1 is {best:.1f} %"
            return f"{self.table.title}: no artifact reaches top-1 {self.min_top1_pct:g} % ({reached})"
        named = [f"{row.label} ({row.stats.p50_ms:.3g} ms, top-1 {row.deployed.value:.1f} %)" for row in self.rows]
        tied = f", tied with {', '.join(named[1:])}" if len(named) > 1 else ""
        return f"{self.table.title}: {named[0]}{tied}"


def fastest_at_accuracy(tables: Sequence[DeviceTable], min_top1_pct: float) -> list[FastestAtAccuracy]:
    """Per top-1 device table, the fastest artifacts that reach `min_top1_pct` (see the module docstring)."""
    answers = []
    for table in (table for table in tables if table.metric is TOP1):
        reaching = sorted((row for row in table.rows if row.deployed and row.deployed.value >= min_top1_pct),
                          key=lambda row: (row.stats.p50_ms, row.label))
        fastest = reaching[:1]
        ties = [row for row in reaching[1:] if row.stats.ci95_low_ms <= fastest[0].stats.ci95_high_ms]
        answers.append(FastestAtAccuracy(table, min_top1_pct, tuple(fastest + ties)))
    return answers
