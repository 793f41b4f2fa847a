"""Ratios between measured records, and how rows become CSV files and Markdown tables.

    compare(baseline, row) -> dict     # speed-up and latency ratio, each with its 95% CI
    write_csv(rows, path)
    markdown_table(rows, columns) -> str
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import pandas as pd

from bench_runner.records import BenchRecord
from deploy.report.statistics import speedup


def compare(baseline: BenchRecord, row: BenchRecord) -> dict:
    """`speedup` = median(baseline) / median(row) (above 1: the row is faster) and
    `latency_ratio` = its inverse, both with bootstrap 95% intervals (paired rounds: both
    records come from one interleaved measurement) and sample counts. Empty when either
    side failed."""
    if baseline.stats is None or row.stats is None:
        return {"speedup": None, "note": f"failed: {baseline.error or row.error}"}
    result = speedup(baseline.samples_ms, row.samples_ms,
                     baseline_rounds=baseline.round_index, row_rounds=row.round_index)
    return {
        "baseline_p50_ms": baseline.stats.p50_ms, "row_p50_ms": row.stats.p50_ms,
        "speedup": result.ratio, "speedup_ci_low": result.ci_low, "speedup_ci_high": result.ci_high,
        "latency_ratio": 1 / result.ratio, "latency_ratio_ci_low": 1 / result.ci_high,
        "latency_ratio_ci_high": 1 / result.ci_low,
        "n_baseline": baseline.stats.n, "n_row": row.stats.n,
        "cv_baseline": baseline.stats.cv, "cv_row": row.stats.cv,
        "stable": bool(baseline.stable and row.stable), "resampled": result.resampled,
    }


def write_csv(rows: Sequence[dict], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(list(rows)).to_csv(path, index=False)


def _cell(value) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return "-"
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 100 else f"{value:.0f}"
    return str(value)


def markdown_table(rows: Sequence[dict], columns: Sequence[tuple[str, str]]) -> str:
    """A Markdown table of `rows`; `columns` pairs a header with a row key or a callable."""
    lines = ["| " + " | ".join(header for header, _ in columns) + " |",
             "|" + "---|" * len(columns)]
    for row in rows:
        cells = [_cell(key(row) if callable(key) else row.get(key)) for _, key in columns]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def interval(row: dict, key: str) -> str:
    """'1.23 [1.20, 1.26]' from a row holding key, key_ci_low and key_ci_high."""
    if row.get(key) is None:
        return row.get("note", "-")
    return f"{row[key]:.3f} [{row[key + '_ci_low']:.3f}, {row[key + '_ci_high']:.3f}]"
