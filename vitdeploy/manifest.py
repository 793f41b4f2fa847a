"""The sidecar manifest of a lowered artifact: `X` has `X.manifest.json` next to it.

Everything downstream (bench runner, evaluation, report) reads an artifact's facts from
its Manifest, never from its file name. The JSON carries `schema_version`; manifests
written before it existed (version 1, the same keys) still read.
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vitdeploy.errors import VitdeployError

MANIFEST_SUFFIX = ".manifest.json"
SCHEMA_VERSION = 2


class ManifestError(VitdeployError):
    """An artifact's manifest is missing, unreadable, or not a manifest vitdeploy knows."""


@dataclass(frozen=True)
class ModelRecord:
    """The model an artifact was lowered from.

    `spec`: the lowered (inference-form) model's specification; `spec_before_reparameterization`
    the trained form's when they differ (both empty for models outside the registry).
    `label`: a sweep's name for the model, set on the copies it publishes. `params` and
    `macs` count the lowered model at the input shape. `source` is what the user named,
    `source_kind` which kind of source that is (registry, exported-program, huggingface,
    factory) and `source_sha256` the hash of the files it was read from. `preprocessing`:
    how images become the input (mean, std, crop_pct, interpolation). `removed_branches`:
    the training-only branches lowering removed (DCAL's "pair_wise_cross_attention").
    """

    name: str
    spec: dict = field(default_factory=dict)
    params: int | None = None
    macs: int | None = None
    weights_sha256: str | None = None
    source: str | None = None
    source_kind: str | None = None
    source_sha256: str | None = None
    preprocessing: dict | None = None
    label: str | None = None
    spec_before_reparameterization: dict | None = None
    removed_branches: list[str] | None = None

    @property
    def display_name(self) -> str:
        """The label if there is one, else the model's name."""
        return self.label or self.name


@dataclass(frozen=True)
class Manifest:
    """What an artifact is, how it was made and how it was checked.

    `verification`, `delegation`, `quantization` and `export` are the backend's own
    records (JSON objects); `toolchain` the versions of the packages that built it.
    """

    backend: str
    runtime: str
    quant: str
    model: ModelRecord
    input_shape: tuple[int, ...]
    sha256: str
    input_dtype: str = "float32"
    output_shape: tuple[int, ...] = ()
    file: str = ""
    size_bytes: int = 0
    lowering_seconds: float = 0.0
    reparameterized: bool = False
    branches_before: int = 1
    toolchain: dict = field(default_factory=dict)
    verification: dict = field(default_factory=dict)
    delegation: dict = field(default_factory=dict)
    quantization: dict | None = None
    export: dict = field(default_factory=dict)
    created_at: str = ""
    cache_key: str = ""
    schema_version: int = SCHEMA_VERSION

    @property
    def passed(self) -> bool:
        """Whether the artifact passed its check: the numerical one, or (Core ML off
        macOS) the spec check that stands in for it."""
        if self.verification.get("status") == "pending-macos":
            return bool(self.verification.get("spec_check", {}).get("passed"))
        return bool(self.verification.get("passed"))

    @property
    def failure_text(self) -> str:
        """Why verification failed, as one line."""
        problems = self.verification.get("failures") or self.verification.get("spec_check", {}).get("problems") or []
        return "; ".join(problems) or "verification failed"

    def with_label(self, label: str) -> Manifest:
        return dataclasses.replace(self, model=dataclasses.replace(self.model, label=label))

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["input_shape"], data["output_shape"] = list(self.input_shape), list(self.output_shape)
        data["model"] = {k: v for k, v in data["model"].items() if v is not None}
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "manifest") -> Manifest:
        """Read a manifest of this schema version or an older one; `source` names it in errors."""
        if not isinstance(data, dict):
            raise ManifestError(f"{source} is not a JSON object")
        version = data.get("schema_version", 1)
        if not isinstance(version, int) or version > SCHEMA_VERSION:
            raise ManifestError(
                f"{source} has schema version {version!r}, newer than this vitdeploy reads "
                f"({SCHEMA_VERSION}); upgrade vitdeploy or lower the artifact again"
            )
        known = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        missing = [f.name for f in dataclasses.fields(cls)
                   if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
                   and f.name not in values]
        if missing:
            raise ManifestError(f"{source} lacks {', '.join(missing)}; lower the artifact again")
        model = values["model"]
        model_fields = {f.name for f in dataclasses.fields(ModelRecord)}
        if not isinstance(model, dict) or "name" not in model:
            raise ManifestError(f"{source}: `model` must be an object with a `name`")
        values["model"] = ModelRecord(**{k: v for k, v in model.items() if k in model_fields})
        values["input_shape"] = tuple(int(d) for d in values["input_shape"])
        values["output_shape"] = tuple(int(d) for d in values.get("output_shape", ()))
        values["schema_version"] = SCHEMA_VERSION
        return cls(**values)


def manifest_path(artifact: str | Path) -> Path:
    """Where the manifest of `artifact` lives."""
    return Path(str(artifact) + MANIFEST_SUFFIX)


def read_manifest(artifact: str | Path) -> Manifest:
    """The manifest of `artifact`."""
    path = manifest_path(artifact)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ManifestError(
            f"artifact {artifact} has no manifest ({path.name} is missing); lower it again"
        ) from None
    except (OSError, json.JSONDecodeError) as exc:
        raise ManifestError(f"manifest {path} is unreadable: {exc}") from None
    return Manifest.from_dict(data, str(path))


def write_manifest(artifact: str | Path, manifest: Manifest) -> Path:
    """Write `manifest` next to `artifact`; returns the manifest's path."""
    path = manifest_path(artifact)
    path.write_text(json.dumps(manifest.to_dict(), indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return path


def _files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    return sorted(p for p in path.rglob("*") if p.is_file())


def artifact_sha256(path: str | Path) -> str:
    """sha256 of a file, or of a directory artifact (`.mlpackage`): its files' relative
    paths and bytes in sorted order."""
    path = Path(path)
    digest = hashlib.sha256()
    for file in _files(path):
        if path.is_dir():
            digest.update(file.relative_to(path).as_posix().encode() + b"\0")
        with open(file, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def artifact_size(path: str | Path) -> int:
    """Bytes of a file, or the sum over a directory artifact's files."""
    return sum(os.path.getsize(f) for f in _files(Path(path)))


def now_utc() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
