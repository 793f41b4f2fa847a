"""Markdown rendering of device tables."""

from __future__ import annotations

from deploy.report_tables import DeviceTable, table_cells

_LEFT_ALIGNED = ("model", "quant", "backend", "harness", "Pareto")


def markdown_table(table: DeviceTable) -> str:
    """One device table as Markdown: heading, table, notes and provenance."""
    headers, cells = table_cells(table)
    align = [":---" if header in _LEFT_ALIGNED else "---:" for header in headers]
    lines = [f"## {table.title}", "", _row(headers), _row(align)]
    lines += [_row(line) for line in cells]
    lines.append("")
    lines += [f"- {note}" for note in table.notes]
    lines += ["", "Provenance:", ""]
    lines += [f"- {what}: {value}" for what, value in table.provenance]
    return "\n".join(lines) + "\n"


def _row(cells: list[str]) -> str:
    return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"
