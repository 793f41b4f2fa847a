"""Top-1 and top-5 accuracy of any classifier over an image data set.

A classifier is a `predict` callable from a float32 NCHW batch to logits (N x classes),
so eager PyTorch models, fake-quant models and lowered artifacts run in their own
runtimes are all measured by the same counting code.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from lowering.data.dataset import DatasetError, ImageDataset

Predict = Callable[[np.ndarray], np.ndarray]
TOP_K = 5


@dataclass(frozen=True)
class Accuracy:
    """Fractions (0..1) of images whose label is the top prediction / among the top 5
    (among all classes when the classifier has fewer than 5). `skipped` counts
    undecodable images left out of `num_images`. `image_ids` and `top1_hits` say, image
    by image, which ones the top prediction got right."""

    top1: float
    top5: float
    num_images: int
    skipped: int = 0
    image_ids: tuple[str, ...] = ()
    top1_hits: tuple[bool, ...] = ()


def eager_predictor(model: torch.nn.Module) -> Predict:
    """`model` as a predict callable: eval mode, no gradients, numpy in and out."""
    model.eval()

    def predict(images: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return model(torch.from_numpy(images)).numpy()

    return predict


def measure_accuracy(predict: Predict, dataset: ImageDataset, batch_size: int = 64) -> Accuracy:
    """Run `predict` over every batch of `dataset` and count top-1 and top-5 hits."""
    top5 = seen = 0
    hits: list[bool] = []
    for images, labels in dataset.batches(batch_size):
        logits = np.asarray(predict(images))
        if logits.ndim != 2 or logits.shape[0] != len(labels):
            raise DatasetError(
                f"the classifier returned logits of shape {logits.shape} for {len(labels)} images; "
                "expected (images, classes)"
            )
        k = min(TOP_K, logits.shape[1])
        best = np.argsort(-logits, axis=1, kind="stable")[:, :k]
        hits += (best[:, 0] == labels).tolist()
        top5 += int((best == labels[:, None]).any(axis=1).sum())
        seen += len(labels)
    if seen == 0:
        raise DatasetError(f"no image of {dataset.description} could be evaluated")
    return Accuracy(sum(hits) / seen, top5 / seen, seen, len(dataset.skipped), tuple(dataset.image_ids()), tuple(hits))
