"""Artifacts and models as bytes, for tasks on machines that share no file system.

An artifact (a file, or a folder such as a .mlpackage) travels with its manifest as one
uncompressed tar (weights hardly compress). A lowering group travels pickled, except
the exported program of a `.pt2` source, which does not pickle and goes through
`torch.export.save` instead.
"""

from __future__ import annotations

import io
import tarfile
from dataclasses import dataclass, replace
from pathlib import Path

from lowering.cache import publish, staging_dir
from vitdeploy.manifest import manifest_path


@dataclass(frozen=True)
class Bundle:
    """An artifact named `name` and its manifest, as tar bytes."""

    name: str
    data: bytes


def pack(artifact: Path) -> Bundle:
    """`artifact` and its manifest as one Bundle."""
    artifact = Path(artifact)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        tar.add(artifact, arcname=artifact.name)
        tar.add(manifest_path(artifact), arcname=manifest_path(artifact).name)
    return Bundle(artifact.name, buffer.getvalue())


def unpack(bundle: Bundle, directory: Path) -> Path:
    """Write `bundle` into `directory` (created); returns the artifact's path there."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(bundle.data), mode="r") as tar:
        tar.extractall(directory, filter="data")
    return directory / bundle.name


def receive(bundle: Bundle, directory: Path) -> Path:
    """Publish `bundle` in `directory` as lowering publishes artifacts: whole or not at all,
    replacing an older copy. Returns the artifact's path there."""
    with staging_dir(Path(directory)) as staging:
        return publish(unpack(bundle, staging), directory)


@dataclass(frozen=True)
class FrozenGroup:
    """A `lowering.int8_ranges.LoweringGroup` ready to pickle: its model's exported
    program, if any, saved apart as `program` bytes."""

    group: object
    program: bytes | None


def freeze(group) -> FrozenGroup:
    """`group` in a form that pickles."""
    program = group.model.program
    if program is None:
        return FrozenGroup(group, None)
    import torch

    buffer = io.BytesIO()
    torch.export.save(program, buffer)
    return FrozenGroup(replace(group, model=replace(group.model, program=None)), buffer.getvalue())


def thaw(frozen: FrozenGroup):
    """The group `freeze` was given."""
    if frozen.program is None:
        return frozen.group
    import torch

    program = torch.export.load(io.BytesIO(frozen.program))
    return replace(frozen.group, model=replace(frozen.group.model, program=program))
