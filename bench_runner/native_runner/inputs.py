"""The native runner's input values, reproduced in numpy (runner.cpp's `input_value`).

Element i, counted over all inputs in order, is splitmix64 of `seed + (i + 1) * golden`,
its top 24 bits scaled to [-1, 1). Every step is exact in float32, so these arrays equal
the runner's inputs bit for bit and the runner's output checksum can be checked against
any other runtime fed the same arrays.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def _splitmix64(x: np.ndarray) -> np.ndarray:
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def runner_inputs(shapes: Sequence[Sequence[int]], seed: int) -> list[np.ndarray]:
    """The float32 arrays the runner feeds a method whose inputs have `shapes`, for `seed`."""
    counts = [math.prod(shape) for shape in shapes]
    index = np.arange(1, sum(counts) + 1, dtype=np.uint64)
    with np.errstate(over="ignore"):
        bits = _splitmix64(np.uint64(seed) + index * _GOLDEN) >> np.uint64(40)
    values = (bits.astype(np.float32) / np.float32(2**24)) * np.float32(2) - np.float32(1)
    starts = np.cumsum([0] + counts)
    return [values[start:start + count].reshape(shape) for start, count, shape in zip(starts, counts, shapes)]
