"""Building the report: the records of a results folder read, pooled, joined with accuracy and tabled."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping

from deploy.report.accuracy import attach_accuracy, choose_dataset
from deploy.report.across_devices import CrossDeviceTable, cross_device_table
from deploy.report.aggregates import AggregateTable, aggregate_tables
from deploy.report.answers import FastestAtAccuracy, fastest_at_accuracy
from deploy.report.inputs import ReportError, accuracy_files, load_accuracy, load_latency
from deploy.report.rows import aggregate_rows, sampled_rows
from deploy.report.series import FieldSeries, field_series
from deploy.report.tables import DeviceTable, device_tables


@dataclass(frozen=True)
class Report:
    """Every device table of one results folder, and notes that concern all of them.

    `dataset` is the data set whose deployed accuracy the tables show (None without
    accuracy records). `aggregate_tables` hold, per device, the records whose tool
    reported only an aggregate; they are never part of `tables`. `across_devices` puts
    the models of all tables side by side; `fastest` answers `min_top1_pct` per table;
    `series` puts models that differ in one structural field side by side (`series`).
    """

    results_dir: Path
    dataset: str | None
    tables: tuple[DeviceTable, ...]
    notes: tuple[str, ...]
    aggregate_tables: tuple[AggregateTable, ...] = ()
    across_devices: CrossDeviceTable | None = None
    min_top1_pct: float | None = None
    fastest: tuple[FastestAtAccuracy, ...] = ()
    series: tuple[FieldSeries, ...] = ()

    @property
    def devices(self) -> tuple[str, ...]:
        """Every device the report has a table for (device tables first, then aggregate-only devices)."""
        names = [t.device_name for t in self.tables] + [t.device_name for t in self.aggregate_tables]
        return tuple(dict.fromkeys(names))


def build_report(
    results_dir: Path, baseline: str | None = None, accuracy: Iterable[Path] = (), dataset: str | None = None,
    budget_ms: float | None = None, min_top1_pct: float | None = None,
    device_budgets_ms: Mapping[str, float] | None = None,
) -> Report:
    """Read the results folder (and the extra `accuracy` files) and build every table.

    `baseline` is a model name or a row label "model/backend/quant" (default: the fp32
    row of the first model alphabetically); `dataset` picks the accuracy data set when
    the records cover several; `budget_ms` marks rows within a latency budget, on the
    devices `device_budgets_ms` gives no budget of their own;
    `min_top1_pct` asks for the fastest artifacts reaching that top-1 on each device.
    Raises ReportError when there is nothing to report.
    """
    results_dir = Path(results_dir)
    records = load_latency(results_dir)
    failed = [record for record in records if not record.ok]
    if len(failed) == len(records):
        errors = "; ".join(sorted({(r.error or "no error text").strip().splitlines()[0][:160] for r in failed})[:3])
        raise ReportError(f"all {len(records)} benchmark records in {results_dir} failed, nothing to report: {errors}")
    rows = sampled_rows(records)
    tables, notes, chosen = [], [], None
    if rows:
        accuracy_records = load_accuracy(accuracy_files(results_dir, accuracy))
        chosen = choose_dataset(accuracy_records, {row.artifact_sha256 for row in rows}, dataset)
        rows, notes = attach_accuracy(rows, accuracy_records, chosen)
        tables = device_tables(rows, failed, baseline, chosen, budget_ms, device_budgets_ms)
    across = cross_device_table(tables) if tables else None
    return Report(results_dir=results_dir, dataset=chosen, tables=tuple(tables), notes=tuple(notes),
                  aggregate_tables=tuple(aggregate_tables(aggregate_rows(records))),
                  across_devices=across, min_top1_pct=min_top1_pct,
                  fastest=tuple(fastest_at_accuracy(tables, min_top1_pct)) if min_top1_pct is not None else (),
                  series=tuple(field_series(across, tables)) if across is not None else ())
