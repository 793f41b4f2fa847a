"""Numerical verification of a lowered artifact against the eager model.

The artifact runs in its own runtime on this host (lowering.runtime); the eager model
runs in PyTorch in float32 on the same inputs (at least 32: given images, or seeded
random normal ones). Reported: the largest absolute difference of the logits, the mean
cosine similarity per input, and how often both agree on the top-1 class. Each
backend declares the thresholds of each of its quantization modes; a failure raises
VerificationError unless the caller keeps failed artifacts.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn

from vitdeploy.errors import VitdeployError, first_line
from lowering.runtime import load_artifact
from lowering.sources.model_input import single_output

MIN_INPUTS = 32


class VerificationError(VitdeployError):
    """A lowered artifact disagrees with the eager model beyond its mode's thresholds."""


@dataclass(frozen=True)
class Thresholds:
    """Pass criteria; None means not checked."""

    max_abs_error: float | None = None
    min_cosine_similarity: float | None = None
    min_top1_agreement: float | None = None


# Standard thresholds the backends choose from. fp32 must match to float rounding. Lower
# precisions are judged by the direction of the logits (cosine): on random weights and
# inputs, logits are close together and top-1 agreement of a quantized model says
# little, so it is reported, not required.
EXACT = Thresholds(max_abs_error=1e-4)
HALF_PRECISION = Thresholds(min_cosine_similarity=0.999)
INT8_WEIGHTS = Thresholds(min_cosine_similarity=0.99)
DYNAMIC_INT8 = Thresholds(min_cosine_similarity=0.98)
STATIC_INT8 = Thresholds(min_cosine_similarity=0.9)


@dataclass(frozen=True)
class Verification:
    """The comparison of an artifact's outputs with the eager model's."""

    max_abs_error: float
    cosine_similarity: float
    top1_agreement: float
    num_inputs: int
    inputs: str
    thresholds: Thresholds
    passed: bool
    failures: tuple[str, ...] = ()

    def to_dict(self) -> dict:
        data = asdict(self)
        data["failures"] = list(self.failures)
        data["status"] = "passed" if self.passed else "failed"
        return data


def random_inputs(shape: tuple[int, ...], count: int = MIN_INPUTS, seed: int = 0) -> np.ndarray:
    """`count` seeded standard-normal images of `shape` (batch included), stacked."""
    rng = np.random.default_rng(seed)
    return rng.standard_normal((count * shape[0], *shape[1:])).astype(np.float32)


def _cosine(reference: np.ndarray, actual: np.ndarray) -> float:
    if reference.shape[1] == 1:
        reference, actual = (reference - reference.mean()).T, (actual - actual.mean()).T
    norms = np.linalg.norm(reference, axis=1) * np.linalg.norm(actual, axis=1)
    return float(np.mean(np.sum(reference * actual, axis=1) / np.maximum(norms, 1e-30)))


def compare(reference: np.ndarray, actual: np.ndarray, thresholds: Thresholds, inputs: str) -> Verification:
    """Compare outputs row by row and apply `thresholds`. A model with one output per
    image (a regression model) has no direction per row: its cosine similarity is that
    of the centred output column over all inputs (their correlation)."""
    reference = reference.astype(np.float64).reshape(len(reference), -1)
    actual = actual.astype(np.float64).reshape(len(actual), -1)
    if reference.shape != actual.shape:
        raise VerificationError(
            f"the artifact returned logits of shape {actual.shape}, the eager model {reference.shape}"
        )
    max_abs = float(np.max(np.abs(reference - actual)))
    cosine = _cosine(reference, actual)
    top1 = float(np.mean(reference.argmax(axis=1) == actual.argmax(axis=1)))
    failures = []
    if not np.isfinite(actual).all():
        failures.append("the artifact returned non-finite logits")
    if thresholds.max_abs_error is not None and not max_abs <= thresholds.max_abs_error:
        failures.append(f"max abs error {max_abs:.3g} > {thresholds.max_abs_error:g}")
    if thresholds.min_cosine_similarity is not None and not cosine >= thresholds.min_cosine_similarity:
        failures.append(f"cosine similarity {cosine:.6f} < {thresholds.min_cosine_similarity:g}")
    if thresholds.min_top1_agreement is not None and not top1 >= thresholds.min_top1_agreement:
        failures.append(f"top-1 agreement {top1:.3f} < {thresholds.min_top1_agreement:g}")
    return Verification(max_abs, cosine, top1, len(reference), inputs, thresholds, not failures, tuple(failures))


@torch.no_grad()
def eager_logits(model: nn.Module, images: np.ndarray, batch_size: int = 8) -> np.ndarray:
    """The eager model's (in eval mode) float32 outputs for `images`, `batch_size` at a time."""
    outputs = [
        single_output(model(torch.from_numpy(images[i : i + batch_size]))).float().numpy()
        for i in range(0, len(images), batch_size)
    ]
    return np.concatenate(outputs)


def verify_artifact(
    path,
    runtime: str,
    images: np.ndarray,
    reference: np.ndarray,
    thresholds: Thresholds,
    inputs: str,
) -> Verification:
    """Run the artifact at `path` in `runtime` on `images` (at least 32) and compare its
    logits with the eager model's `reference` logits under `thresholds`. `inputs`
    describes the images for the record. An artifact its runtime cannot load or run
    fails, with the runtime's error as the reason."""
    if len(images) < MIN_INPUTS:
        raise ValueError(f"verification needs at least {MIN_INPUTS} inputs, got {len(images)}")
    try:
        outputs = load_artifact(path, runtime=runtime)(images)
    except RuntimeError as exc:  # the runtimes raise RuntimeError for programs they cannot load or run
        nan = float("nan")
        return Verification(nan, nan, nan, len(images), inputs, thresholds, False,
                            (f"{runtime} could not load or run the artifact: {first_line(exc)}",))
    return compare(reference, outputs, thresholds, inputs)
