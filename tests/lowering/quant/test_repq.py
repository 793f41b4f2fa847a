"""RepQ-ViT scale reparameterization is exact: float outputs, LayerNorm codes, logits."""

import pytest
import torch
from torch import nn

from lowering.quant import (
    QuantConfig,
    calibrate,
    fake_quantize,
    float_model,
    fold_scales,
    scale_reparameterize,
)
from lowering.quant.layers import FakeQuantLayerNorm
from lowering.quant.repq import ScaleReparameterizationError, layer_norm_consumers


def _layer_norm_codes(model, images):
    """Integer codes at every LayerNorm output, and the logits."""
    codes = {}
    hooks = [
        module.output_quantizer.register_forward_hook(
            lambda quantizer, args, _, name=name: codes.__setitem__(name, quantizer.codes(args[0]))
        )
        for name, module in model.named_modules()
        if isinstance(module, FakeQuantLayerNorm)
    ]
    with torch.no_grad():
        logits = model(images)
    for hook in hooks:
        hook.remove()
    return codes, logits


@torch.no_grad()
def test_fold_with_quantization_off_changes_no_output(tiny_vit, random_images):
    model = tiny_vit()
    images = random_images()
    folded = tiny_vit()
    generator = torch.Generator().manual_seed(3)
    for norm_name, linear_names in layer_norm_consumers(folded):
        norm = folded.get_submodule(norm_name)
        scale = torch.rand(norm.weight.shape, generator=generator) * 0.2 + 0.01
        zero_point = torch.randint(0, 256, norm.weight.shape, generator=generator).float()
        fold_scales(norm, [folded.get_submodule(n) for n in linear_names], scale, zero_point)
        assert not torch.allclose(norm.weight, model.get_submodule(norm_name).weight)
    torch.testing.assert_close(folded(images), model(images), atol=1e-5, rtol=0)


@pytest.mark.parametrize("name", ["vit_tiny", "deit_tiny_distilled"])
def test_reparameterized_calibrated_model_in_float_equals_the_original(tiny_vit, random_images, name):
    model = tiny_vit(name=name)
    images = random_images()
    calibrated = calibrate(model, images, QuantConfig(weight_bits=4, activation_bits=4))
    plain = float_model(calibrated.model)
    assert not torch.allclose(plain.norm.weight, model.norm.weight)
    with torch.no_grad():
        torch.testing.assert_close(plain(images), model(images), atol=1e-5, rtol=0)


@pytest.mark.parametrize("bits", [3, 4, 6, 8])
def test_per_channel_and_reparameterized_give_identical_codes_and_logits(tiny_vit, random_images, bits):
    # Checked in float64: in float32 a value that lands within rounding error of a
    # rounding boundary can take the neighbouring code in one of the two models.
    model = tiny_vit(torch.float64)
    images = random_images(dtype=torch.float64)
    per_channel = calibrate(model, images, QuantConfig(None, bits, post_layernorm="per-channel")).model
    reparameterized = scale_reparameterize(per_channel)
    codes_before, logits_before = _layer_norm_codes(per_channel, images)
    codes_after, logits_after = _layer_norm_codes(reparameterized, images)
    assert codes_before.keys() == codes_after.keys() and len(codes_before) == 5
    for name in codes_before:
        assert torch.equal(codes_before[name], codes_after[name]), name
        quantizer = reparameterized.get_submodule(name).output_quantizer
        assert quantizer.scale.dim() == 0 and quantizer.zero_point == quantizer.zero_point.round()
    torch.testing.assert_close(logits_after, logits_before, atol=1e-5, rtol=0)
    # and the per-channel quantizers really differed per channel
    scales = per_channel.blocks[0].norm1.output_quantizer.scale
    assert scales.max() > 2 * scales.min()


def test_per_tensor_parameters_are_the_mean_scale_and_rounded_mean_zero_point(model, images):
    per_channel = calibrate(model, images, QuantConfig(None, 6, post_layernorm="per-channel")).model
    before = per_channel.blocks[1].norm2.output_quantizer
    after = scale_reparameterize(per_channel).blocks[1].norm2.output_quantizer
    torch.testing.assert_close(after.scale, before.scale.double().mean().float())
    assert after.zero_point == before.zero_point.mean().round()


def test_reparameterizing_needs_calibrated_per_channel_quantizers(model, images):
    per_tensor = calibrate(model, images, QuantConfig.minmax(8, 8)).model
    with pytest.raises(ScaleReparameterizationError, match="per-channel"):
        scale_reparameterize(per_tensor)
    with pytest.raises(ScaleReparameterizationError, match="not calibrated"):
        scale_reparameterize(fake_quantize(model, QuantConfig(post_layernorm="per-channel")))


def test_the_calibrated_repq_model_is_per_tensor_everywhere(model, images):
    calibrated = calibrate(model, images, QuantConfig.repq(4, 4)).model
    for module in calibrated.modules():
        if isinstance(module, FakeQuantLayerNorm):
            assert module.output_quantizer.channel_axis is None
    assert isinstance(calibrated.blocks[0].norm1.norm, nn.LayerNorm)
