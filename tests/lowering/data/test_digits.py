import numpy as np
import pytest

from lowering.data import DatasetError, load_digits
from lowering.data.dataset import choose
from lowering.data.digits import split_indices, upscale
from lowering.models import Preprocessing

HALF = Preprocessing(mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))


def test_splits_partition_all_1797_images_with_every_class_in_proportion():
    train, val = load_digits("train", 16, HALF), load_digits("val", 16, HALF)
    assert len(train) + len(val) == 1797
    assert train.num_classes == val.num_classes == 10
    assert set(np.unique(val.labels)) == set(range(10))
    labels = np.concatenate([train.labels, val.labels])
    for label in range(10):
        assert (val.labels == label).sum() == round(0.2 * (labels == label).sum())


def test_split_is_fixed_by_the_seed():
    labels = np.repeat(np.arange(10), 20)
    first, again, other = split_indices(labels, 0), split_indices(labels, 0), split_indices(labels, 1)
    np.testing.assert_array_equal(first["val"], again["val"])
    assert not np.array_equal(first["val"], other["val"])
    assert not set(first["val"]) & set(first["train"])
    np.testing.assert_array_equal(load_digits("val", 8, HALF).inputs(), load_digits("val", 8, HALF).inputs())


def test_images_are_rgb_normalized_and_described():
    val = load_digits("val", 32, HALF, seed=0)
    inputs = val.inputs()
    assert inputs.shape == (len(val), 3, 32, 32) and inputs.dtype == np.float32
    assert val.labels.dtype == np.int64
    assert inputs.min() == pytest.approx(-1.0) and inputs.max() <= 1.0
    np.testing.assert_array_equal(inputs[:, 0], inputs[:, 2])
    assert val.description == f"sklearn-digits(split=val, size={len(val)}, seed=0, img_size=32)"


def test_upscale_keeps_a_constant_image_constant_and_corners_close():
    grey = np.zeros((1, 8, 8))
    grey[0, 0, 0] = 1.0
    big = upscale(grey, 32)
    assert big.shape == (1, 3, 32, 32)
    assert big[0, 0, 0, 0] == pytest.approx(1.0) and big[0, 0, -1, -1] == 0.0
    np.testing.assert_allclose(upscale(np.full((2, 8, 8), 0.25), 24), 0.25)


def test_unknown_split_is_named():
    with pytest.raises(DatasetError, match="'test'"):
        load_digits("test", 8, HALF)


def test_a_subset_transforms_the_same_images_as_the_whole_split():
    val = load_digits("val", 24, HALF, seed=0)
    subset = val.take(10, seed=3)
    np.testing.assert_array_equal(subset.inputs(), val.inputs()[choose(len(val), 10, 3)])
    batches = np.concatenate([images for images, _ in subset.batches(4)])
    np.testing.assert_array_equal(batches, subset.inputs())
