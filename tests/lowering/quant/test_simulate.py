"""The fake-quant model: float when quantization is off, every bit width 3..8, every
post-softmax quantizer, quantizers where RepQ-ViT puts them."""

import itertools

import pytest
import torch

from lowering.models import create
from lowering.quant import (
    LogSqrt2Quantizer,
    NotCalibratedError,
    QuantConfig,
    ShiftUniformLog2Quantizer,
    UniformQuantizer,
    UnsupportedModelError,
    calibrate,
    fake_quantize,
    float_model,
    quantizers,
)
from lowering.quant.attention import FakeQuantAttention


@torch.no_grad()
def test_with_quantization_off_the_model_is_unchanged(model, images):
    calibrated = calibrate(model, images, QuantConfig(None, None))
    assert quantizers(calibrated.model) == []
    assert torch.equal(calibrated.model(images), model(images))
    assert calibrated.model.spec == model.spec


@pytest.mark.parametrize(
    "bits,post_softmax", list(itertools.product(range(3, 9), ["log-sqrt2", "sulq", "uniform"]))
)
def test_every_bit_width_and_softmax_quantizer_runs_and_stays_on_its_grid(model, images, bits, post_softmax):
    config = QuantConfig.repq(bits, bits, post_softmax)
    sim = calibrate(model, images, config).model
    with torch.no_grad():
        logits = sim(images)
    assert torch.isfinite(logits).all()
    members = quantizers(sim)
    assert all(q.fitted for q in members)
    softmax = sim.blocks[0].attn.softmax_quantizer
    expected = {"log-sqrt2": LogSqrt2Quantizer, "sulq": ShiftUniformLog2Quantizer, "uniform": UniformQuantizer}
    assert type(softmax) is expected[post_softmax] and softmax.bits == bits
    weight = sim.blocks[1].mlp.fc2.weight_quantizer
    codes = weight.codes(sim.blocks[1].mlp.fc2.linear.weight)
    assert codes.max() <= 2**bits - 1 and codes.min() >= 0
    assert weight.scale.shape == (sim.blocks[1].mlp.fc2.out_features,)
    assert sim.patch_embed.proj.input_quantizer.bits == 8  # the image stays 8-bit


@torch.no_grad()
def test_more_bits_means_closer_to_float(model, images):
    reference = model(images)
    errors = [
        (calibrate(model, images, QuantConfig.repq(bits, bits)).model(images) - reference).abs().mean()
        for bits in (3, 5, 8)
    ]
    assert errors[0] > errors[1] > errors[2]


def test_quantizer_placement(model):
    sim = fake_quantize(model, QuantConfig.repq(8, 8))
    attn = sim.blocks[0].attn
    assert isinstance(attn, FakeQuantAttention)
    # weights of every linear and of the patch embedding
    assert sum(isinstance(m.weight_quantizer, UniformQuantizer) for m in sim.modules() if hasattr(m, "weight_quantizer")) == 2 * 4 + 2
    # post-LayerNorm per channel before calibration; matmul inputs per tensor
    assert sim.blocks[0].norm1.output_quantizer.channel_axis == -1
    assert attn.query_quantizer.channel_axis is None and attn.proj.input_quantizer.channel_axis is None
    # the model given is untouched
    assert not any(isinstance(m, UniformQuantizer) for m in model.modules())


@torch.no_grad()
def test_weights_only_and_activations_only(model, images):
    weights_only = calibrate(model, images, QuantConfig(4, None)).model
    activations_only = calibrate(model, images, QuantConfig(None, 4)).model
    assert all(q.channel_axis == 0 for q in quantizers(weights_only))
    assert not any(getattr(q, "channel_axis", None) == 0 for q in quantizers(activations_only))
    assert not torch.equal(weights_only(images), model(images))


@torch.no_grad()
def test_branched_models_are_merged_before_quantizing(random_images):
    torch.manual_seed(0)
    branched = create("vit_tiny", depth=2, branches=2, img_size=32, patch_size=8, num_classes=10)
    images = random_images()
    sim = calibrate(branched, images, QuantConfig(None, None)).model
    torch.testing.assert_close(sim(images), branched(images), atol=1e-5, rtol=0)
    assert float_model(sim).spec.branches == 1


def test_running_uncalibrated_says_to_calibrate(model, images):
    with pytest.raises(NotCalibratedError, match="calibrate"):
        fake_quantize(model, QuantConfig())(images)


def test_only_lowering_vits_are_accepted():
    with pytest.raises(UnsupportedModelError, match="VisionTransformer"):
        fake_quantize(torch.nn.Linear(3, 3), QuantConfig())
