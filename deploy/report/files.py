"""Writing the report's files: report.md, report.csv, raw_samples.csv, report.html and the plots."""

from __future__ import annotations

import importlib.metadata
from dataclasses import dataclass
from pathlib import Path

from deploy.report.build import Report
from deploy.report.frame import across_all_frame, across_frame, report_frame, samples_frame
from deploy.report.html import html_page
from deploy.report.markdown import (
    markdown_across_devices, markdown_aggregate_table, markdown_fastest, markdown_series, markdown_table,
)
from deploy.report.plots import plot_table
from deploy.report.tables import EMULATED_CAVEAT

TITLE = "vitdeploy accuracy-latency report"


@dataclass(frozen=True)
class ReportFiles:
    """What `write_report` wrote; `plots` holds a PNG and an SVG per table with accuracy;
    `across_csv` and `across_all_csv` the cross-device table's two forms."""

    markdown: Path
    csv: Path
    samples_csv: Path
    html: Path
    plots: tuple[Path, ...]
    across_csv: Path | None = None
    across_all_csv: Path | None = None


def write_report(report: Report, out_dir: Path) -> ReportFiles:
    """Write report.md, report.csv, raw_samples.csv, across_devices.csv, across_devices_all.csv,
    report.html and plots/<device>-<threads>t.{png,svg}.

    report.md and report.html open with the fastest artifacts at the asked top-1 (if
    asked), the cross-device table and the series of models differing in one field
    (`series`), then one section per device table. report.csv
    has one line per row of every table, the tool-aggregate rows last (with `aggregate_*`
    columns and no p50, speed-up or front); raw_samples.csv one line per raw sample
    behind the device tables.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    plots: dict[str, tuple[Path, Path]] = {}
    for table in report.tables:
        if table.has_accuracy:
            plots[table.slug] = plot_table(table, out_dir / "plots")

    preamble = _preamble(report)
    sections = [markdown_fastest(report)] if report.fastest else []
    if report.across_devices is not None:
        sections.append(markdown_across_devices(report.across_devices))
    sections += [markdown_series(series) for series in report.series]
    for table in report.tables:
        section = markdown_table(table)
        if table.slug in plots:
            section += f"\n![{table.title}](plots/{plots[table.slug][0].name})\n"
        sections.append(section)
    sections += [markdown_aggregate_table(table) for table in report.aggregate_tables]
    markdown = out_dir / "report.md"
    markdown.write_text(f"# {TITLE}\n\n" + "\n\n".join(preamble) + "\n\n" + "\n".join(sections), encoding="utf-8")

    sampled = [row for table in report.tables for row in table.rows]
    csv = out_dir / "report.csv"
    report_frame(sampled + [row for table in report.aggregate_tables for row in table.rows]).to_csv(csv, index=False)
    samples_csv = out_dir / "raw_samples.csv"
    samples_frame(sampled).to_csv(samples_csv, index=False)
    across_csv = across_all_csv = None
    if report.across_devices is not None:
        across_csv, across_all_csv = out_dir / "across_devices.csv", out_dir / "across_devices_all.csv"
        across_frame(report.across_devices).to_csv(across_csv, index=False)
        across_all_frame(report.across_devices).to_csv(across_all_csv, index=False)
    html = out_dir / "report.html"
    html.write_text(html_page(TITLE, preamble, report, {slug: svg for slug, (_, svg) in plots.items()}),
                    encoding="utf-8")
    return ReportFiles(markdown=markdown, csv=csv, samples_csv=samples_csv, html=html,
                       plots=tuple(path for pair in plots.values() for path in pair),
                       across_csv=across_csv, across_all_csv=across_all_csv)


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
        "Accuracy (top-1 %, or the metric a model declares, e.g. a regression model's MAE): the deployed "
        "artifact's (run in its own runtime)"
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
