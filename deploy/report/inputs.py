"""The reporter's inputs: benchmark records, accuracy records and what manifests say.

Latency: every results store (a folder of `records-*.parquet` parts, read with
`ResultsStore`) in the results directory or below it. Accuracy: every JSON Lines file
(`*.jsonl`) in the results directory or below it, plus any file named explicitly; each
line is one accuracy record as `vitdeploy eval` writes it. Model facts: the artifact's
manifest as each BenchRecord carries it, read by `manifest_facts` alone.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from bench_runner.records import BenchRecord
from bench_runner.store import PART_PREFIX, PART_SUFFIX, ResultsStore
from deploy.report.statistics import mean_interval, wilson_interval
from vitdeploy.errors import VitdeployError
from vitdeploy.manifest import Manifest, ManifestError
from vitdeploy.metrics import METRICS, TOP1, Metric, metric_for_output

ACCURACY_KINDS = ("deployed", "simulated", "eager")
# Multiplier that turns a record's top-1/top-5 into percent, by its `unit`.
PERCENT_PER_UNIT = {"fraction": 100.0, "percent": 1.0}
_REQUIRED_ACCURACY_FIELDS = ("dataset", "num_images", "unit", "kind")


class ReportError(VitdeployError):
    """The report cannot be made from what the results directory holds."""


@dataclass(frozen=True)
class AccuracyRecord:
    """One accuracy record: `value` is its `metric`'s in display units (top-1 and top-5 in
    percent); `source` is "file:line".

    `kind` is one of ACCURACY_KINDS. `artifact_sha256` is required of deployed records
    only: a simulated or eager record without it names no artifact, so it joins nothing.
    `image_scores` are the metric's per-image scores in `image_ids` order (1/0 top-1 hits,
    or absolute errors); empty in records written before `vitdeploy eval` kept them.
    """

    dataset: str
    kind: str
    artifact_sha256: str | None
    num_images: int
    value: float
    top5_pct: float | None
    source: str
    metric: Metric = TOP1
    image_ids: tuple[str, ...] = ()
    image_scores: tuple[float, ...] = ()

    @property
    def ci95(self) -> tuple[float, float] | None:
        """The value's 95% interval: Wilson's for top-1, the normal interval of the mean
        error otherwise (None without per-image errors)."""
        if self.metric is TOP1:
            low, high = wilson_interval(round(self.value / 100 * self.num_images), self.num_images)
            return low * 100, high * 100
        return mean_interval(self.image_scores) if self.image_scores else None

    @property
    def goodness(self) -> float:
        """The value oriented so that higher is better (a negated error)."""
        return self.value if self.metric.higher_is_better else -self.value

    @property
    def oriented_scores(self) -> tuple[float, ...]:
        """The per-image scores oriented so that higher is better."""
        return self.image_scores if self.metric.higher_is_better else tuple(-score for score in self.image_scores)

    @property
    def text(self) -> str:
        """"96.9 [95.0, 98.1]": the value with its 95% interval."""
        interval = self.ci95
        digits = 1 if self.metric.percent else 3
        shown = f"{self.value:.{digits}f}"
        return shown if interval is None else f"{shown} [{interval[0]:.{digits}f}, {interval[1]:.{digits}f}]"


@dataclass(frozen=True)
class ManifestFacts:
    """What the report takes from an artifact's manifest; None where the manifest does not say.

    `model_name` is the model's label (e.g. a sweep's) or else its name; `verified` is
    "passed", "failed" or the verification's recorded status; `lowering_toolchain` maps
    package to version.
    """

    model_name: str | None
    spec: dict | None
    metric: Metric | None
    weights_sha256: str | None
    params: int | None
    macs: int | None
    reparameterized: bool | None
    verified: str | None
    lowering_toolchain: dict | None


def manifest_facts(manifest: dict) -> ManifestFacts:
    """The facts of one manifest (a BenchRecord's `manifest`, {} without one). A manifest
    this vitdeploy cannot read (an incomplete hand-written one) says nothing."""
    try:
        read = Manifest.from_dict(manifest) if manifest else None
    except ManifestError:
        read = None
    if read is None:
        return ManifestFacts(None, None, TOP1, None, None, None, None, None, None)
    status = read.verification.get("status")
    return ManifestFacts(
        model_name=read.model.display_name,
        spec=read.model.spec or None,
        metric=metric_for_output((read.model.spec or {}).get("output", "logits")),
        weights_sha256=read.model.weights_sha256,
        params=read.model.params,
        macs=read.model.macs,
        reparameterized=read.reparameterized,
        verified=status if status not in (None, "passed", "failed") else ("passed" if read.passed else "failed"),
        lowering_toolchain=read.toolchain or None,
    )


def store_roots(results_dir: Path) -> list[Path]:
    """Every folder at or below `results_dir` that holds results-store part files."""
    parts = Path(results_dir).rglob(f"{PART_PREFIX}*{PART_SUFFIX}")
    return sorted({part.parent for part in parts})


def load_latency(results_dir: Path) -> list[BenchRecord]:
    """Every BenchRecord of the stores in `results_dir` (failed ones included), in store order.

    Records stored twice (same key and run id, e.g. a copied store) appear once.
    Raises ReportError when the directory is missing or holds no records.
    """
    results_dir = Path(results_dir)
    if not results_dir.is_dir():
        raise ReportError(f"results directory {results_dir} does not exist; pass the folder given to "
                          "`vitdeploy bench --results` or the sweep's results folder")
    records: dict[tuple[str, str], BenchRecord] = {}
    for root in store_roots(results_dir):
        for record in ResultsStore(root).load():
            records.setdefault((record.key, record.run_id), record)
    if not records:
        raise ReportError(
            f"{results_dir} holds no benchmark records (no {PART_PREFIX}*{PART_SUFFIX} files in it or below it); "
            f"measure first, e.g. `vitdeploy bench ARTIFACT --results {results_dir}`"
        )
    return list(records.values())


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


def load_accuracy(paths: Iterable[Path]) -> list[AccuracyRecord]:
    """Every accuracy record of `paths`, in file and line order.

    A malformed line raises ReportError naming the file, the line and the problem.
    """
    records = []
    for path in paths:
        with Path(path).open(encoding="utf-8") as handle:
            for number, line in enumerate(handle, 1):
                if line.strip():
                    records.append(_accuracy_record(line, f"{path}:{number}"))
    return records


def _accuracy_record(line: str, source: str) -> AccuracyRecord:
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        raise ReportError(f"{source}: not a JSON object ({exc}); accuracy files hold one JSON object per line") from None
    if not isinstance(record, dict):
        raise ReportError(f"{source}: expected a JSON object, got {type(record).__name__}")
    metric = METRICS.get(record.get("metric", TOP1.name))
    if metric is None:
        raise ReportError(f"{source}: metric {record['metric']!r} is not one of {', '.join(METRICS)}")
    required = (*_REQUIRED_ACCURACY_FIELDS, "top1" if metric is TOP1 else "value")
    missing = [name for name in required if record.get(name) is None]
    if missing:
        raise ReportError(f"{source}: accuracy record lacks {', '.join(missing)}; "
                          "write accuracy records with `vitdeploy eval`")
    if record["kind"] not in ACCURACY_KINDS:
        raise ReportError(f"{source}: kind {record['kind']!r} is not one of {', '.join(ACCURACY_KINDS)}")
    if record["kind"] == "deployed" and not record.get("artifact_sha256"):
        raise ReportError(f"{source}: a deployed accuracy record must name its artifact_sha256")
    if metric is not TOP1:
        return AccuracyRecord(
            dataset=record["dataset"], kind=record["kind"], artifact_sha256=record.get("artifact_sha256"),
            num_images=record["num_images"], value=_number(record["value"], "value", source), top5_pct=None,
            source=source, metric=metric, **_per_image_errors(record, source),
        )
    scale = PERCENT_PER_UNIT.get(record["unit"])
    if scale is None:
        raise ReportError(f"{source}: unit {record['unit']!r} is not one of {', '.join(PERCENT_PER_UNIT)}")
    return AccuracyRecord(
        dataset=record["dataset"],
        kind=record["kind"],
        artifact_sha256=record.get("artifact_sha256"),
        num_images=record["num_images"],
        value=_percent(record["top1"], scale, "top1", source),
        top5_pct=_percent(record["top5"], scale, "top5", source) if record.get("top5") is not None else None,
        source=source,
        **_per_image_hits(record, source),
    )


def _per_image_hits(record: dict, source: str) -> dict:
    """The record's image ids and per-image top-1 hits, checked against its image count."""
    ids, hits = record.get("image_ids") or (), record.get("top1_hits") or ""
    if not ids and not hits:
        return {}
    if not isinstance(hits, str) or set(hits) - {"0", "1"} or len(ids) != len(hits) or len(hits) != record["num_images"]:
        raise ReportError(f"{source}: image_ids and top1_hits must name and score each of its {record['num_images']} "
                          "images (top1_hits a string of 0 and 1); write accuracy records with `vitdeploy eval`")
    return {"image_ids": tuple(map(str, ids)), "image_scores": tuple(1.0 if c == "1" else 0.0 for c in hits)}


def _per_image_errors(record: dict, source: str) -> dict:
    """The record's image ids and per-image errors, checked against its image count."""
    ids, errors = record.get("image_ids") or (), record.get("image_errors") or ()
    if not ids and not errors:
        return {}
    if len(ids) != len(errors) or len(errors) != record["num_images"]:
        raise ReportError(f"{source}: image_ids and image_errors must name and score each of its "
                          f"{record['num_images']} images; write accuracy records with `vitdeploy eval`")
    return {"image_ids": tuple(map(str, ids)),
            "image_scores": tuple(_number(error, "image_errors", source) for error in errors)}


def _number(value, name: str, source: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ReportError(f"{source}: {name} must be a number, got {value!r}")
    return float(value)


def _percent(value, scale: float, name: str, source: str) -> float:
    percent = _number(value, name, source) * scale
    if not 0.0 <= percent <= 100.0:
        raise ReportError(f"{source}: {name} {value!r} is outside 0..100 % for its unit")
    return percent
