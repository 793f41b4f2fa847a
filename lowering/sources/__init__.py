"""Where models come from: whatever a user names becomes one `ModelInput`.

    open_model("deit_tiny", checkpoint="deit.pth", overrides={"depth": 6})   # the registry
    open_model("tiny_vit.pt2")                       # a program saved by torch.export.save
    open_model("path/to/hf-folder")                  # a transformers save_pretrained folder
    open_model("my_pkg.models:build")                # a factory returning an nn.Module
    open_model("timm:tiny_vit_5m_224")               # timm.create_model, where timm imports

Registry models, programs, Hugging Face folders and factories all go through the same
lowering, verification and measurement from here on.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import torch

from lowering.models.spec import Preprocessing
from lowering.sources.exported import SUFFIX as EXPORTED_SUFFIX
from lowering.sources.exported import open_exported_program
from lowering.sources.factory import TIMM_PREFIX, open_factory, open_timm
from lowering.sources.model_input import SOURCE_KINDS, ModelInput, ModelSourceError, single_output

__all__ = ["ModelInput", "ModelSourceError", "RANDOM_INIT_SEED", "SOURCE_KINDS", "open_model", "single_output",
           "source_kind_of"]

# Registry models without a checkpoint get random weights, the same ones every run.
RANDOM_INIT_SEED = 0


def source_kind_of(name: str) -> str:
    """Which kind of source `name` names (see SOURCE_KINDS), without reading it."""
    if name.endswith(EXPORTED_SUFFIX):
        return "exported-program"
    if Path(name).expanduser().is_dir():
        return "huggingface"
    if name.startswith(TIMM_PREFIX) or ":" in name:
        return "factory"
    return "registry"


def open_model(
    name: str,
    checkpoint: str | Path | None = None,
    overrides: dict | None = None,
    input_shape: tuple[int, ...] | None = None,
    img_size: int | None = None,
    mean: tuple[float, ...] | None = None,
    std: tuple[float, ...] | None = None,
) -> ModelInput:
    """The model `name` names, as a model input.

    `overrides` and `checkpoint` shape registry models (and `checkpoint` is loaded
    strictly into a factory's module); `img_size` sets a square input (registry models:
    their resolution); `input_shape` fixes the input of programs and factories; `mean`
    and `std` replace the preprocessing's normalization.
    """
    kind = source_kind_of(name)
    if overrides and kind != "registry":
        raise ModelSourceError(f"overrides apply to registry models; {name} is not one ({kind})")
    if kind != "registry" and img_size is not None:
        if input_shape is not None:
            raise ModelSourceError("give either --img-size or --input-shape, not both")
        input_shape = (1, 3, img_size, img_size)
    if kind == "registry":
        if input_shape is not None:
            raise ModelSourceError(f"{name} is a registry model: set its resolution with --img-size, not --input-shape")
        model = _registry_model(name, checkpoint, {**(overrides or {}), **({"img_size": img_size} if img_size else {})})
        source = ModelInput.from_registry_model(model, str(checkpoint) if checkpoint else f"random:seed={RANDOM_INIT_SEED}")
    elif kind == "exported-program":
        _no_checkpoint(name, kind, checkpoint)
        source = open_exported_program(name, Preprocessing(), input_shape)
    elif kind == "huggingface":
        _no_checkpoint(name, kind, checkpoint)
        from lowering.sources.huggingface import open_huggingface

        source = open_huggingface(Path(name).expanduser(), input_shape[-1] if input_shape else None)
    elif name.startswith(TIMM_PREFIX):
        source = open_timm(name[len(TIMM_PREFIX):], checkpoint, input_shape)
    else:
        source = open_factory(name, checkpoint, input_shape)
    return _normalized(source, mean, std)


def _registry_model(name: str, checkpoint, overrides: dict):
    from lowering.models import create

    if checkpoint is None:
        torch.manual_seed(RANDOM_INIT_SEED)
    return create(name, checkpoint=checkpoint, **overrides)


def _no_checkpoint(name: str, kind: str, checkpoint) -> None:
    if checkpoint is not None:
        raise ModelSourceError(f"{name} ({kind}) holds its own weights; drop --checkpoint")


def _normalized(source: ModelInput, mean, std) -> ModelInput:
    if mean is None and std is None:
        return source
    pre = source.preprocessing
    return replace(source, preprocessing=replace(pre, mean=tuple(mean or pre.mean), std=tuple(std or pre.std)))
