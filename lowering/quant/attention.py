"""Multi-head self-attention with quantized matmul inputs, for fake-quant simulation.

It computes what `lowering.models.layers.Attention` computes, with the same weights,
plus quantizers where RepQ-ViT puts them: the inputs of the two matmuls (queries and
keys of `q k^T`; the softmax output and the values of `A v`) and the inputs and
weights of the two linears.
"""

from __future__ import annotations

import torch
from torch import nn

from lowering.models.layers import Attention, MultiHeadAttention
from lowering.quant.layers import FakeQuantLinear


class FakeQuantAttention(MultiHeadAttention):
    """Replaces an `Attention`, reading its `qkv` and `proj` through fake-quant linears
    and fake-quantizing the inputs of its two matmuls."""

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
        super().__init__(attention.num_heads, attention.head_dim, qkv, proj, attention.kind)
        self.query_quantizer = query_quantizer
        self.key_quantizer = key_quantizer
        self.value_quantizer = value_quantizer
        self.softmax_quantizer = softmax_quantizer

    def transform_heads(
        self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return self.query_quantizer(q), self.key_quantizer(k), self.value_quantizer(v)

    def transform_weights(self, weights: torch.Tensor) -> torch.Tensor:
        return self.softmax_quantizer(weights)
