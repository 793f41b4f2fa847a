"""GroupNorm in operators XNNPACK takes (it has no GroupNorm node), in one of two forms:

- images [N, C, H, W]: per-channel means over H and W (`mean.dim` [2, 3], which XNNPACK
  runs as global average pooling in its own channels-last layout), averaged over each
  group's channels by a 1x1 convolution against a constant block-averaging weight; the
  same for the variance of the centred input, a reciprocal square root and the
  per-channel affine. Nothing leaves the channels-last layout.
- any other rank: x [N, C, *S] viewed as [N, G, C / G * prod(S)], normalized over the
  last dimension (`layer_norm.normalize_last`), viewed back, and the affine.

On images the second form (version 1 of this pass, for every rank) cost two layout
changes and two width-C*H*W linears per norm: MobileViTv2-050 at 256 px ran 1.04x stock
lowering's latency with it, 0.80x with the first (1 thread, results/benchmarks/zoo.md).
"""

from __future__ import annotations

import math

import torch

from lowering.export.passes.graph import Edit, shape
from lowering.export.passes.graph_pass import GraphPass, node_rewrites
from lowering.export.passes.layer_norm import affine, normalize_last

aten = torch.ops.aten


def _per_channel(edit: Edit, parameter: torch.fx.Node | None, rank: int, like: torch.fx.Node):
    """A [C] parameter as [C, 1, ...] against an input of `rank` dimensions; a constant if it is one."""
    if parameter is None:
        return None
    sizes = [shape(parameter)[0]] + [1] * (rank - 2)
    value = edit.value(parameter)
    if value is not None:
        return edit.constant(value.detach().reshape(sizes).clone())
    return edit.call(aten.reshape.default, (parameter, sizes), like)


def group_averaging(channels: int, groups: int, dtype: torch.dtype) -> torch.Tensor:
    """The [C, C, 1, 1] weight of a 1x1 convolution whose output channel c is the mean of
    the input channels in c's group."""
    width = channels // groups
    blocks = torch.block_diag(*[torch.full((width, width), 1.0 / width, dtype=dtype)] * groups)
    return blocks.reshape(channels, channels, 1, 1)


def _group_mean(edit: Edit, x: torch.fx.Node, averaging: torch.fx.Node, like: torch.fx.Node) -> torch.fx.Node:
    """The mean of `x` [N, C, H, W] over each group's channels and all of H, W: [N, C, 1, 1]."""
    per_channel = edit.call(aten.mean.dim, (x, [2, 3], True), like)
    return edit.call(aten.conv2d.default, (per_channel, averaging), like)


def _normalize_spatial(edit: Edit, x: torch.fx.Node, groups: int, eps: float, like: torch.fx.Node) -> torch.fx.Node:
    averaging = edit.constant(group_averaging(shape(x)[1], groups, x.meta["val"].dtype))
    centred = edit.call(aten.sub.Tensor, (x, _group_mean(edit, x, averaging, like)), like)
    variance = _group_mean(edit, edit.call(aten.mul.Tensor, (centred, centred), like), averaging, like)
    scale = edit.call(aten.rsqrt.default, (edit.call(aten.add.Tensor, (variance, eps), like),), like)
    return edit.call(aten.mul.Tensor, (centred, scale), like)


def _normalize_flattened(edit: Edit, x: torch.fx.Node, groups: int, eps: float, like: torch.fx.Node) -> torch.fx.Node:
    sizes = shape(x)
    grouped = edit.call(aten.reshape.default, (x, [sizes[0], groups, math.prod(sizes[1:]) // groups]), like)
    return edit.call(aten.reshape.default, (normalize_last(edit, grouped, eps, like), sizes), like)


def _rewrite(edit: Edit, node: torch.fx.Node) -> bool:
    x, groups, *rest = node.args
    weight, bias, eps = (rest + [None, None, 1e-5][len(rest):])[:3]
    rank = len(shape(x))
    if node.kwargs or rank < 3 or not x.meta["val"].dtype.is_floating_point:
        return False
    normalize = _normalize_spatial if rank == 4 else _normalize_flattened
    edit.replace(node, affine(edit, normalize(edit, x, groups, eps, node), _per_channel(edit, weight, rank, node),
                              _per_channel(edit, bias, rank, node), node))
    return True


GROUP_NORM = GraphPass("group_norm", 2, node_rewrites("group_norm", (aten.group_norm.default,), _rewrite))
