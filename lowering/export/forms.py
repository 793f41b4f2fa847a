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
    * with at least SPLIT_FROM_TOKENS tokens, no linear is wider than MAX_LINEAR_WIDTH
      features: the heads are split into equal groups, each with its own slice of the qkv
      weight, and a wide feed-forward network runs as equal chunks of its hidden
      features, fc2(gelu(fc1 x)) = b2 + sum_c fc2[:, c] gelu(fc1[c] x). A merged
      (reparameterized) block is exactly such a wide layer, and XNNPACK's fp32 GEMMs run
      its 1728-3072-wide products at fewer MACs per second than the narrow ones of the
      unmerged model; with very few tokens the extra operators cost more than that;
    * the position embedding of the prefix tokens is added to them once, ahead of time,
      so the token sequence is a concatenation of a constant and the patch tokens plus
      their position embedding (no expand for batch 1);
    * the final norm and the head read the prefix tokens as slices (no select).

Module paths are kept: a rewritten module sits where the original one was, and the
chunks of a split linear are computed by the module at the linear's own path, so errors
found in the exported graph, and quantization ranges keyed by a linear's path, name paths
of the user's model.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from lowering.models.layers import Attention, Mlp, MultiHeadAttention
from lowering.models.vit import VisionTransformer

# Bump a form's version when its graph changes: the artifact cache keys on it.
FORM_VERSIONS = {"eager": 1, "xnnpack": 4}
# ETDump profiles of ViT-Tiny at 224 on an x86 host (1 thread): XNNPACK's fp32 GEMMs ran
# 10-31% slower per MAC at 1728, 2304 and 3072 output or input features than at 576-768,
# so a merged 4 x 3 model ran 10% slower than the 12-layer one; chunks of 768 closed it.
# `python -m bench.split_linears` measures whole against split for any model.
MAX_LINEAR_WIDTH = 768
# Split against whole, merged 4 x 3 / 3 x 4 ViT-Tinys: 0.86 / 0.90 at 224 px, 0.92 / 0.99
# at 64 px (17 tokens), 1.04 / 1.01 at 32 px (5 tokens, intervals around 1): below this
# many tokens the split buys nothing and only adds operators.
SPLIT_FROM_TOKENS = 16


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


def equal_chunks(units: int, unit_width: int, max_width: int | None = MAX_LINEAR_WIDTH) -> int:
    """The fewest equal chunks of whole units (heads, hidden features), each at most
    `max_width` wide (one unit per chunk when no count fits; one chunk when `max_width`
    is None)."""
    if max_width is None:
        return 1
    for count in range(1, units + 1):
        if units % count == 0 and units // count * unit_width <= max_width:
            return count
    return units


class OutputChunkedLinear(nn.Module):
    """A linear whose output features are computed in chunks: `forward(x, c)` is chunk c."""

    def __init__(self, linear: nn.Linear, row_chunks: list[torch.Tensor]):
        super().__init__()
        weight, bias = linear.weight.detach(), linear.bias.detach()
        self.weights = nn.ParameterList([nn.Parameter(weight[rows].clone()) for rows in row_chunks])
        self.biases = nn.ParameterList([nn.Parameter(bias[rows].clone()) for rows in row_chunks])

    def forward(self, x: torch.Tensor, chunk: int) -> torch.Tensor:
        return F.linear(x, self.weights[chunk], self.biases[chunk])


class InputChunkedLinear(nn.Module):
    """A linear whose input features come in chunks: `forward(h, c)` is chunk c's partial
    product, the bias added to chunk 0's."""

    def __init__(self, linear: nn.Linear, chunks: int):
        super().__init__()
        self.weights = nn.ParameterList([nn.Parameter(w.clone()) for w in linear.weight.detach().chunk(chunks, dim=1)])
        self.bias = nn.Parameter(linear.bias.detach().clone())

    def forward(self, hidden: torch.Tensor, chunk: int) -> torch.Tensor:
        return F.linear(hidden, self.weights[chunk], self.bias if chunk == 0 else None)


class ChunkedMlp(nn.Module):
    """The feed-forward network over equal chunks of its hidden features, each chunk's
    fc1, GELU and fc2 in turn, the partial outputs summed."""

    def __init__(self, mlp: Mlp, chunks: int):
        super().__init__()
        hidden = torch.arange(mlp.fc1.out_features)
        self.chunks = chunks
        self.fc1 = OutputChunkedLinear(mlp.fc1, list(hidden.chunk(chunks)))
        self.act = mlp.act
        self.fc2 = InputChunkedLinear(mlp.fc2, chunks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.fc2(self.act(self.fc1(x, 0)), 0)
        for chunk in range(1, self.chunks):
            out = out + self.fc2(self.act(self.fc1(x, chunk)), chunk)
        return out


class BatchedHeadsAttention(MultiHeadAttention):
    """Multi-head self-attention in `groups` groups of `num_heads` heads: each group's Q,
    K and V are slices of its own qkv product, its heads are folded into the batch and
    multiplied with `bmm`, and the groups' outputs are concatenated before the projection."""

    matmul = staticmethod(torch.bmm)

    def __init__(self, attn: Attention, max_width: int | None = MAX_LINEAR_WIDTH):
        heads, width = attn.num_heads, attn.head_dim
        groups = equal_chunks(heads, 3 * width, max_width)
        group_heads = heads // groups
        inner, group_width = heads * width, group_heads * width
        rows = [
            torch.cat([torch.arange(part * inner + g * group_width, part * inner + (g + 1) * group_width)
                       for part in range(3)])
            for g in range(groups)
        ]
        super().__init__(group_heads, width, OutputChunkedLinear(attn.qkv, rows), attn.proj)
        self.groups = groups

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outputs = [self.attend(self.qkv(x, group)) for group in range(self.groups)]
        return self.proj(outputs[0] if self.groups == 1 else torch.cat(outputs, dim=-1))

    def split_heads(self, qkv: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Queries and values [batch * heads, tokens, head_dim], keys already transposed
        [batch * heads, head_dim, tokens]."""
        batch, tokens, _ = qkv.shape
        heads, width = self.num_heads, self.head_dim
        inner = heads * width
        q = qkv[:, :, :inner].reshape(batch, tokens, heads, width).permute(0, 2, 1, 3)
        k = qkv[:, :, inner : 2 * inner].reshape(batch, tokens, heads, width).permute(0, 2, 3, 1)
        v = qkv[:, :, 2 * inner :].reshape(batch, tokens, heads, width).permute(0, 2, 1, 3)
        return (
            q.reshape(batch * heads, tokens, width),
            k.reshape(batch * heads, width, tokens),
            v.reshape(batch * heads, tokens, width),
        )

    def keys_transposed(self, k: torch.Tensor) -> torch.Tensor:
        return k

    def merge_heads(self, out: torch.Tensor) -> torch.Tensor:
        heads, width = self.num_heads, self.head_dim
        tokens = out.shape[1]
        batch = out.shape[0] // heads
        return out.reshape(batch, heads, tokens, width).permute(0, 2, 1, 3).reshape(batch, tokens, heads * width)


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
    if isinstance(model, VisionTransformer):
        spec = model.spec
        tokens = spec.num_patches + spec.num_prefix_tokens
        rewritten = PrefixSliceViT(model)
    else:
        tokens, rewritten = None, model
    split = tokens is not None and tokens >= SPLIT_FROM_TOKENS
    _replace_layers(rewritten, MAX_LINEAR_WIDTH if split else None)
    return rewritten


def _replace_layers(parent: nn.Module, max_width: int | None) -> None:
    for name, child in list(parent.named_children()):
        if isinstance(child, nn.LayerNorm):
            setattr(parent, name, AveragingLayerNorm(child))
        elif isinstance(child, Attention):
            setattr(parent, name, BatchedHeadsAttention(child, max_width))
        elif isinstance(child, Mlp) and (chunks := equal_chunks(child.fc1.out_features, 1, max_width)) > 1:
            setattr(parent, name, ChunkedMlp(child, chunks))
        else:
            _replace_layers(child, max_width)


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
