"""The accuracy-latency Pareto report: latency records joined with accuracy records.

    report = build_report(results_dir, baseline=None, accuracy=(), dataset=None)
    files = write_report(report, out_dir)   # report.md, report.csv, raw_samples.csv, report.html, plots/
    print(markdown_for_device(report, "host"))

Latency comes from the results stores in the results folder, accuracy from the JSON
Lines files `vitdeploy eval` writes there; they are joined by artifact sha256. There is
one table per device and thread count, in the style of ElasticViT's tables (model,
resolution, params, MACs, quantization, backend, top-1, p50 with its 95% interval, p90,
speed-up against a baseline, Pareto front). DataFrames stay inside the reporter.
"""

from __future__ import annotations

import importlib.metadata
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import pandas as pd

from deploy.report_html import html_page
from deploy.report_inputs import ReportError, accuracy_files, load_accuracy, load_latency
from deploy.report_markdown import markdown_table
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
)


@dataclass(frozen=True)
class Report:
    """Every device table of one results folder, and notes that concern all of them.

    `dataset` is the data set whose deployed top-1 the tables show (None without
    accuracy records).
    """

    results_dir: Path
    dataset: str | None
    tables: tuple[DeviceTable, ...]
    notes: tuple[str, ...]


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
    rows = describe_artifacts(pool_repetitions(latency))
    accuracy_records = load_accuracy(accuracy_files(results_dir, accuracy))
    chosen = choose_dataset(accuracy_records, set(rows["artifact_sha256"]), dataset)
    rows, notes = attach_accuracy(rows, accuracy_records, chosen)
    tables = device_tables(rows, failed, baseline, chosen)
    return Report(results_dir=results_dir, dataset=chosen, tables=tuple(tables), notes=tuple(notes))


def markdown_for_device(report: Report, device: str, threads: int | None = None) -> str:
    """The Markdown tables of one device (all its thread counts, or only `threads`)."""
    tables = [t for t in report.tables if t.device_name == device and (threads is None or t.threads == threads)]
    if not tables:
        known = ", ".join(f"{t.device_name} ({t.threads} threads)" for t in report.tables)
        raise ReportError(f"the report has no table for device {device!r}"
                          + (f" at {threads} threads" if threads is not None else "") + f"; it has: {known}")
    return "\n".join(markdown_table(table) for table in tables)


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
    markdown = out_dir / "report.md"
    markdown.write_text(f"# {TITLE}\n\n" + "\n\n".join(preamble) + "\n\n" + "\n".join(sections), encoding="utf-8")

    csv = out_dir / "report.csv"
    _table_frame(report).to_csv(csv, index=False)
    samples_csv = out_dir / "raw_samples.csv"
    _samples_frame(report).to_csv(samples_csv, index=False)
    html = out_dir / "report.html"
    html.write_text(html_page(TITLE, preamble, report.tables, {slug: svg for slug, (_, svg) in plots.items()}),
                    encoding="utf-8")
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
    if any(table.emulated for table in report.tables):
        lines.append(f"Emulated devices: {EMULATED_CAVEAT}; compare rows within such a table, never with a phone.")
    return lines + list(report.notes)


def _table_frame(report: Report) -> pd.DataFrame:
    frames = []
    for table in report.tables:
        rows = table.rows.copy()
        rows["device_fingerprint"] = rows["device"].map(fingerprint)
        rows["baseline"] = table.baseline
        rows["record_keys"] = rows["records"].map(lambda records: [key for key, *_ in records])
        for column in _CSV_COLUMNS:
            if column not in rows:
                rows[column] = None
        frames.append(rows[list(_CSV_COLUMNS)])
    frame = pd.concat(frames, ignore_index=True)
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
