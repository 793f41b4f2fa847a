import numpy as np
import pytest
from PIL import Image

from lowering.data import DatasetError, ImageFolder, open_dataset
from lowering.data.image_folder import decode_rgb
from lowering.models import Preprocessing

PRE = Preprocessing(mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5), crop_pct=0.875, interpolation="bilinear")


@pytest.fixture
def folder(tmp_path):
    """dog/ holds a grey JPEG and an RGBA PNG, cat/ an RGB PNG and a CMYK JPEG."""
    for name in ("dog", "cat"):
        (tmp_path / name).mkdir()
    Image.new("RGB", (20, 12), (255, 0, 0)).save(tmp_path / "cat" / "a.png")
    Image.new("CMYK", (12, 20), (0, 255, 0, 0)).save(tmp_path / "cat" / "b.JPEG")
    Image.new("L", (16, 16), 128).save(tmp_path / "dog" / "c.jpeg")
    Image.new("RGBA", (16, 16), (0, 0, 255, 100)).save(tmp_path / "dog" / "d.png")
    (tmp_path / "dog" / "notes.txt").write_text("not an image")
    return tmp_path


def _all(dataset, batch_size=3):
    batches = list(dataset.batches(batch_size))
    return np.concatenate([b[0] for b in batches]), np.concatenate([b[1] for b in batches])


def test_classes_sorted_by_folder_name_and_every_mode_becomes_rgb(folder):
    dataset = ImageFolder.scan(folder, PRE, img_size=8)
    assert dataset.classes == ["cat", "dog"] and dataset.num_classes == 2
    assert len(dataset) == 4
    images, labels = _all(dataset)
    assert images.shape == (4, 3, 8, 8) and images.dtype == np.float32
    assert labels.tolist() == [0, 0, 1, 1] and labels.dtype == np.int64
    np.testing.assert_allclose(images[0, :, 4, 4], [1.0, -1.0, -1.0], atol=1e-6)  # pure red
    np.testing.assert_allclose(images[2, :, 4, 4], [128 / 255 * 2 - 1] * 3, atol=0.02)  # grey JPEG
    np.testing.assert_allclose(images[3, :, 4, 4], [-1.0, -1.0, 1.0], atol=1e-6)  # alpha dropped


def test_description_names_the_folder_and_its_size(folder):
    dataset = ImageFolder.scan(folder, PRE, img_size=8)
    assert str(folder.resolve()) in dataset.description and "size=4" in dataset.description
    subset = dataset.take(2, seed=3)
    assert len(subset) == 2 and "take(size=2, seed=3)" in subset.description
    assert [s.path for s in subset.samples] == [s.path for s in dataset.take(2, seed=3).samples]


def test_corrupt_image_is_named_or_skipped_and_counted(folder):
    bad = folder / "dog" / "broken.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 this is not a jpeg")
    with pytest.raises(DatasetError, match="broken.jpg"):
        _all(ImageFolder.scan(folder, PRE, img_size=8))
    lenient = ImageFolder.scan(folder, PRE, img_size=8, skip_bad=True)
    images, _ = _all(lenient)
    assert len(images) == 4 and lenient.skipped == [bad]


def test_truncated_jpeg_is_an_error(tmp_path):
    path = tmp_path / "t.jpg"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(path)
    path.write_bytes(path.read_bytes()[:300])
    with pytest.raises(DatasetError, match="t.jpg"):
        decode_rgb(path)


def test_missing_and_empty_folders_are_clear_errors(tmp_path):
    with pytest.raises(DatasetError, match="not found"):
        ImageFolder.scan(tmp_path / "nowhere", PRE, 8)
    with pytest.raises(DatasetError, match="no class folders"):
        ImageFolder.scan(tmp_path, PRE, 8)
    (tmp_path / "cat").mkdir()
    (tmp_path / "cat" / "readme.md").write_text("x")
    with pytest.raises(DatasetError, match="no images"):
        ImageFolder.scan(tmp_path, PRE, 8)


def test_open_dataset_picks_folder_or_digits(folder):
    assert isinstance(open_dataset(folder, PRE, 8), ImageFolder)
    assert "sklearn-digits(split=val" in open_dataset("digits", PRE, 8).description
