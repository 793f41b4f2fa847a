"""The report's columns: report rows as pandas DataFrames, for report.csv, raw_samples.csv and the plots.

`report_frame` is the one place that names the columns of a row; the rest of the
report works on `ReportRow`s. `accuracy` and its interval are in the unit of the row's
`metric` (top-1 in percent; a mean absolute error in the target's unit).
"""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Iterable

import pandas as pd

from deploy.report.across_devices import CrossDeviceTable
from deploy.report.rows import ReportRow

LATENCY_FROM_SAMPLES = "raw samples"
LATENCY_FROM_AGGREGATE = "tool aggregate"
COLUMNS = (
    "device_name", "device_kind", "emulated", "device_fingerprint", "threads", "label", "model_label", "model",
    "backend", "quant", "runtime", "harness", "artifact_sha256", "artifact_path", "resolution", "params", "macs",
    "reparameterized", "verified", "metric", "accuracy", "accuracy_ci95_low", "accuracy_ci95_high", "top5_pct",
    "num_images", "accuracy_source", "accuracy_simulated", "accuracy_eager", "n", "repetitions", "repetition_p50_ms", "p50_ms", "ci95_low_ms", "ci95_high_ms", "p90_ms",
    "p99_ms", "min_ms", "mean_ms", "trimmed_mean_ms", "std_ms", "cv", "stable", "stability_note", "speedup",
    "speedup_ci_low", "speedup_ci_high", "baseline", "pareto", "pareto_others", "budget", "record_keys",
    "latency_from", "aggregate_runs", "aggregate_mean_ms", "aggregate_trimmed_mean_ms", "aggregate_trimmed_mean_pooled",
    "aggregate_source",
)
# Counts that some rows lack: nullable integers, so that they print as integers, not as floats.
_COUNT_COLUMNS = ("params", "macs", "num_images", "n", "aggregate_runs")
SAMPLE_COLUMNS = (
    "device_name", "threads", "label", "artifact_sha256", "record_key", "repetition", "round", "sample_index", "sample_ms",
)


def report_frame(rows: Iterable[ReportRow]) -> pd.DataFrame:
    """One line per row, the COLUMNS in order; a column a row has no value for is empty (NaN/NA).

    The statistics columns are the pooled LatencyStats' fields (empty for a tool-aggregate
    row, which has the `aggregate_*` columns instead); list-valued columns hold JSON text.
    """
    frame = pd.DataFrame([_values(row) for row in rows], columns=list(COLUMNS))
    return frame.astype({column: "Int64" for column in _COUNT_COLUMNS})


ACROSS_COLUMNS = (
    "model_label", "resolution", "params", "macs", "metric", "accuracy", "accuracy_ci95_low", "accuracy_ci95_high",
    "device_name", "threads", "emulated", "label", "backend", "quant", "p50_ms", "ci95_low_ms", "ci95_high_ms", "pareto",
)


def across_frame(table: CrossDeviceTable) -> pd.DataFrame:
    """The cross-device table, one line per model and device column: its best artifact there."""
    lines = []
    for model in table.rows:
        accuracy = model.accuracy
        low, high = (accuracy.ci95 if accuracy else None) or (None, None)
        for column, best in zip(table.columns, model.best):
            lines.append((model.model_label, model.resolution, model.params, model.macs,
                          accuracy.metric.name if accuracy else None, accuracy.value if accuracy else None, low, high,
                          column.device_name, column.threads,
                          column.emulated, *((best.label, best.backend, best.quant, best.stats.p50_ms,
                                             best.stats.ci95_low_ms, best.stats.ci95_high_ms, best.pareto)
                                            if best is not None else (None,) * 7)))
    return pd.DataFrame(lines, columns=list(ACROSS_COLUMNS)).astype({"params": "Int64", "macs": "Int64"})


def across_all_frame(table: CrossDeviceTable) -> pd.DataFrame:
    """The wide form: one line per model, one p50 ms column per (device, backend, quantization)."""
    names = [f"{table.columns[i].device_name}|{table.columns[i].threads}t|{backend}|{quant}|p50_ms"
             for i, backend, quant in table.combinations]
    lines = [[model.model_label, model.resolution] + [model.every[key].stats.p50_ms if key in model.every else None
                                                      for key in table.combinations] for model in table.rows]
    return pd.DataFrame(lines, columns=["model_label", "resolution", *names])


def samples_frame(rows: Iterable[ReportRow]) -> pd.DataFrame:
    """One line per raw sample of `rows`, with the record, repetition and round it came from."""
    lines = [
        (row.device_name, row.threads, row.label, row.artifact_sha256, record.key, int(record.repetition), int(round_),
         index, sample)
        for row in rows for record in row.records
        for index, (sample, round_) in enumerate(zip(record.samples_ms, record.round_index))
    ]
    return pd.DataFrame(lines, columns=list(SAMPLE_COLUMNS))


def _values(row: ReportRow) -> dict[str, object]:
    deployed, aggregate = row.deployed, row.aggregate
    interval = (deployed.ci95 if deployed else None) or (None, None)
    return {
        "device_name": row.device_name, "device_kind": row.device_kind, "emulated": row.emulated,
        "device_fingerprint": row.device_fingerprint, "threads": row.threads, "label": row.label,
        "model_label": row.model_label, "model": row.model, "backend": row.backend, "quant": row.quant,
        "runtime": row.runtime, "harness": row.harness, "artifact_sha256": row.artifact_sha256,
        "artifact_path": row.artifact_path, "resolution": row.resolution, "params": row.params, "macs": row.macs,
        "reparameterized": row.reparameterized, "verified": row.verified,
        "metric": row.metric.name if row.metric else None,
        "accuracy": deployed.value if deployed else None,
        "accuracy_ci95_low": interval[0],
        "accuracy_ci95_high": interval[1],
        "top5_pct": deployed.top5_pct if deployed else None,
        "num_images": deployed.num_images if deployed else None,
        "accuracy_source": deployed.source if deployed else None,
        "accuracy_simulated": row.simulated.value if row.simulated else None,
        "accuracy_eager": row.eager.value if row.eager else None,
        "repetitions": row.repetitions, "repetition_p50_ms": json.dumps(list(row.repetition_p50_ms)),
        **(asdict(row.stats) if row.stats is not None else {}),
        "stable": row.stable, "stability_note": row.stability_note, "speedup": row.speedup,
        "speedup_ci_low": row.speedup_ci_low, "speedup_ci_high": row.speedup_ci_high, "baseline": row.baseline,
        "pareto": row.pareto, "pareto_others": json.dumps(list(row.pareto_others)), "budget": row.budget,
        "record_keys": json.dumps(list(row.record_keys)),
        "latency_from": LATENCY_FROM_SAMPLES if aggregate is None else LATENCY_FROM_AGGREGATE,
        "aggregate_runs": aggregate.runs if aggregate else None,
        "aggregate_mean_ms": aggregate.mean_ms if aggregate else None,
        "aggregate_trimmed_mean_ms": aggregate.trimmed_mean_ms if aggregate else None,
        "aggregate_trimmed_mean_pooled": aggregate.trimmed_mean_is_pooled if aggregate else None,
        "aggregate_source": aggregate.source if aggregate else None,
    }
