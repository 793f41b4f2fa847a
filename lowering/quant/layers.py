"""Fake-quant wrappers of a ViT's float layers; each keeps the float layer it wraps.

Keeping the float module (`.linear`, `.conv`, `.norm`) lets scale reparameterization
fold into the real weights and lets `lowering.quant.simulate.float_model` take the
folded float network back out.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class FakeQuantLinear(nn.Module):
    """A linear layer with fake-quantized weights and (optionally) input.

    `input_quantizer` is `nn.Identity()` where the input was already quantized by the
    layer that produced it (a LayerNorm output) or stays float.
    """

    def __init__(self, linear: nn.Linear, weight_quantizer: nn.Module, input_quantizer: nn.Module):
        super().__init__()
        self.linear = linear
        self.weight_quantizer = weight_quantizer
        self.input_quantizer = input_quantizer

    @property
    def in_features(self) -> int:
        return self.linear.in_features

    @property
    def out_features(self) -> int:
        return self.linear.out_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight = self.weight_quantizer(self.linear.weight)
        return F.linear(self.input_quantizer(x), weight, self.linear.bias)


class FakeQuantConv2d(nn.Module):
    """A convolution (the patch embedding) with fake-quantized weights and input."""

    def __init__(self, conv: nn.Conv2d, weight_quantizer: nn.Module, input_quantizer: nn.Module):
        super().__init__()
        self.conv = conv
        self.weight_quantizer = weight_quantizer
        self.input_quantizer = input_quantizer

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        conv = self.conv
        weight = self.weight_quantizer(conv.weight)
        return F.conv2d(
            self.input_quantizer(x), weight, conv.bias, conv.stride, conv.padding, conv.dilation, conv.groups
        )


class FakeQuantLayerNorm(nn.Module):
    """A LayerNorm whose output is fake-quantized (the input of the linears after it)."""

    def __init__(self, norm: nn.LayerNorm, output_quantizer: nn.Module):
        super().__init__()
        self.norm = norm
        self.output_quantizer = output_quantizer

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.output_quantizer(self.norm(x))
