"""Dual cross-attention learning: global-local cross-attention on the tokens attention
rollout ranks highest, and the training-only pair-wise cross-attention.

Zhu et al., "Dual Cross-Attention Learning for Fine-Grained Visual Categorization and
Object Re-Identification", CVPR 2022.

- Rollout: each self-attention (SA) block's head-averaged attention A becomes
  Â = 0.5 A + 0.5 I, row-normalized, and R = Â_L ... Â_1. The class token's row of R over
  the patch tokens is each patch's response; only that row is formed (a row vector
  times each Â from the last block down), which equals the row of the full product.
- Global-local cross-attention (GLCA): the `local_tokens(spec)` highest-response patch
  tokens (top-k, then a gather), with the class token, query the keys and values of
  every token of the last SA block's output. GLCA blocks have their own weights, as in
  the paper. The queries attend independently, so a head on the class token alone would
  ignore the selection: the GLCA head reads the mean of the query tokens' outputs.
- Inference: the mean of the SA head's and the GLCA head's logits (the paper adds the
  heads' probabilities; the mean of logits ranks classes alike in most cases and keeps the
  output a logit vector that the runtimes' outputs are compared with, as DeiT's
  distilled heads do).
- Pair-wise cross-attention (PWCA), training only: the SA blocks run on an image while
  also attending to the keys and values of a second image's tokens (distractors). It
  shares every weight with SA, so removing it at lowering (`reparameterize`) is exact
  and the deployed graph has no PWCA branch.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from lowering.models.class_attention import ClassAttention
from lowering.models.layers import Block, Mlp, MultiHeadAttention, layer_norm
from lowering.models.spec import ModelSpec

# The name the lowering manifest records for the removed branch.
PAIR_WISE_BRANCH = "pair_wise_cross_attention"
# Rollout multiplies attention probabilities: the attention kinds whose weights are a
# distribution over keys.
ROLLOUT_ATTENTION = ("softmax", "relu")


def local_tokens(spec: ModelSpec) -> int:
    """R, how many patch tokens GLCA selects: `local_ratio` of the patches, at least one."""
    return max(1, math.floor(spec.local_ratio * spec.num_patches + 1e-9))  # 0.29 * 100 is 28.999...


def removed_branches(before: ModelSpec, after: ModelSpec) -> list[str]:
    """The training-only branches that lowering removed from a model specified as `before`."""
    return [PAIR_WISE_BRANCH] if before.pair_wise and not after.pair_wise else []


def _heads(attention: MultiHeadAttention, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    return attention.transform_heads(*attention.split_heads(attention.qkv(x)))


def _attend(attention: MultiHeadAttention, q: torch.Tensor, k: torch.Tensor,
            v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The attention's projected output and its weights [batch, heads, queries, keys]."""
    weights = attention.attention_weights(q, k)
    out = attention.matmul(attention.transform_weights(weights), v)
    return attention.proj(attention.merge_heads(out)), weights


def _feed_forward(block: Block, x: torch.Tensor) -> torch.Tensor:
    return x + block.mlp(block.norm2(x))


def blocks_with_attention(blocks: nn.Sequential, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """The SA blocks' output for tokens `x`, and each block's head-averaged attention
    [batch, tokens, tokens], first block first."""
    maps = []
    for block in blocks:
        out, weights = _attend(block.attn, *_heads(block.attn, block.norm1(x)))
        x = _feed_forward(block, x + out)
        maps.append(_head_average(weights))
    return x, maps


def _head_average(weights: torch.Tensor) -> torch.Tensor:
    # A sum of the heads' slices: XNNPACK reduces no inner dimension, and a mean over the
    # heads becomes a transpose and a three-wide linear of every score. A float factor: an
    # integer divisor becomes an int64 constant cast on the portable kernels.
    heads = weights.unbind(dim=1)
    total = heads[0]
    for head in heads[1:]:
        total = total + head
    return total * (1.0 / len(heads))


def rollout_response(maps: list[torch.Tensor], identity: torch.Tensor) -> torch.Tensor:
    """Each patch token's response [batch, patches]: the class token's row of the rollout
    Â_L ... Â_1 of the head-averaged attention `maps` (first block first), without the
    class token's own column. `identity` is the tokens x tokens identity matrix."""
    row = None
    for attention in reversed(maps):
        if row is None:
            attention, eye = attention[:, :1], identity[:1]
        else:
            eye = identity
        mixed = 0.5 * attention + 0.5 * eye
        mixed = mixed / mixed.sum(dim=-1, keepdim=True)
        row = mixed if row is None else torch.matmul(row, mixed)
    return row[:, 0, 1:]


def select_tokens(tokens: torch.Tensor, response: torch.Tensor, count: int) -> torch.Tensor:
    """The `count` tokens [batch, count, dim] of `tokens` [batch, n, dim] with the highest
    `response` [batch, n], highest first."""
    index = response.topk(count, dim=-1).indices
    return torch.gather(tokens, 1, index.unsqueeze(-1).expand(-1, -1, tokens.shape[-1]))


class GlobalLocalBlock(nn.Module):
    """A pre-norm block whose queries are the local tokens and whose keys and values are
    every token: local + attn(norm1(local), norm1(tokens)), then local + mlp(norm2(local))."""

    def __init__(self, dim: int, num_heads: int, head_dim: int, mlp_hidden_dim: int):
        super().__init__()
        self.norm1 = layer_norm(dim)
        self.attn = ClassAttention(dim, num_heads, head_dim)
        self.norm2 = layer_norm(dim)
        self.mlp = Mlp(dim, mlp_hidden_dim)

    def forward(self, local: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        local = local + self.attn.cross(self.norm1(local), self.norm1(tokens))
        return local + self.mlp(self.norm2(local))


class GlobalLocalCrossAttention(nn.Module):
    """DCAL's GLCA branch: rollout, top-R selection, `spec.glca_blocks` GLCA blocks, a
    norm and a head over the mean of the query tokens."""

    def __init__(self, spec: ModelSpec):
        super().__init__()
        dim = spec.embed_dim
        self.count = local_tokens(spec)
        self.register_buffer("identity", torch.eye(spec.num_patches + spec.num_prefix_tokens), persistent=False)
        self.blocks = nn.ModuleList(
            GlobalLocalBlock(dim, spec.num_heads, spec.head_dim, spec.mlp_hidden_dim) for _ in range(spec.glca_blocks))
        self.norm = layer_norm(dim)
        self.head = nn.Linear(dim, spec.num_classes, bias=spec.head_bias)

    def forward(self, tokens: torch.Tensor, maps: list[torch.Tensor]) -> torch.Tensor:
        """The GLCA head's logits from the last SA block's output `tokens` and the SA
        blocks' head-averaged attention `maps`."""
        local = torch.cat([tokens[:, :1], self.select(tokens[:, 1:], maps)], dim=1)
        for block in self.blocks:
            local = block(local, tokens)
        return self.head(self.norm(local).mean(dim=1))

    def select(self, patches: torch.Tensor, maps: list[torch.Tensor]) -> torch.Tensor:
        """The `count` patch tokens of `patches` [batch, patches, dim] that the rollout of
        `maps` ranks highest."""
        return select_tokens(patches, rollout_response(maps, self.identity), self.count)


class PairWiseCrossAttention(nn.Module):
    """DCAL's PWCA branch (training only, no weights of its own): the SA blocks run on the
    tokens of an image while each block's queries also attend to the keys and values of a
    second image's tokens at that block; the second image runs through the plain SA blocks."""

    def forward(self, blocks: nn.Sequential, x: torch.Tensor, pair: torch.Tensor) -> torch.Tensor:
        """The SA blocks' output for tokens `x` with `pair`'s tokens as distractors."""
        for block in blocks:
            q, k, v = _heads(block.attn, block.norm1(x))
            pair_q, pair_k, pair_v = _heads(block.attn, block.norm1(pair))
            out, _ = _attend(block.attn, q, torch.cat([k, pair_k], dim=-2), torch.cat([v, pair_v], dim=-2))
            pair_out, _ = _attend(block.attn, pair_q, pair_k, pair_v)
            x, pair = _feed_forward(block, x + out), _feed_forward(block, pair + pair_out)
        return x

    def reparameterize(self) -> nn.Module:
        """Nothing: inference runs without the branch, whose weights SA keeps."""
        return nn.Identity()
