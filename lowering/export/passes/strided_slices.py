"""Slices with a step (LeViT's subsampling, `x[:, ::2]`) as unit-step slices and views,
which XNNPACK takes (it slices with step 1 only): the m elements start, start + step, ...
are element 0 of each row of the [m, step] view of x[start : start + m * step], and where
that runs past the end, the last element is sliced on its own and concatenated."""

from __future__ import annotations

import torch

from lowering.export.passes.graph import Edit, shape
from lowering.export.passes.graph_pass import GraphPass, node_rewrites

aten = torch.ops.aten


def _every_step(edit: Edit, x: torch.fx.Node, dim: int, start: int, count: int, step: int,
                like: torch.fx.Node) -> torch.fx.Node:
    """x[start : start + count * step : step] along `dim`, within x's size."""
    sizes = shape(x)
    window = edit.call(aten.slice.Tensor, (x, dim, start, start + count * step), like)
    rows = edit.call(aten.reshape.default, (window, sizes[:dim] + [count, step] + sizes[dim + 1:]), like)
    firsts = edit.call(aten.slice.Tensor, (rows, dim + 1, 0, 1), like)
    return edit.call(aten.reshape.default, (firsts, sizes[:dim] + [count] + sizes[dim + 1:]), like)


def _rewrite(edit: Edit, node: torch.fx.Node) -> bool:
    x, dim, start, end, step = (list(node.args) + [0, None, None, 1][len(node.args) - 1:])[:5]
    if step == 1 or node.kwargs:
        return False
    dim %= len(shape(x))
    size, count = shape(x)[dim], shape(node)[dim]
    start = min(max(start + size if start < 0 else start, 0), size)
    if count == 0:
        return False
    if start + count * step <= size:
        edit.replace(node, _every_step(edit, x, dim, start, count, step, node))
        return True
    last = start + (count - 1) * step
    tail = edit.call(aten.slice.Tensor, (x, dim, last, last + 1), node)
    if count == 1:
        edit.replace(node, tail)
        return True
    head = _every_step(edit, x, dim, start, count - 1, step, node)
    edit.replace(node, edit.call(aten.cat.default, ([head, tail], dim), node))
    return True


STRIDED_SLICES = GraphPass("strided_slices", 1, node_rewrites("strided_slices", (aten.slice.Tensor,), _rewrite))
