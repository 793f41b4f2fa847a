"""The embedded default data set: scikit-learn's handwritten digits, as small RGB images.

1,797 grey 8 x 8 images of the digits 0-9 (values 0..16) ship inside scikit-learn, so
nothing is downloaded. Each image is scaled to [0, 1], upscaled to `img_size` x
`img_size` by bilinear interpolation, repeated over three channels and normalized with
the model's mean and std. The train / val split is stratified per class and fixed by
`seed` (numpy's PCG64 generator, stable across versions).
"""

from __future__ import annotations

from functools import partial

import numpy as np
import torch

from lowering.data.dataset import ArrayDataset, DatasetError, describe
from lowering.data.preprocess import normalize
from lowering.models import Preprocessing

NAME = "sklearn-digits"
NUM_CLASSES = 10
SPLITS = ("train", "val")
VAL_FRACTION = 0.2
GREY_LEVELS = 16.0


def split_indices(labels: np.ndarray, seed: int, val_fraction: float = VAL_FRACTION) -> dict[str, np.ndarray]:
    """Stratified split: per class, `round(val_fraction * n)` images chosen with `seed` go to val."""
    rng = np.random.default_rng(seed)
    val = []
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        val.append(rng.permutation(members)[: round(val_fraction * len(members))])
    val_indices = np.sort(np.concatenate(val))
    train_indices = np.setdiff1d(np.arange(len(labels)), val_indices)
    return {"train": train_indices, "val": val_indices}


def upscale(grey: np.ndarray, img_size: int) -> np.ndarray:
    """N x 8 x 8 grey values in [0, 1] -> N x 3 x img_size x img_size (bilinear)."""
    small = torch.from_numpy(grey.astype(np.float32)).unsqueeze(1)
    large = torch.nn.functional.interpolate(
        small, size=(img_size, img_size), mode="bilinear", align_corners=False
    )
    return large.expand(-1, 3, -1, -1).numpy()


def load_digits(
    split: str,
    img_size: int = 32,
    preprocessing: Preprocessing = Preprocessing(),
    seed: int = 0,
) -> ArrayDataset:
    """The `split` ("train" or "val") of the embedded digits; its batches are normalized
    model inputs (each image upscaled only when it is read), its image ids the images'
    indices in scikit-learn's digits."""
    if split not in SPLITS:
        raise DatasetError(f"unknown digits split {split!r}; choose one of {', '.join(SPLITS)}")
    from sklearn.datasets import load_digits as sklearn_digits

    bunch = sklearn_digits()
    labels = bunch.target.astype(np.int64)
    indices = split_indices(labels, seed)[split]
    grey = (bunch.images[indices] / GREY_LEVELS).astype(np.float32)
    description = describe(NAME, split, len(indices), seed, img_size=img_size)
    transform = partial(_model_inputs, img_size=img_size, preprocessing=preprocessing)
    return ArrayDataset(grey, labels[indices], description, NUM_CLASSES, transform, ids=tuple(map(str, indices)))


def _model_inputs(grey: np.ndarray, img_size: int, preprocessing: Preprocessing) -> np.ndarray:
    return normalize(upscale(grey, img_size), preprocessing)
