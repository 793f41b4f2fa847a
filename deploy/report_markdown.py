"""Markdown rendering of device tables and of tool-aggregate tables."""

from __future__ import annotations

from deploy.report_aggregates import AggregateTable, aggregate_cells
from deploy.report_tables import DeviceTable, table_cells

_LEFT_ALIGNED = ("model", "quant", "backend", "harness", "Pareto")


def markdown_table(table: DeviceTable) -> str:
    """One device table as Markdown: heading, table, notes and provenance."""
    lines = _titled_table(table.title, *table_cells(table), table.notes)
    lines += ["", "Provenance:", ""]
    lines += [f"- {what}: {value}" for what, value in table.provenance]
    return "\n".join(lines) + "\n"


def markdown_aggregate_table(table: AggregateTable) -> str:
    """One device's tool-aggregate table as Markdown: heading, table and notes."""
    return "\n".join(_titled_table(table.title, *aggregate_cells(table), table.notes)) + "\n"


def _titled_table(title: str, headers: list[str], cells: list[list[str]], notes: tuple[str, ...]) -> list[str]:
    align = [":---" if header in _LEFT_ALIGNED else "---:" for header in headers]
    lines = [f"## {title}", "", _row(headers), _row(align)]
    lines += [_row(line) for line in cells]
    lines.append("")
    return lines + [f"- {note}" for note in notes]


def _row(cells: list[str]) -> str:
    return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"
