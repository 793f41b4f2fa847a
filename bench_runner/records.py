"""What is measured (ArtifactInfo) and what a measurement leaves behind (BenchRecord).

An artifact's identity and provenance come from its sidecar manifest
(`<artifact>.manifest.json`, written by the lowering step), never from its file name.
"""

from __future__ import annotations

import importlib.metadata
import json
import platform
from dataclasses import MISSING, asdict, dataclass, fields
from pathlib import Path
from typing import Any

from bench_runner.harness.base import EnvironmentReading, ToolAggregate, Variant
from bench_runner.stats import LatencyStats
from vitdeploy.errors import VitdeployError
from vitdeploy.manifest import Manifest, ManifestError, artifact_sha256, artifact_size, manifest_path, read_manifest
from vitdeploy.runtimes import RUNTIMES, runtime_of_file


class ArtifactError(VitdeployError):
    """An artifact cannot be benchmarked as given (missing, unknown format or input shape)."""


@dataclass(frozen=True)
class ArtifactInfo:
    """An artifact to benchmark with its provenance.

    `manifest` is its sidecar manifest (None without one); `model`, `backend` and `quant`
    come from it, or are "unknown" without it (backend: the runtime's artifact format).
    """

    path: Path
    sha256: str
    size_bytes: int
    runtime: str
    input_shape: tuple[int, ...]
    input_dtype: str
    model: str
    backend: str
    quant: str
    manifest_path: Path | None = None
    manifest: Manifest | None = None

    @classmethod
    def from_path(
        cls, path: Path, input_shape: tuple[int, ...] | None = None, input_dtype: str | None = None
    ) -> ArtifactInfo:
        """Read an artifact and its sidecar manifest; explicit arguments win over the manifest."""
        path = Path(path)
        if not path.exists():
            raise ArtifactError(f"artifact {path} does not exist")
        sidecar = manifest_path(path)
        manifest = None
        if sidecar.is_file():
            try:
                manifest = read_manifest(path)
            except ManifestError as exc:
                raise ArtifactError(str(exc)) from None
        runtime = RUNTIMES.get(manifest.runtime) if manifest else runtime_of_file(path)
        if runtime is None:
            known = ", ".join(suffix for r in RUNTIMES.values() for suffix in r.suffixes)
            raise ArtifactError(
                f"cannot tell which runtime runs {path}: "
                + (f"its manifest names runtime {manifest.runtime!r}" if manifest else
                   f"it has no manifest and its format {path.suffix!r} is not one of {known}")
            )
        shape = input_shape or (manifest.input_shape if manifest else None)
        if not shape:
            raise ArtifactError(
                f"the input shape of {path} is unknown: it has no manifest ({sidecar.name}) "
                "saying it; pass it explicitly, e.g. --input-shape 1,3,224,224"
            )
        sha256 = artifact_sha256(path)
        if manifest and manifest.sha256 != sha256:
            raise ArtifactError(
                f"{path} changed since its manifest was written (sha256 {sha256[:12]} != {manifest.sha256[:12]}); "
                "lower it again so the manifest describes what is measured"
            )
        return cls(
            path=path,
            sha256=sha256,
            size_bytes=artifact_size(path),
            runtime=runtime.name,
            input_shape=tuple(int(d) for d in shape),
            input_dtype=input_dtype or (manifest.input_dtype if manifest else "float32"),
            model=manifest.model.name if manifest else "unknown",
            backend=manifest.backend if manifest else runtime.artifact_format,
            quant=manifest.quant if manifest else "unknown",
            manifest_path=sidecar if manifest else None,
            manifest=manifest,
        )

    def variant(self, variant_id: str) -> Variant:
        """This artifact as a harness sees it."""
        return Variant(
            id=variant_id, path=self.path, runtime=self.runtime, input_shape=self.input_shape, input_dtype=self.input_dtype
        )


def toolchain_versions() -> dict[str, str]:
    """Versions of the measuring side: vitdeploy, Python, numpy."""
    versions = {"python": platform.python_version()}
    for name in ("vitdeploy", "numpy"):
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "unknown"
    return versions


@dataclass(frozen=True)
class BenchRecord:
    """One artifact measured on one device at one thread count, one repetition.

    `key` identifies the measurement (artifact, device, harness, settings, repetition)
    so a resumed sweep can skip it. `status` is "ok" or "failed" (then `error` says why
    and there are no statistics). `device` is DeviceInfo.to_dict() read before the
    configuration; `toolchain` merges the measuring side's and the device runtimes'
    versions. Times are milliseconds, memory kilobytes. `emulated` records must never
    be presented as a real device's latency.

    An "ok" record has either raw samples and `stats`, or, from a tool that prints no
    per-run times, an `aggregate` and no `stats`: such a record has no percentiles and
    no interval, must never be ranked with or shown as p50s, and its `stable` is None
    (not assessable) unless a check found a problem (then False).

    `timestamp` is when the record was written, not when it was measured. When it was
    measured is in `round_times`, `started_at` and `ended_at`: the host's wall clock
    (ISO 8601 UTC, milliseconds) read just before and just after each harness call that
    measured this record. Such a span covers the whole call (starting the tool, warm-up);
    of a retried call only the attempt whose result the record holds. `round_times` has
    one (start, end) per call, in order: for a one-at-a-time harness one per round run
    (a failed round is the last one run); for a harness that runs all rounds in one call
    a single span, that of the call, which all the variants measured with it share: no
    single round's time is known there. `started_at` is the first span's start,
    `ended_at` the last one's end; variants measured interleaved have overlapping spans.
    Records written before these fields existed have None, None and ().
    """

    key: str
    run_id: str
    timestamp: str
    status: str
    error: str | None
    # what was measured
    artifact_path: str
    artifact_sha256: str
    artifact_size_bytes: int
    manifest_path: str | None
    manifest: dict
    model: str
    backend: str
    quant: str
    runtime: str
    input_shape: tuple[int, ...]
    input_dtype: str
    # where, and with what
    device_name: str
    device_kind: str
    emulated: bool
    device: dict
    harness: str
    toolchain: dict
    # how
    threads: int
    cpu_mask: str | None
    warmup: int
    runs: int
    min_seconds: float
    rounds: int
    cooldown_seconds: float
    repetition: int
    seed: int
    # results
    stats: LatencyStats | None
    stable: bool | None
    stability_note: str
    round_medians_ms: tuple[float, ...]
    load_ms: float | None
    first_inference_ms: float | None
    peak_rss_kb: int | None
    memory_kb: int | None
    output_checksum: float | None
    environment: tuple[EnvironmentReading, ...]
    samples_ms: tuple[float, ...]
    round_index: tuple[int, ...]
    aggregate: ToolAggregate | None = None
    started_at: str | None = None
    ended_at: str | None = None
    round_times: tuple[tuple[str, str], ...] = ()

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def to_row(self) -> dict[str, Any]:
        """A flat dict: statistics as top-level columns (p50_ms, ...), nested data as JSON text."""
        row: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "stats":
                stats = asdict(value) if value is not None else dict.fromkeys(STATS_COLUMNS)
                row.update(stats)
            elif f.name == "aggregate":
                row[f.name] = json.dumps(value.to_dict(), sort_keys=True) if value is not None else None
            elif f.name == "round_times":
                row[f.name] = [list(span) for span in value]
            elif f.name in JSON_COLUMNS:
                encoded = [r.to_dict() for r in value] if f.name == "environment" else value
                row[f.name] = json.dumps(encoded, sort_keys=True)
            elif isinstance(value, tuple):
                row[f.name] = list(value)
            else:
                row[f.name] = value
        return row

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> BenchRecord:
        """Inverse of to_row; a row without an aggregate (None, "", "null" or "{}") has none, and
        one without a column added later (measurement times) has that field's default."""
        values: dict[str, Any] = {}
        for f in fields(cls):
            if f.name == "stats":
                stats = {name: row[name] for name in STATS_COLUMNS}
                values["stats"] = LatencyStats(**stats) if stats["n"] is not None else None
            elif f.name == "environment":
                values[f.name] = tuple(EnvironmentReading.from_dict(r) for r in json.loads(row[f.name]))
            elif f.name == "aggregate":
                stored = json.loads(row.get(f.name) or "null")
                values[f.name] = ToolAggregate.from_dict(stored) if stored else None
            elif f.name == "round_times":
                values[f.name] = tuple(tuple(span) for span in row.get(f.name) or ())
            elif f.name in JSON_COLUMNS:
                values[f.name] = json.loads(row[f.name])
            elif f.name in TUPLE_COLUMNS:
                values[f.name] = tuple(row[f.name] or ())
            else:
                values[f.name] = row[f.name] if f.default is MISSING else row.get(f.name, f.default)
        return cls(**values)


STATS_COLUMNS = tuple(f.name for f in fields(LatencyStats))
JSON_COLUMNS = ("manifest", "device", "toolchain", "environment")
TUPLE_COLUMNS = ("input_shape", "round_medians_ms", "samples_ms", "round_index")
