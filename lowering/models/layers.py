"""The building blocks of a ViT, with timm's parameter names and numerics."""

from __future__ import annotations

import torch
from torch import nn

LAYER_NORM_EPS = 1e-6
# How attention turns scores into weights (MPCViT's heterogeneous attention space):
# "softmax"; "relu", ReLU of the scores over their sum across keys (at least
# RELU_ATTENTION_EPS); "scaling", the scores over the number of tokens, no normalization.
# The epsilon bounds the sum from below instead of adding to it: static int8 quantizes
# every addition, and small quantized sums round towards zero (a random-initialized
# ViT's ExecuTorch int8 logits: cosine 0.82 to eager with the addition, 0.87 without).
ATTENTION_KINDS = ("softmax", "relu", "scaling")
RELU_ATTENTION_EPS = 1e-6


def layer_norm(dim: int) -> nn.LayerNorm:
    return nn.LayerNorm(dim, eps=LAYER_NORM_EPS)


class PatchEmbed(nn.Module):
    """Cuts the image into non-overlapping patches and projects each to `embed_dim`."""

    def __init__(self, img_size: int, patch_size: int, in_chans: int, embed_dim: int):
        super().__init__()
        self.img_size = img_size
        self.patch_size = patch_size
        self.proj = nn.Conv2d(in_chans, embed_dim, kernel_size=patch_size, stride=patch_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x).flatten(2).transpose(1, 2)


class MultiHeadAttention(nn.Module):
    """Multi-head self-attention between a `qkv` and a `proj` module, written once.

    `attend` computes weights(q k^T * scale) v for each of `num_heads` heads of width
    `head_dim`, the weights as `kind` (one of ATTENTION_KINDS) makes them. Variants
    override only its hooks: the layout (`split_heads`, `keys_transposed`, `matmul`,
    `merge_heads`; here [batch, heads, tokens, head_dim] tensors multiplied with
    `torch.matmul`) and the products' inputs (`transform_heads`, `transform_weights`;
    identities here).
    """

    matmul = staticmethod(torch.matmul)

    def __init__(self, num_heads: int, head_dim: int, qkv: nn.Module, proj: nn.Module, kind: str = "softmax"):
        super().__init__()
        if kind not in ATTENTION_KINDS:
            raise ValueError(f"unknown attention {kind!r}; choose from {', '.join(ATTENTION_KINDS)}")
        self.num_heads = num_heads
        self.head_dim = head_dim
        self.scale = head_dim**-0.5
        self.kind = kind
        self.qkv = qkv
        self.proj = proj

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(self.attend(self.qkv(x)))

    def attend(self, qkv: torch.Tensor) -> torch.Tensor:
        """The heads' attention over a qkv product [batch, tokens, 3 * heads * head_dim]
        (queries, keys, values), merged into [batch, tokens, heads * head_dim].

        Scaling attention is linear in the values, so with more keys than head features
        it multiplies k^T v first: q (k^T v) takes tokens x head_dim^2 MACs per head
        where (q k^T) v takes tokens^2 x head_dim.
        """
        return self.merge_heads(self.attend_heads(*self.transform_heads(*self.split_heads(qkv))))

    def attend_heads(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """Attention of queries q over keys k and values v, laid out as `split_heads` gives them."""
        keys = v.shape[-2]
        if self.kind == "scaling" and self.head_dim < keys:
            context = self.matmul(self.keys_transposed(k), v)
            return self.matmul(q * (self.scale / keys), context)
        return self.matmul(self.transform_weights(self.attention_weights(q, k)), v)

    def attention_weights(self, q: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        """The weights [..., queries, keys] of queries q over keys k, laid out as `split_heads` gives them."""
        return self.weights(self.matmul(q * self.scale, self.keys_transposed(k)))

    def weights(self, scores: torch.Tensor) -> torch.Tensor:
        """The attention weights of `scores` [..., queries, keys], as `kind` makes them."""
        if self.kind == "softmax":
            return scores.softmax(dim=-1)
        if self.kind == "relu":
            positive = torch.relu(scores)
            return positive / positive.sum(dim=-1, keepdim=True).clamp_min(RELU_ATTENTION_EPS)
        return scores * (1.0 / scores.shape[-1])  # a float factor: an integer divisor lowers to a cast

    def split_heads(self, qkv: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Queries, keys and values [batch, heads, tokens, head_dim] of a qkv product."""
        batch, tokens, _ = qkv.shape
        return qkv.reshape(batch, tokens, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4).unbind(0)

    def keys_transposed(self, k: torch.Tensor) -> torch.Tensor:
        """The keys as `split_heads` gives them, as the right operand of q k^T."""
        return k.transpose(-2, -1)

    def merge_heads(self, out: torch.Tensor) -> torch.Tensor:
        """The heads' outputs as [batch, tokens, heads * head_dim]."""
        batch, heads, tokens, width = out.shape
        return out.transpose(1, 2).reshape(batch, tokens, heads * width)

    def transform_heads(
        self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The queries, keys and values, as `split_heads` lays them out, that enter the products."""
        return q, k, v

    def transform_weights(self, weights: torch.Tensor) -> torch.Tensor:
        """The softmax output that enters the product with the values."""
        return weights


class Attention(MultiHeadAttention):
    """Multi-head self-attention with `num_heads` heads of width `head_dim` and timm's
    `qkv` and `proj` linears.

    The heads' total width may differ from the model width (a merged branched block
    has more heads than the model width holds).
    """

    def __init__(self, dim: int, num_heads: int, head_dim: int, kind: str = "softmax"):
        inner = num_heads * head_dim
        super().__init__(num_heads, head_dim, nn.Linear(dim, 3 * inner), nn.Linear(inner, dim), kind)


class GroupedQueryAttention(MultiHeadAttention):
    """Grouped-query attention: `groups[g]` consecutive query heads share key and value
    head g (len(groups) key/value heads in all). `qkv` holds every query head, then the
    key heads, then the value heads, each `head_dim` wide.

    With equal groups, a group's queries are stacked along the tokens and attend in one
    product against their shared keys (no repeated keys or values); unequal groups (a
    key-norm allocation, `lowering.models.grouped_query`) attend one group at a time.
    """

    def __init__(self, dim: int, num_heads: int, head_dim: int, groups: tuple[int, ...], kind: str = "softmax"):
        if sum(groups) != num_heads or min(groups) < 1:
            raise ValueError(f"query groups {groups} must be positive and add up to the {num_heads} heads")
        width = (num_heads + 2 * len(groups)) * head_dim
        super().__init__(num_heads, head_dim, nn.Linear(dim, width), nn.Linear(num_heads * head_dim, dim), kind)
        self.groups = tuple(groups)

    def attend(self, qkv: torch.Tensor) -> torch.Tensor:
        batch, tokens, _ = qkv.shape
        heads, kv_heads, width = self.num_heads, len(self.groups), self.head_dim
        q = qkv[:, :, : heads * width]
        k = qkv[:, :, heads * width : (heads + kv_heads) * width].reshape(batch, tokens, kv_heads, width).transpose(1, 2)
        v = qkv[:, :, (heads + kv_heads) * width :].reshape(batch, tokens, kv_heads, width).transpose(1, 2)
        if len(set(self.groups)) == 1:
            size = self.groups[0]
            stacked = q.reshape(batch, tokens, kv_heads, size, width).permute(0, 2, 3, 1, 4)
            out = self.attend_heads(stacked.reshape(batch, kv_heads, size * tokens, width), k, v)
        else:
            outputs, first = [], 0
            for group, size in enumerate(self.groups):
                stacked = q[:, :, first * width : (first + size) * width].reshape(batch, tokens, size, width)
                stacked = stacked.permute(0, 2, 1, 3).reshape(batch, 1, size * tokens, width)
                outputs.append(self.attend_heads(stacked, k[:, group : group + 1], v[:, group : group + 1])
                               .reshape(batch, size, tokens, width))
                first += size
            out = torch.cat(outputs, dim=1)
        return self.merge_heads(out.reshape(batch, heads, tokens, width))


class Mlp(nn.Module):
    """The feed-forward network: linear, exact GELU, linear."""

    def __init__(self, dim: int, hidden_dim: int):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden_dim)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden_dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class Block(nn.Module):
    """A pre-norm Transformer block: x + attn(norm1(x)), then x + mlp(norm2(x))."""

    def __init__(self, dim: int, num_heads: int, head_dim: int, mlp_hidden_dim: int, attention: str = "softmax",
                 query_groups: tuple[int, ...] | None = None):
        super().__init__()
        self.norm1 = layer_norm(dim)
        self.attn = (Attention(dim, num_heads, head_dim, attention) if query_groups is None
                     else GroupedQueryAttention(dim, num_heads, head_dim, query_groups, attention))
        self.norm2 = layer_norm(dim)
        self.mlp = Mlp(dim, mlp_hidden_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))

    def layout(self) -> dict:
        """The block's structural fields, in ModelSpec's terms."""
        return {
            "num_heads": self.attn.num_heads,
            "head_dim": self.attn.head_dim,
            "mlp_ratio": self.mlp.fc1.out_features / self.mlp.fc1.in_features,
            "branches": 1,
            "attention": self.attn.kind,
            "query_groups": getattr(self.attn, "groups", None),
        }
