"""timm's evaluation transform, with Pillow and numpy.

For a square input of `img_size` and crop fraction `crop_pct`, timm resizes the short
side of the image to `floor(img_size / crop_pct)` (the long side keeps the aspect ratio,
truncated to an integer), takes the centre `img_size` x `img_size` crop, scales the
8-bit values to [0, 1] and normalizes each channel with the model's mean and std.
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image

from vitdeploy.errors import VitdeployError
from lowering.models import Preprocessing

INTERPOLATIONS = {
    "nearest": Image.Resampling.NEAREST,
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
    "lanczos": Image.Resampling.LANCZOS,
    "box": Image.Resampling.BOX,
    "hamming": Image.Resampling.HAMMING,
}


class PreprocessingError(VitdeployError):
    """The preprocessing settings cannot be applied (unknown interpolation, bad crop)."""


def resize_size(width: int, height: int, img_size: int, crop_pct: float) -> tuple[int, int]:
    """The (width, height) the image is resized to before the centre crop."""
    if not 0 < crop_pct <= 1:
        raise PreprocessingError(
            f"crop_pct must be in (0, 1], got {crop_pct}: the centre crop would need padding"
        )
    short = math.floor(img_size / crop_pct)
    if width <= height:
        return short, int(short * height / width)
    return int(short * width / height), short


def center_crop_box(width: int, height: int, size: int) -> tuple[int, int, int, int]:
    """The (left, top, right, bottom) box of the centre `size` x `size` crop."""
    left = int(round((width - size) / 2.0))
    top = int(round((height - size) / 2.0))
    return left, top, left + size, top + size


def normalize(pixels: np.ndarray, preprocessing: Preprocessing) -> np.ndarray:
    """Normalize float CHW (or NCHW) values in [0, 1] per channel: (x - mean) / std."""
    mean = np.asarray(preprocessing.mean, dtype=np.float32).reshape(3, 1, 1)
    std = np.asarray(preprocessing.std, dtype=np.float32).reshape(3, 1, 1)
    return ((pixels.astype(np.float32) - mean) / std).astype(np.float32)


def eval_transform(image: Image.Image, preprocessing: Preprocessing, img_size: int) -> np.ndarray:
    """An RGB image as the model's float32 CHW input of `img_size` x `img_size`."""
    try:
        resample = INTERPOLATIONS[preprocessing.interpolation]
    except KeyError:
        raise PreprocessingError(
            f"unknown interpolation {preprocessing.interpolation!r}; "
            f"known: {', '.join(INTERPOLATIONS)}"
        ) from None
    if image.mode != "RGB":
        raise PreprocessingError(f"eval_transform needs an RGB image, got mode {image.mode}")
    resized = image.resize(resize_size(*image.size, img_size, preprocessing.crop_pct), resample)
    cropped = resized.crop(center_crop_box(*resized.size, img_size))
    pixels = np.asarray(cropped, dtype=np.float32).transpose(2, 0, 1) / 255.0
    return normalize(pixels, preprocessing)
