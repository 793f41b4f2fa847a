"""The self-contained HTML page: inline CSS, plots embedded as data URIs, no network."""

from __future__ import annotations

import base64
from html import escape
from pathlib import Path
from typing import Mapping, Sequence

from deploy.report.across_devices import ACROSS_ALL_TITLE, ACROSS_RULE, ACROSS_TITLE, CrossDeviceTable
from deploy.report.aggregates import AggregateTable
from deploy.report.build import Report
from deploy.report.cells import across_all_cells, across_cells, aggregate_cells, series_cells, table_cells
from deploy.report.series import SERIES_RULE
from deploy.report.tables import EMULATED_CAVEAT, DeviceTable

_CSS = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2rem auto; max-width: 78rem;
       padding: 0 1rem; color: #1d1d1f; }
h1 { font-size: 1.6rem; } h2 { font-size: 1.2rem; margin-top: 2.5rem; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; margin: 0.8rem 0; font-size: 13px; }
th, td { border: 1px solid #d0d0d0; padding: 0.25rem 0.5rem; text-align: right; white-space: nowrap; }
th { background: #f2f2f2; } td.text { text-align: left; } td.wrap { white-space: normal; }
tr:nth-child(even) td { background: #fafafa; }
tr.front td { font-weight: 600; } tr.dominated td { color: #777; }
.emulated { background: #fff4d6; border: 1px solid #e0b84c; padding: 0.4rem 0.7rem; border-radius: 4px; }
.notes li, .provenance li { font-size: 12.5px; } .provenance { color: #444; }
img.plot { max-width: 100%; height: auto; border: 1px solid #eee; }
"""
_TEXT_COLUMNS = ("model", "quant", "backend", "harness", "Pareto")
_WRAPPED_COLUMNS = ("Pareto",)
_ROW_CLASS = {"yes": "front", "tie": "front", "no": "dominated"}
_EMULATED_BANNER = (
    f'<p class="emulated">Emulated CPU: {escape(EMULATED_CAVEAT)}. Compare rows with each other, not with phones.</p>'
)


def html_page(title: str, preamble: Sequence[str], report: Report, plots: Mapping[str, Path]) -> str:
    """The whole report as one HTML document; `plots` maps a table's slug to its SVG file.

    The fastest artifacts at the asked top-1 and the cross-device table come first, the
    tool-aggregate tables after the device tables, each in its own section.
    """
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{escape(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{escape(title)}</h1>",
    ]
    parts += [f"<p>{escape(line)}</p>" for line in preamble]
    if report.fastest:
        parts.append(f'<section id="fastest"><h2>Fastest at top-1 ≥ {report.min_top1_pct:g} %</h2>'
                     + _notes([answer.text for answer in report.fastest]) + "</section>")
    if report.across_devices is not None:
        parts.append(_across_section(report.across_devices))
    for series in report.series:
        headers, cells = series_cells(series)
        parts.append("\n".join([f'<section id="series-{escape(series.field)}">', f"<h2>{escape(series.title)}</h2>",
                                 _table(headers, cells, [""] * len(cells)), _notes([SERIES_RULE]), "</section>"]))
    for table in report.tables:
        parts.append(_section(table, plots.get(table.slug)))
    for table in report.aggregate_tables:
        parts.append(_aggregate_section(table))
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def _section(table: DeviceTable, plot: Path | None) -> str:
    headers, cells = table_cells(table)
    lines = [f'<section id="{escape(table.slug)}">', f"<h2>{escape(table.title)}</h2>"]
    if table.emulated:
        lines.append(_EMULATED_BANNER)
    lines.append(_table(headers, cells, [_ROW_CLASS.get(row.pareto, "") for row in table.rows]))
    if table.notes:
        lines.append(_notes(table.notes))
    if plot is not None:
        data = base64.b64encode(Path(plot).read_bytes()).decode("ascii")
        lines.append(f'<img class="plot" alt="{escape(table.title)}: {escape(table.metric.title)} against p50 latency" '
                     f'src="data:image/svg+xml;base64,{data}">')
    lines.append('<ul class="provenance">' + "".join(
        f"<li><b>{escape(what)}</b>: {escape(value)}</li>" for what, value in table.provenance) + "</ul>")
    lines.append("</section>")
    return "\n".join(lines)


def _across_section(table: CrossDeviceTable) -> str:
    headers, cells = across_cells(table)
    wide_headers, wide_cells = across_all_cells(table)
    return "\n".join([
        '<section id="across-devices">', f"<h2>{escape(ACROSS_TITLE)}</h2>", _table(headers, cells, [""] * len(cells)),
        _notes([ACROSS_RULE]), f"<h2>{escape(ACROSS_ALL_TITLE)}</h2>",
        _table(wide_headers, wide_cells, [""] * len(wide_cells), _two_row_head(table, wide_headers)), "</section>",
    ])


def _two_row_head(table: CrossDeviceTable, headers: Sequence[str]) -> str:
    """The wide form's header: a device over each group of its backend/quantization columns."""
    fixed = len(headers) - len(table.combinations)
    first = "".join(f'<th rowspan="2">{escape(h)}</th>' for h in headers[:fixed])
    spans: dict[int, int] = {}
    for index, _, _ in table.combinations:
        spans[index] = spans.get(index, 0) + 1
    first += "".join(f'<th colspan="{n}">{escape(table.columns[i].header)}</th>' for i, n in spans.items())
    second = "".join(f"<th>{escape(backend)}/{escape(quant)}</th>" for _, backend, quant in table.combinations)
    return f"<tr>{first}</tr><tr>{second}</tr>"


def _aggregate_section(table: AggregateTable) -> str:
    headers, cells = aggregate_cells(table)
    lines = [f'<section id="{escape(table.slug)}">', f"<h2>{escape(table.title)}</h2>"]
    if table.emulated:
        lines.append(_EMULATED_BANNER)
    lines += [_table(headers, cells, [""] * len(cells)), _notes(table.notes), "</section>"]
    return "\n".join(lines)


def _table(headers: Sequence[str], cells: Sequence[Sequence[str]], row_classes: Sequence[str],
           head: str | None = None) -> str:
    """An HTML table; `head` replaces the one header row made of `headers`."""
    classes = {i: "text wrap" if h in _WRAPPED_COLUMNS else "text" for i, h in enumerate(headers) if h in _TEXT_COLUMNS}
    head = head or "<tr>" + "".join(f"<th>{escape(h)}</th>" for h in headers) + "</tr>"
    lines = [f"<table><thead>{head}</thead><tbody>"]
    for row_class, line in zip(row_classes, cells):
        lines.append(f'<tr class="{row_class}">' + "".join(
            f'<td class="{classes[i]}">{escape(cell)}</td>' if i in classes else f"<td>{escape(cell)}</td>"
            for i, cell in enumerate(line)) + "</tr>")
    lines.append("</tbody></table>")
    return "\n".join(lines)


def _notes(notes: Sequence[str]) -> str:
    return '<ul class="notes">' + "".join(f"<li>{escape(note)}</li>" for note in notes) + "</ul>"
