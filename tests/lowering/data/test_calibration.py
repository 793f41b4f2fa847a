import torch
from PIL import Image

from lowering.data import calibration_set
from lowering.models import resolve_spec

SPEC = resolve_spec("vit_tiny", img_size=32, num_classes=10)


def test_embedded_calibration_set_is_fixed_by_seed_and_drawn_from_train():
    images, description = calibration_set(SPEC)
    again, _ = calibration_set(SPEC)
    other, _ = calibration_set(SPEC, seed=1)
    assert images.shape == (32, 3, 32, 32) and images.dtype == torch.float32
    assert torch.equal(images, again) and not torch.equal(images, other)
    assert "split=train" in description and "take(size=32, seed=0)" in description


def test_calibration_from_an_image_folder(tmp_path):
    for label, colour in enumerate(((255, 0, 0), (0, 255, 0))):
        (tmp_path / str(label)).mkdir()
        for i in range(3):
            Image.new("RGB", (40, 36), colour).save(tmp_path / str(label) / f"{i}.png")
    images, description = calibration_set(SPEC, tmp_path, num_images=4, seed=2)
    assert images.shape == (4, 3, 32, 32)
    assert str(tmp_path.resolve()) in description and "take(size=4, seed=2)" in description
