"""What a backend is given to build one artifact, and what it hands back."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from lowering.export.settings import LoweringSpec, PreparedCalibrator

if TYPE_CHECKING:
    from lowering.export.backends import Target


@dataclass(frozen=True, eq=False)
class BuildJob:
    """One artifact to build.

    `exported`: torch.export of the model after the backend's graph passes, shared by
    every target of that backend. `stem`: the artifact's path without suffix, inside a private temporary
    directory. `scratch`: a folder shared by the targets of one lowering call, for
    intermediate files several of them reuse (each backend names its own). `calibrator`:
    the calibration hook (None when the mode needs none). `calibration_description`:
    what calibrated it, for the manifest. `int8_elementwise`: static int8 also quantizes
    additions, multiplications and concatenations (`pt2e.xnnpack_quantizer`).
    """

    target: Target
    exported: torch.export.ExportedProgram
    example: torch.Tensor
    spec: LoweringSpec
    stem: Path
    scratch: Path
    num_classes: int
    calibrator: PreparedCalibrator | None = None
    calibration_description: str | None = None
    int8_elementwise: bool = True


@dataclass(frozen=True)
class Built:
    """A built artifact: its path, delegation (or op) summary, quantization record and
    backend details for the manifest's `export` entry."""

    path: Path
    delegation: dict
    quantization: dict | None = None
    details: dict = field(default_factory=dict)
