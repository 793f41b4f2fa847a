"""The calibration set of post-training quantization: a few images chosen with a fixed seed."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from lowering.data.dataset import DatasetError
from lowering.data.sources import EMBEDDED, open_dataset
from lowering.models.spec import ImageFormat, ModelSpec

DEFAULT_NUM_IMAGES = 32


def calibration_set(
    spec: ModelSpec | ImageFormat,
    source: str | Path = EMBEDDED,
    num_images: int = DEFAULT_NUM_IMAGES,
    seed: int = 0,
) -> tuple[torch.Tensor, str]:
    """`num_images` images for calibrating a model whose input `spec` describes (a ModelSpec,
    or the ImageFormat of any model), and their description.

    The images come from the embedded digits' train split (source "digits", so they never
    overlap the val split accuracy is measured on) or from the image folder at `source`,
    chosen with `seed` and preprocessed with the model's own preprocessing and input size.
    Returns a float32 NCHW tensor and the description to record with the quantization.
    """
    dataset = open_dataset(source, spec.preprocessing, spec.img_size, split="train", seed=seed)
    chosen = dataset.take(num_images, seed)
    images = np.concatenate([batch for batch, _ in chosen.batches(num_images)])
    return torch.from_numpy(images), chosen.description


def verification_images(
    spec: ModelSpec | ImageFormat, source: str | Path = EMBEDDED, num_images: int = DEFAULT_NUM_IMAGES,
) -> torch.Tensor | None:
    """`num_images` real images of the val split of `source` (chosen with seed 1), in the
    model's preprocessing, for checking an artifact against the eager model: random
    inputs lie outside the ranges int8 was calibrated on and exaggerate its error. None
    when the source has fewer images."""
    dataset = open_dataset(source, spec.preprocessing, spec.img_size, split="val")
    try:
        chosen = dataset.take(num_images, seed=1)
    except DatasetError:
        return None
    return torch.from_numpy(np.concatenate([batch for batch, _ in chosen.batches(num_images)]))
