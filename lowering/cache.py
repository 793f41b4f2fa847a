"""The content-keyed artifact cache and atomic artifact writes.

An artifact is keyed by everything that shapes it: the weights' bytes, the model spec,
whether it was reparameterized, the lowering settings (backend, quantization mode,
input shape, calibration identity, Core ML deployment target), the backend's graph passes
with their versions (`passes.identity`), LOWERING_VERSION, and the toolchain versions. Entries live in
`user_cache_dir()/artifacts/<key>/` holding one artifact and its manifest.

Nothing half-written is ever visible: artifacts are built in a staging directory on the
same file system as their destination and moved into place with a rename, the artifact
first and its manifest last (a manifest means a complete artifact).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator

import torch
from torch import nn

from vitdeploy.errors import VitdeployError
from vitdeploy.manifest import manifest_path, read_manifest, write_manifest
from vitdeploy.user_cache import user_cache_dir

# Bump when a backend's lowering, or a registry model's code, changes the artifacts it
# writes for the same inputs.
LOWERING_VERSION = 6
_STAGING_PREFIX = ".staging-"


class OutputError(VitdeployError):
    """An artifact cannot be written: the directory is not writable or the disk is full."""


def weights_sha256(model: nn.Module) -> str:
    """sha256 over the model's state dict: names, dtypes, shapes and bytes, in order."""
    digest = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        tensor = tensor.detach().cpu().contiguous()
        digest.update(f"{name}:{tensor.dtype}:{tuple(tensor.shape)}\0".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def cache_key(fields: dict) -> str:
    """The key of an artifact described by `fields` (JSON-serializable)."""
    data = json.dumps({"lowering_version": LOWERING_VERSION, **fields}, sort_keys=True, default=str)
    return hashlib.sha256(data.encode()).hexdigest()


def _write_error(directory: Path, exc: OSError) -> OutputError:
    reason = exc.strerror or str(exc)
    return OutputError(
        f"cannot write artifacts to {directory}: {reason}. Choose a writable directory "
        "with enough free space (for the cache, set VITDEPLOY_CACHE)"
    )


def ensure_writable(directory: Path) -> Path:
    """Create `directory` if needed and check that files can be created in it."""
    directory = Path(directory)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=directory, prefix=_STAGING_PREFIX):
            pass
    except OSError as exc:
        raise _write_error(directory, exc) from None
    return directory


@contextlib.contextmanager
def staging_dir(directory: Path) -> Iterator[Path]:
    """A private temporary directory inside `directory`, removed on exit."""
    directory = ensure_writable(directory)
    path = Path(tempfile.mkdtemp(dir=directory, prefix=_STAGING_PREFIX))
    try:
        yield path
    except OSError as exc:
        raise _write_error(directory, exc) from exc
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def publish(artifact: Path, directory: Path, label: str | None = None) -> Path:
    """Copy `artifact` and its manifest into `directory`, replacing older copies, so that
    a failure (no space, no permission) leaves neither a partial artifact nor a manifest.
    `label` (a sweep's name for the model) is recorded in the copy's manifest as
    `model.label`; the cached manifest stays as it was. Returns the artifact's new path."""
    directory = Path(directory)
    target = directory / artifact.name
    with staging_dir(directory) as staging:
        try:
            copy = staging / artifact.name
            if artifact.is_dir():
                shutil.copytree(artifact, copy)
            else:
                shutil.copy2(artifact, copy)
            manifest = read_manifest(artifact)
            write_manifest(copy, manifest if label is None else manifest.with_label(label))
            _remove(manifest_path(target))
            if target.is_dir():
                _remove(target)
            os.replace(copy, target)
            os.replace(manifest_path(copy), manifest_path(target))
        except OSError as exc:
            raise _write_error(directory, exc) from exc
    return target


class ArtifactCache:
    """Lowered artifacts by content key under `root` (default: user_cache_dir()/artifacts)."""

    def __init__(self, root: Path | None = None):
        self.root = Path(root) if root is not None else user_cache_dir() / "artifacts"

    def lookup(self, key: str) -> Path | None:
        """The cached artifact for `key`, or None. Only complete entries are found."""
        entry = self.root / key
        if not entry.is_dir():
            return None
        for manifest in entry.glob("*.manifest.json"):
            artifact = entry / manifest.name[: -len(".manifest.json")]
            if artifact.exists():
                return artifact
        return None

    def staging(self) -> contextlib.AbstractContextManager[Path]:
        """A staging directory on the cache's file system, for building an entry."""
        return staging_dir(self.root)

    def store(self, artifact: Path, key: str) -> Path:
        """Move `artifact` and its manifest (built in a staging directory of this cache)
        into the entry for `key`, replacing an older entry. Returns the cached path."""
        entry = self.root / key
        fresh = artifact.parent / f"entry-{key}"
        try:
            fresh.mkdir()
            os.replace(artifact, fresh / artifact.name)
            os.replace(manifest_path(artifact), manifest_path(fresh / artifact.name))
            if entry.exists():
                shutil.rmtree(entry)
            os.replace(fresh, entry)
        except OSError as exc:
            raise _write_error(self.root, exc) from exc
        return entry / artifact.name
