"""Range estimation: percentiles, and the search that keeps the lowest-error candidate."""

import torch

from lowering.quant import UniformQuantizer
from lowering.quant import ranges
from lowering.quant.quantizers import uniform_params


def _error(x, quantizer):
    return ((quantizer(x) - x) ** 2).sum()


def _with_range(bits, low, high):
    quantizer = UniformQuantizer(bits)
    quantizer.set_params(*uniform_params(torch.tensor([low]), torch.tensor([high]), bits), None)
    return quantizer


def test_percentile_ranges_match_sorted_ranks():
    x = torch.arange(10000, dtype=torch.float32)
    rows = ranges.as_rows(x, None)
    candidates = ranges.percentile_ranges(rows, ranges.search_sample(rows), (100.0, 99.0, 90.0))
    assert [(float(lo), float(hi)) for lo, hi in candidates] == [
        (0.0, 9999.0),
        (100.0, 9899.0),
        (1000.0, 8999.0),
    ]


def test_search_prefers_clipping_an_outlier_and_beats_every_candidate():
    # Gaussian values plus a few huge outliers: min-max wastes the 4-bit grid on them.
    x = torch.randn(20000, generator=torch.Generator().manual_seed(0))
    x[:5] = torch.tensor([60.0, -55.0, 70.0, 58.0, -65.0])
    searched = UniformQuantizer(4, None, "percentile")
    searched.fit(x)
    minmax = UniformQuantizer(4, None, "minmax")
    minmax.fit(x)
    assert searched.scale < minmax.scale
    best = _error(x, searched)
    rows = ranges.as_rows(x, None)
    for low, high in ranges.percentile_ranges(rows, ranges.search_sample(rows)):
        assert best <= _error(x, _with_range(4, float(low), float(high))) + 1e-3
    assert best < _error(x, minmax)


def test_search_keeps_min_max_when_nothing_should_be_clipped():
    # Eight values on an exact 3-bit grid: min-max reproduces them with zero error.
    x = torch.arange(8, dtype=torch.float32).repeat(500)
    searched = UniformQuantizer(3, None, "percentile")
    searched.fit(x)
    assert torch.equal(searched(x), x)


def test_per_channel_search_chooses_per_channel():
    clean = torch.randn(2000, generator=torch.Generator().manual_seed(1))
    spiky = clean.clone()
    spiky[:3] = 80.0
    x = torch.stack([clean, spiky], dim=1)  # channel axis 1
    quantizer = UniformQuantizer(4, 1, "percentile")
    quantizer.fit(x)
    for channel in range(2):
        alone = UniformQuantizer(4, None, "percentile")
        alone.fit(x[:, channel])
        assert torch.equal(quantizer.scale[channel], alone.scale)


def test_large_tensors_are_searched_on_a_fixed_sample():
    x = torch.randn(3 * ranges.MAX_SEARCH_VALUES, generator=torch.Generator().manual_seed(2))
    first, second = UniformQuantizer(6), UniformQuantizer(6)
    first.fit(x)
    second.fit(x.clone())
    assert torch.equal(first.scale, second.scale)
    assert ranges.search_sample(ranges.as_rows(x, None)).numel() == ranges.MAX_SEARCH_VALUES
