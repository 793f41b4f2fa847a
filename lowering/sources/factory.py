"""A user's own code: `package.module:callable` returning an nn.Module, and `timm:NAME`."""

from __future__ import annotations

import hashlib
import importlib
import inspect
from pathlib import Path

import torch
from torch import nn

from lowering.models.checkpoint import load_state_dict, load_strict
from lowering.models.spec import Preprocessing
from lowering.sources.model_input import ModelInput, ModelSourceError
from vitdeploy.errors import first_line
from vitdeploy.manifest import artifact_sha256

TIMM_PREFIX = "timm:"


def _callable(reference: str):
    module_name, _, attribute = reference.partition(":")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # any error while importing the user's module
        raise ModelSourceError(
            f"cannot import {module_name!r} for factory {reference!r} ({type(exc).__name__}: {exc}); "
            "make it importable (install it, or run from the folder that holds it)"
        ) from exc
    target = module
    for part in attribute.split("."):
        if not hasattr(target, part):
            raise ModelSourceError(f"{module_name} has no attribute {attribute!r} (factory {reference!r})")
        target = getattr(target, part)
    if not callable(target):
        raise ModelSourceError(f"{reference} is not callable; name a function or class that returns an nn.Module")
    return target


def _code_sha256(factory) -> str | None:
    """sha256 of the file defining `factory` (its code keys the artifact cache)."""
    try:
        source = inspect.getsourcefile(factory)
    except TypeError:
        return None
    return hashlib.sha256(Path(source).read_bytes()).hexdigest() if source else None


def _pretrained_cfg(model: nn.Module) -> dict:
    cfg = getattr(model, "pretrained_cfg", None) or getattr(model, "default_cfg", None)
    return cfg if isinstance(cfg, dict) else {}


def _preprocessing(model: nn.Module, given: Preprocessing | None) -> Preprocessing:
    """`given`, else the model's timm-style `pretrained_cfg`, else ImageNet's defaults."""
    if given is not None:
        return given
    cfg, default = _pretrained_cfg(model), Preprocessing()
    return Preprocessing(
        mean=tuple(cfg.get("mean", default.mean)),
        std=tuple(cfg.get("std", default.std)),
        crop_pct=float(cfg.get("crop_pct", default.crop_pct)),
        interpolation=str(cfg.get("interpolation", default.interpolation)),
    )


def _input_shape(model: nn.Module, given: tuple[int, ...] | None, reference: str) -> tuple[int, ...]:
    if given:
        return tuple(int(d) for d in given)
    size = _pretrained_cfg(model).get("input_size")
    if size:
        return (1, *map(int, size))
    raise ModelSourceError(
        f"the model from {reference} does not say its input size (no pretrained_cfg['input_size']): "
        "give it, e.g. --input-shape 1,3,224,224"
    )


def open_factory(
    reference: str,
    checkpoint: str | Path | None = None,
    input_shape: tuple[int, ...] | None = None,
    preprocessing: Preprocessing | None = None,
    label: str | None = None,
    **kwargs,
) -> ModelInput:
    """Call the factory `package.module:callable` with `kwargs`, load `checkpoint` strictly
    into what it returns, and describe the result as a model input (labelled `label`,
    else the callable's name)."""
    factory = _callable(reference)
    try:
        model = factory(**kwargs)
    except Exception as exc:  # the user's code may raise anything
        raise ModelSourceError(f"factory {reference} raised {type(exc).__name__}: {exc}") from exc
    if not isinstance(model, nn.Module):
        raise ModelSourceError(f"factory {reference} returned {type(model).__name__}, not a torch.nn.Module")
    if checkpoint is not None:
        load_strict(model, load_state_dict(checkpoint), checkpoint)
    model.eval()
    shape = _input_shape(model, input_shape, reference)
    hashes = [h for h in (_code_sha256(factory), artifact_sha256(checkpoint) if checkpoint else None) if h]
    return ModelInput(
        label or reference.rpartition(":")[2], model, torch.zeros(shape), _preprocessing(model, preprocessing), "factory",
        reference if checkpoint is None else f"{reference} + {checkpoint}",
        source_sha256=hashlib.sha256("".join(hashes).encode()).hexdigest() if hashes else None,
    )


def open_timm(
    name: str, checkpoint: str | Path | None = None, input_shape: tuple[int, ...] | None = None,
    preprocessing: Preprocessing | None = None,
) -> ModelInput:
    """`timm.create_model(name, pretrained=False)` where timm imports; weights only from
    `checkpoint` (nothing is downloaded)."""
    try:
        importlib.import_module("timm")
    except Exception as exc:  # timm fails to import without a working torchvision
        raise ModelSourceError(
            f"timm is not importable here ({type(exc).__name__}: {first_line(exc)}). "
            f"Export the model where timm works and lower the program instead: "
            f"torch.export.save(torch.export.export(timm.create_model({name!r}).eval(), "
            f"(torch.randn(1, 3, 224, 224),)), '{name}.pt2'), then `vitdeploy lower {name}.pt2`"
        ) from exc
    return open_factory("timm:create_model", checkpoint, input_shape, preprocessing, label=name,
                        model_name=name, pretrained=False)
