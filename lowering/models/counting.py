"""Parameter and multiply-accumulate (MAC) counts of any model.

MACs are counted by tracing one forward pass with PyTorch's FLOP counter, which sees
every matrix product (linears, convolutions, attention's batched matmuls) whatever module
issues it; one MAC is two FLOPs. Element-wise work (norms, softmax, GELU) is not counted,
as is customary for the figures papers quote (DeiT-Tiny at 224: about 1.25 GMACs).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode


def count_params(model: nn.Module) -> int:
    """Number of parameters (every element of every parameter tensor)."""
    return sum(p.numel() for p in model.parameters())


@torch.no_grad()
def count_macs(model: nn.Module, input_shape: tuple[int, ...]) -> int:
    """MACs of one forward pass on an input of `input_shape` (batch included)."""
    param = next(model.parameters())
    example = torch.zeros(input_shape, dtype=param.dtype, device=param.device)
    counter = FlopCounterMode(display=False)
    with counter:
        model(example)
    return counter.get_total_flops() // 2
