"""Means and sums as linears against a constant row: XNNPACK reduces only 4-D tensors over
their two innermost dimensions (global average pooling), so a mean over tokens or
channels, or any sum, falls out of the delegate.

    reduce_last(edit, x, scale, like)   x [..., K] -> [..., 1]: linear(x, full((1, K), scale))
    TOKEN_REDUCTIONS                    the pass: `mean.dim` and `sum.dim_IntList` of float
                                        tensors (other than the mean XNNPACK takes) as a
                                        permute of the reduced dimensions to the end, a
                                        reshape to [..., K], the linear and a reshape
"""

from __future__ import annotations

import math

import torch

from lowering.export.passes.graph import Edit, shape
from lowering.export.passes.graph_pass import GraphPass, node_rewrites

aten = torch.ops.aten
_REDUCTIONS = (aten.mean.dim, aten.sum.dim_IntList)


def reduce_last(edit: Edit, x: torch.fx.Node, scale: float, like: torch.fx.Node) -> torch.fx.Node:
    """`scale` times the sum of `x` over its last dimension, kept as a dimension of one."""
    width = shape(x)[-1]
    row = edit.constant(torch.full((1, width), scale, dtype=x.meta["val"].dtype))
    return edit.call(aten.linear.default, (x, row), like)


def _reduced_dims(node: torch.fx.Node) -> list[int] | None:
    x = node.args[0]
    rank = x.meta["val"].dim()
    dims = node.args[1] if len(node.args) > 1 else None
    if not dims or not x.meta["val"].dtype.is_floating_point or node.kwargs.get("dtype") is not None:
        return None
    return sorted(dim % rank for dim in dims)


def _xnnpack_takes(node: torch.fx.Node, dims: list[int]) -> bool:
    keepdim = len(node.args) > 2 and bool(node.args[2])
    return node.target == aten.mean.dim and node.args[0].meta["val"].dim() == 4 and dims == [2, 3] and keepdim


def _rewrite(edit: Edit, node: torch.fx.Node) -> bool:
    dims = _reduced_dims(node)
    if dims is None or _xnnpack_takes(node, dims):
        return False
    x = node.args[0]
    sizes = shape(x)
    kept = [dim for dim in range(len(sizes)) if dim not in dims]
    count = math.prod(sizes[dim] for dim in dims)
    if kept + dims != list(range(len(sizes))):
        x = edit.call(aten.permute.default, (x, kept + dims), node)
    rows = edit.call(aten.reshape.default, (x, [sizes[dim] for dim in kept] + [count]), node)
    reduced = reduce_last(edit, rows, 1.0 / count if node.target == aten.mean.dim else 1.0, node)
    edit.replace(node, edit.call(aten.reshape.default, (reduced, shape(node)), node))
    return True


TOKEN_REDUCTIONS = GraphPass("token_reductions", 1, node_rewrites("token_reductions", _REDUCTIONS, _rewrite))
