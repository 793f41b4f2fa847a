"""Image data for evaluation, calibration and the demo's training.

    eval_transform(image, preprocessing, img_size) -> float32 CHW   (timm's eval transform)
    load_digits(split, img_size, preprocessing, seed) -> ArrayDataset  (embedded default)
    ImageFolder.scan(root, preprocessing, img_size, skip_bad) -> ImageFolder
    open_dataset(source, preprocessing, img_size, split, seed) -> "digits" or a folder
    calibration_set(spec, source, num_images, seed) -> (images tensor, description)
    verification_images(spec, source, num_images) -> images tensor (val split) or None

Every data set yields (images float32 NCHW, labels int64) batches and carries a
description string (name, split, size, seed) for manifests and accuracy records.
"""

from lowering.data.calibration import DEFAULT_NUM_IMAGES, calibration_set, verification_images
from lowering.data.dataset import ArrayDataset, DatasetError, ImageDataset
from lowering.data.digits import load_digits
from lowering.data.image_folder import ImageFolder
from lowering.data.preprocess import PreprocessingError, eval_transform
from lowering.data.sources import EMBEDDED, open_dataset

__all__ = [
    "ArrayDataset",
    "DEFAULT_NUM_IMAGES",
    "DatasetError",
    "EMBEDDED",
    "ImageDataset",
    "ImageFolder",
    "PreprocessingError",
    "calibration_set",
    "verification_images",
    "eval_transform",
    "load_digits",
    "open_dataset",
]
