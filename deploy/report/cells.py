"""The display text of a table's rows: the one formatting that the Markdown and HTML pages share."""

from __future__ import annotations

import math

from deploy.report.accuracy import REFERENCE_ACCURACY
from deploy.report.aggregates import AggregateTable
from deploy.report.inputs import AccuracyRecord
from deploy.report.rows import ReportRow
from deploy.report.tables import DeviceTable


def format_ms(value: float | None) -> str:
    """Milliseconds with three significant digits (whole numbers from 100 ms up): 27.0, 0.00912, 1234."""
    if value is None or not math.isfinite(value):
        return ""
    decimals = max(0, 2 - math.floor(math.log10(value))) if value > 0 else 0
    return f"{value:.{decimals}f}"


def format_count(value) -> str:
    """5717416 -> "5.72M"; None -> "?"."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "?"
    value = float(value)
    for limit, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "K")):
        if value >= limit:
            return f"{value / limit:.3g}{suffix}"
    return f"{value:.0f}"


def table_cells(table: DeviceTable) -> tuple[list[str], list[list[str]]]:
    """The display headers and cells of a device table."""
    rows = table.rows
    harnesses = len({row.harness for row in rows}) > 1
    references = [(header, of) for header, of in REFERENCE_ACCURACY if any(of(row) is not None for row in rows)]
    headers = ["model", "res.", "params", "MACs", "quant", "backend"] + (["harness"] if harnesses else [])
    headers += (["top-1 %"] if table.has_accuracy else []) + [header for header, _ in references]
    headers += ["p50 ms [95% CI]", "p90 ms", "speed-up [95% CI]"]
    headers += (["Pareto"] if table.has_accuracy else []) + ["n"]
    cells = []
    for row in rows:
        line = [row.model_label, row.resolution, format_count(row.params), format_count(row.macs),
                row.quant, row.backend] + ([row.harness] if harnesses else [])
        line += ([_top1(row.deployed)] if table.has_accuracy else [])
        line += [_top1(of(row)) for _, of in references]
        mark = "" if row.stable else " †"
        interval = f"[{format_ms(row.stats.ci95_low_ms)}, {format_ms(row.stats.ci95_high_ms)}]"
        line += [f"{format_ms(row.stats.p50_ms)} {interval}{mark}", format_ms(row.stats.p90_ms), _speedup_text(row)]
        if table.has_accuracy:
            line.append(_pareto_text(row.pareto, row.pareto_others))
        line.append(f"{int(row.stats.n)}" + (f" ({row.repetitions} reps)" if row.repetitions > 1 else ""))
        cells.append([str(cell) for cell in line])
    return headers, cells


def aggregate_cells(table: AggregateTable) -> tuple[list[str], list[list[str]]]:
    """The display headers and cells of a tool-aggregate table."""
    harnesses = len({row.harness for row in table.rows}) > 1
    headers = ["model", "res.", "quant", "backend"] + (["harness"] if harnesses else [])
    headers += ["threads", "mean ms", "trimmed mean ms", "runs", "load ms"]
    cells = []
    for row in table.rows:
        aggregate = row.aggregate
        line = [row.model_label, row.resolution, row.quant, row.backend] + ([row.harness] if harnesses else [])
        mark = " †" if row.stable is False else ""
        line += [str(int(row.threads)), format_ms(aggregate.mean_ms) + mark, format_ms(aggregate.trimmed_mean_ms),
                 str(int(aggregate.runs)), format_ms(aggregate.load_ms)]
        cells.append([str(cell) for cell in line])
    return headers, cells


def _top1(accuracy: AccuracyRecord | None) -> str:
    return "" if accuracy is None else f"{accuracy.top1_pct:.1f}"


def _pareto_text(state: str, others: tuple[str, ...]) -> str:
    """"no (by X)" or "tie (with X, Y)", naming at most two rows (the fastest first)."""
    if not others:
        return state
    named = ", ".join(others[:2]) + (f" +{len(others) - 2} more" if len(others) > 2 else "")
    return f"{state} ({'with' if state == 'tie' else 'by'} {named})"


def _speedup_text(row: ReportRow) -> str:
    if row.baseline is not None and row.label == row.baseline:
        return "1.00 (baseline)"
    if row.speedup is None:
        return ""
    return f"{row.speedup:.2f} [{row.speedup_ci_low:.2f}, {row.speedup_ci_high:.2f}]"
