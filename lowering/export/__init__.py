"""Lowering to deployable artifacts: ExecuTorch (XNNPACK), ONNX and Core ML.

    lower_model(model, LoweringSpec(targets=(Target("executorch", "fp32"), ...)), ...)
        -> list[Artifact]
    parse_targets(backends, modes) -> (targets, skipped notes)
    BACKENDS: each backend's descriptor; QUANT_MODES: each backend's quantization modes

One module per backend (`executorch`, `onnx`, `coreml`), each declaring its `BACKEND`
(`backend.Backend`); `backends` registers them and derives every per-backend table.
"""

from lowering.export.backends import BACKENDS, QUANT_MODES, Target, parse_targets
from lowering.export.pipeline import Artifact, lower_model
from lowering.export.settings import CalibrationSet, LoweringSpec, PreparedCalibrator, UnknownTargetError
from lowering.export.unsupported import LoweringError, UnsupportedOpError

__all__ = [
    "Artifact",
    "BACKENDS",
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
