"""The sidecar manifest of a lowered artifact: `X` has `X.manifest.json` next to it.

Everything downstream (bench runner, evaluation, report) reads an artifact's facts from
here, never from its file name. Keys (see DESIGN.md section 3 and the lowering
contract): backend, runtime, quant, quantization, model, reparameterized, input_shape,
input_dtype, sha256, size_bytes, lowering_seconds, toolchain, verification,
delegation, created_at, cache_key, plus backend details under `export`.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
from importlib import metadata
from pathlib import Path

from vitdeploy.errors import VitdeployError

MANIFEST_SUFFIX = ".manifest.json"
TOOLCHAIN_PACKAGES = ("torch", "executorch", "onnx", "onnxruntime", "onnxscript", "coremltools", "torchao")
RUNTIME_OF_BACKEND = {"executorch": "executorch", "onnx": "onnxruntime", "coreml": "coreml"}


class ManifestError(VitdeployError):
    """An artifact's manifest is missing or unreadable."""


def manifest_path(artifact: str | Path) -> Path:
    """Where the manifest of `artifact` lives."""
    return Path(str(artifact) + MANIFEST_SUFFIX)


def read_manifest(artifact: str | Path) -> dict:
    """The manifest of `artifact` as a dict."""
    path = manifest_path(artifact)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ManifestError(
            f"artifact {artifact} has no manifest ({path.name} is missing); lower it again"
        ) from None
    except (OSError, json.JSONDecodeError) as exc:
        raise ManifestError(f"manifest {path} is unreadable: {exc}") from None


def write_manifest(artifact: str | Path, manifest: dict) -> Path:
    """Write `manifest` next to `artifact`; returns the manifest's path."""
    path = manifest_path(artifact)
    path.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return path


def toolchain_versions() -> dict[str, str | None]:
    """Installed versions of the packages that shape an artifact (None: not installed)."""
    versions: dict[str, str | None] = {}
    for name in TOOLCHAIN_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


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
