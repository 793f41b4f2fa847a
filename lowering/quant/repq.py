"""RepQ-ViT's scale reparameterization of post-LayerNorm activations.

Li et al., "RepQ-ViT: Scale Reparameterization for Post-Training Quantization of Vision
Transformers", ICCV 2023. A LayerNorm output quantized per channel with scale `s` and
integer zero point `z` becomes per-tensor with `s~ = mean(s)` and `z~ = round(mean(z))`.
With `r1 = s / s~` and `r2 = z - z~` the LayerNorm affine and the linears reading it
absorb the difference:

    LayerNorm:   gamma~ = gamma / r1,   beta~ = (beta + s * r2) / r1
    next linear: W~ = W diag(r1),       b~ = b - W (s * r2)

Then `round(y~ / s~) + z~ = round(y / s) + z` for every element (because `r2` is an
integer), so the integer codes are unchanged and the linear's output is the same; with
no quantization at all the network's output is the same too.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from torch import nn

from vitdeploy.errors import VitdeployError
from lowering.quant.layers import FakeQuantLayerNorm, FakeQuantLinear
from lowering.quant.quantizers import UniformQuantizer


class ScaleReparameterizationError(VitdeployError):
    """The model is not ready for scale reparameterization (uncalibrated or not per channel)."""


def layer_norm_consumers(model: nn.Module) -> list[tuple[str, list[str]]]:
    """(LayerNorm name, names of the linears reading its output) for every LayerNorm of a
    (float or fake-quant) ViT of `lowering.models`."""
    pairs = []
    for index in range(len(model.blocks)):
        prefix = f"blocks.{index}"
        pairs.append((f"{prefix}.norm1", [f"{prefix}.attn.qkv"]))
        pairs.append((f"{prefix}.norm2", [f"{prefix}.mlp.fc1"]))
    heads = ["head", "head_dist"] if hasattr(model, "head_dist") else ["head"]
    pairs.append(("norm", heads))
    return pairs


@dataclass(frozen=True)
class ScaleFold:
    """The fold of one per-channel quantization (`scale`, integer `zero_point`, one per
    channel) into a LayerNorm affine and the linears after it (see the module docstring).
    Computed in float64; `tensor_scale` and `tensor_zero_point` replace the per-channel
    parameters."""

    scale: torch.Tensor
    r1: torch.Tensor
    r2: torch.Tensor
    tensor_scale: torch.Tensor
    tensor_zero_point: torch.Tensor

    @classmethod
    def of(cls, scale: torch.Tensor, zero_point: torch.Tensor) -> ScaleFold:
        s, z = scale.double().reshape(-1), zero_point.double().reshape(-1)
        tensor_scale, tensor_zero_point = s.mean(), z.mean().round()
        return cls(s, s / tensor_scale, z - tensor_zero_point, tensor_scale, tensor_zero_point)

    def norm(self, gamma: torch.Tensor, beta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The LayerNorm's new weight and bias (in their dtype)."""
        new_gamma = gamma.double() / self.r1
        new_beta = (beta.double() + self.scale * self.r2) / self.r1
        return new_gamma.to(gamma.dtype), new_beta.to(beta.dtype)

    def linear(self, weight: torch.Tensor, bias: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """A reading linear's new weight and bias (in their dtype)."""
        w = weight.double()
        new_bias = bias.double() - w @ (self.scale * self.r2)
        return (w * self.r1).to(weight.dtype), new_bias.to(bias.dtype)


@torch.no_grad()
def fold_scales(
    norm: nn.LayerNorm, linears: list[nn.Linear], scale: torch.Tensor, zero_point: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Fold per-channel quantization parameters of `norm`'s output into `norm` and the
    `linears` that read it (in place, computed in float64).

    Returns the per-tensor scale and integer zero point that replace them.
    """
    fold = ScaleFold.of(scale, zero_point)
    gamma, beta = fold.norm(norm.weight, norm.bias)
    norm.weight.copy_(gamma)
    norm.bias.copy_(beta)
    for linear in linears:
        weight, bias = fold.linear(linear.weight, linear.bias)
        linear.weight.copy_(weight)
        linear.bias.copy_(bias)
    return fold.tensor_scale.to(scale.dtype), fold.tensor_zero_point.to(zero_point.dtype)


@torch.no_grad()
def scale_reparameterize(model: nn.Module) -> nn.Module:
    """A copy of a calibrated fake-quant ViT whose per-channel LayerNorm-output quantizers
    are folded (see the module docstring) into per-tensor ones.

    The weight quantizers of the linears that absorbed the fold are refitted to their
    new weights; every other quantizer keeps its parameters.
    """
    folded = copy.deepcopy(model)
    for norm_name, linear_names in layer_norm_consumers(folded):
        norm = folded.get_submodule(norm_name)
        quantizer = norm.output_quantizer if isinstance(norm, FakeQuantLayerNorm) else None
        if not isinstance(quantizer, UniformQuantizer) or quantizer.channel_axis is None:
            raise ScaleReparameterizationError(
                f"{norm_name} has no per-channel output quantizer: build the model with "
                "post_layernorm='per-channel' (or 'reparameterized') and quantized activations"
            )
        if not quantizer.fitted:
            raise ScaleReparameterizationError(
                f"{norm_name}'s output quantizer is not calibrated: calibrate before reparameterizing"
            )
        consumers = [folded.get_submodule(name) for name in linear_names]
        if not all(isinstance(c, FakeQuantLinear) for c in consumers):
            raise ScaleReparameterizationError(f"{', '.join(linear_names)} must be fake-quant linears")
        scale, zero_point = fold_scales(
            norm.norm, [c.linear for c in consumers], quantizer.scale, quantizer.zero_point
        )
        quantizer.set_params(scale, zero_point, channel_axis=None)
        for consumer in consumers:
            if isinstance(consumer.weight_quantizer, UniformQuantizer):
                consumer.weight_quantizer.reset()
                consumer.weight_quantizer.fit(consumer.linear.weight)
    return folded
