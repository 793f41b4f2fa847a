"""Post-training calibration: fit every quantizer of a fake-quant ViT on a few images.

    images, description = lowering.data.calibration_set(model.spec, "digits", 32, seed=0)
    calibrated = calibrate(model, images, QuantConfig.repq(4, 4), description)
    calibrated.model(batch)  # fake-quant logits

The calibration follows RepQ-ViT: one forward pass over all calibration images with
every quantizer fitting, in order, on the first tensor it sees (so each is calibrated on
the output of already-quantized layers; weights are fitted on the weights); then, for
"reparameterized" post-LayerNorm quantization, the scale reparameterization. The
images go through as one batch, so every quantizer sees all of them.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

import torch
from torch import nn

from lowering.models import VisionTransformer
from lowering.quant.config import QuantConfig
from lowering.quant.repq import scale_reparameterize
from lowering.quant.simulate import fake_quantize, quantizers


@dataclass(frozen=True)
class CalibratedModel:
    """A calibrated fake-quant ViT and how it was made."""

    model: VisionTransformer
    config: QuantConfig
    calibration: str
    num_images: int
    seconds: float

    def settings(self) -> dict:
        """The quantization settings and calibration, for manifests and result tables."""
        return {
            **self.config.to_dict(),
            "label": self.config.label,
            "calibration": self.calibration,
            "num_images": self.num_images,
            "calibration_seconds": round(self.seconds, 3),
        }


@contextmanager
def calibrating(model: nn.Module) -> Iterator[nn.Module]:
    """Let the model's unfitted quantizers fit on the next tensors they see."""
    members = quantizers(model)
    for quantizer in members:
        quantizer.calibrating = True
    try:
        yield model
    finally:
        for quantizer in members:
            quantizer.calibrating = False


@torch.no_grad()
def calibrate(
    model: VisionTransformer,
    images: torch.Tensor,
    config: QuantConfig = QuantConfig(),
    description: str = "unnamed calibration tensor",
) -> CalibratedModel:
    """Fake-quantize `model` as `config` says and calibrate it on `images` (NCHW, already
    preprocessed for the model; `lowering.data.calibration_set` makes them and their
    `description`, which records the source, split, count and seed)."""
    start = time.perf_counter()
    sim = fake_quantize(model, config)
    with calibrating(sim):
        sim(images)
    if config.post_layernorm == "reparameterized" and config.activation_bits is not None:
        sim = scale_reparameterize(sim)
    seconds = time.perf_counter() - start
    return CalibratedModel(sim.eval(), config, description, int(images.shape[0]), seconds)
