"""What to lower: the settings one lowering call's targets share."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import torch

from lowering.verify import MIN_INPUTS
from vitdeploy.errors import VitdeployError

if TYPE_CHECKING:
    from lowering.export.backends import Target

DEFAULT_COREML_TARGET = "iOS17"


class UnknownTargetError(VitdeployError):
    """A backend or quantization mode that lowering does not know, or no target at all."""


@dataclass(frozen=True, eq=False)
class CalibrationSet:
    """Preprocessed images (float32 NCHW) that static quantization calibrates on.

    `description` says where they came from (data set, split, size, seed); the identity
    used in cache keys is that description plus a hash of the image bytes.
    """

    images: torch.Tensor
    description: str

    @property
    def identity(self) -> str:
        """The description and a sha256 of the images' float32 bytes."""
        data = self.images.detach().to(torch.float32).contiguous().numpy().tobytes()
        return f"{self.description}:{hashlib.sha256(data).hexdigest()}"


@runtime_checkable
class PreparedCalibrator(Protocol):
    """Calibrates a PT2E-prepared (observed) graph module in place.

    The quantization helper supplies its own ranges through this hook; `identity` says
    what it does (method, data) and keys the artifact cache. A hook that also has
    `onnx_tensor_overrides(exported_onnx, prepared_onnx) -> dict` fixes ranges on ONNX
    Runtime's static int8 path too (its `TensorQuantOverrides`); the ONNX path still
    calibrates the other tensors on LoweringSpec.calibration.
    """

    identity: str

    def __call__(self, prepared: torch.fx.GraphModule) -> None: ...


@dataclass(frozen=True, eq=False)
class LoweringSpec:
    """How to lower one model into several artifacts.

    `targets`: the artifacts to build. `calibration`: images for static int8 (needed by
    the calibrated targets). `calibrator`: replaces running those images through
    the PT2E-prepared graph (ExecuTorch int8, Core ML w8a8); ONNX Runtime's int8 path
    still calibrates on `calibration` (see PreparedCalibrator). `verification_images`:
    inputs of the numerical check (at least 32; None: seeded random normal images).
    `coreml_deployment_target`: coremltools' target name ("iOS17", "macOS14", ...).
    `reparameterize`: fuse the model first (always done for a branched model).
    `keep_failed`: keep an artifact that fails verification (its manifest says so)
    instead of raising. `use_cache`: reuse the content-keyed artifact cache (a fresh
    artifact is stored either way). `seed`: of torch.export's example input and of the
    random verification images.
    """

    targets: tuple[Target, ...]
    calibration: CalibrationSet | None = None
    calibrator: PreparedCalibrator | None = None
    verification_images: torch.Tensor | None = None
    coreml_deployment_target: str = DEFAULT_COREML_TARGET
    reparameterize: bool = False
    keep_failed: bool = False
    use_cache: bool = True
    seed: int = 0

    def __post_init__(self) -> None:
        if not self.targets:
            raise UnknownTargetError("no targets to lower: give at least one backend and mode")
        if self.calibrator is not None and not isinstance(getattr(self.calibrator, "identity", None), str):
            raise TypeError("a calibrator needs a string `identity` (it keys the artifact cache)")
        if self.verification_images is not None and len(self.verification_images) < MIN_INPUTS:
            raise ValueError(
                f"verification needs at least {MIN_INPUTS} images, "
                f"got {len(self.verification_images)}"
            )
