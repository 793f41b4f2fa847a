"""The table across devices, in the style of ElasticViT's: one row per model variant, a
latency column per device.

    table = cross_device_table(device_tables)
    table.columns      # one per device and thread count
    table.rows         # one per model variant: label, resolution, params, MACs, accuracy, a cell per column

A model's accuracy is that of its reference artifact: its fp32 artifact with deployed
accuracy (the first backend alphabetically), else its most accurate one. On each device
its cell is its best artifact there: the fastest (lowest p50) of those not less accurate
than the reference beyond the paired 95% interval, so an int8 artifact that lost accuracy
does not stand for the model; without any deployed accuracy, the fastest. The cell names
the backend and quantization and the artifact's front membership in that device's table.
The wide form keeps every artifact: one column per (device, backend, quantization).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from deploy.report.accuracy import AccuracyComparison
from deploy.report.inputs import AccuracyRecord
from deploy.report.rows import ReportRow
from deploy.report.tables import DeviceTable
from vitdeploy.metrics import TOP1, Metric


ACROSS_TITLE = "All devices: each model's best artifact per device"
ACROSS_ALL_TITLE = "All devices: every artifact's p50 ms"
ACROSS_RULE = (
    "A model's accuracy is its fp32 artifact's (else its most accurate artifact's); each device cell is the p50 ms "
    "of its fastest artifact there that is not less accurate than that beyond the paired 95% interval, with the "
    "backend/quantization and its Pareto standing in that device's table."
)


@dataclass(frozen=True)
class DeviceColumn:
    """One device table as a column: `header` names the device, says "emulated" where it is, and the threads."""

    device_name: str
    threads: int
    emulated: bool

    @property
    def header(self) -> str:
        emulated = " (emulated)" if self.emulated else ""
        return f"{self.device_name}{emulated}, {self.threads} thread{'' if self.threads == 1 else 's'}"


@dataclass(frozen=True)
class ModelAcrossDevices:
    """One model variant: its facts, its reference accuracy, its best row per column
    (None where it was not measured) and every row per (column, backend, quant)."""

    model_label: str
    resolution: str
    params: int | None
    macs: int | None
    accuracy: AccuracyRecord | None
    best: tuple[ReportRow | None, ...]
    every: dict[tuple[int, str, str], ReportRow]


@dataclass(frozen=True)
class CrossDeviceTable:
    """The models across `columns`; `combinations` are the wide form's (column index,
    backend, quant) columns in order."""

    columns: tuple[DeviceColumn, ...]
    rows: tuple[ModelAcrossDevices, ...]
    combinations: tuple[tuple[int, str, str], ...]

    @property
    def metrics(self) -> tuple[Metric, ...]:
        """The metrics the models' accuracies are in (top-1 when none has any), top-1 first."""
        found = {model.accuracy.metric for model in self.rows if model.accuracy is not None} or {TOP1}
        return tuple(sorted(found, key=lambda metric: (metric is not TOP1, metric.name)))


def cross_device_table(tables: Sequence[DeviceTable]) -> CrossDeviceTable:
    """The cross-device table of the device tables (see the module docstring); the tables
    of one device and thread count (one per metric) make one column."""
    columns = tuple(dict.fromkeys(DeviceColumn(t.device_name, t.threads, t.emulated) for t in tables))
    models = sorted({row.model_label for table in tables for row in table.rows})
    rows = []
    for model in models:
        rows_by_column = [_rows_of(model, column, tables) for column in columns]
        measured = [row for found in rows_by_column for row in found]
        reference = _reference(measured)
        every = {}
        for index, found in enumerate(rows_by_column):
            for row in sorted(found, key=lambda r: r.stats.p50_ms, reverse=True):
                every[(index, row.backend, row.quant)] = row  # the fastest of a combination wins
        first = measured[0]
        rows.append(ModelAcrossDevices(
            model_label=model, resolution=first.resolution, params=first.params, macs=first.macs,
            accuracy=None if reference is None else reference.deployed,
            best=tuple(_best(found, reference) for found in rows_by_column), every=every,
        ))
    combinations = sorted({key for row in rows for key in row.every})
    return CrossDeviceTable(columns, tuple(rows), tuple(combinations))


def _rows_of(model: str, column: DeviceColumn, tables: Sequence[DeviceTable]) -> list[ReportRow]:
    return [row for table in tables if (table.device_name, table.threads) == (column.device_name, column.threads)
            for row in table.rows if row.model_label == model]


def _reference(rows: Sequence[ReportRow]) -> ReportRow | None:
    rated = [row for row in rows if row.deployed is not None]
    fp32 = sorted((row for row in rated if row.quant == "fp32"), key=lambda row: (row.backend, row.label))
    if fp32:
        return fp32[0]
    return max(rated, key=lambda row: row.deployed.goodness, default=None)


def _best(rows: Sequence[ReportRow], reference: ReportRow | None) -> ReportRow | None:
    if reference is None:
        candidates = list(rows)
    else:
        comparison = AccuracyComparison([reference.deployed] + [row.deployed for row in rows if row.deployed])
        rated = [row for row in rows if row.deployed is not None]
        candidates = [row for index, row in enumerate(rated, 1) if not comparison.clearly_less_accurate(index, 0)]
    return min(candidates, key=lambda row: (row.stats.p50_ms, row.label), default=None)
