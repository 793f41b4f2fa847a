"""A transformers image classifier saved with `save_pretrained`, as a model input."""

from __future__ import annotations

import hashlib
import inspect
import json
from pathlib import Path

import torch
from torch import nn

from lowering.data.preprocess import INTERPOLATIONS
from lowering.models.spec import HALF, Preprocessing
from lowering.sources.model_input import ModelInput, ModelSourceError, single_output
from vitdeploy.errors import first_line
from vitdeploy.manifest import artifact_sha256

CONFIG = "config.json"
PREPROCESSOR_CONFIG = "preprocessor_config.json"
# in transformers' order of preference: a single file, else an index naming its shards
WEIGHTS = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin", "pytorch_model.bin.index.json")
DEFAULT_PREPROCESSING = Preprocessing(mean=HALF, std=HALF, crop_pct=1.0, interpolation="bilinear")
_RESAMPLING = {int(resample): name for name, resample in INTERPOLATIONS.items()}


class HuggingFaceClassifier(nn.Module):
    """A transformers image classifier as one image tensor in, its logits out.

    `model` is the transformers model, so module paths read like its own
    (`model.vit.layers.0.attention`). For a model with a distillation head
    (DeiT/LeViT "WithTeacher") the logits are the average of both heads, as transformers
    returns them. `interpolate_pos_encoding` is passed when the input size differs from
    the model's `image_size`; `flip_channels` turns RGB into the BGR that some models
    (MobileViT) take.
    """

    def __init__(self, model: nn.Module, interpolate_pos_encoding: bool = False, flip_channels: bool = False):
        super().__init__()
        self.model = model
        self.interpolate_pos_encoding = interpolate_pos_encoding
        self.flip_channels = flip_channels

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        if self.flip_channels:
            pixel_values = pixel_values.flip(1)
        options = {"interpolate_pos_encoding": True} if self.interpolate_pos_encoding else {}
        return single_output(self.model(pixel_values=pixel_values, **options))


def open_huggingface(folder: Path, img_size: int | None = None) -> ModelInput:
    """The image classifier in a transformers folder written by `save_pretrained`.

    The folder holds `config.json`, the weights (`model.safetensors`, `pytorch_model.bin`
    or a sharded index with its shards) and optionally `preprocessor_config.json`. Any
    architecture `AutoModelForImageClassification` knows loads (ViT, DeiT with or without
    teacher, BEiT, Swin, Dinov2, MobileViT, LeViT, ...), from local files only, in eval
    mode, with eager attention, wrapped in a `HuggingFaceClassifier`.

    The input is 1 x num_channels x H x W: `img_size` square if given, else the
    preprocessor's output size (its crop size when it centre-crops), else the config's
    `image_size`. The preprocessing is the preprocessor's mean, std (folded with its
    rescale factor) and resampling, and crop_pct its `crop_pct`, or crop size over resize
    size when it centre-crops, else 1.0 (it resizes straight to its size). Without a
    preprocessor config the family's defaults are unknown: mean and std 0.5, bilinear,
    crop_pct 1.0 (transformers' ViT defaults). `source_sha256` covers config.json, the
    weights and preprocessor_config.json, names and bytes.

    Raises ModelSourceError, naming the folder and the fix, when transformers is not
    installed, a file is missing or unreadable, the architecture has no
    image-classification head, or the model does not take the input size.
    """
    folder = Path(folder)
    try:
        import transformers  # noqa: F401
    except ImportError:
        raise ModelSourceError(
            f"{folder} is a Hugging Face transformers folder, but transformers is not installed: "
            "pip install 'vitdeploy[hf]' (or pip install 'transformers==5.24.*')"
        ) from None
    if not (folder / CONFIG).is_file():
        raise ModelSourceError(
            f"{folder} has no {CONFIG}: give the folder that save_pretrained wrote (config.json and model.safetensors)"
        )
    weights = _weight_files(folder)
    config = _read_config(folder)
    model = _load_model(folder, config)
    preprocessing, processor_size, flip_channels = _read_preprocessor(folder)
    trained_size = _pair(getattr(config, "image_size", None))
    height, width = (img_size, img_size) if img_size else processor_size or trained_size or (None, None)
    if not height:
        raise ModelSourceError(f"cannot tell the input size of the model in {folder}: give an image size")
    example = torch.zeros(1, getattr(config, "num_channels", 3), height, width)
    interpolate = bool(trained_size) and (height, width) != trained_size and (
        "interpolate_pos_encoding" in inspect.signature(model.forward).parameters
    )
    classifier = HuggingFaceClassifier(model, interpolate, flip_channels).eval()
    _check_runs(classifier, example, folder)
    files = [folder / CONFIG, *weights]
    if (folder / PREPROCESSOR_CONFIG).is_file():
        files.append(folder / PREPROCESSOR_CONFIG)
    return ModelInput(
        folder.resolve().name, classifier, example, preprocessing, "huggingface", str(folder), _files_sha256(files)
    )


def _weight_files(folder: Path) -> list[Path]:
    for name in WEIGHTS:
        path = folder / name
        if not path.is_file():
            continue
        if not name.endswith(".index.json"):
            return [path]
        try:
            shards = sorted(set(json.loads(path.read_text())["weight_map"].values()))
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ModelSourceError(
                f"the weights index {path} is not readable ({exc}): save the model again with save_pretrained"
            ) from exc
        return [path, *(folder / shard for shard in shards)]
    raise ModelSourceError(
        f"{folder} has a {CONFIG} but no weights ({', '.join(WEIGHTS)}): save the model with "
        "model.save_pretrained(folder), or copy its weights file next to config.json"
    )


def _read_config(folder: Path):
    from transformers import AutoConfig
    from transformers.models.auto.modeling_auto import MODEL_FOR_IMAGE_CLASSIFICATION_MAPPING_NAMES

    try:
        config = AutoConfig.from_pretrained(folder, local_files_only=True)
    except (OSError, ValueError, KeyError) as exc:
        raise ModelSourceError(
            f"{folder / CONFIG} is not a transformers config ({first_line(exc)}): "
            "save the model again with save_pretrained"
        ) from exc
    heads = MODEL_FOR_IMAGE_CLASSIFICATION_MAPPING_NAMES.get(config.model_type, ())
    heads = (heads,) if isinstance(heads, str) else heads
    architectures = config.architectures or []
    if not heads or (architectures and not set(architectures) & set(heads)):
        named = ", ".join(architectures) or config.model_type
        classifiers = ", ".join(heads) or "a ...ForImageClassification model"
        raise ModelSourceError(
            f"this folder's architecture {named} has no image-classification head, so {folder} cannot be "
            f"lowered as a classifier: save {classifiers} (with a trained head) with save_pretrained"
        )
    return config


def _load_model(folder: Path, config) -> nn.Module:
    from transformers import AutoModelForImageClassification

    try:
        # Under torch.export transformers always materializes the (all-true) attention mask;
        # SDPA with a mask decomposes into a guard against fully masked rows (any, eq,
        # logical_not, where) in every layer, which XNNPACK does not take. Eager attention is
        # matmul, softmax, matmul plus one mask addition.
        model, info = AutoModelForImageClassification.from_pretrained(
            folder, config=config, local_files_only=True, attn_implementation="eager", output_loading_info=True
        )
    except Exception as exc:  # safetensors, torch.load and transformers raise assorted types on bad files
        raise ModelSourceError(
            f"the weights in {folder} could not be loaded ({first_line(exc)}): if a file is corrupt or "
            "truncated, copy it or save the model again with save_pretrained"
        ) from exc
    missing = sorted(info["missing_keys"]) + [str(key) for key in info["mismatched_keys"]]
    if missing:
        raise ModelSourceError(
            f"the weights in {folder} do not fit {type(model).__name__}: {len(missing)} parameter(s) missing or "
            f"of another shape ({', '.join(missing[:8])}); save the model again with save_pretrained"
        )
    return model.eval()


def _read_preprocessor(folder: Path) -> tuple[Preprocessing, tuple[int, int] | None, bool]:
    """The preprocessing, the processor's output size (None if it has none) and whether it
    flips RGB to BGR. The processor class is instantiated rather than the JSON read, as
    its class defaults fill in what the file leaves out (MobileViT's saves an
    `image_mean` it does not apply)."""
    from transformers import AutoImageProcessor

    if not (folder / PREPROCESSOR_CONFIG).is_file():
        return DEFAULT_PREPROCESSING, None, False
    try:
        processor = AutoImageProcessor.from_pretrained(folder, local_files_only=True)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ModelSourceError(
            f"{folder / PREPROCESSOR_CONFIG} is not a readable image processor config ({first_line(exc)}): "
            "save it again with the image processor's save_pretrained, or delete it to use mean/std 0.5"
        ) from exc
    resample = getattr(processor, "resample", None)
    interpolation = "bilinear" if resample is None else _RESAMPLING.get(int(resample))
    if interpolation is None:
        raise ModelSourceError(
            f"{folder / PREPROCESSOR_CONFIG} resamples with PIL filter {resample}, which vitdeploy cannot "
            f"apply: use one of {', '.join(f'{value} ({name})' for value, name in sorted(_RESAMPLING.items()))}"
        )
    scale = 255 * (processor.rescale_factor if getattr(processor, "do_rescale", False) else 1.0)
    if getattr(processor, "do_normalize", False):
        mean, std = tuple(processor.image_mean), tuple(processor.image_std)
    else:
        mean, std = (0.0, 0.0, 0.0), (1.0, 1.0, 1.0)
    resized = _size(getattr(processor, "size", None))
    crop = _size(getattr(processor, "crop_size", None))
    crop_pct = getattr(processor, "crop_pct", None)
    if crop_pct:
        size = resized
    elif getattr(processor, "do_center_crop", False) and crop and resized:
        size, crop_pct = crop, crop[0] / resized[0]
    else:
        size, crop_pct = resized, 1.0
    preprocessing = Preprocessing(
        mean=tuple(m / scale for m in mean), std=tuple(s / scale for s in std),
        crop_pct=float(crop_pct), interpolation=interpolation,
    )
    return preprocessing, size, bool(getattr(processor, "do_flip_channel_order", False))


def _size(size) -> tuple[int, int] | None:
    """(height, width) of a processor's size: {"height", "width"} or {"shortest_edge"}."""
    if size is None:
        return None
    if isinstance(size, int):
        return size, size
    height, width, edge = (
        size.get(key) if isinstance(size, dict) else getattr(size, key, None) for key in ("height", "width", "shortest_edge")
    )
    if height and width:
        return height, width
    return (edge, edge) if edge else None


def _pair(size) -> tuple[int, int] | None:
    """(height, width) of a config's `image_size`: an int or a pair."""
    if isinstance(size, int):
        return size, size
    if isinstance(size, (list, tuple)) and len(size) == 2:
        return tuple(size)
    return None


def _check_runs(classifier: HuggingFaceClassifier, example: torch.Tensor, folder: Path) -> None:
    try:
        with torch.no_grad():
            classifier(example)
    except ModelSourceError:
        raise
    except Exception as exc:  # a model refuses a size with whatever its code raises
        raise ModelSourceError(
            f"the model in {folder} does not take a {'x'.join(map(str, example.shape))} input "
            f"({first_line(exc)}): give the image size it was trained at"
        ) from exc


def _files_sha256(files: list[Path]) -> str:
    digest = hashlib.sha256()
    for file in sorted(files):
        digest.update(f"{file.name}\0{artifact_sha256(file)}\0".encode())
    return digest.hexdigest()
