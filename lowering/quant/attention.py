"""Multi-head self-attention with quantized matmul inputs, for fake-quant simulation.

It computes what `lowering.models.layers.Attention` computes, with the same weights,
plus quantizers where RepQ-ViT puts them: the inputs of the two matmuls (queries and
keys of `q k^T`; the softmax output and the values of `A v`) and the inputs and
weights of the two linears.
"""

from __future__ import annotations

import torch
from torch import nn

from lowering.models.layers import Attention
from lowering.quant.layers import FakeQuantLinear


class FakeQuantAttention(nn.Module):
    """Replaces an `Attention`, reading its `qkv` and `proj` through fake-quant linears."""

    def __init__(
        self,
        attention: Attention,
        qkv: FakeQuantLinear,
        proj: FakeQuantLinear,
        query_quantizer: nn.Module,
        key_quantizer: nn.Module,
        value_quantizer: nn.Module,
        softmax_quantizer: nn.Module,
    ):
        super().__init__()
        self.num_heads = attention.num_heads
        self.head_dim = attention.head_dim
        self.scale = attention.scale
        self.qkv = qkv
        self.proj = proj
        self.query_quantizer = query_quantizer
        self.key_quantizer = key_quantizer
        self.value_quantizer = value_quantizer
        self.softmax_quantizer = softmax_quantizer

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, tokens, _ = x.shape
        qkv = self.qkv(x).reshape(batch, tokens, 3, self.num_heads, self.head_dim)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)
        q, k, v = self.query_quantizer(q), self.key_quantizer(k), self.value_quantizer(v)
        attn = ((q * self.scale) @ k.transpose(-2, -1)).softmax(dim=-1)
        attn = self.softmax_quantizer(attn)
        out = (attn @ v).transpose(1, 2).reshape(batch, tokens, self.num_heads * self.head_dim)
        return self.proj(out)
