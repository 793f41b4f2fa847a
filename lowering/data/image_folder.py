"""An image folder in ImageNet's validation layout: `root/<class>/<image>`.

Classes are the sub-folders of `root`, sorted by name (label i is the i-th folder, as in
torchvision's and timm's `ImageFolder`); images are the files with an image extension
anywhere below a class folder, sorted by path. Pillow decodes each image, converts any
mode (grey, palette, RGBA, CMYK, 16-bit) to RGB and applies the model's evaluation
transform.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
from PIL import Image

from lowering.data.dataset import DatasetError, choose, describe, subset_description
from lowering.data.preprocess import eval_transform
from lowering.models import Preprocessing

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")
LAYOUT_HINT = "expected root/<class>/<image>.JPEG, one sub-folder per class"


@dataclass(frozen=True)
class Sample:
    path: Path
    label: int
    id: str  # the path below the folder, "class/image.JPEG"


def decode_rgb(path: Path) -> Image.Image:
    """The image at `path`, fully decoded, as RGB; a DatasetError naming the file if it cannot be."""
    try:
        with Image.open(path) as image:
            return image.convert("RGB")
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise DatasetError(f"cannot decode image {path}: {exc}") from None


class ImageFolder:
    """Labelled images of a class-per-folder tree, decoded lazily batch by batch.

    Build one with `ImageFolder.scan(root, ...)`. With `skip_bad`, undecodable files are
    skipped and listed in `skipped` (filled while iterating); otherwise the first one
    raises a DatasetError naming it.
    """

    def __init__(
        self,
        samples: list[Sample],
        classes: list[str],
        preprocessing: Preprocessing,
        img_size: int,
        description: str,
        skip_bad: bool = False,
    ):
        self.samples = samples
        self.classes = classes
        self.preprocessing = preprocessing
        self.img_size = img_size
        self.description = description
        self.skip_bad = skip_bad
        self.skipped: list[Path] = []

    @classmethod
    def scan(
        cls, root: str | Path, preprocessing: Preprocessing, img_size: int, skip_bad: bool = False
    ) -> "ImageFolder":
        """Every image under `root`, to be preprocessed for a model of input `img_size`."""
        root = Path(root)
        classes = _class_folders(root)
        samples = _samples(root, classes)
        description = describe(f"imagefolder:{root.resolve()}", "all", len(samples), None)
        return cls(samples, classes, preprocessing, img_size, description, skip_bad)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def __len__(self) -> int:
        return len(self.samples)

    def batches(self, batch_size: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        self.skipped = []
        images, labels = [], []
        for sample in self.samples:
            try:
                rgb = decode_rgb(sample.path)
            except DatasetError:
                if not self.skip_bad:
                    raise
                self.skipped.append(sample.path)
                continue
            images.append(eval_transform(rgb, self.preprocessing, self.img_size))
            labels.append(sample.label)
            if len(images) == batch_size:
                yield np.stack(images), np.asarray(labels, dtype=np.int64)
                images, labels = [], []
        if images:
            yield np.stack(images), np.asarray(labels, dtype=np.int64)

    def image_ids(self) -> list[str]:
        skipped = set(self.skipped)
        return [sample.id for sample in self.samples if sample.path not in skipped]

    def take(self, count: int, seed: int = 0) -> "ImageFolder":
        subset = [self.samples[i] for i in choose(len(self), count, seed)]
        description = subset_description(self.description, count, seed)
        return ImageFolder(
            subset, self.classes, self.preprocessing, self.img_size, description, self.skip_bad
        )


def _class_folders(root: Path) -> list[str]:
    if not root.exists():
        raise DatasetError(f"image folder not found: {root} ({LAYOUT_HINT})")
    if not root.is_dir():
        raise DatasetError(f"{root} is not a folder ({LAYOUT_HINT})")
    classes = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise DatasetError(f"no class folders in {root} ({LAYOUT_HINT})")
    return classes


def _samples(root: Path, classes: list[str]) -> list[Sample]:
    samples = [
        Sample(path, label, path.relative_to(root).as_posix())
        for label, name in enumerate(classes)
        for path in sorted((root / name).rglob("*"))
        if path.suffix.lower() in IMAGE_EXTENSIONS and path.is_file() and not path.name.startswith(".")
    ]
    if not samples:
        raise DatasetError(
            f"no images in {root}: its class folders hold no files ending in "
            f"{', '.join(IMAGE_EXTENSIONS)} ({LAYOUT_HINT})"
        )
    return samples
