"""Complete manifests for hand-made test artifacts."""

from __future__ import annotations

from pathlib import Path

from vitdeploy.manifest import Manifest, ModelRecord, artifact_sha256, write_manifest
from vitdeploy.runtimes import runtime_of_file


def write_test_manifest(artifact: Path, model: dict | None = None, **fields) -> Path:
    """Write a manifest for `artifact` as lowering would, with `fields` overriding the
    defaults (runtime and backend from the file's format, fp32, the file's sha256)."""
    runtime = runtime_of_file(artifact)
    values = {
        "backend": runtime.artifact_format,
        "runtime": runtime.name,
        "quant": "fp32",
        "input_shape": (1, 3, 2, 2),
        "sha256": artifact_sha256(artifact),
        **fields,
    }
    values["input_shape"] = tuple(values["input_shape"])
    return write_manifest(artifact, Manifest(model=ModelRecord(**(model or {"name": "test_model"})), **values))
