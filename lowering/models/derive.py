"""A smaller ViT that inherits its weights from a bigger one (TinyCLIP's weight inheritance).

    state = derive_state(load_state_dict("big.pth"), depth=6, num_heads=2, mlp_ratio=2.0)

From a ViT state dict of depth L with H heads and F hidden features per block, keep:
- `depth` blocks chosen uniformly over the L (the first and the last among them; one
  block is the last);
- in each kept block, the `num_heads` heads with the largest L1 norm of their weights
  (their query, key and value rows of `qkv` and their columns of `proj`);
- the `mlp_ratio * embed_dim` hidden features with the largest L1 norm of their weights
  (their row of `fc1` and column of `fc2`).
Kept heads, features and blocks stay in their original order, so deriving the same shape
gives the same state dict back. The model width (embed_dim), the head width and
everything outside the blocks are inherited as they are; the result loads like any
checkpoint (`lowering.models.create(name, checkpoint=...)` infers its shape).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import torch

from lowering.models.checkpoint import CheckpointError

# ViT and DeiT heads are 64 wide at every size (tiny 192/3, small 384/6, base 768/12).
DEFAULT_HEAD_DIM = 64
_BLOCK_KEY = re.compile(r"blocks\.(\d+)\.(.+)")


@dataclass(frozen=True)
class SourceShape:
    """What a ViT state dict's blocks are: depth, heads of `head_dim`, model and hidden width."""

    depth: int
    num_heads: int
    head_dim: int
    embed_dim: int
    hidden: int


def source_shape(state: dict[str, torch.Tensor], head_dim: int = DEFAULT_HEAD_DIM) -> SourceShape:
    """The block shape of a plain (unbranched) ViT state dict; CheckpointError otherwise."""
    if any(".attn_branches." in key for key in state):
        raise CheckpointError("a branched checkpoint cannot be derived from: reparameterize it first "
                              "(`vitdeploy lower --reparameterize` merges its branches)")
    blocks = {int(match.group(1)) for key in state if (match := _BLOCK_KEY.match(key))}
    if not blocks or "blocks.0.attn.qkv.weight" not in state or "blocks.0.mlp.fc1.weight" not in state:
        raise CheckpointError("not a ViT state dict: no blocks.N.attn.qkv / blocks.N.mlp.fc1 weights")
    inner, embed_dim = state["blocks.0.attn.qkv.weight"].shape[0] // 3, state["blocks.0.attn.qkv.weight"].shape[1]
    if inner % head_dim:
        raise CheckpointError(f"the attention width {inner} is not a whole number of {head_dim}-wide heads; "
                              "give the source's head count")
    return SourceShape(max(blocks) + 1, inner // head_dim, head_dim, embed_dim,
                       state["blocks.0.mlp.fc1.weight"].shape[0])


def uniform_layers(source_depth: int, depth: int) -> list[int]:
    """`depth` block indices spread evenly over `source_depth` blocks, first and last
    included (the last alone for one block)."""
    if not 1 <= depth <= source_depth:
        raise CheckpointError(f"depth {depth} must be between 1 and the source's {source_depth}")
    if depth == 1:
        return [source_depth - 1]
    return [round(i * (source_depth - 1) / (depth - 1)) for i in range(depth)]


def _most_important(scores: torch.Tensor, keep: int) -> torch.Tensor:
    """The indices of the `keep` largest scores, in ascending index order."""
    return torch.sort(torch.topk(scores, keep).indices).values


def _head_rows(heads: torch.Tensor, inner: int, head_dim: int) -> torch.Tensor:
    """The qkv rows of `heads`: their query rows, then key rows, then value rows."""
    within = (heads[:, None] * head_dim + torch.arange(head_dim)).reshape(-1)
    return torch.cat([part * inner + within for part in range(3)])


def derive_state(state: dict[str, torch.Tensor], depth: int, num_heads: int, mlp_ratio: float,
                 head_dim: int = DEFAULT_HEAD_DIM) -> dict[str, torch.Tensor]:
    """The state dict of the smaller ViT (see the module docstring) derived from `state`."""
    shape = source_shape(state, head_dim)
    if not 1 <= num_heads <= shape.num_heads:
        raise CheckpointError(f"num_heads {num_heads} must be between 1 and the source's {shape.num_heads}")
    hidden = mlp_ratio * shape.embed_dim
    if hidden != int(hidden) or not 1 <= hidden <= shape.hidden:
        raise CheckpointError(f"mlp_ratio {mlp_ratio} gives {hidden:g} hidden features; it must be a whole "
                              f"number between 1 and the source's {shape.hidden}")
    derived = {key: value.clone() for key, value in state.items() if not _BLOCK_KEY.match(key)}
    inner = shape.num_heads * head_dim
    for new_index, old_index in enumerate(uniform_layers(shape.depth, depth)):
        block = {match.group(2): value for key, value in state.items()
                 if (match := _BLOCK_KEY.match(key)) and int(match.group(1)) == old_index}
        qkv, proj = block["attn.qkv.weight"], block["attn.proj.weight"]
        head_scores = (qkv.abs().sum(1).reshape(3, shape.num_heads, head_dim).sum((0, 2))
                       + proj.abs().sum(0).reshape(shape.num_heads, head_dim).sum(1))
        heads = _most_important(head_scores, num_heads)
        rows = _head_rows(heads, inner, head_dim)
        columns = (heads[:, None] * head_dim + torch.arange(head_dim)).reshape(-1)
        fc1, fc2 = block["mlp.fc1.weight"], block["mlp.fc2.weight"]
        features = _most_important(fc1.abs().sum(1) + fc2.abs().sum(0), int(hidden))
        sliced = {
            "attn.qkv.weight": qkv[rows], "attn.qkv.bias": block["attn.qkv.bias"][rows],
            "attn.proj.weight": proj[:, columns],
            "mlp.fc1.weight": fc1[features], "mlp.fc1.bias": block["mlp.fc1.bias"][features],
            "mlp.fc2.weight": fc2[:, features],
        }
        for name, value in block.items():
            derived[f"blocks.{new_index}.{name}"] = sliced.get(name, value).clone()
    return derived
