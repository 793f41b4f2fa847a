"""Fake-quant (simulated quantization) copies of a ViT, and the way back to float.

    fake_quantize(model, config) -> uncalibrated fake-quant copy (calibrate it next)
    quantizers(model) -> every quantizer in a fake-quant model
    float_model(model) -> the float network inside a fake-quant model (folded weights kept)

Where quantizers sit (RepQ-ViT's placement): weights of every linear and of the patch
embedding (per output channel); the image entering the patch embedding (8 bits); every
LayerNorm output (per channel until scale reparameterization, or per tensor); the
queries, keys and values; the softmax output (log-sqrt2, SULQ or uniform); the inputs
of the attention projection and of the second FFN linear. Residual additions, GELU,
softmax and LayerNorm themselves compute in float.
"""

from __future__ import annotations

import copy

from torch import nn

from vitdeploy.errors import VitdeployError
from lowering.models import VisionTransformer
from lowering.models.layers import Attention, Block
from lowering.quant.attention import FakeQuantAttention
from lowering.quant.config import IMAGE_INPUT_BITS, QuantConfig
from lowering.quant.layers import FakeQuantConv2d, FakeQuantLayerNorm, FakeQuantLinear
from lowering.quant.quantizers import (
    LogSqrt2Quantizer,
    Quantizer,
    ShiftUniformLog2Quantizer,
    UniformQuantizer,
)
from lowering.reparam import reparameterize

CHANNEL_AXIS = -1


class UnsupportedModelError(VitdeployError):
    """The model is not a ViT of `lowering.models` that the quantizer knows how to wrap."""


def _uniform(bits: int | None, config: QuantConfig, channel_axis: int | None = None) -> nn.Module:
    if bits is None:
        return nn.Identity()
    return UniformQuantizer(bits, channel_axis, config.range_search)


def _weights(config: QuantConfig) -> nn.Module:
    return _uniform(config.weight_bits, config, channel_axis=0)


def _activations(config: QuantConfig) -> nn.Module:
    return _uniform(config.activation_bits, config)


def _post_layernorm(config: QuantConfig) -> nn.Module:
    per_channel = config.post_layernorm in ("reparameterized", "per-channel")
    return _uniform(config.activation_bits, config, CHANNEL_AXIS if per_channel else None)


def _post_softmax(config: QuantConfig) -> nn.Module:
    bits = config.activation_bits
    if bits is None:
        return nn.Identity()
    if config.post_softmax == "log-sqrt2":
        return LogSqrt2Quantizer(bits, config.range_search)
    if config.post_softmax == "sulq":
        return ShiftUniformLog2Quantizer(bits)
    return UniformQuantizer(bits, None, config.range_search)


def _linear(linear: nn.Linear, config: QuantConfig, input_quantizer: nn.Module) -> FakeQuantLinear:
    return FakeQuantLinear(linear, _weights(config), input_quantizer)


def _attention(attention: Attention, config: QuantConfig) -> FakeQuantAttention:
    return FakeQuantAttention(
        attention,
        qkv=_linear(attention.qkv, config, nn.Identity()),
        proj=_linear(attention.proj, config, _activations(config)),
        query_quantizer=_activations(config),
        key_quantizer=_activations(config),
        value_quantizer=_activations(config),
        softmax_quantizer=_post_softmax(config),
    )


def fake_quantize(model: VisionTransformer, config: QuantConfig) -> VisionTransformer:
    """An uncalibrated fake-quant copy of `model` (the input is left untouched).

    Branched blocks are merged first (`lowering.reparam.reparameterize`). With
    `config.post_layernorm == "reparameterized"` the LayerNorm outputs start per
    channel; `lowering.quant.calibrate` fits every quantizer and then applies the
    scale reparameterization.
    """
    if not isinstance(model, VisionTransformer):
        raise UnsupportedModelError(
            f"fake_quantize needs a lowering.models VisionTransformer, got {type(model).__name__}"
        )
    if model.spec.kv_heads is not None:
        raise UnsupportedModelError(
            "fake-quant simulation covers multi-head attention only; this model has grouped-query attention "
            f"({model.spec.kv_heads} key/value heads). Lower it with --quant int8 to measure int8 instead"
        )
    if model.spec.glca_blocks:
        raise UnsupportedModelError(
            "fake-quant simulation covers the self-attention blocks only; this DCAL model's global-local "
            "cross-attention branch (rollout, top-k token selection, its own blocks and head) would stay float "
            "and uncalibrated. Lower it with int8 ranges from the runtimes (int8_ranges='runtime', "
            "CLI --int8-ranges runtime) instead"
        )
    sim = reparameterize(model)
    image_bits = IMAGE_INPUT_BITS if config.activation_bits is not None else None
    sim.patch_embed.proj = FakeQuantConv2d(sim.patch_embed.proj, _weights(config), _uniform(image_bits, config))
    for index, block in enumerate(sim.blocks):
        if not isinstance(block, Block) or not isinstance(block.attn, Attention):
            raise UnsupportedModelError(
                f"block {index} is a {type(block).__name__}, not a plain pre-norm Block: "
                "quantize an unquantized lowering.models ViT"
            )
        block.norm1 = FakeQuantLayerNorm(block.norm1, _post_layernorm(config))
        block.attn = _attention(block.attn, config)
        block.norm2 = FakeQuantLayerNorm(block.norm2, _post_layernorm(config))
        block.mlp.fc1 = _linear(block.mlp.fc1, config, nn.Identity())
        block.mlp.fc2 = _linear(block.mlp.fc2, config, _activations(config))
    sim.norm = FakeQuantLayerNorm(sim.norm, _post_layernorm(config))
    sim.head = _linear(sim.head, config, nn.Identity())
    if hasattr(sim, "head_dist"):
        sim.head_dist = _linear(sim.head_dist, config, nn.Identity())
    return sim.eval()


def quantizers(model: nn.Module) -> list[Quantizer]:
    """Every quantizer in `model`, in module order."""
    return [module for module in model.modules() if isinstance(module, Quantizer)]


def float_model(model: VisionTransformer) -> VisionTransformer:
    """A float copy of a fake-quant model: every wrapper replaced by the float layer it
    wraps, with whatever scale reparameterization folded into them."""
    plain = copy.deepcopy(model)
    plain.patch_embed.proj = _unwrap(plain.patch_embed.proj)
    for block in plain.blocks:
        block.norm1 = _unwrap(block.norm1)
        block.norm2 = _unwrap(block.norm2)
        block.mlp.fc1 = _unwrap(block.mlp.fc1)
        block.mlp.fc2 = _unwrap(block.mlp.fc2)
        if isinstance(block.attn, FakeQuantAttention):
            attention = Attention(block.attn.qkv.in_features, block.attn.num_heads, block.attn.head_dim,
                                  block.attn.kind)
            attention.qkv = _unwrap(block.attn.qkv)
            attention.proj = _unwrap(block.attn.proj)
            block.attn = attention
    plain.norm = _unwrap(plain.norm)
    plain.head = _unwrap(plain.head)
    if hasattr(plain, "head_dist"):
        plain.head_dist = _unwrap(plain.head_dist)
    return plain.eval()


def _unwrap(module: nn.Module) -> nn.Module:
    if isinstance(module, FakeQuantLinear):
        return module.linear
    if isinstance(module, FakeQuantConv2d):
        return module.conv
    if isinstance(module, FakeQuantLayerNorm):
        return module.norm
    return module
