"""Reading checkpoints (.pth with weights_only, .safetensors) and fitting them to a model."""

from __future__ import annotations

import pickle
import re
from pathlib import Path

import torch
from torch import nn

from vitdeploy.errors import VitdeployError, first_line

TORCH_SUFFIXES = (".pth", ".pt", ".bin")
SAFETENSORS_SUFFIX = ".safetensors"
_WRAPPER_KEYS = ("model", "state_dict", "model_ema")
_LISTED = 8


class CheckpointError(VitdeployError):
    """A checkpoint is missing, unreadable, or does not fit the model."""


def load_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a plain state dict from `.pth`/`.pt`/`.bin` (weights only) or `.safetensors`.

    A training checkpoint that wraps the weights under `model`, `state_dict` or
    `model_ema` is unwrapped.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    suffix = path.suffix.lower()
    if suffix == SAFETENSORS_SUFFIX:
        state = _read_safetensors(path)
    elif suffix in TORCH_SUFFIXES:
        state = _read_torch(path)
    else:
        raise CheckpointError(
            f"cannot tell the format of checkpoint {path}: expected a file ending in "
            f"{', '.join(TORCH_SUFFIXES)} or {SAFETENSORS_SUFFIX}"
        )
    return _unwrap(state, path)


def _read_safetensors(path: Path) -> dict[str, torch.Tensor]:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(
            f"checkpoint {path} is not a readable safetensors file ({exc}): it is corrupt or "
            "truncated; copy or save it again"
        ) from exc


def _read_torch(path: Path) -> dict:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if "Unsupported global" in str(exc):
            raise CheckpointError(
                f"checkpoint {path} holds objects other than tensors, which are not loaded "
                "for safety; save a plain state dict (torch.save(model.state_dict(), path)) "
                "or use safetensors"
            ) from exc
        raise _unreadable(path, exc) from exc
    except Exception as exc:  # torch.load on damaged bytes raises almost any exception type
        raise _unreadable(path, exc) from exc


def _unreadable(path: Path, exc: BaseException) -> CheckpointError:
    return CheckpointError(
        f"checkpoint {path} could not be read as a PyTorch file ({first_line(exc)}): it is "
        "corrupt or truncated; copy or save it again"
    )


def _unwrap(state: object, path: Path) -> dict[str, torch.Tensor]:
    if isinstance(state, dict):
        for key in _WRAPPER_KEYS:
            if key in state and isinstance(state[key], dict):
                state = state[key]
                break
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(
            f"checkpoint {path} is not a state dict of tensors (found {type(state).__name__})"
        )
    return state


def infer_overrides(state: dict[str, torch.Tensor], num_heads: int) -> dict:
    """The spec fields a ViT state dict's shapes determine.

    Head count and head width are not visible in shapes. The head width is taken as the
    width over the registered model's `num_heads` (as timm builds it), and the head count
    as the attention width over that head width: this holds for timm models of any width
    and for merged ones, whose attention holds several branches' heads.
    """
    if "cls_token" not in state or "patch_embed.proj.weight" not in state:
        return {}
    embed_dim = state["cls_token"].shape[-1]
    patch = state["patch_embed.proj.weight"]
    blocks = {int(m.group(1)) for k in state if (m := re.match(r"blocks\.(\d+)\.", k))}
    overrides = {
        "embed_dim": embed_dim,
        "patch_size": patch.shape[-1],
        "in_chans": patch.shape[1],
        "depth": max(blocks) + 1 if blocks else 0,
    }
    if "head.weight" in state:
        overrides["num_classes"] = state["head.weight"].shape[0]
    if "pos_embed" in state:
        prefix = 1 + ("dist_token" in state)
        grid = round((state["pos_embed"].shape[1] - prefix) ** 0.5)
        overrides["img_size"] = grid * overrides["patch_size"]
    branch_keys = [k for k in state if re.match(r"blocks\.0\.attn_branches\.\d+\.attn\.qkv\.weight$", k)]
    if branch_keys:
        overrides["branches"] = len(branch_keys)
        qkv = state["blocks.0.attn_branches.0.attn.qkv.weight"]
        fc1 = state.get("blocks.0.mlp_branches.0.mlp.fc1.weight")
    else:
        qkv = state.get("blocks.0.attn.qkv.weight")
        fc1 = state.get("blocks.0.mlp.fc1.weight")
    if qkv is not None:
        head_dim = max(1, embed_dim // num_heads)
        overrides["head_dim"] = head_dim
        overrides["num_heads"] = max(1, qkv.shape[0] // 3 // head_dim)
    if fc1 is not None:
        overrides["mlp_ratio"] = fc1.shape[0] / embed_dim
    return overrides


def load_strict(model: nn.Module, state: dict[str, torch.Tensor], source: str | Path) -> None:
    """Load `state` into `model`, requiring every key and shape to match.

    On mismatch, the error lists missing and unexpected keys and differing shapes.
    """
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    shapes = [
        f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(expected[k].shape)}"
        for k in expected
        if k in state and state[k].shape != expected[k].shape
    ]
    if missing or unexpected or shapes:
        parts = []
        for label, items in (("missing keys", missing), ("unexpected keys", unexpected),
                             ("shape mismatches", shapes)):
            if items:
                shown = "; ".join(items[:_LISTED])
                more = f" (and {len(items) - _LISTED} more)" if len(items) > _LISTED else ""
                parts.append(f"{label} ({len(items)}): {shown}{more}")
        spec = getattr(model, "spec", None)
        described = (f"model '{spec.name}' (depth {spec.depth}, embed_dim {spec.embed_dim}, "
                     f"{spec.branches} branch(es))" if spec is not None else f"the {type(model).__name__} module")
        raise CheckpointError(f"checkpoint {source} does not fit {described}: " + " | ".join(parts))
    model.load_state_dict(state, strict=True)
