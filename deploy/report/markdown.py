"""Markdown rendering of device tables and of tool-aggregate tables."""

from __future__ import annotations

from dataclasses import replace

from deploy.report.across_devices import ACROSS_ALL_TITLE, ACROSS_RULE, ACROSS_TITLE, CrossDeviceTable
from deploy.report.aggregates import AggregateTable
from deploy.report.build import Report
from deploy.report.cells import across_all_cells, across_cells, aggregate_cells, series_cells, table_cells
from deploy.report.inputs import ReportError
from deploy.report.series import SERIES_RULE, FieldSeries
from deploy.report.tables import DeviceTable

_LEFT_ALIGNED = ("model", "quant", "backend", "harness", "Pareto")


def markdown_for_device(report: Report, device: str, threads: int | None = None) -> str:
    """The Markdown tables of one device (all its thread counts, or only `threads`), then its
    tool-aggregate table (only rows at `threads` when given)."""
    tables = [t for t in report.tables if t.device_name == device and (threads is None or t.threads == threads)]
    aggregates = [_at_threads(t, threads) for t in report.aggregate_tables if t.device_name == device]
    aggregates = [t for t in aggregates if t.rows]
    if not tables and not aggregates:
        known = ", ".join([f"{t.device_name} ({t.threads} threads)" for t in report.tables]
                          + [f"{t.device_name} (tool aggregates)" for t in report.aggregate_tables])
        raise ReportError(f"the report has no table for device {device!r}"
                          + (f" at {threads} threads" if threads is not None else "") + f"; it has: {known}")
    return "\n".join([markdown_table(table) for table in tables] + [markdown_aggregate_table(t) for t in aggregates])


def markdown_table(table: DeviceTable) -> str:
    """One device table as Markdown: heading, table, notes and provenance."""
    lines = _titled_table(table.title, *table_cells(table), table.notes)
    lines += ["", "Provenance:", ""]
    lines += [f"- {what}: {value}" for what, value in table.provenance]
    return "\n".join(lines) + "\n"


def markdown_across_devices(table: CrossDeviceTable) -> str:
    """The cross-device table in its two forms: best artifact per device, then every artifact."""
    lines = _titled_table(ACROSS_TITLE, *across_cells(table), (ACROSS_RULE,))
    lines += [""] + _titled_table(ACROSS_ALL_TITLE, *across_all_cells(table), ())
    return "\n".join(lines) + "\n"


def markdown_series(series: FieldSeries) -> str:
    """Models that differ in one field, side by side."""
    return "\n".join(_titled_table(series.title, *series_cells(series), (SERIES_RULE,))) + "\n"


def markdown_fastest(report: Report) -> str:
    """The fastest artifacts reaching the report's top-1 threshold, one line per device table."""
    lines = [f"## Fastest at top-1 ≥ {report.min_top1_pct:g} %", ""]
    lines += [f"- {answer.text}" for answer in report.fastest]
    return "\n".join(lines) + "\n"


def markdown_aggregate_table(table: AggregateTable) -> str:
    """One device's tool-aggregate table as Markdown: heading, table and notes."""
    return "\n".join(_titled_table(table.title, *aggregate_cells(table), table.notes)) + "\n"


def _at_threads(table: AggregateTable, threads: int | None) -> AggregateTable:
    if threads is None:
        return table
    return replace(table, rows=tuple(row for row in table.rows if row.threads == threads))


def _titled_table(title: str, headers: list[str], cells: list[list[str]], notes: tuple[str, ...]) -> list[str]:
    align = [":---" if header in _LEFT_ALIGNED else "---:" for header in headers]
    lines = [f"## {title}", "", _row(headers), _row(align)]
    lines += [_row(line) for line in cells]
    lines.append("")
    return lines + [f"- {note}" for note in notes]


def _row(cells: list[str]) -> str:
    return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"
