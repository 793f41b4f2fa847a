"""What every image data set offers: labelled batches of model inputs and a description.

The description names the data set, its split, its size and the seed that chose it; it
goes into manifests, accuracy records and training-cache keys, so equal descriptions
mean the same source images (normalized as the model at hand says).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable, Iterator, Protocol

import numpy as np

from vitdeploy.errors import VitdeployError


class DatasetError(VitdeployError):
    """A data set cannot be read: a missing or empty folder, or an undecodable image."""


def describe(name: str, split: str, size: int, seed: int | None, **details) -> str:
    """The description string: `name(split=..., size=..., seed=..., key=value...)`."""
    fields = {"split": split, "size": size, "seed": seed, **details}
    return f"{name}(" + ", ".join(f"{key}={value}" for key, value in fields.items()) + ")"


def subset_description(description: str, count: int, seed: int) -> str:
    """The description of `count` images chosen with `seed` from the described set."""
    return f"{description}.take(size={count}, seed={seed})"


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

    def image_ids(self) -> list[str]:
        """The ids of the images the last full iteration of `batches` yielded, in order:
        stable names of the images (a file's path below the folder, an index into the
        data set it came from), so that results on the same images can be paired."""
        ...

    def take(self, count: int, seed: int = 0) -> "ImageDataset":
        """A subset of `count` images chosen with `seed` (the description says so)."""
        ...


@dataclass(frozen=True)
class ArrayDataset:
    """A data set held in memory as arrays.

    `images` are stored as given; when `transform` is set, it turns a slice of them into
    model inputs, so that choosing a subset or reading a batch transforms only the
    images used (digits upscaled to 224 px would otherwise take gigabytes). `ids` name
    the images (default: their positions).
    """

    images: np.ndarray
    labels: np.ndarray
    description: str
    num_classes: int
    transform: Callable[[np.ndarray], np.ndarray] | None = None
    ids: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if self.ids is not None and len(self.ids) != len(self.labels):
            raise DatasetError(f"{len(self.ids)} image ids for {len(self.labels)} images")

    @property
    def skipped(self) -> list:
        return []

    def __len__(self) -> int:
        return len(self.labels)

    def inputs(self, start: int = 0, stop: int | None = None) -> np.ndarray:
        """Model inputs of images[start:stop]."""
        chunk = self.images[start:stop]
        return chunk if self.transform is None else self.transform(chunk)

    def batches(self, batch_size: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        for start in range(0, len(self), batch_size):
            yield self.inputs(start, start + batch_size), self.labels[start:start + batch_size]

    def image_ids(self) -> list[str]:
        return list(self.ids) if self.ids is not None else [str(i) for i in range(len(self))]

    def take(self, count: int, seed: int = 0) -> "ArrayDataset":
        indices = choose(len(self), count, seed)
        ids = self.image_ids()
        return replace(
            self,
            images=self.images[indices],
            labels=self.labels[indices],
            description=subset_description(self.description, count, seed),
            ids=tuple(ids[i] for i in indices),
        )
