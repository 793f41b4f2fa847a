"""Quantizer properties: code ranges, per-channel axes, integral zero points, the
log-sqrt2 and SULQ definitions, and every bit width from 3 to 8."""

import math

import pytest
import torch

from lowering.quant import (
    LogSqrt2Quantizer,
    NotCalibratedError,
    QuantConfig,
    QuantConfigError,
    ShiftUniformLog2Quantizer,
    UniformQuantizer,
)
from lowering.quant.quantizers import log_sqrt2_dequantize

BITS = range(3, 9)


def _fitted(quantizer, x):
    quantizer.fit(x)
    return quantizer


def _softmax_like(seed: int = 0, dtype=torch.float32) -> torch.Tensor:
    logits = torch.randn(4, 3, 17, 17, generator=torch.Generator().manual_seed(seed)) * 3
    return logits.softmax(dim=-1).to(dtype)


@pytest.mark.parametrize("bits", BITS)
@pytest.mark.parametrize("range_search", ["percentile", "minmax"])
@pytest.mark.parametrize("channel_axis", [None, 0, -1])
def test_uniform_codes_lie_in_range_and_zero_points_are_integral(bits, range_search, channel_axis):
    x = torch.randn(6, 5, 7, generator=torch.Generator().manual_seed(bits)) * 4 + 1
    quantizer = _fitted(UniformQuantizer(bits, channel_axis, range_search), x)
    codes = quantizer.codes(x * 3)  # values beyond the calibrated range clamp
    assert codes.min() >= 0 and codes.max() <= 2**bits - 1
    assert torch.equal(codes, codes.round())
    assert torch.equal(quantizer.zero_point, quantizer.zero_point.round())
    assert quantizer.zero_point.min() >= 0 and quantizer.zero_point.max() <= 2**bits - 1
    expected_shape = () if channel_axis is None else (x.shape[channel_axis],)
    assert quantizer.scale.shape == expected_shape
    assert torch.equal(quantizer(x), quantizer.dequantize(quantizer.codes(x)))
    # dequantized values sit on the grid: (x^ / scale) + zero_point is an integer code
    if channel_axis is None:
        grid = quantizer(x) / quantizer.scale + quantizer.zero_point
        assert torch.allclose(grid, grid.round(), atol=1e-3)


@pytest.mark.parametrize("channel_axis", [0, 1, -1])
def test_per_channel_parameters_follow_the_channel_axis(channel_axis):
    x = torch.randn(4, 6, 8, generator=torch.Generator().manual_seed(0))
    x = x * torch.arange(1, x.shape[channel_axis] + 1).reshape(
        [-1 if d == channel_axis % 3 else 1 for d in range(3)]
    )
    quantizer = _fitted(UniformQuantizer(4, channel_axis, "minmax"), x)
    for index in range(x.shape[channel_axis]):
        alone = _fitted(UniformQuantizer(4, None, "minmax"), x.select(channel_axis, index))
        assert torch.equal(quantizer.scale[index], alone.scale)
        assert torch.equal(quantizer.zero_point[index], alone.zero_point)
        assert torch.equal(quantizer(x).select(channel_axis, index), alone(x.select(channel_axis, index)))


@pytest.mark.parametrize("bits", BITS)
def test_quantization_error_is_at_most_half_a_step_inside_the_range(bits):
    x = torch.rand(1000, generator=torch.Generator().manual_seed(bits)) * 10 - 3
    quantizer = _fitted(UniformQuantizer(bits, None, "minmax"), x)
    assert (quantizer(x) - x).abs().max() <= quantizer.scale / 2 + 1e-6


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("bits", BITS)
def test_log_sqrt2_dequantization_is_the_papers_formula_exactly(bits, dtype):
    scale = torch.tensor(0.8125, dtype=dtype)
    codes = torch.arange(0, 2**bits + 3, dtype=dtype)
    values = log_sqrt2_dequantize(codes, scale, bits)
    sqrt2 = torch.tensor(math.sqrt(2.0), dtype=dtype)
    for q, value in zip(codes.tolist(), values):
        if q >= 2**bits:
            assert value == 0
        else:
            power = torch.tensor(2.0 ** -math.ceil(q / 2), dtype=dtype)
            expected = scale * power * (sqrt2 if int(q) % 2 else torch.tensor(1.0, dtype=dtype))
            assert value == expected, (q, value, expected)
    # the levels are s * 2^(-q/2)
    torch.testing.assert_close(values[: 2**bits], scale * 2.0 ** (-codes[: 2**bits] / 2))


@pytest.mark.parametrize("bits", BITS)
def test_log_sqrt2_codes_and_zero(bits):
    attn = _softmax_like(bits)
    quantizer = _fitted(LogSqrt2Quantizer(bits), attn)
    codes = quantizer.codes(torch.cat([attn.flatten(), torch.zeros(3)]))
    assert codes.min() >= 0 and codes.max() <= 2**bits
    assert torch.equal(codes, codes.round())
    assert (codes[-3:] == 2**bits).all()  # exact zeros take the zero code
    assert (quantizer.dequantize(torch.tensor([2.0**bits, 2.0**bits + 7])) == 0).all()
    assert quantizer.scale <= attn.max()


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("bits", BITS)
def test_sulq_emits_at_most_2_to_the_b_powers_of_two_minus_eta(bits, dtype):
    attn = _softmax_like(bits, dtype)
    quantizer = _fitted(ShiftUniformLog2Quantizer(bits), attn)
    probe = torch.cat([attn.flatten(), torch.linspace(0, 1, 5000, dtype=dtype)])
    values = torch.unique(quantizer(probe))
    assert len(values) <= 2**bits
    mantissa, _ = torch.frexp(values + quantizer.eta)
    assert torch.all(mantissa == 0.5), "every value plus eta must be a power of two"
    assert quantizer(torch.zeros(1, dtype=dtype)) == 0  # eta is a power of two
    codes = quantizer.codes(probe)
    assert codes.min() >= 0 and codes.max() <= 2**bits - 1


def test_sulq_picks_the_eta_with_the_lowest_error():
    attn = _softmax_like()
    chosen = _fitted(ShiftUniformLog2Quantizer(4), attn)
    best = ((chosen(attn) - attn) ** 2).sum()
    for eta in (2.0**-4, 2.0**-16):
        other = ShiftUniformLog2Quantizer(4)
        other.eta = torch.tensor(eta)
        other.low, high = torch.log2(attn + eta).min(), torch.log2(attn + eta).max()
        other.step = (high - other.low) / 15
        assert best <= ((other(attn) - attn) ** 2).sum()


def test_an_uncalibrated_quantizer_says_so():
    with pytest.raises(NotCalibratedError, match="calibrate"):
        UniformQuantizer(8)(torch.ones(3))


@pytest.mark.parametrize("bits", [2, 9, 0, 8.0, True])
def test_bit_widths_outside_3_to_8_are_refused(bits):
    with pytest.raises(QuantConfigError, match="3 to 8"):
        QuantConfig(weight_bits=bits)


def test_unknown_quantizer_names_are_refused():
    with pytest.raises(QuantConfigError, match="log-sqrt2"):
        QuantConfig(post_softmax="log2")
