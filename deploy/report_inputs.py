"""The reporter's inputs, read into pandas DataFrames.

Latency: every results store (a folder of `records-*.parquet` parts, read with
`ResultsStore`) in the results directory or below it. Accuracy: every JSON Lines file
(`*.jsonl`) in the results directory or below it, plus any file named explicitly; each
line is one accuracy record as `vitdeploy eval` writes it.
"""

from __future__ import annotations

import json
import math
from dataclasses import fields
from pathlib import Path
from typing import Iterable

import pandas as pd

from bench_runner.records import BenchRecord
from bench_runner.store import PART_PREFIX, PART_SUFFIX, ResultsStore
from vitdeploy.errors import VitdeployError

ACCURACY_KINDS = ("deployed", "simulated", "eager")
# Multiplier that turns a record's top-1/top-5 into percent, by its `unit`.
PERCENT_PER_UNIT = {"fraction": 100.0, "percent": 1.0}
# `artifact_sha256` is required of deployed records only: a simulated or eager record without
# it names no artifact, so it is read but joins nothing.
_REQUIRED_ACCURACY_FIELDS = ("dataset", "num_images", "top1", "unit", "kind")
_OPTIONAL_ACCURACY_FIELDS = ("artifact_sha256", "artifact_path", "model", "backend", "quant", "top5")
ACCURACY_COLUMNS = (*_REQUIRED_ACCURACY_FIELDS, *_OPTIONAL_ACCURACY_FIELDS, "top1_pct", "top5_pct", "source")


class ReportError(VitdeployError):
    """The report cannot be made from what the results directory holds."""


def store_roots(results_dir: Path) -> list[Path]:
    """Every folder at or below `results_dir` that holds results-store part files."""
    parts = Path(results_dir).rglob(f"{PART_PREFIX}*{PART_SUFFIX}")
    return sorted({part.parent for part in parts})


def load_latency(results_dir: Path) -> pd.DataFrame:
    """One row per BenchRecord (failed ones included), one column per BenchRecord field.

    Records stored twice (same key and run id, e.g. a copied store) appear once.
    Raises ReportError when the directory is missing or holds no records.
    """
    results_dir = Path(results_dir)
    if not results_dir.is_dir():
        raise ReportError(f"results directory {results_dir} does not exist; pass the folder given to "
                          "`vitdeploy bench --results` or the sweep's results folder")
    records: list[BenchRecord] = []
    for root in store_roots(results_dir):
        records.extend(ResultsStore(root).load())
    if not records:
        raise ReportError(
            f"{results_dir} holds no benchmark records (no {PART_PREFIX}*{PART_SUFFIX} files in it or below it); "
            f"measure first, e.g. `vitdeploy bench ARTIFACT --results {results_dir}`"
        )
    names = [f.name for f in fields(BenchRecord)]
    frame = pd.DataFrame([{name: getattr(record, name) for name in names} for record in records], columns=names)
    return frame.drop_duplicates(subset=["key", "run_id"], keep="first").reset_index(drop=True)


def accuracy_files(results_dir: Path, extra: Iterable[Path] = ()) -> list[Path]:
    """The JSON Lines files at or below `results_dir`, then `extra` (each file once)."""
    found = sorted(Path(results_dir).rglob("*.jsonl"))
    for path in extra:
        path = Path(path)
        if not path.is_file():
            raise ReportError(f"accuracy file {path} does not exist; give a JSON Lines file written by `vitdeploy eval`")
        if path.resolve() not in {p.resolve() for p in found}:
            found.append(path)
    return found


def load_accuracy(paths: Iterable[Path]) -> pd.DataFrame:
    """Every accuracy record of `paths`, with top-1/top-5 converted to percent.

    Columns: the record's fields, `top1_pct`, `top5_pct` and `source` ("file:line").
    A malformed line raises ReportError naming the file, the line and the problem.
    """
    rows = []
    for path in paths:
        with Path(path).open(encoding="utf-8") as handle:
            for number, line in enumerate(handle, 1):
                if line.strip():
                    rows.append(_accuracy_row(line, f"{path}:{number}"))
    return pd.DataFrame(rows, columns=list(ACCURACY_COLUMNS))


def _accuracy_row(line: str, source: str) -> dict:
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        raise ReportError(f"{source}: not a JSON object ({exc}); accuracy files hold one JSON object per line") from None
    if not isinstance(record, dict):
        raise ReportError(f"{source}: expected a JSON object, got {type(record).__name__}")
    missing = [name for name in _REQUIRED_ACCURACY_FIELDS if record.get(name) is None]
    if missing:
        raise ReportError(f"{source}: accuracy record lacks {', '.join(missing)}; "
                          "write accuracy records with `vitdeploy eval`")
    if record["kind"] not in ACCURACY_KINDS:
        raise ReportError(f"{source}: kind {record['kind']!r} is not one of {', '.join(ACCURACY_KINDS)}")
    if record["kind"] == "deployed" and not record.get("artifact_sha256"):
        raise ReportError(f"{source}: a deployed accuracy record must name its artifact_sha256")
    scale = PERCENT_PER_UNIT.get(record["unit"])
    if scale is None:
        raise ReportError(f"{source}: unit {record['unit']!r} is not one of {', '.join(PERCENT_PER_UNIT)}")
    top1 = _percent(record["top1"], scale, "top1", source)
    top5 = _percent(record["top5"], scale, "top5", source) if record.get("top5") is not None else None
    row = {name: record.get(name) for name in (*_REQUIRED_ACCURACY_FIELDS, *_OPTIONAL_ACCURACY_FIELDS)}
    return {**row, "top1_pct": top1, "top5_pct": top5, "source": source}


def _percent(value, scale: float, name: str, source: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ReportError(f"{source}: {name} must be a number, got {value!r}")
    percent = float(value) * scale
    if not 0.0 <= percent <= 100.0:
        raise ReportError(f"{source}: {name} {value!r} is outside 0..100 % for its unit")
    return percent
