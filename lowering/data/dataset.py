"""What every image data set offers: labelled batches of model inputs and a description.

The description names the data set, its split, its size and the seed that chose it; it
goes into manifests, accuracy records and training-cache keys, so equal descriptions
mean the same source images (normalized as the model at hand says).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, Protocol

import numpy as np

from lowering.errors import VitdeployError


class DatasetError(VitdeployError):
    """A data set cannot be read: a missing or empty folder, or an undecodable image."""


def describe(name: str, split: str, size: int, seed: int | None, **details) -> str:
    """The description string: `name(split=..., size=..., seed=..., key=value...)`."""
    fields = {"split": split, "size": size, "seed": seed, **details}
    return f"{name}(" + ", ".join(f"{key}={value}" for key, value in fields.items()) + ")"


def choose(size: int, count: int, seed: int) -> np.ndarray:
    """`count` distinct indices of `range(size)` chosen with `seed`, in ascending order."""
    if not 0 < count <= size:
        raise DatasetError(f"cannot take {count} images from a data set of {size}")
    return np.sort(np.random.default_rng(seed).choice(size, size=count, replace=False))


class ImageDataset(Protocol):
    """Labelled model inputs: float32 NCHW images (normalized) and int64 labels."""

    description: str
    num_classes: int
    skipped: list  # files skipped as undecodable during the last iteration

    def __len__(self) -> int: ...

    def batches(self, batch_size: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """(images, labels) in a fixed order; the last batch may be smaller."""
        ...

    def take(self, count: int, seed: int = 0) -> "ImageDataset":
        """A subset of `count` images chosen with `seed` (the description says so)."""
        ...


@dataclass(frozen=True)
class ArrayDataset:
    """A data set held in memory as arrays."""

    images: np.ndarray
    labels: np.ndarray
    description: str
    num_classes: int

    @property
    def skipped(self) -> list:
        return []

    def __len__(self) -> int:
        return len(self.labels)

    def batches(self, batch_size: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        for start in range(0, len(self), batch_size):
            yield self.images[start:start + batch_size], self.labels[start:start + batch_size]

    def take(self, count: int, seed: int = 0) -> "ArrayDataset":
        indices = choose(len(self), count, seed)
        return ArrayDataset(
            self.images[indices],
            self.labels[indices],
            f"{self.description}.take(size={count}, seed={seed})",
            self.num_classes,
        )
