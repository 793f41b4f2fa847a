"""The accuracy-latency Pareto report: latency records joined with accuracy records.

    report = build_report(results_dir, baseline=None, accuracy=(), dataset=None)
    files = write_report(report, out_dir)   # report.md, report.csv, raw_samples.csv, report.html, plots/
    print(markdown_for_device(report, "host"))

Latency comes from the results stores in the results folder, accuracy from the JSON
Lines files `vitdeploy eval` writes there; they are joined by artifact sha256. There is
one table per device and thread count, in the style of ElasticViT's tables (model,
resolution, params, MACs, quantization, backend, top-1, p50 with its 95% interval, p90,
speed-up against a baseline, Pareto front). Records whose tool reported only an
aggregate (a mean over N runs, no raw samples) never enter those tables: each device
with such records gets one table of them apart, never ranked. DataFrames stay inside
the reporter.
"""

from __future__ import annotations

import importlib.metadata
import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Iterable

import pandas as pd

from deploy.report_aggregates import AggregateTable, aggregate_tables
from deploy.report_html import html_page
from deploy.report_inputs import ReportError, accuracy_files, load_accuracy, load_latency
from deploy.report_markdown import markdown_aggregate_table, markdown_table
from deploy.report_plots import plot_table
from deploy.report_rows import attach_accuracy, choose_dataset, describe_artifacts, pool_repetitions
from deploy.report_tables import EMULATED_CAVEAT, DeviceTable, device_tables, fingerprint

__all__ = ["Report", "ReportError", "ReportFiles", "build_report", "markdown_for_device", "write_report"]

TITLE = "vitdeploy accuracy-latency report"
_CSV_COLUMNS = (
    "device_name", "device_kind", "emulated", "device_fingerprint", "threads", "label", "model_label", "model",
    "backend", "quant", "runtime", "harness", "artifact_sha256", "artifact_path", "resolution", "params", "macs",
    "reparameterized", "verified", "top1_pct", "top5_pct", "num_images", "accuracy_source", "top1_simulated_pct",
    "top1_eager_pct", "n", "repetitions", "repetition_p50_ms", "p50_ms", "ci95_low_ms", "ci95_high_ms", "p90_ms",
    "p99_ms", "min_ms", "mean_ms", "trimmed_mean_ms", "std_ms", "cv", "stable", "stability_note", "speedup",
    "speedup_ci_low", "speedup_ci_high", "baseline", "pareto", "pareto_others", "record_keys",
    "latency_from", "aggregate_runs", "aggregate_mean_ms", "aggregate_trimmed_mean_ms", "aggregate_trimmed_mean_pooled",
    "aggregate_source",
)
LATENCY_FROM_SAMPLES = "raw samples"
LATENCY_FROM_AGGREGATE = "tool aggregate"


@dataclass(frozen=True)
class Report:
    """Every device table of one results folder, and notes that concern all of them.

    `dataset` is the data set whose deployed top-1 the tables show (None without
    accuracy records). `aggregate_tables` hold, per device, the records whose tool
    reported only an aggregate; they are never part of `tables`.
    """

    results_dir: Path
    dataset: str | None
    tables: tuple[DeviceTable, ...]
    notes: tuple[str, ...]
    aggregate_tables: tuple[AggregateTable, ...] = ()

    @property
    def devices(self) -> tuple[str, ...]:
        """Every device the report has a table for (device tables first, then aggregate-only devices)."""
        names = [t.device_name for t in self.tables] + [t.device_name for t in self.aggregate_tables]
        return tuple(dict.fromkeys(names))


@dataclass(frozen=True)
class ReportFiles:
    """What `write_report` wrote; `plots` holds a PNG and an SVG per table with accuracy."""

    markdown: Path
    csv: Path
    samples_csv: Path
    html: Path
    plots: tuple[Path, ...]


def build_report(
    results_dir: Path, baseline: str | None = None, accuracy: Iterable[Path] = (), dataset: str | None = None
) -> Report:
    """Read the results folder (and the extra `accuracy` files) and build every table.

    `baseline` is a model name or a row label "model/backend/quant" (default: the fp32
    row of the first model alphabetically); `dataset` picks the accuracy data set when
    the records cover several. Raises ReportError when there is nothing to report.
    """
    results_dir = Path(results_dir)
    latency = load_latency(results_dir)
    failed = latency[latency["status"] != "ok"]
    if len(failed) == len(latency):
        errors = "; ".join(sorted({(e or "no error text").strip().splitlines()[0][:160] for e in failed["error"]})[:3])
        raise ReportError(f"all {len(latency)} benchmark records in {results_dir} failed, nothing to report: {errors}")
    pooled = pool_repetitions(latency)
    tables, notes, chosen = [], [], None
    if not pooled.empty:
        rows = describe_artifacts(pooled)
        accuracy_records = load_accuracy(accuracy_files(results_dir, accuracy))
        chosen = choose_dataset(accuracy_records, set(rows["artifact_sha256"]), dataset)
        rows, notes = attach_accuracy(rows, accuracy_records, chosen)
        tables = device_tables(rows, failed, baseline, chosen)
    return Report(results_dir=results_dir, dataset=chosen, tables=tuple(tables), notes=tuple(notes),
                  aggregate_tables=tuple(aggregate_tables(latency)))


def markdown_for_device(report: Report, device: str, threads: int | None = None) -> str:
    """The Markdown tables of one device (all its thread counts, or only `threads`), then its
    tool-aggregate table (only rows at `threads` when given)."""
    tables = [t for t in report.tables if t.device_name == device and (threads is None or t.threads == threads)]
    aggregates = [_at_threads(t, threads) for t in report.aggregate_tables if t.device_name == device]
    aggregates = [t for t in aggregates if not t.rows.empty]
    if not tables and not aggregates:
        known = ", ".join([f"{t.device_name} ({t.threads} threads)" for t in report.tables]
                          + [f"{t.device_name} (tool aggregates)" for t in report.aggregate_tables])
        raise ReportError(f"the report has no table for device {device!r}"
                          + (f" at {threads} threads" if threads is not None else "") + f"; it has: {known}")
    return "\n".join([markdown_table(table) for table in tables] + [markdown_aggregate_table(t) for t in aggregates])


def _at_threads(table: AggregateTable, threads: int | None) -> AggregateTable:
    if threads is None:
        return table
    return replace(table, rows=table.rows[table.rows["threads"] == threads].reset_index(drop=True))


def write_report(report: Report, out_dir: Path) -> ReportFiles:
    """Write report.md, report.csv, raw_samples.csv, report.html and plots/<device>-<threads>t.{png,svg}."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    plots: dict[str, tuple[Path, Path]] = {}
    for table in report.tables:
        if table.has_accuracy:
            plots[table.slug] = plot_table(table, out_dir / "plots")

    preamble = _preamble(report)
    sections = []
    for table in report.tables:
        section = markdown_table(table)
        if table.slug in plots:
            section += f"\n![{table.title}](plots/{plots[table.slug][0].name})\n"
        sections.append(section)
    sections += [markdown_aggregate_table(table) for table in report.aggregate_tables]
    markdown = out_dir / "report.md"
    markdown.write_text(f"# {TITLE}\n\n" + "\n\n".join(preamble) + "\n\n" + "\n".join(sections), encoding="utf-8")

    csv = out_dir / "report.csv"
    _table_frame(report).to_csv(csv, index=False)
    samples_csv = out_dir / "raw_samples.csv"
    _samples_frame(report).to_csv(samples_csv, index=False)
    html = out_dir / "report.html"
    html.write_text(html_page(TITLE, preamble, report.tables, {slug: svg for slug, (_, svg) in plots.items()},
                              report.aggregate_tables), encoding="utf-8")
    return ReportFiles(markdown=markdown, csv=csv, samples_csv=samples_csv, html=html,
                       plots=tuple(path for pair in plots.values() for path in pair))


def _preamble(report: Report) -> list[str]:
    try:
        version = importlib.metadata.version("vitdeploy")
    except importlib.metadata.PackageNotFoundError:
        version = "unknown"
    lines = [
        f"From the results in {report.results_dir} (vitdeploy {version}).",
        "Latency: p50 is the median of the raw samples, [95% CI] a percentile-bootstrap interval of that median, "
        "p90 the 90th percentile, n the number of raw samples; all are recomputed from the raw samples listed in "
        "raw_samples.csv. † marks an unstable measurement.",
        "top-1 %: the deployed artifact's accuracy (run in its own runtime)"
        + (f" on {report.dataset}" if report.dataset else "")
        + "; accuracy of a simulated (fake-quant) or eager PyTorch model is shown only in its own column and never "
        "decides the front.",
    ]
    if any(table.emulated for table in (*report.tables, *report.aggregate_tables)):
        lines.append(f"Emulated devices: {EMULATED_CAVEAT}; compare rows within such a table, never with a phone.")
    if report.aggregate_tables:
        lines.append("Tables headed 'from the tool's aggregate' hold measurements whose tool printed only a mean and "
                     "a trimmed mean over N runs: no raw samples, so no p50, no interval, not ranked and not on any "
                     "Pareto front.")
    return lines + list(report.notes)


def _table_frame(report: Report) -> pd.DataFrame:
    """Rows of every table; aggregate-only rows carry `aggregate_*` columns and no p50, speed-up or front."""
    frames = []
    for table in report.tables:
        rows = table.rows.copy()
        rows["baseline"] = table.baseline
        rows["record_keys"] = rows["records"].map(lambda records: [key for key, *_ in records])
        rows["latency_from"] = LATENCY_FROM_SAMPLES
        frames.append(rows)
    for table in report.aggregate_tables:
        rows = table.rows.copy()
        rows["latency_from"] = LATENCY_FROM_AGGREGATE
        rows["pareto"] = "not ranked"
        rows["repetition_p50_ms"] = rows["pareto_others"] = [()] * len(rows)
        rows["aggregate_runs"] = rows["runs"]
        rows["aggregate_mean_ms"] = rows["mean_ms"]
        rows["aggregate_trimmed_mean_ms"] = rows["trimmed_mean_ms"]
        rows["aggregate_trimmed_mean_pooled"] = rows["aggregate"].map(lambda a: a.trimmed_mean_is_pooled)
        rows["aggregate_source"] = rows["aggregate"].map(lambda a: a.source)
        frames.append(rows.drop(columns=["runs", "mean_ms", "trimmed_mean_ms"]))
    for rows in frames:
        rows["device_fingerprint"] = rows["device"].map(fingerprint)
        for column in _CSV_COLUMNS:
            if column not in rows:
                rows[column] = None
    frame = pd.concat([rows[list(_CSV_COLUMNS)] for rows in frames], ignore_index=True)
    for column in ("repetition_p50_ms", "pareto_others", "record_keys"):
        frame[column] = frame[column].map(lambda value: json.dumps(list(value)))
    return frame


def _samples_frame(report: Report) -> pd.DataFrame:
    rows = []
    for table in report.tables:
        for row in table.rows.itertuples():
            for key, repetition, samples, rounds in row.records:
                for index, (sample, round_number) in enumerate(zip(samples, rounds)):
                    rows.append((row.device_name, row.threads, row.label, row.artifact_sha256, key, repetition,
                                 round_number, index, sample))
    return pd.DataFrame(rows, columns=["device_name", "threads", "label", "artifact_sha256", "record_key",
                                       "repetition", "round", "sample_index", "sample_ms"])
