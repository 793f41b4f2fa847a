"""Fake quantizers: uniform (asymmetric, per tensor or per channel), log-sqrt2 and SULQ.

Each quantizer maps real values to integer codes (`codes`), codes back to reals
(`dequantize`), and does both in `forward`. It learns its parameters from data once
(`fit`); during calibration an unfitted quantizer fits on the first tensor it sees.

Log-sqrt2 (RepQ-ViT, Li et al., ICCV 2023), for post-softmax values in [0, 1]:
`q = round(-2 log2(x / s))`, dequantized as `s * 2^(-ceil(q/2)) * (sqrt2 if q odd else 1)`,
i.e. `s * 2^(-q/2)`; codes at or above 2^b dequantize to 0.

Shift-uniform-log2, SULQ (I&S-ViT, Zhong et al., 2023): `L = log2(x + eta)` quantized
uniformly between its calibration min and max, dequantized as `2^round(L^) - eta`, so a
b-bit SULQ has at most 2^b output values, each a power of two minus eta; eta (a power of
two, so that 0 maps to 0) is the grid value with the lowest squared error.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from vitdeploy.errors import VitdeployError
from lowering.quant import ranges

SQRT2 = math.sqrt(2.0)
SULQ_ETAS = tuple(2.0**-k for k in (4, 6, 8, 10, 12, 14, 16))
_TINY_STEP = 1e-12


class NotCalibratedError(VitdeployError):
    """A quantizer was used before calibration gave it its parameters."""


class Quantizer(nn.Module):
    """The shared behaviour: fit on the first tensor while calibrating, then fake-quantize."""

    def __init__(self, bits: int):
        super().__init__()
        self.bits = bits
        self.calibrating = False

    @property
    def levels(self) -> int:
        return 2**self.bits

    @property
    def fitted(self) -> bool:
        raise NotImplementedError

    def fit(self, x: torch.Tensor) -> None:
        raise NotImplementedError

    def codes(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def dequantize(self, codes: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.fitted:
            if not self.calibrating:
                raise NotCalibratedError(
                    f"{type(self).__name__} has no parameters yet: calibrate the model "
                    "(lowering.quant.calibrate) before running it"
                )
            self.fit(x.detach())
        return self.dequantize(self.codes(x))


def uniform_params(low: torch.Tensor, high: torch.Tensor, bits: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Asymmetric scale and integer zero point for the range [low, high], widened to hold 0
    (so 0 is exactly representable and the zero point lies within the codes)."""
    low = low.clamp(max=0)
    high = high.clamp(min=0)
    scale = ((high - low) / (2**bits - 1)).clamp(min=_TINY_STEP)
    zero_point = (-low / scale).round().clamp(0, 2**bits - 1)
    return scale, zero_point


def uniform_codes(x: torch.Tensor, scale: torch.Tensor, zero_point: torch.Tensor, bits: int) -> torch.Tensor:
    """`clamp(round(x / scale) + zero_point, 0, 2^bits - 1)`, as floats holding integers."""
    codes = x / scale
    return codes.round_().add_(zero_point).clamp_(0, 2**bits - 1)


class UniformQuantizer(Quantizer):
    """Uniform asymmetric quantizer, per tensor (`channel_axis` None) or per channel.

    Parameters: `scale` and integral `zero_point`, scalars or one per channel. The range
    comes from min-max or from the percentile candidate with the lowest L2 error, per
    channel when per channel.
    """

    def __init__(self, bits: int, channel_axis: int | None = None, range_search: str = "percentile"):
        super().__init__(bits)
        self.channel_axis = channel_axis
        self.range_search = range_search
        self.register_buffer("scale", None)
        self.register_buffer("zero_point", None)

    @property
    def fitted(self) -> bool:
        return self.scale is not None

    def fit(self, x: torch.Tensor) -> None:
        rows = ranges.as_rows(x, self.channel_axis)
        if self.range_search == "minmax":
            low, high = ranges.minmax_range(rows)
        else:
            sample = ranges.search_sample(rows)
            candidates = ranges.percentile_ranges(rows, sample)
            low, high = ranges.lowest_error(sample, candidates, self._fake_quantize_rows)
        scale, zero_point = uniform_params(low, high, self.bits)
        self.set_params(scale, zero_point, self.channel_axis)

    def set_params(self, scale: torch.Tensor, zero_point: torch.Tensor, channel_axis: int | None) -> None:
        """Give the quantizer its parameters directly (per tensor when `channel_axis` is None)."""
        self.channel_axis = channel_axis
        if channel_axis is None:
            scale, zero_point = scale.reshape(()), zero_point.reshape(())
        self.scale = scale.detach().clone()
        self.zero_point = zero_point.detach().clone()

    def reset(self) -> None:
        """Forget the parameters, so the next calibration fits them again."""
        self.scale = None
        self.zero_point = None

    def _fake_quantize_rows(self, rows: torch.Tensor, candidate: ranges.Candidate) -> torch.Tensor:
        scale, zero_point = uniform_params(*candidate, self.bits)
        scale, zero_point = scale[:, None], zero_point[:, None]
        return (uniform_codes(rows, scale, zero_point, self.bits) - zero_point) * scale

    def _broadcast(self, param: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        if self.channel_axis is None:
            return param
        shape = [1] * x.dim()
        shape[self.channel_axis] = -1
        return param.reshape(shape)

    def codes(self, x: torch.Tensor) -> torch.Tensor:
        scale, zero_point = self._broadcast(self.scale, x), self._broadcast(self.zero_point, x)
        return uniform_codes(x, scale, zero_point, self.bits)

    def dequantize(self, codes: torch.Tensor) -> torch.Tensor:
        return (codes - self._broadcast(self.zero_point, codes)) * self._broadcast(self.scale, codes)

    def extra_repr(self) -> str:
        granularity = "per-tensor" if self.channel_axis is None else f"per-channel(axis={self.channel_axis})"
        return f"bits={self.bits}, {granularity}, range={self.range_search}"


def log_sqrt2_dequantize(codes: torch.Tensor, scale: torch.Tensor, bits: int) -> torch.Tensor:
    """`scale * 2^(-ceil(q/2)) * (sqrt2 if q odd else 1)`; 0 for codes at or above 2^bits."""
    odd = torch.remainder(codes, 2) == 1
    level = scale * torch.pow(2.0, -torch.ceil(codes / 2)) * torch.ones_like(codes).masked_fill(odd, SQRT2)
    return torch.where(codes >= 2**bits, torch.zeros_like(level), level)


class LogSqrt2Quantizer(Quantizer):
    """RepQ-ViT's log-sqrt2 quantizer for non-negative values (post-softmax).

    Codes are 0 .. 2^b - 1 for the levels `s * 2^(-q/2)`, and 2^b for zero (values
    too small for the smallest level); the scale `s` is the upper percentile of the
    data with the lowest L2 error.
    """

    def __init__(self, bits: int, range_search: str = "percentile"):
        super().__init__(bits)
        self.range_search = range_search
        self.register_buffer("scale", None)

    @property
    def fitted(self) -> bool:
        return self.scale is not None

    def fit(self, x: torch.Tensor) -> None:
        rows = ranges.as_rows(x, None)
        sample = ranges.search_sample(rows)
        if self.range_search == "minmax":
            candidates = [ranges.minmax_range(rows)]
        else:
            candidates = ranges.percentile_ranges(rows, sample)
        scales = [(high.clamp(min=_TINY_STEP),) for _, high in candidates]
        (scale,) = ranges.lowest_error(sample, scales, self._fake_quantize_rows)
        self.scale = scale.reshape(()).detach().clone()

    def _fake_quantize_rows(self, rows: torch.Tensor, candidate: ranges.Candidate) -> torch.Tensor:
        scale = candidate[0][:, None]
        return log_sqrt2_dequantize(self._codes(rows, scale), scale, self.bits)

    def _codes(self, x: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
        exponent = torch.round(-2 * torch.log2(x / scale))
        return exponent.clamp(0, 2**self.bits)

    def codes(self, x: torch.Tensor) -> torch.Tensor:
        return self._codes(x, self.scale)

    def dequantize(self, codes: torch.Tensor) -> torch.Tensor:
        return log_sqrt2_dequantize(codes, self.scale, self.bits)

    def extra_repr(self) -> str:
        return f"bits={self.bits}, log-sqrt2"


def sulq_dequantize(codes: torch.Tensor, low: torch.Tensor, step: torch.Tensor, eta: torch.Tensor) -> torch.Tensor:
    """`2^round(low + codes * step) - eta`."""
    return torch.pow(2.0, torch.round(low + codes * step)) - eta


class ShiftUniformLog2Quantizer(Quantizer):
    """I&S-ViT's shift-uniform-log2 quantizer (SULQ) for non-negative values (post-softmax).

    Parameters: the shift `eta`, and the low end and step of the uniform grid on
    `log2(x + eta)` (the grid spans the calibration data's min and max).
    """

    def __init__(self, bits: int):
        super().__init__(bits)
        self.register_buffer("eta", None)
        self.register_buffer("low", None)
        self.register_buffer("step", None)

    @property
    def fitted(self) -> bool:
        return self.eta is not None

    def fit(self, x: torch.Tensor) -> None:
        rows = ranges.as_rows(x, None)
        low_all, high_all = ranges.minmax_range(rows)
        candidates = []
        for eta in SULQ_ETAS:
            eta = torch.full((1,), eta, dtype=x.dtype, device=x.device)
            low, high = torch.log2(low_all + eta), torch.log2(high_all + eta)
            step = ((high - low) / (self.levels - 1)).clamp(min=_TINY_STEP)
            candidates.append((eta, low, step))
        eta, low, step = ranges.lowest_error(ranges.search_sample(rows), candidates, self._fake_quantize_rows)
        self.eta, self.low, self.step = (t.reshape(()).detach().clone() for t in (eta, low, step))

    def _fake_quantize_rows(self, rows: torch.Tensor, candidate: ranges.Candidate) -> torch.Tensor:
        eta, low, step = (t[:, None] for t in candidate)
        return sulq_dequantize(self._codes(rows, eta, low, step), low, step, eta)

    def _codes(self, x, eta, low, step) -> torch.Tensor:
        return torch.round((torch.log2(x + eta) - low) / step).clamp(0, self.levels - 1)

    def codes(self, x: torch.Tensor) -> torch.Tensor:
        return self._codes(x, self.eta, self.low, self.step)

    def dequantize(self, codes: torch.Tensor) -> torch.Tensor:
        return sulq_dequantize(codes, self.low, self.step, self.eta)

    def extra_repr(self) -> str:
        return f"bits={self.bits}, sulq"
