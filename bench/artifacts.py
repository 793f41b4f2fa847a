"""The models the benchmarks measure and their lowered artifacts (from the artifact cache
when already built).

    reparam_models() -> {label: branched or plain ViT-Tiny 224, random weights seed 0}
    lower(model, targets, calibrate=False) -> {Target: Artifact}
    runtime_model() -> DeiT-Tiny 224, random weights seed 0
"""

from __future__ import annotations

import torch

from lowering.data import calibration_set
from lowering.export import Artifact, CalibrationSet, LoweringSpec, Target, lower_model
from lowering.models import VisionTransformer, count_macs, create

SEED = 0
# Depth x branches of the reparameterization comparison; the first is the baseline.
DEPTH_SHAPES = ((12, 1), (6, 2), (4, 3), (3, 4))
REPARAM_TARGETS = (Target("executorch", "fp32"), Target("onnx", "fp32"))
RUNTIME_TARGETS = (
    Target("executorch", "fp32"),
    Target("executorch", "int8"),
    Target("onnx", "fp32"),
    Target("onnx", "int8"),
    Target("onnx", "dynamic-int8"),
)


def shape_label(depth: int, branches: int) -> str:
    return f"{depth}x{branches}"


def _seeded(name: str, **overrides) -> VisionTransformer:
    torch.manual_seed(SEED)
    return create(name, **overrides)


def reparam_models(img_size: int = 224) -> dict[str, VisionTransformer]:
    """ViT-Tiny as 12 x 1 and as the branched 6 x 2, 4 x 3, 3 x 4 models (equal MACs)."""
    return {
        shape_label(depth, branches): _seeded("vit_tiny", depth=depth, branches=branches, img_size=img_size)
        for depth, branches in DEPTH_SHAPES
    }


def runtime_model() -> VisionTransformer:
    """DeiT-Tiny 224 with random weights (latency does not depend on the weights' values)."""
    return _seeded("deit_tiny")


def macs(model: VisionTransformer) -> int:
    spec = model.spec
    return count_macs(model, (1, spec.in_chans, spec.img_size, spec.img_size))


def lower(model: VisionTransformer, targets: tuple[Target, ...], log=print) -> dict[Target, Artifact]:
    """Lower (or find in the cache) `model` for `targets`; calibrated modes use 32 digits images.

    Artifacts that fail verification are kept (random weights quantize poorly and only
    latency is measured here); `verification_note` says how each one did."""
    calibration = None
    if any(t.quant == "int8" for t in targets):
        images, description = calibration_set(model.spec)
        calibration = CalibrationSet(images, description)
    spec = LoweringSpec(targets=targets, calibration=calibration, seed=SEED, keep_failed=True)
    artifacts = lower_model(model, spec, log=log)
    return {artifact.target: artifact for artifact in artifacts}


def verification_note(artifact: Artifact) -> str:
    """'passed' or 'FAILED', with the check's failures, from the artifact's manifest."""
    verification = artifact.manifest.verification
    status = "passed" if verification.get("passed") else "FAILED"
    failures = "; ".join(verification.get("failures") or [])
    return f"{status}: {failures}" if failures else status
