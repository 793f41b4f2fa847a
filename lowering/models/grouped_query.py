"""Multi-head ViTs converted to grouped-query attention (KDGQA's setting).

    gqa = to_grouped_query(model, kv_heads=1)                               # mean-pooled
    gqa = to_grouped_query(model, kv_heads=2, allocation="key-norm", images=x)

Each block's heads are split into `kv_heads` groups of consecutive heads, and the key and
value projections of a group are averaged into the group's shared key and value head
(the standard start of uptraining a multi-head checkpoint); query heads and the output
projection are kept. With as many key/value heads as heads, nothing is averaged and the
model computes what it computed.

"key-norm" then re-assigns the query heads: key head g gets a number of consecutive
query heads proportional to the mean L2 norm of its keys on `images` (at least one;
largest remainders round), measured once and frozen into the model's spec
(`query_groups`), so the deployed graph has fixed groups.
"""

from __future__ import annotations

import copy
import math
from dataclasses import replace

import torch

from lowering.models.layers import Attention, GroupedQueryAttention
from lowering.models.spec import ModelSpec
from lowering.models.vit import VisionTransformer

ALLOCATIONS = ("uniform", "key-norm")


def to_grouped_query(model: VisionTransformer, kv_heads: int, allocation: str = "uniform",
                     images: torch.Tensor | None = None) -> VisionTransformer:
    """A copy of the multi-head `model` with grouped-query attention (module docstring)."""
    spec = model.spec
    if allocation not in ALLOCATIONS:
        raise ValueError(f"unknown allocation {allocation!r}; choose from {', '.join(ALLOCATIONS)}")
    if spec.kv_heads is not None or spec.branches != 1:
        raise ValueError("convert an unbranched multi-head model (reparameterize a branched one first)")
    if kv_heads < 1 or spec.num_heads % kv_heads:
        raise ValueError(f"{spec.num_heads} heads do not split into {kv_heads} equal groups to average")
    if allocation == "key-norm" and images is None:
        raise ValueError("the key-norm allocation measures key norms on calibration images: give `images`")
    uniform = (spec.num_heads // kv_heads,) * kv_heads
    converted = _rebuilt(model, replace(spec, kv_heads=kv_heads), [uniform] * spec.depth)
    if allocation == "key-norm":
        allocations = [_allocate(norms, spec.num_heads) for norms in key_norms(converted, images)]
        if any(len(set(groups)) > 1 for groups in allocations):
            converted = _rebuilt(converted, replace(spec, kv_heads=kv_heads, query_groups=tuple(allocations)),
                                 allocations)
    return converted.eval()


@torch.no_grad()
def key_norms(model: VisionTransformer, images: torch.Tensor) -> list[torch.Tensor]:
    """Per block, the mean L2 norm of each key head's keys over the tokens of `images`."""
    norms: list[torch.Tensor] = []

    def record(attention: GroupedQueryAttention):
        def hook(_module, _inputs, qkv):
            heads, kv_heads, width = attention.num_heads, len(attention.groups), attention.head_dim
            keys = qkv[..., heads * width : (heads + kv_heads) * width].unflatten(-1, (kv_heads, width))
            norms.append(keys.norm(dim=-1).mean(dim=(0, 1)))
        return hook

    handles = [block.attn.qkv.register_forward_hook(record(block.attn)) for block in model.blocks]
    try:
        model.eval()(images)
    finally:
        for handle in handles:
            handle.remove()
    return norms


def _allocate(norms: torch.Tensor, heads: int) -> tuple[int, ...]:
    """`heads` query heads over the key heads in proportion to `norms`: at least one each,
    the rest by largest remainder."""
    spare = heads - len(norms)
    shares = (norms / norms.sum() * spare).tolist()
    counts = [math.floor(share) for share in shares]
    for index in sorted(range(len(shares)), key=lambda i: counts[i] - shares[i])[: spare - sum(counts)]:
        counts[index] += 1
    return tuple(count + 1 for count in counts)


@torch.no_grad()
def _rebuilt(model: VisionTransformer, spec: ModelSpec, allocations: list[tuple[int, ...]]) -> VisionTransformer:
    """`model` with each block's attention as grouped-query attention of `allocations[i]`,
    keys and values averaged over equal groups of the source's heads (taken as they are
    when the source is grouped already)."""
    rebuilt = copy.deepcopy(model)
    rebuilt._built_spec = spec
    for block, groups in zip(rebuilt.blocks, allocations):
        source = block.attn
        dim, width, heads = source.qkv.in_features, source.head_dim, source.num_heads
        target = GroupedQueryAttention(dim, heads, width, groups, source.kind).to(source.qkv.weight.dtype)
        weight, bias = source.qkv.weight, source.qkv.bias
        if isinstance(source, Attention):
            inner, kv_heads = heads * width, len(groups)
            pooled = [part.reshape(kv_heads, heads // kv_heads, width, -1).mean(1).reshape(kv_heads * width, -1)
                      for part in (weight[inner : 2 * inner], weight[2 * inner :])]
            pooled_bias = [part.reshape(kv_heads, heads // kv_heads, width).mean(1).reshape(-1)
                           for part in (bias[inner : 2 * inner], bias[2 * inner :])]
            weight = torch.cat([weight[:inner], *pooled])
            bias = torch.cat([bias[:inner], *pooled_bias])
        target.qkv.weight.copy_(weight)
        target.qkv.bias.copy_(bias)
        target.proj.load_state_dict(source.proj.state_dict())
        block.attn = target
    return rebuilt
