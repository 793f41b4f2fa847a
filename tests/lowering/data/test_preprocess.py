import numpy as np
import pytest
from PIL import Image

from lowering.data import PreprocessingError, eval_transform
from lowering.data.preprocess import center_crop_box, resize_size
from lowering.models import Preprocessing

MEAN = (0.1, 0.2, 0.3)
STD = (0.5, 0.25, 0.125)


def _image(height: int, width: int) -> tuple[Image.Image, np.ndarray]:
    pixels = (np.arange(height * width * 3, dtype=np.uint8) * 7).reshape(height, width, 3)
    return Image.fromarray(pixels, "RGB"), pixels


def _by_hand(pixels: np.ndarray) -> np.ndarray:
    chw = pixels.astype(np.float32).transpose(2, 0, 1) / 255.0
    return (chw - np.float32(MEAN).reshape(3, 1, 1)) / np.float32(STD).reshape(3, 1, 1)


def test_no_resize_needed_takes_the_centre_crop_and_normalizes():
    image, pixels = _image(4, 6)  # short side 4 = floor(2 / 0.5): no resize
    out = eval_transform(image, Preprocessing(MEAN, STD, crop_pct=0.5, interpolation="bicubic"), 2)
    # centre 2 x 2 of a 6 x 4 image: left round(4 / 2) = 2, top round(2 / 2) = 1
    np.testing.assert_allclose(out, _by_hand(pixels[1:3, 2:4]), rtol=0, atol=1e-6)
    assert out.dtype == np.float32 and out.shape == (3, 2, 2)


def test_nearest_resize_of_the_short_side_then_centre_crop():
    image, pixels = _image(8, 4)
    out = eval_transform(image, Preprocessing(MEAN, STD, crop_pct=1.0, interpolation="nearest"), 2)
    # short side 4 -> 2 (the 8-pixel side -> 4): nearest keeps source pixels 1, 3 (and 1, 3, 5, 7);
    # the centre 2 rows of those 4 are rows 1 and 2, i.e. source rows 3 and 5.
    expected = pixels[[3, 5]][:, [1, 3]]
    np.testing.assert_allclose(out, _by_hand(expected), rtol=0, atol=1e-6)


def test_resize_size_follows_timm_floor_and_aspect_ratio():
    assert resize_size(500, 375, 224, 0.875) == (341, 256)
    assert resize_size(375, 500, 224, 0.875) == (256, 341)
    assert resize_size(300, 300, 224, 0.9) == (248, 248)


def test_centre_crop_rounds_half_to_even_like_torchvision():
    assert center_crop_box(7, 5, 2) == (2, 2, 4, 4)  # round(2.5) = 2, round(1.5) = 2
    assert center_crop_box(9, 9, 4) == (2, 2, 6, 6)  # round(2.5) = 2


def test_bad_settings_are_named():
    image, _ = _image(4, 4)
    with pytest.raises(PreprocessingError, match="interpolation 'cubic'"):
        eval_transform(image, Preprocessing(interpolation="cubic"), 2)
    with pytest.raises(PreprocessingError, match="crop_pct"):
        eval_transform(image, Preprocessing(crop_pct=1.2), 2)
    with pytest.raises(PreprocessingError, match="mode L"):
        eval_transform(image.convert("L"), Preprocessing(), 2)
