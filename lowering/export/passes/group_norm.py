"""GroupNorm as the averaging LayerNorm over each group: x [N, C, *S] viewed as
[N, G, C / G * prod(S)], normalized over the last dimension (`layer_norm.normalize_last`),
viewed back, and the per-channel affine. XNNPACK has no GroupNorm node."""

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


def _rewrite(edit: Edit, node: torch.fx.Node) -> bool:
    x, groups, *rest = node.args
    weight, bias, eps = (rest + [None, None, 1e-5][len(rest):])[:3]
    sizes = shape(x)
    if node.kwargs or len(sizes) < 3 or not x.meta["val"].dtype.is_floating_point:
        return False
    grouped = edit.call(aten.reshape.default, (x, [sizes[0], groups, math.prod(sizes[1:]) // groups]), node)
    normalized = edit.call(aten.reshape.default, (normalize_last(edit, grouped, eps, node), sizes), node)
    rank = len(sizes)
    edit.replace(node, affine(edit, normalized, _per_channel(edit, weight, rank, node),
                              _per_channel(edit, bias, rank, node), node))
    return True


GROUP_NORM = GraphPass("group_norm", 1, node_rewrites("group_norm", (aten.group_norm.default,), _rewrite))
