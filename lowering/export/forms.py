"""Export forms: the same network rewritten into the operators a backend runs best.

A backend's compiler sees the exported graph, not the model's intent, so the way the
forward pass is written decides how much of the network a backend can take. An export
form is a rewritten copy of a model built from `lowering.models` layers (plain, merged,
branched, distilled; any width, depth or image size) that computes the same function
with float32 rounding differences only (about 1e-6 against eager).

- "eager": the model as written. ONNX Runtime recognizes its LayerNorm and attention
  patterns and fuses them itself.
- "xnnpack": only operators that ExecuTorch's XNNPACK partitioner takes, so the whole
  network sits in one delegate:
    * LayerNorm (which has no XNNPACK node) becomes two linears against a constant
      averaging weight (the mean, then the variance of the centred input), a reciprocal
      square root and the affine (skipped where it is the identity, as after a merge);
    * attention takes Q, K and V as slices of the qkv output, folds the heads into the
      batch and multiplies with 3-D `bmm` (no 4-D matmuls, no expand, no select);
    * the position embedding of the prefix tokens is added to them once, ahead of time,
      so the token sequence is a concatenation of a constant and the patch tokens plus
      their position embedding (no expand for batch 1);
    * the final norm and the head read the prefix tokens as slices (no select).

Module paths are kept: a rewritten module sits where the original one was, so errors
found in the exported graph name paths of the user's model.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from lowering.models.layers import Attention
from lowering.models.vit import VisionTransformer

# Bump when a form's graph changes: the artifact cache keys on it.
FORM_VERSION = 1


class AveragingLayerNorm(nn.Module):
    """LayerNorm over the last dimension written as linears against a constant 1/D row."""

    def __init__(self, norm: nn.LayerNorm):
        super().__init__()
        (dim,) = norm.normalized_shape
        self.eps = norm.eps
        self.register_buffer("averaging", torch.full((1, dim), 1.0 / dim))
        identity = (
            norm.weight is None
            or (bool(torch.all(norm.weight == 1)) and bool(torch.all(norm.bias == 0)))
        )
        self.affine = None if identity else nn.ParameterList(
            [nn.Parameter(norm.weight.detach().clone()), nn.Parameter(norm.bias.detach().clone())]
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        centred = x - F.linear(x, self.averaging)
        variance = F.linear(centred * centred, self.averaging)
        normalized = centred * torch.rsqrt(variance + self.eps)
        if self.affine is None:
            return normalized
        weight, bias = self.affine
        return normalized * weight + bias


class BatchedHeadsAttention(nn.Module):
    """Multi-head self-attention as slices of qkv, heads folded into the batch, and `bmm`."""

    def __init__(self, attn: Attention):
        super().__init__()
        self.num_heads = attn.num_heads
        self.head_dim = attn.head_dim
        self.scale = attn.scale
        self.qkv = attn.qkv
        self.proj = attn.proj

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, tokens, _ = x.shape
        heads, width = self.num_heads, self.head_dim
        inner = heads * width
        qkv = self.qkv(x)
        q = qkv[:, :, :inner].reshape(batch, tokens, heads, width).permute(0, 2, 1, 3)
        k = qkv[:, :, inner : 2 * inner].reshape(batch, tokens, heads, width).permute(0, 2, 3, 1)
        v = qkv[:, :, 2 * inner :].reshape(batch, tokens, heads, width).permute(0, 2, 1, 3)
        q = q.reshape(batch * heads, tokens, width) * self.scale
        k = k.reshape(batch * heads, width, tokens)
        v = v.reshape(batch * heads, tokens, width)
        attn = torch.bmm(q, k).softmax(dim=-1)
        out = torch.bmm(attn, v).reshape(batch, heads, tokens, width).permute(0, 2, 1, 3)
        return self.proj(out.reshape(batch, tokens, inner))


class PrefixSliceViT(nn.Module):
    """The ViT's stem and head without expand or select; blocks are the model's own."""

    def __init__(self, model: VisionTransformer):
        super().__init__()
        spec = model.spec
        prefix = spec.num_prefix_tokens
        self.distilled = spec.distilled
        tokens = [model.cls_token] + ([model.dist_token] if spec.distilled else [])
        with torch.no_grad():
            self.register_buffer("prefix", torch.cat(tokens, dim=1) + model.pos_embed[:, :prefix])
            self.register_buffer("patch_pos_embed", model.pos_embed[:, prefix:].clone())
        self.patch_embed = model.patch_embed
        self.blocks = model.blocks
        self.norm = model.norm
        self.head = model.head
        if spec.distilled:
            self.head_dist = model.head_dist

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        patches = self.patch_embed(images) + self.patch_pos_embed
        batch = patches.shape[0]
        prefix = self.prefix if batch == 1 else self.prefix.expand(batch, -1, -1)
        x = self.blocks(torch.cat([prefix, patches], dim=1))
        logits = self.head(self.norm(x[:, 0:1]))
        if self.distilled:
            logits = (logits + self.head_dist(self.norm(x[:, 1:2]))) / 2
        return logits.reshape(batch, -1)


def _xnnpack_form(model: nn.Module) -> nn.Module:
    _replace_layers(model)
    return PrefixSliceViT(model) if isinstance(model, VisionTransformer) else model


def _replace_layers(parent: nn.Module) -> None:
    for name, child in list(parent.named_children()):
        if isinstance(child, nn.LayerNorm):
            setattr(parent, name, AveragingLayerNorm(child))
        elif isinstance(child, Attention):
            setattr(parent, name, BatchedHeadsAttention(child))
        else:
            _replace_layers(child)


FORMS = {
    "eager": lambda model: model,
    "xnnpack": _xnnpack_form,
}


def export_form(model: nn.Module, form: str) -> nn.Module:
    """A copy of `model` rewritten into export form `form` (one of FORMS), in eval mode.

    The input model is left untouched.
    """
    if form not in FORMS:
        raise ValueError(f"unknown export form {form!r}; known forms: {', '.join(FORMS)}")
    return FORMS[form](copy.deepcopy(model)).eval()
