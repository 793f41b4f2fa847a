"""A model's metric (`vitdeploy.metrics`) over an image data set: top-1 and top-5 of a
classifier, or the mean absolute error of a regression model.

A model is a `predict` callable from a float32 NCHW batch to its outputs (N x classes,
or N x 1 for a regression model), so eager PyTorch models, fake-quant models and
lowered artifacts run in their own runtimes are all measured by the same code.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from lowering.data.dataset import DatasetError, ImageDataset
from vitdeploy.metrics import MAE, TOP1, Metric

Predict = Callable[[np.ndarray], np.ndarray]
TOP_K = 5


@dataclass(frozen=True)
class Accuracy:
    """`value` is the mean of the per-image `scores` (`metric`'s, as fractions for
    top-1); `top5` is a classifier's fraction of labels among its top 5 predictions
    (among all classes when it has fewer), None for a regression model. `skipped`
    counts undecodable images left out of `num_images`; `image_ids` name the images
    `scores` are in the order of."""

    metric: Metric
    value: float
    num_images: int
    skipped: int = 0
    image_ids: tuple[str, ...] = ()
    scores: tuple[float, ...] = ()
    top5: float | None = None

    @property
    def top1(self) -> float:
        """A classifier's top-1 (the fraction of top predictions that are the label)."""
        if self.metric is not TOP1:
            raise ValueError(f"a {self.metric.title} measurement has no top-1")
        return self.value


def eager_predictor(model: torch.nn.Module) -> Predict:
    """`model` as a predict callable: eval mode, no gradients, numpy in and out."""
    model.eval()

    def predict(images: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return model(torch.from_numpy(images)).numpy()

    return predict


def measure_accuracy(predict: Predict, dataset: ImageDataset, batch_size: int = 64, metric: Metric = TOP1) -> Accuracy:
    """Run `predict` over every batch of `dataset` and score every image by `metric`."""
    top5 = 0
    scores: list[float] = []
    for images, labels in dataset.batches(batch_size):
        outputs = np.asarray(predict(images))
        if outputs.ndim != 2 or outputs.shape[0] != len(labels) or (metric is MAE and outputs.shape[1] != 1):
            expected = "(images, 1)" if metric is MAE else "(images, classes)"
            raise DatasetError(f"the model returned outputs of shape {outputs.shape} for {len(labels)} images; "
                               f"expected {expected}")
        if metric is MAE:
            scores += np.abs(outputs[:, 0].astype(np.float64) - labels).tolist()
            continue
        k = min(TOP_K, outputs.shape[1])
        best = np.argsort(-outputs, axis=1, kind="stable")[:, :k]
        scores += (best[:, 0] == labels).astype(float).tolist()
        top5 += int((best == labels[:, None]).any(axis=1).sum())
    if not scores:
        raise DatasetError(f"no image of {dataset.description} could be evaluated")
    seen = len(scores)
    return Accuracy(metric, float(np.mean(scores)), seen, len(dataset.skipped), tuple(dataset.image_ids()),
                    tuple(scores), None if metric is MAE else top5 / seen)
