"""The model registry: `create(name, checkpoint=None, **overrides)` and `list_models()`."""

from __future__ import annotations

import difflib
from dataclasses import fields, replace
from pathlib import Path

from vitdeploy.errors import VitdeployError
from lowering.models.dcal import ROLLOUT_ATTENTION
from lowering.models.layers import ATTENTION_KINDS
from lowering.models.spec import CLIP_MEAN, CLIP_STD, HALF, ModelSpec, Preprocessing
from lowering.models.vit import VisionTransformer

_VIT_PREPROCESSING = Preprocessing(mean=HALF, std=HALF, crop_pct=0.9)
_DEIT_PREPROCESSING = Preprocessing()
_SIZES = {"tiny": (192, 3), "small": (384, 6), "base": (768, 12)}
OUTPUTS = ("logits", "embedding", "regression")


def _family() -> dict[str, ModelSpec]:
    specs = {}
    for size, (dim, heads) in _SIZES.items():
        shape = dict(embed_dim=dim, num_heads=heads, head_dim=dim // heads)
        specs[f"vit_{size}"] = ModelSpec(f"vit_{size}", preprocessing=_VIT_PREPROCESSING, **shape)
        specs[f"deit_{size}"] = ModelSpec(f"deit_{size}", preprocessing=_DEIT_PREPROCESSING, **shape)
        specs[f"deit_{size}_distilled"] = ModelSpec(
            f"deit_{size}_distilled", distilled=True, preprocessing=_DEIT_PREPROCESSING, **shape
        )
    for kind in ATTENTION_KINDS[1:]:
        name = f"deit_tiny_{kind}_attn"
        specs[name] = replace(specs["deit_tiny"], name=name, attention=(kind,))
    specs["deit_small_gqa"] = replace(specs["deit_small"], name="deit_small_gqa", kv_heads=2)
    # CLIP's image encoder (TinyCLIP's ViT): pre-norm, class-token pooling, a bias-free
    # projection to a 256-wide embedding.
    specs["vit_tiny_clip"] = replace(specs["vit_tiny"], name="vit_tiny_clip", num_classes=256, pre_norm=True,
                                     head_bias=False, output="embedding",
                                     preprocessing=Preprocessing(mean=CLIP_MEAN, std=CLIP_STD, crop_pct=1.0))
    specs["deit_tiny_gated_class_attn"] = replace(specs["deit_tiny"], name="deit_tiny_gated_class_attn",
                                                  class_attention_blocks=2, gate_tasks=4)
    # DCAL: one global-local cross-attention block on the top 10% of patches by rollout,
    # with the training-only pair-wise branch (removed at lowering).
    specs["deit_tiny_dcal"] = replace(specs["deit_tiny"], name="deit_tiny_dcal", glca_blocks=1, local_ratio=0.1,
                                      pair_wise=True)
    # A regression ViT under a CPU latency budget (tiny transformers for holographic
    # autofocus): width 128, 12 blocks of 8 heads, MLP 1024, one output at 128 px,
    # 4,065,537 parameters; judged by its mean absolute error.
    specs["vit_autofocus"] = ModelSpec("vit_autofocus", img_size=128, num_classes=1, embed_dim=128, num_heads=8,
                                       head_dim=16, mlp_ratio=8.0, output="regression",
                                       preprocessing=_VIT_PREPROCESSING)
    return specs


DEFAULT_SPECS: dict[str, ModelSpec] = _family()
OVERRIDABLE = tuple(f.name for f in fields(ModelSpec) if f.name not in ("name", "distilled", "preprocessing"))


class UnknownModelError(VitdeployError):
    """The model name is not in the registry."""


class InvalidSpecError(VitdeployError):
    """The overrides describe a model that cannot be built."""


def list_models() -> list[str]:
    """Names `create` accepts, sorted."""
    return sorted(DEFAULT_SPECS)


def resolve_spec(name: str, **overrides) -> ModelSpec:
    """The spec `create(name, **overrides)` would build, validated, without building it.

    `head_dim` follows `embed_dim / num_heads` unless given, as in timm.
    """
    if name not in DEFAULT_SPECS:
        close = difflib.get_close_matches(name, list_models(), n=3, cutoff=0.5)
        hint = f"did you mean {', '.join(close)}? " if close else ""
        raise UnknownModelError(
            f"unknown model '{name}': {hint}known models: {', '.join(list_models())}"
        )
    unknown = sorted(set(overrides) - set(OVERRIDABLE))
    if unknown:
        raise InvalidSpecError(
            f"unknown override(s) {', '.join(unknown)} for '{name}'; valid: {', '.join(OVERRIDABLE)}"
        )
    if isinstance(overrides.get("attention"), (str, list)):
        given = overrides["attention"]
        overrides = {**overrides, "attention": tuple(
            part.strip() for part in (given.split(",") if isinstance(given, str) else given))}
    spec = replace(DEFAULT_SPECS[name], **overrides)
    if "head_dim" not in overrides:
        if spec.embed_dim % spec.num_heads:
            raise InvalidSpecError(
                f"embed_dim {spec.embed_dim} is not divisible by num_heads {spec.num_heads}; "
                "give head_dim explicitly or change one of them"
            )
        spec = replace(spec, head_dim=spec.embed_dim // spec.num_heads)
    _validate(spec)
    return spec


def _validate(spec: ModelSpec) -> None:
    positive = ("img_size", "patch_size", "in_chans", "num_classes", "embed_dim", "depth",
                "num_heads", "head_dim", "branches")
    for key in positive:
        value = getattr(spec, key)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise InvalidSpecError(f"{key} must be a positive integer, got {value!r}")
    unknown = sorted(set(spec.attention) - set(ATTENTION_KINDS))
    if unknown or len(spec.attention) not in (1, spec.depth):
        raise InvalidSpecError(
            f"attention {','.join(spec.attention)} must name one of {', '.join(ATTENTION_KINDS)} for every block, "
            f"or one per block ({spec.depth})"
        )
    _validate_query_groups(spec)
    for key in ("class_attention_blocks", "gate_tasks", "task", "glca_blocks"):
        value = getattr(spec, key)
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise InvalidSpecError(f"{key} must be a non-negative integer, got {value!r}")
    if spec.output not in OUTPUTS:
        raise InvalidSpecError(f"output {spec.output!r} must be one of {', '.join(OUTPUTS)}")
    if spec.output == "regression" and spec.num_classes != 1:
        raise InvalidSpecError(f"a regression model has one output: num_classes must be 1, got {spec.num_classes}")
    _validate_dcal(spec)
    if spec.gate_tasks and not spec.class_attention_blocks:
        raise InvalidSpecError("gate_tasks gates the class-attention blocks: give class_attention_blocks too")
    if spec.task >= max(spec.gate_tasks, 1):
        raise InvalidSpecError(f"task {spec.task} is not one of the {spec.gate_tasks} gated tasks")
    if spec.img_size % spec.patch_size:
        raise InvalidSpecError(
            f"img_size {spec.img_size} is not a multiple of patch_size {spec.patch_size}"
        )
    hidden = spec.embed_dim * spec.mlp_ratio
    if spec.mlp_ratio <= 0 or hidden != int(hidden):
        raise InvalidSpecError(
            f"mlp_ratio {spec.mlp_ratio} times embed_dim {spec.embed_dim} is not a whole FFN width"
        )


def _validate_query_groups(spec: ModelSpec) -> None:
    if spec.kv_heads is None:
        if spec.query_groups:
            raise InvalidSpecError("query_groups needs kv_heads (grouped-query attention)")
        return
    if not isinstance(spec.kv_heads, int) or not 1 <= spec.kv_heads <= spec.num_heads or spec.branches != 1:
        raise InvalidSpecError(f"kv_heads must be an integer from 1 to num_heads ({spec.num_heads}) in an "
                               f"unbranched model, got {spec.kv_heads!r} with {spec.branches} branch(es)")
    if not spec.query_groups and spec.num_heads % spec.kv_heads:
        raise InvalidSpecError(f"{spec.num_heads} heads do not split evenly over {spec.kv_heads} kv_heads; "
                               "give query_groups per block")
    if spec.query_groups and (len(spec.query_groups) != spec.depth or any(
            len(groups) != spec.kv_heads or sum(groups) != spec.num_heads or min(groups) < 1
            for groups in spec.query_groups)):
        raise InvalidSpecError(f"query_groups must give each of the {spec.depth} blocks {spec.kv_heads} positive "
                               f"counts adding up to {spec.num_heads} heads")


def _validate_dcal(spec: ModelSpec) -> None:
    if not isinstance(spec.pair_wise, bool):
        raise InvalidSpecError(f"pair_wise must be true or false, got {spec.pair_wise!r}")
    if spec.pair_wise and not spec.glca_blocks:
        raise InvalidSpecError("pair_wise is DCAL's pair-wise cross-attention: give glca_blocks too")
    if not spec.glca_blocks:
        return
    ratio = spec.local_ratio
    if isinstance(ratio, bool) or not isinstance(ratio, (int, float)) or not 0 < ratio <= 1:
        raise InvalidSpecError(f"local_ratio must be in (0, 1], got {spec.local_ratio!r}")
    kinds = sorted(set(spec.attention) - set(ROLLOUT_ATTENTION))
    if kinds:
        raise InvalidSpecError(f"DCAL's rollout multiplies attention probabilities: {', '.join(kinds)} attention "
                               f"has none; use {' or '.join(ROLLOUT_ATTENTION)}")
    others = [name for name, present in (("branches", spec.branches > 1), ("kv_heads", spec.kv_heads is not None),
                                         ("class_attention_blocks", spec.class_attention_blocks > 0),
                                         ("a distillation token", spec.distilled)) if present]
    if others:
        raise InvalidSpecError(f"DCAL (glca_blocks) runs on plain multi-head self-attention blocks; "
                               f"drop {', '.join(others)}")


def create(name: str, checkpoint: str | Path | None = None, **overrides) -> VisionTransformer:
    """Build a registered model, optionally loading a timm-compatible checkpoint.

    Overrides: any ModelSpec structural field (`depth`, `branches`, `embed_dim`,
    `num_heads`, `head_dim`, `num_classes`, `img_size`, `mlp_ratio`, `patch_size`,
    `in_chans`). With a checkpoint, depth, width, heads, classes, image size, FFN width
    and branch count are inferred from its shapes; explicit overrides take precedence,
    and the checkpoint must then still fit the model exactly.
    """
    if checkpoint is None:
        return VisionTransformer(resolve_spec(name, **overrides)).eval()
    from lowering.models.checkpoint import infer_overrides, load_state_dict, load_strict

    state = load_state_dict(checkpoint)
    resolve_spec(name)
    inferred = infer_overrides(state, overrides.get("num_heads", DEFAULT_SPECS[name].num_heads))
    model = VisionTransformer(resolve_spec(name, **{**inferred, **overrides}))
    load_strict(model, state, checkpoint)
    return model.eval()
