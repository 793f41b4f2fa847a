"""Lowering to deployable artifacts: ExecuTorch (XNNPACK), ONNX and Core ML.

    lower_model(model, LoweringSpec(targets=(Target("executorch", "fp32"), ...)), ...)
        -> list[Artifact]
    parse_targets(backends, modes) -> (targets, skipped notes)
    QUANT_MODES: each backend's quantization modes

One module per backend (`executorch`, `onnx`, `coreml`), each exposing FORM (the export
form it lowers, see `forms`), SUFFIX and `build(BuildJob) -> Built`; the pipeline keeps
them in BACKEND_MODULES.
"""

from lowering.export.pipeline import BACKEND_MODULES, Artifact, lower_model
from lowering.export.settings import (
    BACKENDS,
    QUANT_MODES,
    CalibrationSet,
    LoweringSpec,
    PreparedCalibrator,
    Target,
    UnknownTargetError,
    parse_targets,
)
from lowering.export.unsupported import LoweringError, UnsupportedOpError

__all__ = [
    "Artifact",
    "BACKENDS",
    "BACKEND_MODULES",
    "CalibrationSet",
    "LoweringError",
    "LoweringSpec",
    "PreparedCalibrator",
    "QUANT_MODES",
    "Target",
    "UnknownTargetError",
    "UnsupportedOpError",
    "lower_model",
    "parse_targets",
]
