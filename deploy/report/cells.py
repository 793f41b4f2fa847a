"""The display text of a table's rows: the one formatting that the Markdown and HTML pages share."""

from __future__ import annotations

import math

from deploy.report.accuracy import REFERENCE_ACCURACY
from deploy.report.across_devices import CrossDeviceTable
from deploy.report.aggregates import AggregateTable
from deploy.report.inputs import AccuracyRecord
from deploy.report.rows import ReportRow
from deploy.report.series import FieldSeries
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
    heading = table.metric.heading
    headers += ([f"{heading} [95% CI]"] if table.has_accuracy else []) + [f"{heading} {header}" for header, _ in references]
    headers += ["p50 ms [95% CI]", "p90 ms", "speed-up [95% CI]"]
    headers += (["Pareto"] if table.has_accuracy else [])
    headers += ([f"budget {format_ms(table.budget_ms)} ms"] if table.budget_ms is not None else []) + ["n"]
    cells = []
    for row in rows:
        line = [row.model_label, row.resolution, format_count(row.params), format_count(row.macs),
                row.quant, row.backend] + ([row.harness] if harnesses else [])
        line += ([_accuracy(row.deployed)] if table.has_accuracy else [])
        line += [_accuracy(of(row)) for _, of in references]
        mark = "" if row.stable else " †"
        interval = f"[{format_ms(row.stats.ci95_low_ms)}, {format_ms(row.stats.ci95_high_ms)}]"
        line += [f"{format_ms(row.stats.p50_ms)} {interval}{mark}", format_ms(row.stats.p90_ms), _speedup_text(row)]
        if table.has_accuracy:
            line.append(_pareto_text(row.pareto, row.pareto_others))
        if table.budget_ms is not None:
            line.append(row.budget)
        line.append(f"{int(row.stats.n)}" + (f" ({row.repetitions} reps)" if row.repetitions > 1 else ""))
        cells.append([str(cell) for cell in line])
    return headers, cells


def across_cells(table: CrossDeviceTable) -> tuple[list[str], list[list[str]]]:
    """The cross-device table: per device, the best artifact's p50, backend/quant and front membership."""
    headers = ["model", "res.", "params", "MACs", f"{_across_heading(table)} [95% CI]"]
    headers += [column.header for column in table.columns]
    cells = []
    for model in table.rows:
        line = [model.model_label, model.resolution, format_count(model.params), format_count(model.macs),
                _across_accuracy(table, model.accuracy)]
        line += ["" if best is None else f"{format_ms(best.stats.p50_ms)} {best.backend}/{best.quant}, front {best.pareto}"
                 for best in model.best]
        cells.append(line)
    return headers, cells


def across_all_cells(table: CrossDeviceTable) -> tuple[list[str], list[list[str]]]:
    """The wide form: one p50 column per (device, backend, quantization)."""
    headers = ["model", "res.", f"{_across_heading(table)} [95% CI]"]
    headers += [f"{table.columns[index].header}: {backend}/{quant}" for index, backend, quant in table.combinations]
    cells = []
    for model in table.rows:
        line = [model.model_label, model.resolution, _across_accuracy(table, model.accuracy)]
        line += [format_ms(model.every[key].stats.p50_ms) if key in model.every else "" for key in table.combinations]
        cells.append(line)
    return headers, cells


def series_cells(series: FieldSeries) -> tuple[list[str], list[list[str]]]:
    """A series: per model its field's value, params, MACs and per (device, backend, quant)
    its p50 ms and the ratio to the first model's there."""
    headers = [series.field, "model", "params", "MACs"]
    headers += [f"{series.columns[index].header}: {backend}/{quant} p50 ms" for index, backend, quant in series.combinations]
    reference = series.points[0].model
    cells = []
    for point in series.points:
        model = point.model
        line = [str(point.value), model.model_label, format_count(model.params), format_count(model.macs)]
        for key in series.combinations:
            row, first = model.every.get(key), reference.every.get(key)
            ratio = f" ({row.stats.p50_ms / first.stats.p50_ms:.2f}x)" if row and first and model is not reference else ""
            line.append(f"{format_ms(row.stats.p50_ms)}{ratio}" if row else "")
        cells.append(line)
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


def _accuracy(accuracy: AccuracyRecord | None) -> str:
    """"96.9 [95.0, 98.1]": the value with its 95% interval."""
    return "" if accuracy is None else accuracy.text


def _across_heading(table: CrossDeviceTable) -> str:
    """The metric's heading when every model shares it, else a generic one (each cell then names its metric)."""
    metrics = table.metrics
    return metrics[0].heading if len(metrics) == 1 else "accuracy"


def _across_accuracy(table: CrossDeviceTable, accuracy: AccuracyRecord | None) -> str:
    if accuracy is None or len(table.metrics) == 1:
        return _accuracy(accuracy)
    return f"{accuracy.metric.heading}: {accuracy.text}"


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
