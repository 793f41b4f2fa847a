"""One way to name a data set on the command line or in a config: "digits" or a folder."""

from __future__ import annotations

from pathlib import Path

from lowering.data.dataset import ImageDataset
from lowering.data.digits import load_digits
from lowering.data.image_folder import ImageFolder
from lowering.models import Preprocessing

EMBEDDED = "digits"


def open_dataset(
    source: str | Path,
    preprocessing: Preprocessing,
    img_size: int,
    split: str = "val",
    seed: int = 0,
    skip_bad: bool = False,
) -> ImageDataset:
    """The embedded digits' `split` (source "digits", split fixed by `seed`) or the image
    folder at `source` (all of it; `split`, `seed` do not apply), ready for a model
    with this preprocessing and input size."""
    if str(source) == EMBEDDED:
        return load_digits(split, img_size, preprocessing, seed)
    return ImageFolder.scan(source, preprocessing, img_size, skip_bad)
