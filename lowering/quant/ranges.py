"""Range estimation for quantizers: min-max, percentiles, and the lowest-error choice.

Data is handled as rows: one row per quantization group (one per channel for a
per-channel quantizer, a single row for a per-tensor one). A search looks at a sample
of at most `MAX_SEARCH_VALUES` values (`search_sample`: all columns of small tensors, a
fixed random subset of columns of large ones, drawn with a fixed seed so the result is
deterministic): percentiles are estimated and candidate errors measured on it, while
the extremes always come from all the data. A search over a calibration batch of ViT
activations so costs milliseconds, not seconds.

    rows = as_rows(x, channel_axis)
    sample = search_sample(rows)
    low, high = lowest_error(sample, percentile_ranges(rows, sample), fake_quantize)
"""

from __future__ import annotations

import math
from typing import Callable, Sequence

import torch

PERCENTILES = (100.0, 99.99, 99.9, 99.5, 99.0)
MAX_SEARCH_VALUES = 1 << 18
SAMPLE_SEED = 0

Candidate = tuple[torch.Tensor, ...]


def as_rows(x: torch.Tensor, channel_axis: int | None) -> torch.Tensor:
    """`x` as a [groups, values] matrix: one row per channel of `channel_axis`, or one row."""
    if channel_axis is None:
        return x.reshape(1, -1)
    return x.movedim(channel_axis, 0).reshape(x.shape[channel_axis], -1)


def search_sample(rows: torch.Tensor) -> torch.Tensor:
    """The columns of `rows` a search looks at: all of them, or a fixed random subset
    keeping at most `MAX_SEARCH_VALUES` values."""
    groups, count = rows.shape
    keep = max(1, MAX_SEARCH_VALUES // groups)
    if count <= keep:
        return rows
    generator = torch.Generator().manual_seed(SAMPLE_SEED)
    columns = torch.randint(count, (keep,), generator=generator)
    return rows[:, columns.to(rows.device)]


def minmax_range(rows: torch.Tensor) -> Candidate:
    """(low, high) per row: the smallest and largest value."""
    return rows.amin(dim=1), rows.amax(dim=1)


def percentile_ranges(
    rows: torch.Tensor, sample: torch.Tensor, percentiles: Sequence[float] = PERCENTILES
) -> list[Candidate]:
    """One (low, high) per percentile p, per row: high is the p-th percentile of the
    row's `sample`, low the (100 - p)-th (nearest rank). p = 100 is the exact min-max of
    all of `rows`."""
    low_all, high_all = minmax_range(rows)
    count = sample.shape[1]
    ranks = [math.floor(count * (100.0 - p) / 100.0) for p in percentiles]
    depth = max(ranks) + 1
    largest = sample.topk(depth, dim=1).values
    smallest = sample.topk(depth, dim=1, largest=False).values
    candidates = []
    for p, rank in zip(percentiles, ranks):
        if p >= 100.0:
            candidates.append((low_all, high_all))
        else:
            candidates.append((smallest[:, rank], largest[:, rank]))
    return candidates


def lowest_error(
    sample: torch.Tensor,
    candidates: Sequence[Candidate],
    fake_quantize: Callable[[torch.Tensor, Candidate], torch.Tensor],
) -> Candidate:
    """Per row, the candidate whose fake quantization of the row's `sample` has the
    lowest L2 error.

    `fake_quantize(rows, candidate)` quantizes and dequantizes `rows` with the
    candidate's parameters (each a tensor with one entry per row). Ties go to the
    earlier candidate.
    """
    errors = torch.stack(
        [(fake_quantize(sample, candidate) - sample).square().sum(dim=1) for candidate in candidates]
    )
    best = errors.argmin(dim=0)
    return tuple(
        torch.stack([candidate[i] for candidate in candidates]).gather(0, best.unsqueeze(0)).squeeze(0)
        for i in range(len(candidates[0]))
    )
